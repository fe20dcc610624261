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

/* Parses a comma-separated list of positive ints into out (at most max); returns the
 * count or -1 on a malformed list. */
int cli_parse_int_list(const char *text, int *out, int max);

#endif
