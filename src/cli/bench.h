/* The benchmarks of `rpusim bench` (src/cli/bench_*.c), called by the dispatcher in
 * src/cli/bench.c. Each takes the arguments after the benchmark's name and returns the
 * exit code. */
#ifndef RPUSIM_CLI_BENCH_H
#define RPUSIM_CLI_BENCH_H

/* rpusim bench tile: tile forward/backward against sgemm of the same shape. */
int cli_bench_tile(int argc, char **argv);
/* rpusim bench update: pulsed updates against aihwkit's CPU figures. */
int cli_bench_update(int argc, char **argv);
/* rpusim bench conv: a mapped Conv2d training step (MPI; run under mpiexec). */
int cli_bench_conv(int argc, char **argv);
/* rpusim bench scale: the alpha-beta + compute scale model of an experiment, measured here
 * (MPI; run under mpiexec). */
int cli_bench_scale(int argc, char **argv);

#endif
