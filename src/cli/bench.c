/* rpusim bench: dispatches to the benchmark named by the first argument. */
#include "bench.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cli_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: rpusim bench tile|update|conv|scale [options]\n");
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "tile")) return cli_bench_tile(argc - 1, argv + 1);
    if (!strcmp(argv[0], "update")) return cli_bench_update(argc - 1, argv + 1);
    if (!strcmp(argv[0], "conv")) return cli_bench_conv(argc - 1, argv + 1);
    if (!strcmp(argv[0], "scale")) return cli_bench_scale(argc - 1, argv + 1);
    fprintf(stderr, "rpusim bench: unknown benchmark '%s' (available: tile, update, conv, scale)\n",
            argv[0]);
    return 2;
}
