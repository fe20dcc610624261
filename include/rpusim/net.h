/* rpusim — experiments and sequential networks: an experiment file (INI) describes the run,
 * the rpu_config, the data set and the layers; a network is built from it with its mapped
 * analog layers spread over a communicator, trained by SGD and evaluated.
 *
 * Experiment file sections, in any order except that [layer.NAME] sections are taken in
 * file order:
 *   [run]     seed, epochs, batch_size, lr, lr_schedule (constant | step), lr_step
 *             (epochs), lr_gamma, momentum (digital parameters), output_dir, checkpoint,
 *             checkpoint_every (epochs), keep_checkpoints, progress_every (batches)
 *   [rpu]     the rpu_config by aihwkit's dotted names (kind first, then device.type, ...)
 *   [data]    dataset = digits | idx | fashion_mnist | synthetic; path; synthetic_n,
 *             synthetic_classes, synthetic_size
 *   [layer.NAME] type = conv1d | conv2d | conv3d | linear | relu | tanh | sigmoid |
 *             maxpool | avgpool | flatten | dropout, with out, kernel, stride, padding,
 *             dilation, groups, bias, p (dropout)
 *   [loss]    type = cross_entropy
 * Overrides "section.key=value" (for layers "layer.NAME.key=value", for the config
 * "rpu.forward.out_noise=0.1") replace or add entries before interpretation. Errors name
 * the file, the line and the key. */
#ifndef RPUSIM_NET_H
#define RPUSIM_NET_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpusim/config.h"
#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rpu_experiment rpu_experiment;
typedef struct rpu_net rpu_net;

/* Reads and checks an experiment file with overrides applied (local; no MPI). */
rpu_status rpu_experiment_load(const char *path, const char *const *overrides, int n_overrides,
                               rpu_experiment **exp);
/* The same from text (source names it in messages). */
rpu_status rpu_experiment_parse(const char *text, const char *source,
                                const char *const *overrides, int n_overrides,
                                rpu_experiment **exp);
void rpu_experiment_free(rpu_experiment **exp);
/* The experiment as text after the overrides (what checkpoints and the output store). */
const char *rpu_experiment_text(const rpu_experiment *exp);
const rpu_config *rpu_experiment_config(const rpu_experiment *exp);

/* Run parameters as parsed. */
typedef struct {
    uint64_t seed;
    int epochs, batch_size;
    float lr;
    int lr_step;     /* 0: constant */
    float lr_gamma;
    float momentum;  /* digital parameters (biases) */
    char output_dir[512];
    char checkpoint[512];
    int checkpoint_every, keep_checkpoints, progress_every;
    char dataset[32];
    char data_path[512];
    int synthetic_n, synthetic_classes, synthetic_size;
} rpu_run_params;
const rpu_run_params *rpu_experiment_run(const rpu_experiment *exp);

/* Builds the network for inputs [n, channels, spatial...] (collective on comm): infers and
 * checks the shape of every layer (errors name the layer's line). ndim = number of spatial
 * dimensions (0 for flat inputs). */
rpu_status rpu_net_create(MPI_Comm comm, const rpu_experiment *exp, int channels, int ndim,
                          const int *spatial, rpu_net **net);
void rpu_net_destroy(rpu_net **net);

void rpu_net_set_training(rpu_net *net, bool training);
/* Number of classes the network outputs (size of its last layer). */
int rpu_net_outputs(const rpu_net *net);
/* Forward (collective): x [n, input size] -> logits [n, outputs]. */
rpu_status rpu_net_forward(rpu_net *net, const float *x, int n, float *logits);
/* Loss of the last forward (mean cross-entropy), its gradient through the network
 * (collective), number of correct predictions. */
rpu_status rpu_net_backward(rpu_net *net, const uint8_t *labels, double *loss, int *correct);
/* SGD step with learning rate lr: analog layers through their tiles, digital biases by
 * SGD with the run's momentum (local). */
rpu_status rpu_net_update(rpu_net *net, float lr);
/* Dropout masks are keyed by (seed, layer, step): set the step before each forward. */
void rpu_net_set_step(rpu_net *net, uint64_t step);

/* Analog layers (conv/linear) in order, for checkpoints: count, name, conv handle. */
int rpu_net_analog_count(const rpu_net *net);
const char *rpu_net_analog_name(const rpu_net *net, int k);
struct rpu_conv *rpu_net_analog_layer(rpu_net *net, int k);
/* Digital parameter state (bias momentum buffers) of analog layer k: n values or NULL. */
float *rpu_net_momentum(rpu_net *net, int k, int *n);

/* ------------------------------------------------------------------ training */

typedef struct {
    int epoch, epochs;   /* 1-based current epoch */
    int batch, batches;  /* 1-based batch within the epoch */
    int64_t step;        /* optimizer steps done in the run */
    double loss, acc;    /* running means over the epoch so far */
    double samples_per_s;
    double eta_s;        /* estimated seconds to the end of the run */
} rpu_progress;

typedef struct {
    int epoch;
    double train_loss, train_acc, test_loss, test_acc, seconds;
} rpu_epoch_metrics;

/* Called on every rank (the caller prints on rank 0 only). Any of them may be NULL. */
typedef struct {
    void (*on_progress)(void *ctx, const rpu_progress *p);
    void (*on_epoch)(void *ctx, const rpu_epoch_metrics *m);
    void *ctx;
    /* Polled after every optimizer step on every rank: nonzero asks the run to stop (for
     * example a signal handler's flag). The ranks' answers are combined with one
     * MPI_Allreduce (MAX) of one int per step, so every rank stops after the same step,
     * even when only one of them was asked. Must be NULL on all ranks or on none. */
    int (*should_stop)(void *ctx);
} rpu_train_hooks;

/* Trains the experiment's network on its data set (collective): shuffles each epoch with
 * a stream keyed by (seed, epoch) (the same order on every rank), SGD with the run's
 * learning-rate schedule, evaluates the test set after every epoch, writes
 * output_dir/metrics.csv and output_dir/experiment.ini, and checkpoints every
 * checkpoint_every epochs and at the end (run.checkpoint; empty: none). resume: a
 * checkpoint to continue from (NULL: start fresh); it must come from the same
 * experiment (model and config are verified). hooks may be NULL.
 *
 * Stopping early: when hooks->should_stop answers nonzero on any rank, every rank finishes
 * the current step, the state after it is written to run.checkpoint (collectively, like
 * every checkpoint: the previous file stays intact until the new one is complete), and
 * rpu_train returns RPU_STOPPED on every rank with a message naming the epoch, batch,
 * step and file (with an empty run.checkpoint nothing is written and the message says
 * so). Such a mid-epoch checkpoint also stores the position in the epoch and the epoch's
 * running sums (/train/partial_epoch), so resuming from it continues exactly: the final
 * weights and metrics are those of an uninterrupted run. A checkpoint without
 * /train/partial_epoch is an epoch-end checkpoint. */
rpu_status rpu_train(MPI_Comm comm, const rpu_experiment *exp, const char *resume,
                     const rpu_train_hooks *hooks);

/* Evaluates the test set with the weights of a checkpoint (collective): mean loss,
 * accuracy, and the confusion matrix [true][predicted] (n_classes x n_classes ints,
 * malloc'ed; the caller frees it). */
rpu_status rpu_evaluate(MPI_Comm comm, const rpu_experiment *exp, const char *checkpoint,
                        double *loss, double *acc, int **confusion, int *n_classes);

#ifdef __cplusplus
}
#endif
#endif
