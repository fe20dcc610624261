/* Private: the parsed experiment shared by experiment.c, net.c, train.c and infer.c. */
#ifndef RPUSIM_EXPERIMENT_IMPL_H
#define RPUSIM_EXPERIMENT_IMPL_H

#include "rpusim/mapping.h"
#include "rpusim/net.h"

#include <stddef.h>

#define EXP_MAX_LAYERS 64
/* Layer names are stored in checkpoints: 1..EXP_MAX_NAME characters from [A-Za-z0-9_.-],
 * not "." or ".." (rpu_ckpt_layer's rule). */
#define EXP_MAX_NAME 63

/* One "key = value" of the experiment, in the order read; the entries of a section keep
 * their relative order (in [rpu] a later key wins; the keys that reset others are
 * applied first, see rpu_config_set_entries). */
typedef struct {
    int sec;             /* index into rpu_experiment.sections */
    char *key;           /* as written: "epochs", "forward.out_noise" */
    char *value;         /* the value itself (unquoted, trimmed, no control characters) */
    int line;            /* 0: set by a --set override */
    const char *section; /* the section's name (sections[sec].name) */
} exp_entry;

/* A section, in the order of first appearance (file order, then sections --set added). */
typedef struct {
    char *name; /* "run", "rpu", "data", "loss" or "layer.NAME" */
    int line;   /* line of its header; 0: added by a --set override */
    int layer;  /* index into layers for [layer.NAME], else -1 */
} exp_section;

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
    char name[EXP_MAX_NAME + 1];
    exp_layer_type type;
    int line; /* of the [layer.NAME] header */
    int out, kernel, stride, padding, dilation, groups;
    bool bias;
    float p;
    rpu_split split; /* analog layers: mapped (default) or tile_array */
} exp_layer;

struct rpu_experiment {
    char *source; /* the file name messages use */
    exp_entry *entries;
    int n_entries, cap_entries;
    exp_section *sections;
    int n_sections, cap_sections;
    rpu_run_params run;
    rpu_config cfg;
    exp_layer layers[EXP_MAX_LAYERS];
    int n_layers;
    int lr_schedule; /* -1 not given, 0 constant, 1 step */
    char *text;
};

/* Where the value of [section] key comes from, for messages: "FILE:LINE", "FILE (--set
 * section.key)" or, when the key is not given, "FILE". Returns buf. */
const char *exp_where(const rpu_experiment *e, const char *section, const char *key, char *buf,
                      size_t n);

/* Interprets the entries into run, cfg and layers (experiment_sections.c). */
rpu_status exp_interpret(rpu_experiment *e);

/* Creates run.output_dir and the directory of run.checkpoint (like mkdir -p) and checks
 * that a checkpoint can be written there (not a directory itself, the directory
 * writable, its name short enough for MPI-IO: at most 234 bytes), so that a bad path
 * stops a run before its first step, not at its first checkpoint. Local (every rank may call it;
 * mkdir races are harmless). Errors: RPU_ERR_IO naming the key, its line and the path. */
rpu_status exp_prepare_paths(const rpu_experiment *e);

#endif
