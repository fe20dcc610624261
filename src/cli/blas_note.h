/* A line for the benchmarks' headers when OpenBLAS runs kernels older than the CPU
 * (src/cli/blas_note.c; used by bench_tile.c, bench_conv.c and bench_scale.c). */
#ifndef RPUSIM_CLI_BLAS_NOTE_H
#define RPUSIM_CLI_BLAS_NOTE_H

#include <stdio.h>

/* Prints to f, as one line, a note when OpenBLAS runs kernels older than the CPU: `core`
 * (openblas_get_corename()) is none of OpenBLAS's AVX-512 families while the CPU has
 * AVX-512F (e.g. OPENBLAS_CORETYPE=Haswell, or a CPU model OpenBLAS does not know);
 * nothing otherwise. */
void cli_bench_print_blas_note(FILE *f, const char *core);

#endif
