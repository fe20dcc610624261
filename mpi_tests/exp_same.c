/* Test helper: compares two parsed experiments field by field (the fixed-point checks of
 * test_experiment and of the experiment fuzz target). */
#include "exp_same.h"

#include <stdio.h>
#include <string.h>

bool exp_same(const rpu_experiment *a, const rpu_experiment *b, char *why, size_t n) {
    const rpu_run_params *x = &a->run, *y = &b->run;
#define DIFF(cond, what)                                                                           \
    if (cond) return snprintf(why, n, "%s", what), false
    DIFF(x->seed != y->seed, "run.seed");
    DIFF(x->epochs != y->epochs, "run.epochs");
    DIFF(x->batch_size != y->batch_size, "run.batch_size");
    DIFF(x->lr != y->lr, "run.lr");
    DIFF(x->lr_step != y->lr_step, "run.lr_step");
    DIFF(x->lr_gamma != y->lr_gamma, "run.lr_gamma");
    DIFF(x->momentum != y->momentum, "run.momentum");
    DIFF(strcmp(x->output_dir, y->output_dir), "run.output_dir");
    DIFF(strcmp(x->checkpoint, y->checkpoint), "run.checkpoint");
    DIFF(x->checkpoint_every != y->checkpoint_every, "run.checkpoint_every");
    DIFF(x->keep_checkpoints != y->keep_checkpoints, "run.keep_checkpoints");
    DIFF(x->progress_every != y->progress_every, "run.progress_every");
    DIFF(strcmp(x->dataset, y->dataset), "data.dataset");
    DIFF(strcmp(x->data_path, y->data_path), "data.path");
    DIFF(x->synthetic_n != y->synthetic_n, "data.synthetic_n");
    DIFF(x->synthetic_classes != y->synthetic_classes, "data.synthetic_classes");
    DIFF(x->synthetic_size != y->synthetic_size, "data.synthetic_size");
    DIFF(x->synthetic_channels != y->synthetic_channels, "data.synthetic_channels");
    DIFF(!rpu_config_equal(&a->cfg, &b->cfg), "the [rpu] config");
    DIFF(a->n_layers != b->n_layers, "the number of layers");
    for (int q = 0; q < a->n_layers; ++q) {
        const exp_layer *p = &a->layers[q], *r = &b->layers[q];
        DIFF(strcmp(p->name, r->name) || p->type != r->type || p->out != r->out ||
                 p->kernel != r->kernel || p->stride != r->stride || p->padding != r->padding ||
                 p->dilation != r->dilation || p->groups != r->groups || p->bias != r->bias ||
                 p->p != r->p,
             p->name);
    }
#undef DIFF
    return true;
}
