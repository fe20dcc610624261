#include "testlib.h"

#include "rpusim/rng.h"

#include <stdarg.h>
#include <stdio.h>

/* Test-harness counters (test tree only; the library has no such state). */
static long tl_passed, tl_failed;
static int tl_rank_, tl_size_;

void tl_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &tl_rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &tl_size_);
}

int tl_rank(void) {
    return tl_rank_;
}

int tl_size(void) {
    return tl_size_;
}

bool tl_check(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        tl_passed++;
        return true;
    }
    tl_failed++;
    if (tl_failed <= 25) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[rank %d] FAIL %s:%d: ", tl_rank_, file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return false;
}

int tl_finish(void) {
    long local[2] = {tl_passed, tl_failed}, total[2];
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (tl_rank_ == 0) printf("%ld passed, %ld failed\n", total[0], total[1]);
    MPI_Finalize();
    return total[1] == 0 ? 0 : 1;
}

void tl_fill_uniform(float *x, int n, float lo, float hi, uint64_t seed, uint64_t id) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id((uint32_t)id, 0, RPU_PURPOSE_TEST));
    for (int i = 0; i < n; ++i)
        x[i] = lo + (hi - lo) * rpu_rng_uniform(&r);
}

void tl_fill_normal(float *x, int n, float scale, uint64_t seed, uint64_t id) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id((uint32_t)id, 1, RPU_PURPOSE_TEST));
    rpu_rng_normal_fill(&r, x, (size_t)n);
    for (int i = 0; i < n; ++i)
        x[i] *= scale;
}
