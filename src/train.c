/* The training driver: data, epochs, SGD, evaluation, metrics and checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include "experiment_impl.h"
#include "net_io_impl.h"

#include "agree_impl.h"
#include "error_impl.h"
#include "rpusim/ckpt.h"
#include "rpusim/data.h"
#include "rpusim/digital.h"
#include "rpusim/layer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* net_evaluate, showing each batch to hooks->on_batch (hooks may be NULL). */
static rpu_status evaluate(rpu_net *net, const rpu_dataset *ds, int batch,
                           const rpu_train_hooks *hooks, int epoch, double *loss, double *acc,
                           int *confusion) {
    const int K = rpu_net_outputs(net), batches = rpu_data_batches(ds->n, batch);
    float *logits = (float *)malloc(sizeof(float) * (size_t)batch * K);
    float *xb = (float *)malloc(sizeof(float) * (size_t)batch * rpu_dataset_sample_size(ds));
    uint8_t *yb = (uint8_t *)malloc((size_t)batch);
    rpu_status s = logits && xb && yb ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    rpu_net_set_training(net, false);
    double sum = 0;
    long correct = 0;
    for (int b = 0; b < batches && s == RPU_OK; ++b) {
        int nb = 0;
        s = rpu_dataset_batch(ds, NULL, batch, b, xb, yb, &nb);
        if (s == RPU_OK && hooks && hooks->on_batch) {
            const rpu_batch_view v = {false, epoch, b + 1, batches, nb, xb, yb};
            hooks->on_batch(hooks->ctx, &v);
        }
        if (s == RPU_OK) s = rpu_net_forward(net, xb, nb, logits);
        double l = 0;
        int c = 0;
        if (s == RPU_OK) s = rpu_cross_entropy(logits, yb, nb, K, &l, NULL, &c);
        sum += l * nb;
        correct += c;
        for (int i = 0; confusion && s == RPU_OK && i < nb; ++i) {
            int best = 0;
            for (int k = 1; k < K; ++k)
                if (logits[(size_t)i * K + k] > logits[(size_t)i * K + best]) best = k;
            confusion[yb[i] * K + best]++;
        }
    }
    rpu_net_set_training(net, true);
    free(logits), free(xb), free(yb);
    *loss = sum / ds->n;
    *acc = (double)correct / ds->n;
    return s;
}

/* Mean loss and accuracy on a data set in eval mode; optional confusion matrix. */
rpu_status net_evaluate(rpu_net *net, const rpu_dataset *ds, int batch, double *loss, double *acc,
                        int *confusion) {
    return evaluate(net, ds, batch, NULL, 0, loss, acc, confusion);
}

#define MAX_EPOCHS_HISTORY 100000

rpu_status rpu_train(MPI_Comm comm, const rpu_experiment *e, const char *resume,
                     const rpu_train_hooks *hooks) {
    if (!e) return RPU_FAIL(RPU_ERR_ARG, "rpu_train: NULL experiment");
    const rpu_run_params *r = &e->run;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    rpu_dataset train = {0}, test = {0};
    const rpu_status sd = rpu_agree(comm, net_load_data(e, &train, &test));
    if (sd != RPU_OK) { /* another rank's failure: this rank's sets are loaded */
        rpu_dataset_free(&train);
        rpu_dataset_free(&test);
        return sd;
    }
    rpu_net *net = NULL;
    rpu_status s = net_make(comm, e, &train, &net);
    int *order = NULL;
    float *xb = NULL;
    uint8_t *yb = NULL;
    double *hist = NULL;
    FILE *csv = NULL;
    const size_t per = (size_t)train.channels * train.height * train.width;
    const int B = r->batch_size, batches = rpu_data_batches(train.n, B);
    if (s == RPU_OK) {
        order = (int *)malloc(sizeof(int) * (size_t)train.n);
        xb = (float *)malloc(sizeof(float) * (size_t)B * per);
        yb = (uint8_t *)malloc((size_t)B);
        hist =
            (double *)calloc((size_t)(r->epochs > 0 ? r->epochs : 1) * HIST_COLS, sizeof(double));
        if (!order || !xb || !yb || !hist) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    }
    int start_epoch = 0;
    int64_t step = 0;
    rpu_ckpt_layer cl[EXP_MAX_LAYERS];
    const int ncl = net ? net_ckpt_layers(net, cl, EXP_MAX_LAYERS) : 0;
    /* where a resumed run starts inside start_epoch (from /train/partial_epoch) */
    double resumed[PARTIAL_COLS] = {0};
    rpu_ckpt_array arr[EXP_MAX_LAYERS + 2];
    char names[EXP_MAX_LAYERS + 2][96];
    if (s == RPU_OK && resume && *resume) {
        int na = net_train_arrays(net, hist, r->epochs, resumed, arr, names, EXP_MAX_LAYERS + 2);
        for (int k = 0; k < na; ++k)
            arr[k].data = NULL, arr[k].optional = k > 0;
        rpu_ckpt_info info = {0};
        s = rpu_ckpt_load(comm, resume, cl, ncl, arr, na, &info);
        if (s == RPU_OK) {
            start_epoch = (int)info.epoch;
            step = info.step;
            if (arr[0].data) {
                int64_t rows = arr[0].dims[0] < r->epochs ? arr[0].dims[0] : r->epochs;
                memcpy(hist, arr[0].data, sizeof(double) * (size_t)rows * HIST_COLS);
            }
            /* the momentum arrays follow in the order net_train_arrays listed them */
            for (int q = 0, k = 1; q < rpu_net_analog_count(net) && k < na - 1; ++q) {
                int len = 0;
                float *m = rpu_net_momentum(net, q, &len);
                if (!m) continue;
                if (arr[k].data && arr[k].dims[0] == len)
                    memcpy(m, arr[k].data, sizeof(float) * (size_t)len);
                ++k;
            }
            /* last: the position in a stopped epoch (absent: an epoch-end checkpoint) */
            const rpu_ckpt_array *pa = &arr[na - 1];
            if (pa->data) {
                const double *pv = (const double *)pa->data;
                if (pa->ndim != 1 || pa->dims[0] != PARTIAL_COLS || !(pv[0] >= 0) ||
                    pv[0] > batches || pv[0] != floor(pv[0]) || start_epoch >= r->epochs ||
                    step != (int64_t)start_epoch * batches + (int64_t)pv[0])
                    s = RPU_FAIL(RPU_ERR_FORMAT,
                                 "checkpoint %s: /%s does not match the run (epoch %d, step %lld, "
                                 "%d batches per epoch)",
                                 resume, PARTIAL_PATH, start_epoch, (long long)step, batches);
                else
                    memcpy(resumed, pv, sizeof resumed);
            }
        }
        for (int k = 0; k < na; ++k)
            free(arr[k].data);
        rpu_ckpt_info_free(&info);
    }
    /* output_dir and the checkpoint's directory, before the first step */
    if (s == RPU_OK) s = exp_prepare_paths(e);
    if (s == RPU_OK && rank == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/experiment.ini", r->output_dir);
        FILE *f = fopen(path, "w");
        if (!f || fputs(e->text, f) < 0) s = RPU_FAIL(RPU_ERR_IO, "cannot write %s", path);
        if (f) fclose(f);
        snprintf(path, sizeof path, "%s/metrics.csv", r->output_dir);
        /* rewritten from the checkpoint's history on resume: no duplicate rows */
        csv = fopen(path, "w");
        if (!csv)
            s = RPU_FAIL(RPU_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        else {
            fprintf(csv, "epoch,train_loss,train_acc,test_loss,test_acc,seconds,step\n");
            for (int ep = 0; ep < start_epoch; ++ep) {
                const double *h = hist + (size_t)ep * HIST_COLS;
                fprintf(csv, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%lld\n", (int)h[0], h[1], h[2], h[3],
                        h[4], h[5], (long long)(ep + 1) * batches);
            }
        }
    }
    {
        int ok = s == RPU_OK, all = 0;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
        if (all == 0 && s == RPU_OK)
            s = RPU_FAIL(RPU_ERR_IO, "the run could not start on another rank");
    }
    const double t_run = now();
    const int start_batch = (int)resumed[0];
    const long total_steps = (long)batches * (r->epochs - start_epoch) - start_batch;
    long steps_this_run = 0;
    bool stopped = false;
    for (int ep = start_epoch; s == RPU_OK && ep < r->epochs; ++ep) {
        const bool resumed_epoch = ep == start_epoch && start_batch > 0;
        /* a resumed epoch counts the seconds it had run before the stop */
        const double t0 = now() - (resumed_epoch ? resumed[4] : 0);
        float lr = r->lr;
        if (r->lr_step > 0) lr = r->lr * powf(r->lr_gamma, (float)(ep / r->lr_step));
        s = rpu_data_order(train.n, r->seed, ep, order);
        double sum_loss = resumed_epoch ? resumed[1] : 0;
        long correct = resumed_epoch ? (long)resumed[2] : 0,
             seen = resumed_epoch ? (long)resumed[3] : 0;
        int b = resumed_epoch ? start_batch : 0;
        for (; b < batches && s == RPU_OK; ++b) {
            int nb = 0;
            s = rpu_dataset_batch(&train, order, B, b, xb, yb, &nb);
            if (s == RPU_OK && hooks && hooks->on_batch) {
                const rpu_batch_view v = {true, ep + 1, b + 1, batches, nb, xb, yb};
                hooks->on_batch(hooks->ctx, &v);
            }
            rpu_net_set_step(net, (uint64_t)step);
            double loss = 0;
            int c = 0;
            if (s == RPU_OK) s = rpu_net_forward(net, xb, nb, NULL);
            if (s == RPU_OK) s = rpu_net_backward(net, yb, &loss, &c);
            if (s == RPU_OK) s = rpu_net_update(net, lr);
            ++step;
            ++steps_this_run;
            sum_loss += loss * nb;
            correct += c;
            seen += nb;
            if (s == RPU_OK && hooks && hooks->on_progress &&
                ((b + 1) % r->progress_every == 0 || b + 1 == batches)) {
                const double el = now() - t_run;
                rpu_progress p = {.epoch = ep + 1,
                                  .epochs = r->epochs,
                                  .batch = b + 1,
                                  .batches = batches,
                                  .step = step,
                                  .loss = sum_loss / seen,
                                  .acc = (double)correct / seen};
                p.samples_per_s = (double)steps_this_run * B / (el > 0 ? el : 1e-9);
                p.eta_s = el / steps_this_run * (double)(total_steps - steps_this_run);
                hooks->on_progress(hooks->ctx, &p);
            }
            if (s == RPU_OK && hooks && hooks->should_stop) {
                /* one int per step: every rank stops after the same step */
                int mine = hooks->should_stop(hooks->ctx) != 0, any = 0;
                if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
                    s = RPU_FAIL(RPU_ERR_MPI, "MPI_Allreduce of the stop request failed");
                else if (any) {
                    stopped = true;
                    ++b; /* batches done in this epoch */
                    break;
                }
            }
        }
        if (stopped) {
            double partial[PARTIAL_COLS] = {b, sum_loss, (double)correct, (double)seen, now() - t0};
            if (r->checkpoint[0]) {
                s = net_save_state(comm, net, e, r->checkpoint, step, ep, hist, ep,
                                   r->keep_checkpoints > 1 ? r->keep_checkpoints - 1 : 0, partial);
                if (s == RPU_OK)
                    s = RPU_FAIL(RPU_STOPPED,
                                 "stopped on request after epoch %d batch %d/%d (step %lld); "
                                 "checkpoint written to %s",
                                 ep + 1, b, batches, (long long)step, r->checkpoint);
            } else {
                s = RPU_FAIL(RPU_STOPPED,
                             "stopped on request after epoch %d batch %d/%d (step %lld); no "
                             "checkpoint written (run.checkpoint is empty)",
                             ep + 1, b, batches, (long long)step);
            }
            break;
        }
        if (s != RPU_OK) break;
        rpu_epoch_metrics m = {
            .epoch = ep + 1, .train_loss = sum_loss / seen, .train_acc = (double)correct / seen};
        s = evaluate(net, &test, B, hooks, ep + 1, &m.test_loss, &m.test_acc, NULL);
        if (s != RPU_OK) break;
        m.seconds = now() - t0;
        double *h = hist + (size_t)ep * HIST_COLS;
        h[0] = m.epoch, h[1] = m.train_loss, h[2] = m.train_acc, h[3] = m.test_loss;
        h[4] = m.test_acc, h[5] = m.seconds;
        if (csv) {
            fprintf(csv, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%lld\n", m.epoch, m.train_loss, m.train_acc,
                    m.test_loss, m.test_acc, m.seconds, (long long)step);
            fflush(csv);
        }
        if (hooks && hooks->on_epoch) hooks->on_epoch(hooks->ctx, &m);
        const bool last = ep + 1 == r->epochs;
        if (r->checkpoint[0] &&
            (last || (r->checkpoint_every > 0 && (ep + 1) % r->checkpoint_every == 0))) {
            s = rpu_net_save_checkpoint(comm, net, e, r->checkpoint, step, ep + 1, hist, ep + 1,
                                        r->keep_checkpoints > 1 ? r->keep_checkpoints - 1 : 0);
        }
    }
    if (csv) fclose(csv);
    free(order), free(xb), free(yb), free(hist);
    rpu_net_destroy(&net);
    rpu_dataset_free(&train);
    rpu_dataset_free(&test);
    return s;
}

rpu_status rpu_evaluate(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                        double *loss, double *acc, int **confusion, int *n_classes) {
    if (!e || !checkpoint || !loss || !acc)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_evaluate: NULL argument");
    rpu_dataset test = {0};
    rpu_net *net = NULL;
    rpu_status s = net_open(comm, e, checkpoint, &test, &net);
    int K = net ? rpu_net_outputs(net) : 0;
    int *conf = NULL;
    if (s == RPU_OK && !(conf = (int *)calloc((size_t)K * K, sizeof(int))))
        s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    if (s == RPU_OK) s = net_evaluate(net, &test, e->run.batch_size, loss, acc, conf);
    if (s == RPU_OK && confusion)
        *confusion = conf;
    else
        free(conf);
    if (n_classes) *n_classes = K;
    rpu_net_destroy(&net);
    rpu_dataset_free(&test);
    return s;
}
