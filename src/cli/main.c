/* rpusim: command line entry point. Only this file decides the process exit code. */
#include "cli.h"

#include "rpusim/ckpt.h"
#include "rpusim/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RPUSIM_VERSION
#define RPUSIM_VERSION "unknown"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "rpusim %s - analog crossbar tile arrays on MPI\n"
            "\n"
            "usage: rpusim <command> [options]\n"
            "\n"
            "commands:\n"
            "  train FILE [--set section.key=value ...] [--resume CHECKPOINT]\n"
            "                         train the network of an experiment file (under mpirun);\n"
            "                         SIGTERM/SIGUSR1: finish the step, write run.checkpoint,\n"
            "                         exit with code 75 (continue with --resume CHECKPOINT);\n"
            "                         a second signal exits at once (128 + signal number)\n"
            "  eval FILE --checkpoint CHECKPOINT [--set ...]\n"
            "                         test loss, accuracy and confusion matrix\n"
            "  infer FILE --checkpoint C [--t-inference T,...] [--repeats R] [--groups G]\n"
            "        [--compensation global|column|none] [--set ...] [--out CSV]\n"
            "                         accuracy over time after programming (drift study)\n"
            "  export CHECKPOINT -o WEIGHTS.h5 [--realistic] [--set ...] [--force]\n"
            "                         a checkpoint's weights in PyTorch layout (import's input)\n"
            "  import WEIGHTS.h5 --experiment FILE -o CHECKPOINT [--set ...] [--force]\n"
            "                         digitally trained (PyTorch-layout) weights into an analog\n"
            "                         checkpoint (rpusim import --help for the file layout)\n"
            "  map --layer SPEC --ranks N [options]\n"
            "                         tile grid, owner ranks, memory and communication of layers\n"
            "                         (rpusim map --help for options)\n"
            "  inspect FILE [--layer NAME] [--tile KEY]\n"
            "                         a checkpoint's metadata, tile grids and weight statistics\n"
            "  inspect FILE --readout [--over-sampling N]\n"
            "                         realistic read-out error of every layer (under mpirun)\n"
            "  version                print the version\n"
            "  help                   this text\n",
            RPUSIM_VERSION);
#ifdef RPUSIM_HAVE_BENCH
    fprintf(f,
            "benchmarks:\n"
            "  bench tile [options]   time tile forward/backward against sgemm of the same shape\n"
            "                         (rpusim bench tile --help for options)\n"
            "  bench update [options] time the pulsed update of one tile (--device NAME)\n"
            "  bench conv [options]   time a mapped Conv2d training step (run under mpiexec)\n"
            "  bench scale EXPERIMENT [options]\n"
            "                         measure an experiment's compute and transport here and\n"
            "                         predict its step time on N ranks (run under mpiexec)\n");
#else
    fprintf(f, "(built without the benchmarks `rpusim bench ...`: -DRPUSIM_BENCHMARKS=OFF)\n");
#endif
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* rpusim reports errors itself (rpu_last_error): HDF5 prints nothing */
    rpu_ckpt_silence_hdf5();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("rpusim %s\n", RPUSIM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "map")) return cli_map(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cli_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "train") || !strcmp(cmd, "eval")) return cli_train(cmd, argc - 2, argv + 2);
    if (!strcmp(cmd, "infer")) return cli_infer(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cli_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return cli_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) {
#ifdef RPUSIM_HAVE_BENCH
        return cli_bench(argc - 2, argv + 2);
#else
        fprintf(stderr,
                "rpusim: built without benchmarks (configure with -DRPUSIM_BENCHMARKS=ON)\n");
        return 2;
#endif
    }
    fprintf(stderr, "rpusim: unknown command '%s' (try: rpusim help)\n", cmd);
    return 2;
}
