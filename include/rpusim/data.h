/* rpusim — data sets: IDX files (MNIST, Fashion-MNIST and any directory in their naming),
 * the 8x8 handwritten digits shipped in data/, and a synthetic set for tests.
 *
 * A data set is held whole in memory as float pixels in [0, 1] and byte labels. Nothing
 * here uses MPI or is collective: every rank that loads the same files (or asks for the
 * same synthetic set) gets bitwise identical data. No global state; the functions are
 * safe from any thread on distinct rpu_dataset objects. Failures return an rpu_status,
 * leave *ds empty (all zero, nothing allocated) and a message for rpu_last_error() that
 * names the file and the problem.
 *
 * IDX format (LeCun's MNIST format): a 4-byte big-endian magic 0x0000TTNN (TT = element
 * type, only 0x08 = unsigned byte is read; NN = number of dimensions), NN big-endian
 * uint32 dimensions, then the elements row-major. Images are 0x00000803 [n, rows, cols],
 * labels 0x00000801 [n]. Files may be gzip-compressed (recognised by their first two
 * bytes 1f 8b, whatever their name) or plain. */
#ifndef RPUSIM_DATA_H
#define RPUSIM_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of what the IDX reader accepts (larger headers are rejected as RPU_ERR_FORMAT
 * before anything is allocated): at most RPU_DATA_MAX_SAMPLE_PIXELS pixels per image and
 * RPU_DATA_MAX_PIXELS in a whole file (2^31 - 1 bytes; 8 GiB as floats). */
#define RPU_DATA_MAX_SAMPLE_PIXELS (1 << 24)
#define RPU_DATA_MAX_PIXELS 2147483647LL

/* An in-memory data set. Tensor layout follows PyTorch: sample i is
 * x[i * sample_size .. (i + 1) * sample_size) in [C, H, W] row-major order. */
typedef struct {
    int n;                       /* samples */
    int channels, height, width; /* shape of one sample, e.g. 1x8x8 digits, 1x28x28 MNIST */
    int n_classes;               /* labels lie in [0, n_classes) */
    float *x;                    /* [n, channels * height * width], pixels in [0, 1] */
    uint8_t *y;                  /* [n] labels */
    /* Where the images and the labels came from, for messages: the files read by the
     * rpu_dataset_load_* functions, "synthetic set (seed S)" for rpu_dataset_synthetic.
     * malloc'ed, freed by rpu_dataset_free. A set filled by the caller may leave them
     * NULL; messages then say "images" and "labels". */
    char *images_name, *labels_name;
} rpu_dataset;

/* Pixels per sample: channels * height * width (0 for an empty set or NULL). Local (pure). */
static inline size_t rpu_dataset_sample_size(const rpu_dataset *ds) {
    return ds ? (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width : 0;
}

/* Loads an image file and a label file in IDX format (each gzip-compressed or plain).
 * Image bytes b become b / 255.0f; channels = 1, height = rows, width = cols;
 * n_classes = (largest label) + 1; images_name and labels_name are copies of the two
 * paths. Use rpu_dataset_load_idx_classes() when the number of
 * classes is known (for example when a test split could lack the last class).
 * Errors (nothing is allocated on error):
 *   RPU_ERR_ARG     NULL argument.
 *   RPU_ERR_IO      a file cannot be opened or read ("<file>: No such file or directory").
 *   RPU_ERR_FORMAT  "<file>: <problem>": wrong magic (not 0x00000803 / 0x00000801, an
 *                   element type other than unsigned byte, a wrong number of dimensions),
 *                   no samples ("empty: the header says 0 images"), a zero dimension, a header
 * beyond the RPU_DATA_MAX_* limits, a file shorter or longer than its header says (after
 * decompression), a corrupt gzip stream, image and label counts that differ. RPU_ERR_NOMEM
 * allocation failed. Local (no MPI). */
rpu_status rpu_dataset_load_idx(const char *images, const char *labels, rpu_dataset *ds);

/* As rpu_dataset_load_idx() with a known class count: n_classes in 1..256 sets
 * ds->n_classes and every label must be < n_classes (else RPU_ERR_FORMAT naming the label
 * file, the sample index and the value); n_classes = 0 infers it as in
 * rpu_dataset_load_idx(). Other values: RPU_ERR_ARG. Local. */
rpu_status rpu_dataset_load_idx_classes(const char *images, const char *labels, int n_classes,
                                        rpu_dataset *ds);

/* Loads the training (train = true) or test split of a directory in MNIST naming, as
 * distributed for MNIST and Fashion-MNIST (Debian's dataset-fashion-mnist installs
 * /usr/share/datasets/fashion-mnist):
 *     train-images-idx3-ubyte  train-labels-idx1-ubyte     (train)
 *     t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte      (test)
 * each found as the plain name, the name + ".gz", or with '.' for the second '-'
 * ("train-images.idx3-ubyte", as some unpacked copies are named), tried in that order.
 * n_classes is inferred (largest label + 1). Errors: as rpu_dataset_load_idx();
 * RPU_ERR_IO names the directory and the file name looked for when no candidate exists. Local. */
rpu_status rpu_dataset_load_dir(const char *dir, bool train, rpu_dataset *ds);

/* Loads the 8x8 handwritten digits shipped in data/ (see data/README.md): data_dir is
 * that directory; train = true gives the 1,437-sample training split, false the
 * 360-sample test split; channels 1, height = width = 8, n_classes 10 (a label >= 10 is
 * RPU_ERR_FORMAT). Files: digits-{train,test}-{images-idx3,labels-idx1}-ubyte (a ".gz"
 * copy is accepted as well). Errors: as rpu_dataset_load_dir(). Local. */
rpu_status rpu_dataset_load_digits(const char *data_dir, bool train, rpu_dataset *ds);

/* A learnable synthetic set of n samples of shape channels x height x width in
 * n_classes classes, a pure function of its arguments (the same on every rank and for
 * every rank count):
 *   - labels: i % n_classes for i < n, then shuffled (Fisher-Yates), so class counts
 *     differ by at most one;
 *   - class c has a prototype image with pixels 0.15 + 0.7 u, u uniform in [0, 1);
 *   - sample i is its class prototype plus normal noise of standard deviation 0.25,
 *     clamped to [0, 1].
 * Random numbers come from Philox streams keyed by seed with stream ids
 * rpu_stream_id(0xFFFFFE, k, RPU_PURPOSE_DATA), k = 1 (prototypes), 2 (label shuffle),
 * 3 (noise; sample i uses its own block range, so it does not depend on n); none of them
 * is a stream of rpu_data_order. images_name = labels_name = "synthetic set (seed S)".
 * Errors: RPU_ERR_ARG for a NULL ds, n < 1, a non-positive shape, n_classes outside
 * 1..256, or sizes beyond the RPU_DATA_MAX_* limits; RPU_ERR_NOMEM. Local. */
rpu_status rpu_dataset_synthetic(int n, int channels, int height, int width, int n_classes,
                                 uint64_t seed, rpu_dataset *ds);

/* Frees the arrays and names of ds and sets every field to zero. Accepts NULL and an
 * already freed (zeroed) set. Local. */
void rpu_dataset_free(rpu_dataset *ds);

/* ---- checks before training or evaluation ------------------------------------------- */

/* Checks that every label of ds is below n_classes (for example the number of outputs of
 * a network's last layer). RPU_ERR_FORMAT names the label source, the first sample with a
 * label out of range and its value: "<labels>: label 12 of sample 5 is not below 10".
 * RPU_ERR_ARG: NULL ds, or ds->n > 0 with NULL labels, or n_classes < 1. Local. */
rpu_status rpu_dataset_check_labels(const rpu_dataset *ds, int n_classes);

/* Checks that a test split belongs to a training split, so that a model trained on train
 * can be evaluated on test: the same channels, height and width (else RPU_ERR_FORMAT
 * naming both image sources and both shapes), a non-empty test set, and every test label
 * below train->n_classes (else RPU_ERR_FORMAT naming the test label source, the sample and
 * its value, and the training label source with its class count). On success
 * test->n_classes becomes train->n_classes: a test split that lacks the last classes
 * (n_classes inferred from its labels) is evaluated over the training set's classes.
 * RPU_ERR_ARG: a NULL argument. Local. */
rpu_status rpu_dataset_check_split(const rpu_dataset *train, rpu_dataset *test);

/* ---- data order and batches ---------------------------------------------------------- */

/* The order in which training visits the n samples of a data set in epoch `epoch`
 * (0-based): order[0..n) becomes a permutation of 0..n-1, the Fisher-Yates shuffle
 * (from i = n-1 down to 1, swap i with j = floor(u (i + 1)), j clamped to i) with u the
 * uniforms of the stream (seed, rpu_stream_id(0xFFFFFF, epoch, RPU_PURPOSE_DATA)). A pure
 * function of its arguments: the same on every rank and for every rank count. rpu_train
 * uses exactly this order (seed = run.seed). Not collective; no allocation.
 * Errors: RPU_ERR_ARG for NULL order, n < 1 or epoch < 0. */
rpu_status rpu_data_order(int n, uint64_t seed, int epoch, int *order);

/* Number of batches of batch_size samples in n samples: ceil(n / batch_size), the last
 * one partial when batch_size does not divide n. 0 if n < 1 or batch_size < 1. Local (pure). */
int rpu_data_batches(int n, int batch_size);

/* Copies batch b (0-based) of ds into x ([count, channels, height, width]) and y
 * ([count]): the samples order[b * batch_size + i] for i < count, where count =
 * min(batch_size, n - b * batch_size) (only the last batch is partial). order: a
 * permutation of 0..n-1 (rpu_data_order), or NULL for the stored order (evaluation:
 * sample b * batch_size + i). x and y need room for batch_size samples; y may be NULL
 * (images only). rpu_train and the evaluation of rpu_train, rpu_evaluate and rpu_infer
 * assemble every batch with this function. Not collective.
 * Errors: RPU_ERR_ARG for NULL ds/x/count, batch_size < 1, b outside
 * 0..rpu_data_batches(ds->n, batch_size) - 1, or an order entry outside 0..n-1. */
rpu_status rpu_dataset_batch(const rpu_dataset *ds, const int *order, int batch_size, int b,
                             float *x, uint8_t *y, int *count);

#ifdef __cplusplus
}
#endif
#endif
