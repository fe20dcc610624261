/* Subcommands of the rpusim command line tool. Each returns the process exit code. */
#ifndef RPUSIM_CLI_H
#define RPUSIM_CLI_H

int cli_bench(int argc, char **argv);
int cli_bench_update(int argc, char **argv);

/* rpusim map: tile grids, owners, memory and communication of layers (src/cli/map.c).
 * Needs no MPI. */
int cli_map(int argc, char **argv);
int cli_bench_conv(int argc, char **argv);

/* rpusim inspect: a checkpoint's metadata, tile grids and statistics (src/cli/inspect.c).
 * Needs no MPI. */
int cli_inspect(int argc, char **argv);

/* rpusim train / rpusim eval (cmd is "train" or "eval"). */
int cli_train(const char *cmd, int argc, char **argv);

/* rpusim infer: drift study of a trained checkpoint (src/cli/infer.c). */
int cli_infer(int argc, char **argv);
/* rpusim import: digital weights (HDF5, PyTorch layout) into a checkpoint (src/cli/import.c).
 * Runs under mpirun. */
int cli_import(int argc, char **argv);
/* rpusim export: a checkpoint's weights in PyTorch layout (src/cli/export.c). Under mpirun. */
int cli_export(int argc, char **argv);
/* Exit code of `rpusim train` when a signal (SIGTERM, SIGUSR1) stopped it and its state is
 * in the checkpoint: resume with --resume (EX_TEMPFAIL of sysexits.h: "try again later").
 * A second signal exits at once with 128 + the signal number. */
#define CLI_EXIT_STOPPED 75

/* Installs the SIGTERM and SIGUSR1 handlers of `rpusim train` (src/cli/signals.c): the
 * first signal sets a flag, a second one calls _exit(128 + signal). verbose: print a
 * notice on stderr when the first signal arrives (every rank reports a second one).
 * Returns 0, or -1 if sigaction failed. */
int cli_signals_install(int verbose);
/* Restores the default action of SIGTERM and SIGUSR1 (training is over: mpiexec ends the
 * other ranks of a run that failed with SIGTERM, which must not print a notice). */
void cli_signals_restore(void);
/* The first signal received (SIGTERM or SIGUSR1), 0 if none. */
int cli_signal_received(void);
const char *cli_signal_name(int sig);

/* Parses a comma-separated list of positive ints into out (at most max); returns the
 * count or -1 on a malformed list. */
int cli_parse_int_list(const char *text, int *out, int max);

#endif
