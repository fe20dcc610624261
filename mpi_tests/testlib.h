/* Minimal test harness for rpusim's MPI test programs.
 *
 * Every rank runs the same checks. tl_finish() reduces the failure count over
 * MPI_COMM_WORLD; rank 0 prints "N passed, N failed" and every rank returns the exit code
 * (nonzero if any rank failed), so mpiexec fails the CTest test. */
#ifndef RPUSIM_TESTLIB_H
#define RPUSIM_TESTLIB_H

#include <mpi.h>

#include "rpusim/layer.h"
#include "rpusim/tile.h"
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

void tl_init(int *argc, char ***argv);
int tl_finish(void);
int tl_rank(void);
int tl_size(void);

/* Records one check; prints the message (with rank, file and line) when it fails. */
bool tl_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...) tl_check((cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        rpu_status tl_s_ = (expr);                                                                 \
        tl_check(tl_s_ == RPU_OK, __FILE__, __LINE__, "%s -> %s: %s", #expr,                       \
                 rpu_status_name(tl_s_), rpu_last_error());                                        \
    } while (0)
#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        rpu_status tl_s_ = (expr);                                                                 \
        tl_check(tl_s_ == (want), __FILE__, __LINE__, "%s -> %s, want %s (%s)", #expr,             \
                 rpu_status_name(tl_s_), rpu_status_name(want), rpu_last_error());                 \
    } while (0)

/* Deterministic test data from a Philox stream (purpose RPU_PURPOSE_TEST). */
void tl_fill_uniform(float *x, int n, float lo, float hi, uint64_t seed, uint64_t id);
void tl_fill_normal(float *x, int n, float scale, uint64_t seed, uint64_t id);

/* FNV-1a hash h continued over the state this rank holds of layer l: every item of its
 * owned tiles and the digital bias (equal hashes: the same state, bit for bit). */
uint64_t tl_hash_layer_state(uint64_t h, rpu_conv *l);
#define TL_HASH_START 1469598103934665603ull

/* A local tile (MPI_COMM_SELF) of out x in with config c, seed, layer 0, tile 0 (a failed
 * creation is a failed check and gives NULL). */
rpu_tile *tl_tile(const rpu_config *c, int out, int in, uint64_t seed);
/* Element `cell` of the tile's visible stored weights; of its named device array (NAN and a
 * failed check if there is none); of hidden_weights_k. */
float tl_weight_at(rpu_tile *t, int cell);
float tl_array_at(rpu_tile *t, const char *name, int cell);
float tl_hidden_at(rpu_tile *t, int k, int cell);
/* Element i of the named state item as a double (NAN and a failed check if there is none). */
double tl_state_item(rpu_tile *t, const char *name, int i);

/* |a - b| within 1e-6 relative (1e-6 absolute near 0) */
#define NEAR(a, b) (fabsf((float)(a) - (float)(b)) <= 1e-6f * (1.0f + fabsf((float)(b))))
#define EXPECT_NEAR(what, a, b)                                                                    \
    CHECK(NEAR((a), (b)), "%s: %s = %.9g, want %.9g", (what), #a, (double)(a), (double)(b))

/* Removes the files of directory d (one level) and d itself. */
void tl_remove_dir(const char *d);
/* rm -rf path on rank 0, between two barriers of MPI_COMM_WORLD (collective). */
void tl_remove_tree(const char *path);

#endif
