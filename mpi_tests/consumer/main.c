/* A program outside the rpusim tree, built against an installed rpusim (CMake package
 * or pkg-config): uses the umbrella header, MPI from the package's include dirs, and a
 * few public functions of rng, config and tile. Prints one line per rank count and
 * exits 0 when every rank's checks passed. */
#include <rpusim/rpusim.h>

#include <mpi.h>
#include <stdio.h>

static int fails;

static void expect(int ok, const char *what) {
    if (!ok) {
        fails++;
        fprintf(stderr, "consumer: FAIL %s (%s)\n", what, rpu_last_error());
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    /* rng: the same stream on every rank gives the same numbers. */
    rpu_rng r;
    rpu_rng_init(&r, 2024, rpu_stream_id(1, 2, RPU_PURPOSE_TEST));
    float u = rpu_rng_uniform(&r);
    expect(u >= 0.0f && u < 1.0f, "rpu_rng_uniform in [0, 1)");
    float u0 = u;
    MPI_Bcast(&u0, 1, MPI_FLOAT, 0, MPI_COMM_WORLD);
    expect(u0 == u, "same stream gives the same number on every rank");

    /* config */
    rpu_config cfg;
    expect(rpu_config_default(&cfg, RPU_KIND_FLOATING_POINT) == RPU_OK, "rpu_config_default");
    expect(rpu_config_default(NULL, RPU_KIND_FLOATING_POINT) == RPU_ERR_ARG,
           "rpu_config_default(NULL) fails with RPU_ERR_ARG");

    /* tile: a floating-point tile computes y = W x */
    enum { OUT = 3, IN = 4 };
    float w[OUT * IN], x[IN], y[OUT] = {0};
    for (int i = 0; i < OUT * IN; i++)
        w[i] = 0.125f * (float)(i % 5) - 0.25f;
    for (int j = 0; j < IN; j++)
        x[j] = 0.5f - 0.25f * (float)j;
    rpu_tile_params p = {.out_size = OUT,
                         .in_size = IN,
                         .seed = 2024,
                         .layer_id = 0,
                         .tile_id = (uint32_t)rank,
                         .mac = RPU_MAC_EXACT};
    rpu_tile *tile = NULL;
    expect(rpu_tile_create(&p, &cfg, &tile) == RPU_OK, "rpu_tile_create");
    if (tile) {
        expect(rpu_tile_set_weights(tile, w, false) == RPU_OK, "rpu_tile_set_weights");
        expect(rpu_tile_forward(tile, x, 1, y, true) == RPU_OK, "rpu_tile_forward");
        for (int i = 0; i < OUT; i++) {
            float want = 0.0f;
            for (int j = 0; j < IN; j++)
                want += w[i * IN + j] * x[j];
            float err = y[i] - want;
            expect(err < 1e-5f && err > -1e-5f, "floating-point tile forward = W x");
        }
    }
    rpu_tile_destroy(&tile);
    expect(tile == NULL, "rpu_tile_destroy sets the pointer to NULL");

    int total = 0;
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("rpusim consumer: %d rank(s), u = %.6f, y = [%.4f %.4f %.4f], %s\n", size, (double)u,
               (double)y[0], (double)y[1], (double)y[2], total ? "FAILED" : "OK");
    MPI_Finalize();
    return total ? 1 : 0;
}
