/* Private: the network I/O layer (net_io.c) that the commands above it (train.c, infer.c,
 * net_export.c) share — the data set and network of an experiment, and the layout of a
 * network checkpoint (layers and /train arrays) — and net_evaluate (train.c), which infer.c
 * uses. Calls go one way: train.c, infer.c, net_export.c -> net_io.c -> net.c; net_io.c
 * calls nothing in train.c. */
#ifndef RPUSIM_NET_IO_IMPL_H
#define RPUSIM_NET_IO_IMPL_H

#include "experiment_impl.h"
#include "rpusim/ckpt.h"
#include "rpusim/data.h"

#include <stdbool.h>
#include <stdint.h>

/* Columns of /train/history: epoch, train_loss, train_acc, test_loss, test_acc, seconds. */
#define HIST_COLS 6

/* The experiment's training and test sets (net_io.c; local). Errors name the [data] line. */
rpu_status net_load_data(const rpu_experiment *e, rpu_dataset *train, rpu_dataset *test);

/* The experiment's network for the sample shape of ds, checked against its class count
 * (net_io.c; collective on comm). */
rpu_status net_make(MPI_Comm comm, const rpu_experiment *e, const rpu_dataset *ds, rpu_net **net);

/* The analog layers of net as checkpoint layers (names and handles, in network order);
 * returns how many were written (at most max). */
int net_ckpt_layers(rpu_net *net, rpu_ckpt_layer *out, int max);

/* Position inside an epoch, saved when a run stops early (/train/partial_epoch, float64):
 * batches done in the current epoch, the epoch's running sum of loss x samples, correct
 * predictions, samples seen, and seconds spent in it. Counts are exact in a double. */
#define PARTIAL_COLS 5
#define PARTIAL_PATH "train/partial_epoch"

/* The /train arrays of a checkpoint: history [epochs, HIST_COLS] (hist; may be NULL when
 * epochs is 0), then train/momentum/<layer> for each analog layer with bias momentum, then
 * (partial != NULL: a run stopped inside an epoch) PARTIAL_PATH. names holds the array
 * paths (one per array). Returns the number of arrays (<= max). */
int net_train_arrays(rpu_net *net, double *hist, int64_t epochs, double *partial,
                     rpu_ckpt_array *arr, char names[][96], int max);

/* The experiment's network (collective on comm): loads the data set (for the sample shape),
 * builds the network and, with checkpoint != NULL, loads the checkpoint into it. test:
 * NULL, or receives the test set (the caller frees it). On failure *net is NULL. */
rpu_status net_open(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                    rpu_dataset *test, rpu_net **net);

/* net_open for a command that writes `out`: an existing out without overwrite is an error
 * (RPU_ERR_IO), checked on rank 0 first and agreed. */
rpu_status net_for_output(MPI_Comm comm, const rpu_experiment *e, const char *out, bool overwrite,
                          const char *checkpoint, rpu_net **net);

/* Mean loss and accuracy on ds in eval mode (train.c; collective); optional confusion
 * matrix [true][predicted]. */
rpu_status net_evaluate(rpu_net *net, const rpu_dataset *ds, int batch, double *loss, double *acc,
                        int *confusion);

/* rpu_net_save_checkpoint with the position in a stopped epoch (partial: PARTIAL_COLS
 * values, or NULL for an epoch-end checkpoint). Collective. */
rpu_status net_save_state(MPI_Comm comm, rpu_net *net, const rpu_experiment *e, const char *path,
                          int64_t step, int64_t epoch, const double *history, int64_t history_rows,
                          int keep_last, const double *partial);

#endif
