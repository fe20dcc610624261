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
 *             synthetic_classes, synthetic_size (height = width), synthetic_channels
 *   [layer.NAME] type = conv1d | conv2d | conv3d | linear | relu | tanh | sigmoid |
 *             maxpool | avgpool | flatten | dropout, with out, kernel, stride, padding,
 *             dilation, groups, bias, p (dropout), split = mapped | tile_array (analog
 *             layers: aihwkit's *Mapped split, the default, or aihwkit 1.1's tile array;
 *             rpu_conv_params.split); NAME: 1..63 characters of
 *             [A-Za-z0-9_.-], not "." or ".." (checkpoints store it)
 *   [loss]    type = cross_entropy
 * Each section appears once, each key once in its section. Syntax (shared with
 * rpu_config_parse): lines of any length; ';' or '#' starts a comment at the start of a
 * line, of a value or after a blank; "..." quotes a value (\" and \\ escape); control
 * characters are refused outside comments; a value may be as long as its key accepts (511
 * bytes for paths).
 * Overrides "section.key=value" (for layers "layer.NAME.key=value", the key being the last
 * dotted part, for the config "rpu.forward.out_noise=0.1") replace or add entries before
 * interpretation; the value is taken literally (blanks around it dropped, control
 * characters refused); a layer must exist in the text; an added rpu.kind goes first in
 * [rpu] and an added rpu.device.type right after kind. Errors name the file and line, or
 * the override, and the key. */
#ifndef RPUSIM_NET_H
#define RPUSIM_NET_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpusim/config.h"
#include "rpusim/data.h"
#include "rpusim/layer.h"
#include "rpusim/tile.h"
#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rpu_experiment rpu_experiment;
typedef struct rpu_net rpu_net;

/* Reads and checks an experiment file with overrides applied (local; no MPI). A NUL byte
 * in the file is an error naming its line. Errors: RPU_ERR_ARG (NULL), RPU_ERR_IO (the
 * file cannot be read), RPU_ERR_CONFIG (the message names file:line or the override),
 * RPU_ERR_NOMEM. */
rpu_status rpu_experiment_load(const char *path, const char *const *overrides, int n_overrides,
                               rpu_experiment **exp);
/* The same from text (source names it in messages). Local. */
rpu_status rpu_experiment_parse(const char *text, const char *source, const char *const *overrides,
                                int n_overrides, rpu_experiment **exp);
/* Frees the experiment, sets *exp to NULL, accepts NULL. Local. */
void rpu_experiment_free(rpu_experiment **exp);
/* The experiment as text after the overrides (what checkpoints and the output store):
 * each section once, its entries in order, values quoted where the syntax needs it. It is
 * a fixed point: parsed again without overrides it gives the same experiment and the same
 * text. At most RPU_CKPT_MAX_TEXT bytes (a longer one is a parse error). Local. */
const char *rpu_experiment_text(const rpu_experiment *exp);
const rpu_config *rpu_experiment_config(const rpu_experiment *exp);

/* Run parameters as parsed. */
typedef struct {
    uint64_t seed;
    int epochs, batch_size;
    float lr;
    int lr_step; /* 0: constant */
    float lr_gamma;
    float momentum; /* digital parameters (biases) */
    char output_dir[512];
    char checkpoint[512];
    int checkpoint_every, keep_checkpoints, progress_every;
    char dataset[32];
    char data_path[512];
    int synthetic_n, synthetic_classes, synthetic_size, synthetic_channels;
} rpu_run_params;
/* The run parameters of exp. Local. */
const rpu_run_params *rpu_experiment_run(const rpu_experiment *exp);

/* The experiment's training and test sets as rpu_train loads them ([data]; local). Free
 * them with rpu_dataset_free. Errors name the [data] line: RPU_ERR_IO, RPU_ERR_FORMAT,
 * RPU_ERR_NOMEM, RPU_ERR_ARG. */
rpu_status rpu_experiment_data(const rpu_experiment *exp, rpu_dataset *train, rpu_dataset *test);

/* Builds the network for inputs [n, channels, spatial...] (collective on comm): infers and
 * checks the shape of every layer (errors name the layer's line). ndim = number of spatial
 * dimensions (0 for flat inputs). */
rpu_status rpu_net_create(MPI_Comm comm, const rpu_experiment *exp, int channels, int ndim,
                          const int *spatial, rpu_net **net);
/* Frees the network and its layers (collective: the layers free their communicators); sets
 * *net to NULL; accepts NULL. */
void rpu_net_destroy(rpu_net **net);

/* Training or eval mode of every layer (local; set the same mode on every rank). */
void rpu_net_set_training(rpu_net *net, bool training);
/* Number of classes the network outputs (size of its last layer). Local. */
int rpu_net_outputs(const rpu_net *net);
/* Forward (collective): x [n, input size] -> logits [n, outputs]. */
rpu_status rpu_net_forward(rpu_net *net, const float *x, int n, float *logits);
/* Loss of the last forward (mean cross-entropy), its gradient through the network
 * (collective), number of correct predictions. */
rpu_status rpu_net_backward(rpu_net *net, const uint8_t *labels, double *loss, int *correct);
/* SGD step with learning rate lr: analog layers through their tiles, digital biases by
 * SGD with the run's momentum. Local while every tile has one holder; with more ranks than
 * a layer's tiles, collective (the holders share their updates, rpu_conv_update). When
 * every analog layer's update splits among holders (rpu_conv_update_splits), every layer's
 * own part runs first and the exchanges follow in layer order (rpu_conv_update_begin /
 * _end), and each tile may be updated whole by one of its holders instead of by rows,
 * whichever the work estimate favours: layers of few tiles then update side by side (the
 * result is the same bits; rpu_net_update_owner tells who updated what). */
rpu_status rpu_net_update(rpu_net *net, float lr);

/* The holder (0 .. holders - 1) that updated tile t of layer k (rpu_net_layer_info order)
 * whole in the last rpu_net_update, or -1: split by rows, not an analog layer or tile, or
 * no such update yet. Local. */
int rpu_net_update_owner(const rpu_net *net, int k, int t);
/* Dropout masks are keyed by (seed, layer, step): set the step before each forward
 * (local; the same step on every rank). */
void rpu_net_set_step(rpu_net *net, uint64_t step);

/* One layer of a built network, for reports, benchmarks and models. */
typedef struct {
    const char *name;          /* the NAME of [layer.NAME] (the network's storage) */
    const char *type;          /* "conv2d", "linear", "relu", "maxpool", ... */
    int in_c, in_nd, in_sp[3]; /* input per sample: channels (features when flat), spatial */
    int out_c, out_nd, out_sp[3];
    struct rpu_conv *conv; /* the analog layer (a linear layer's conv); NULL if digital */
    bool input_grad;       /* rpu_net_backward computes this layer's input gradient
                              (every layer but the first) */
    double seconds[3];     /* forward, backward, update seconds summed while profiling */
} rpu_net_layer;

/* Number of layers (digital ones included). Local. */
int rpu_net_layer_count(const rpu_net *net);
/* Layer k (0-based, in network order) of net. Errors: RPU_ERR_ARG (NULL, k out of range).
 * Local. */
rpu_status rpu_net_layer_info(const rpu_net *net, int k, rpu_net_layer *info);
/* Profiling (local): on, every layer's forward, backward and update (the analog tiles and
 * the digital bias step) time is summed into rpu_net_layer.seconds, and the loss with
 * its gradient into rpu_net_loss_seconds; the times include the layers' MPI calls. Every
 * call resets the times to 0. Off by default (two clock reads per layer and pass). */
void rpu_net_set_profiling(rpu_net *net, bool on);
double rpu_net_loss_seconds(const rpu_net *net);

/* Where rpu_net_forward / rpu_net_backward move other ranks' samples (rpu_batch_part)
 * around layer k of n_layers, on more than one rank: the fetch of what the layer's tiles
 * read of its input before its forward (an analog layer after the first: the digital
 * layers before it computed only each rank's samples; rpu_conv_fetch_input) and of its
 * output gradient before its backward (an analog layer before the last;
 * rpu_conv_fetch_output_grad), none around an analog layer that reads only each rank's
 * own samples (own: rpu_conv_own_samples); the gather of every rank's samples of the
 * output of the last layer (the logits; one MPI_Allgatherv). Local (pure). */
typedef struct {
    bool input, logits, output_grad;
} rpu_net_gathers;
rpu_net_gathers rpu_net_gathers_at(int k, int n_layers, bool analog, bool own);

/* The MPI calls rank `rank` of `ranks` issues in one training step of net (rpu_net_forward
 * in training mode, rpu_net_backward, rpu_net_update) on a batch of `batch` samples: every
 * analog layer's rpu_conv_comm_plan_parts (layer.h) with its input shape and the gathers of
 * rpu_net_gathers_at, the forward's in layer order, the backward's in reverse order, then
 * the update's, each call tagged with its layer index. ranks need not be the size of the
 * communicator net was built on (a plan for another rank count). Writes min(total, max_calls)
 * calls, the total to *n_calls. Errors: as rpu_conv_comm_plan. Local (pure). */
rpu_status rpu_net_comm_plan(const rpu_net *net, int batch, int ranks, int rank,
                             rpu_comm_call *calls, int max_calls, int *n_calls);

/* Analog layers (conv/linear) in order, for checkpoints: count, name, conv handle (owned
 * by the network). Local. */
int rpu_net_analog_count(const rpu_net *net);
const char *rpu_net_analog_name(const rpu_net *net, int k);
struct rpu_conv *rpu_net_analog_layer(rpu_net *net, int k);
/* Digital parameter state (bias momentum buffers) of analog layer k: n values or NULL;
 * the network's own buffer, replicated on every rank (a checkpoint reads and restores it).
 * Local. */
float *rpu_net_momentum(rpu_net *net, int k, int *n);

/* ------------------------------------------------------------------ training */

typedef struct {
    int epoch, epochs;  /* 1-based current epoch */
    int batch, batches; /* 1-based batch within the epoch */
    int64_t step;       /* optimizer steps done in the run */
    double loss, acc;   /* running means over the epoch so far */
    double samples_per_s;
    double eta_s; /* estimated seconds to the end of the run */
} rpu_progress;

typedef struct {
    int epoch;
    double train_loss, train_acc, test_loss, test_acc, seconds;
} rpu_epoch_metrics;

/* One batch as the network receives it (rpu_train_hooks.on_batch). */
typedef struct {
    bool train;         /* true: a training step; false: the test-set evaluation after an epoch */
    int epoch;          /* 1-based */
    int batch, batches; /* 1-based batch within this pass over the data */
    int n;              /* samples in the batch (batch_size, fewer in a last partial batch) */
    const float *x;     /* [n, channels, height, width], valid during the call only */
    const uint8_t *y;   /* [n] labels, valid during the call only */
} rpu_batch_view;

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
    /* Observes the data (logging which samples each step saw, auditing a data pipeline):
     * called on every rank with each batch just before its forward pass, the training
     * batches in the order of rpu_data_order(n, run.seed, epoch - 1) assembled by
     * rpu_dataset_batch, then the test set's batches in stored order. Local, read only. */
    void (*on_batch)(void *ctx, const rpu_batch_view *b);
} rpu_train_hooks;

/* Trains the experiment's network on its data set (collective): shuffles each epoch with
 * a stream keyed by (seed, epoch) (the same order on every rank), SGD with the run's
 * learning-rate schedule, evaluates the test set after every epoch, writes
 * output_dir/metrics.csv and output_dir/experiment.ini, and checkpoints every
 * checkpoint_every epochs and at the end (run.checkpoint; empty: none). Before the first
 * step it creates output_dir and the directory of run.checkpoint and checks that a
 * checkpoint can be written there (RPU_ERR_IO naming the key and its line otherwise; also
 * for a run.checkpoint of more than 234 bytes, the longest name Open MPI's MPI-IO opens:
 * use a relative path). resume: a
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

/* ------------------------------------------------------------------ inference over time */

/* Limits of rpu_infer_params: times in [0, RPU_INFER_MAX_TIME] seconds, repeats in
 * 1..RPU_INFER_MAX_REPEATS. */
#define RPU_INFER_MAX_TIME 1e30
#define RPU_INFER_MAX_REPEATS 4095

typedef struct {
    const double *times; /* t_inference values in seconds after programming (>= 0) */
    int n_times;
    int repeats; /* independent programmings (1..4095), repeat r keyed by r */
    int groups;  /* groups of ranks working on repeats in parallel (0: default) */
    /* optional: called on every rank of the group that evaluated (repeat, time index) */
    void (*on_result)(void *ctx, int repeat, int time_index, double acc, double loss);
    void *ctx;
} rpu_infer_params;

typedef struct {
    int repeats, n_times, groups;
    double *acc;  /* [repeats][n_times] test accuracy */
    double *loss; /* [repeats][n_times] test loss */
} rpu_infer_result;

/* The drift study (collective on comm; experiment kind inference): the ranks split into
 * `groups` groups (contiguous ranks; each holds every tile of the network on its own
 * sub-communicator and loads the checkpoint); group g takes repeats g, g + groups, ...
 * For each repeat every tile is programmed with its own noise streams (rpu_tile_program),
 * then for each time j drifted with read-out j (rpu_tile_drift_to), compensated
 * (drift_compensation of the experiment) and the test set evaluated. The table is the
 * same for any number of ranks and groups. The experiment's noise_model.* and
 * drift_compensation may differ from the checkpoint's (they are not training state). */
rpu_status rpu_infer(MPI_Comm comm, const rpu_experiment *exp, const char *checkpoint,
                     const rpu_infer_params *p, rpu_infer_result *res);
void rpu_infer_result_free(rpu_infer_result *r);
/* Default number of groups: min(ranks, repeats). */
int rpu_infer_default_groups(int ranks, int repeats);

/* Realistic read-out error of each analog layer of a checkpoint (collective): the
 * network is built on comm, loaded, and each layer's weights read out realistically
 * (rpu_conv_get_weights(RPU_READ_REALISTIC), over_sampling probes per input) and compared
 * with the stored weights (times scales). out gets min(layers, max) entries; *n their count. */
typedef struct {
    char name[64];
    int tiles, weights;
    double mean_abs_err; /* mean |W_hat - W| */
    double max_abs_err;
    double mean_abs_w; /* mean |W| */
    double rel_err;    /* mean |W_hat - W| / mean |W| */
} rpu_readout_layer_report;
rpu_status rpu_readout_report(MPI_Comm comm, const rpu_experiment *exp, const char *checkpoint,
                              int over_sampling, rpu_readout_layer_report *out, int max, int *n);
/* ------------------------------------------------------------------ checkpoints and import
 * (src/net_io.c) */

/* Writes a checkpoint of net the way rpu_train does (collective on comm, the communicator
 * net was created on): every analog layer under /layers/<name>, the root metadata (exp's
 * run seed, step, epoch and experiment text), /train/history [history_rows, 6] (epoch,
 * train_loss, train_acc, test_loss, test_acc, seconds; history may be NULL when
 * history_rows is 0) and /train/momentum/<layer> (the bias momentum buffers). keep_last:
 * previous files kept as <path>.1 ... (rpu_ckpt_save_opts.keep_last). The file loads with
 * rpu_evaluate and as rpu_train's resume checkpoint. Errors: as rpu_ckpt_save. */
rpu_status rpu_net_save_checkpoint(MPI_Comm comm, rpu_net *net, const rpu_experiment *exp,
                                   const char *path, int64_t step, int64_t epoch,
                                   const double *history, int64_t history_rows, int keep_last);

/* What the tiles made of one layer's imported weights: the weights and bias read back
 * (rpu_conv_get_weights) against the file's. Floating-point devices keep them to float
 * precision; pulsed devices clip them to their bounds (see mapping.weight_scaling_omega). */
typedef struct {
    char name[64];     /* the layer's name */
    int64_t values;    /* weights + bias values set */
    double max_abs;    /* largest |value| in the file */
    double max_change; /* largest |read back - file value| */
} rpu_import_layer;

/* Sets the weights of every analog layer of net from an HDF5 file of digitally trained
 * weights in PyTorch layout (collective on comm; rank 0 reads the file with the serial
 * HDF5 API and broadcasts). The file's root holds, for each analog layer NAME, the dataset
 * "NAME.weight" of shape [out, in/groups, k...] (conv) or [out, in] (linear) and, exactly
 * when the layer has a bias, "NAME.bias" [out]; float32 or float64 (any byte order),
 * converted to float32. Nothing else may be in the root group.
 * Checked before any layer changes: every message names the file and the dataset, e.g.
 * "weights w.h5: /conv1.weight: expected shape [16, 1, 3, 3], found [16, 1, 3]".
 * Errors (the same status and message on every rank; the layers are unchanged unless the
 * failure is in setting the weights themselves): RPU_ERR_ARG (NULL), RPU_ERR_IO (file
 * missing or unreadable), RPU_ERR_FORMAT (not HDF5; a missing dataset; a dataset of
 * another rank or shape, of a non-float type, with a NaN, an infinity or a value beyond
 * the float32 range (the message gives its index); a bias for a layer without one; an
 * object in the root that is no layer's weight or bias), RPU_ERR_NOMEM, RPU_ERR_MPI.
 * report: NULL, or rpu_net_analog_count(net) entries that receive each layer's read-back
 * comparison (costs one collective rpu_conv_get_weights per layer). */
rpu_status rpu_net_load_weights(MPI_Comm comm, rpu_net *net, const char *path,
                                const rpu_program_params *program, rpu_import_layer *report);

/* Export (collective on comm): builds exp's network, loads checkpoint into it and writes
 * every analog layer's logical weights (stored weights x mapping scales; realistic: the
 * read-out of rpu_conv_get_weights(RPU_READ_REALISTIC) with over_sampling probes per
 * input) and bias in the layout rpu_net_import reads: /<name>.weight float32 [out, in/groups, k...]
 * or [out, in], /<name>.bias [out] for layers with a bias. Rank 0 writes <out>.tmp and
 * renames it into place; an existing out without overwrite is an error (RPU_ERR_IO) and is
 * left as it was. Errors: those of loading, the read-out and writing (RPU_ERR_IO). */
rpu_status rpu_net_export(MPI_Comm comm, const rpu_experiment *exp, const char *checkpoint,
                          const char *out, bool realistic, int over_sampling, bool overwrite);

/* Import of digitally trained weights (collective on comm): builds exp's network (for the
 * sample shape of its data set, which is loaded for that), sets its weights from the file
 * weights with rpu_net_load_weights, and writes the checkpoint out with
 * rpu_net_save_checkpoint (step 0, epoch 0, no history). overwrite false: an existing out
 * is an error (RPU_ERR_IO) and is left as it was. report (NULL: none): the read-back
 * comparison of up to max_report analog layers, their number in *n_report (may be NULL).
 * program: NULL sets the weights exactly; otherwise they are written by closed-loop pulsed
 * programming (rpu_conv_program_weights, spec §8.2) and the report shows what it reached.
 * Errors: those of the steps. */
rpu_status rpu_net_import(MPI_Comm comm, const rpu_experiment *exp, const char *weights,
                          const char *out, bool overwrite, const rpu_program_params *program,
                          rpu_import_layer *report, int max_report, int *n_report);

#ifdef __cplusplus
}
#endif
#endif
