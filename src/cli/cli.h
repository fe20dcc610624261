/* Subcommands of the rpusim command line tool, called by main.c. Each takes the arguments
 * after its name and returns the process exit code (0 success, 1 failure, 2 usage error;
 * `train` also 75, see signals.h). Subcommands use the helpers of args.h, budget.h and
 * signals.h and never call each other. */
#ifndef RPUSIM_CLI_H
#define RPUSIM_CLI_H

/* rpusim bench tile|update|conv (src/cli/bench.c dispatches to bench_*.c). */
int cli_bench(int argc, char **argv);

/* rpusim map: tile grids, owners, memory and communication of layers (src/cli/map.c).
 * Needs no MPI. */
int cli_map(int argc, char **argv);

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

#endif
