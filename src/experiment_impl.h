/* Private: the parsed experiment shared by experiment.c and net.c. */
#ifndef RPUSIM_EXPERIMENT_IMPL_H
#define RPUSIM_EXPERIMENT_IMPL_H

#include "rpusim/net.h"

#define EXP_MAX_LAYERS 64

typedef struct {
    char section[96];
    char key[96];
    char value[512];
    int line; /* 0: from an override */
} exp_entry;

typedef enum {
    EXP_CONV1D = 0,
    EXP_CONV2D,
    EXP_CONV3D,
    EXP_LINEAR,
    EXP_RELU,
    EXP_TANH,
    EXP_SIGMOID,
    EXP_MAXPOOL,
    EXP_AVGPOOL,
    EXP_FLATTEN,
    EXP_DROPOUT,
    EXP_NONE
} exp_layer_type;

typedef struct {
    char name[64];
    exp_layer_type type;
    int line;
    int out, kernel, stride, padding, dilation, groups;
    bool bias;
    float p;
} exp_layer;

struct rpu_experiment {
    char source[512];
    exp_entry *entries;
    int n_entries, cap_entries;
    rpu_run_params run;
    rpu_config cfg;
    exp_layer layers[EXP_MAX_LAYERS];
    int n_layers;
    int lr_schedule; /* -1 not given, 0 constant, 1 step */
    char *text;
};

#endif
