/* The BLAS-kernel note of the benchmarks' headers (blas_note.h). */
#include "blas_note.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OpenBLAS 0.3.21's kernel families with AVX-512 (the names openblas_get_corename gives). */
static int avx512_family(const char *core) {
    static const char *const names[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; ++k)
        if (core && !strcasecmp(core, names[k])) return 1;
    return 0;
}

static int cpu_has_avx512f(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

void cli_bench_print_blas_note(FILE *f, const char *core) {
    if (!core || avx512_family(core) || !cpu_has_avx512f()) return;
    const char *env = getenv("OPENBLAS_CORETYPE");
    fprintf(f,
            "note: OpenBLAS runs its %s kernels on a CPU with AVX-512 (OPENBLAS_CORETYPE=%s); "
            "with OPENBLAS_CORETYPE=SkylakeX sgemm is about 1.5-2x faster here "
            "(scripts/env.sh sets it when the variable is unset)\n",
            core, env ? env : "unset");
}
