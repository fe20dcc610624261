/* A program outside the rpusim tree, built against an installed rpusim (CMake package or
 * pkg-config, shared or static library): uses the umbrella header, MPI from the package's
 * include dirs, and public functions from every part of the library that has a private
 * dependency, so that a static link needs all of them: a mapped linear layer (OpenBLAS),
 * its realistic read-out (ScaLAPACK), a checkpoint (parallel HDF5), an experiment text
 * (libinih) and a data directory (zlib). Prints one line and exits 0 when every rank's
 * checks passed.
 *
 * usage: mpiexec -n P rpusim_consumer SCRATCH_DIR */
#include <rpusim/rpusim.h>

#include <mpi.h>
#include <math.h>
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
    const char *dir = argc > 1 ? argv[1] : ".";

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
    enum { OUT = 3, IN = 4, N = 2 };
    float w[OUT * IN], b[OUT], x[N * IN], y[N * OUT] = {0};
    for (int i = 0; i < OUT * IN; i++)
        w[i] = 0.125f * (float)(i % 5) - 0.25f;
    for (int i = 0; i < OUT; i++)
        b[i] = 0.1f * (float)i;
    for (int j = 0; j < N * IN; j++)
        x[j] = 0.5f - 0.25f * (float)(j % IN) + 0.1f * (float)(j / IN);
    rpu_tile_params p = {.out_size = OUT,
                         .in_size = IN,
                         .seed = 2024,
                         .layer_id = 0,
                         .tile_id = (uint32_t)rank,
                         .mac = RPU_MAC_EXACT};
    rpu_tile *tile = NULL;
    expect(rpu_tile_create(&p, &cfg, &tile) == RPU_OK, "rpu_tile_create");
    if (tile) {
        expect(rpu_tile_set_weights(tile, w, RPU_WEIGHTS_SCALED) == RPU_OK, "rpu_tile_set_weights");
        expect(rpu_tile_forward(tile, x, 1, y, RPU_MODE_EVAL) == RPU_OK, "rpu_tile_forward");
        for (int i = 0; i < OUT; i++) {
            float want = 0.0f;
            for (int j = 0; j < IN; j++)
                want += w[i * IN + j] * x[j];
            expect(fabsf(y[i] - want) < 1e-5f, "floating-point tile forward = W x");
        }
    }
    rpu_tile_destroy(&tile);
    expect(tile == NULL, "rpu_tile_destroy sets the pointer to NULL");

    /* a mapped linear layer over the ranks (1 input feature per tile: 4 tiles) */
    cfg.mapping.max_input_size = 1;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, IN, OUT);
    lp.layer_id = 1;
    lp.seed = 5;
    snprintf(lp.name, sizeof lp.name, "%s", "fc");
    rpu_linear *fc = NULL, *fc2 = NULL;
    float dy[N * OUT], gw[OUT * IN], gb[OUT], rw[OUT * IN], rb[OUT];
    expect(rpu_linear_from_digital(MPI_COMM_WORLD, &lp, &cfg, w, b, &fc) == RPU_OK,
           "rpu_linear_from_digital");
    if (fc) {
        expect(rpu_linear_forward(fc, x, N, y) == RPU_OK, "rpu_linear_forward");
        for (int k = 0; k < N * OUT; k++)
            dy[k] = 0.5f - 0.125f * (float)k;
        expect(rpu_linear_backward(fc, dy, NULL) == RPU_OK, "rpu_linear_backward");
        expect(rpu_linear_get_grad(fc, gw, gb) == RPU_OK, "rpu_linear_get_grad");
        double err = 0;
        for (int i = 0; i < OUT; i++) {
            double want_y = b[i], want_b = 0;
            for (int j = 0; j < IN; j++) {
                want_y += (double)w[i * IN + j] * x[j];
                double g = 0;
                for (int n = 0; n < N; n++)
                    g += (double)dy[n * OUT + i] * x[n * IN + j];
                err = fmax(err, fabs(gw[i * IN + j] - g));
            }
            for (int n = 0; n < N; n++)
                want_b += dy[n * OUT + i];
            err = fmax(err, fabs(y[i] - want_y));
            err = fmax(err, fabs(gb[i] - want_b));
        }
        expect(err < 1e-5, "linear forward and gradients");
        /* realistic read-out (ScaLAPACK least squares across the ranks) */
        expect(rpu_linear_get_weights(fc, rw, rb, RPU_READ_REALISTIC) == RPU_OK,
               "rpu_linear_get_weights(RPU_READ_REALISTIC)");
        double e = 0;
        for (int i = 0; i < OUT * IN; i++)
            e = fmax(e, fabs(rw[i] - w[i]));
        expect(e < 1e-4, "realistic read-out of a floating-point layer");
        /* checkpoint (parallel HDF5): save, load into a second layer, compare */
        char path[1024];
        snprintf(path, sizeof path, "%s/consumer.h5", dir);
        rpu_ckpt_layer cl = {.name = "fc", .layer = rpu_linear_as_conv(fc)};
        rpu_ckpt_meta meta = {.seed = 5, .step = 1, .epoch = 0, .config = ""};
        expect(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, &cl, 1, NULL, 0, NULL) == RPU_OK,
               "rpu_ckpt_save");
        lp.seed = 5;
        expect(rpu_linear_create(MPI_COMM_WORLD, &lp, &cfg, &fc2) == RPU_OK, "second layer");
        if (fc2) {
            rpu_ckpt_layer cl2 = {.name = "fc", .layer = rpu_linear_as_conv(fc2)};
            expect(rpu_ckpt_load(MPI_COMM_WORLD, path, &cl2, 1, NULL, 0, NULL) == RPU_OK,
                   "rpu_ckpt_load");
            expect(rpu_linear_get_weights(fc2, rw, rb, RPU_READ_EXACT) == RPU_OK,
                   "get_weights of the loaded layer");
            int same = 1;
            for (int i = 0; i < OUT * IN; i++)
                same &= rw[i] == w[i];
            for (int i = 0; i < OUT; i++)
                same &= rb[i] == b[i];
            expect(same, "the loaded layer has the saved weights");
        }
    }
    rpu_linear_destroy(&fc);
    rpu_linear_destroy(&fc2);

    /* experiment text (libinih) and data directory (zlib): errors, as expected */
    rpu_experiment *ex = NULL;
    expect(rpu_experiment_parse("[run]\nepochs = -3\n", "consumer.ini", NULL, 0, &ex) ==
               RPU_ERR_CONFIG,
           "a bad experiment is refused");
    rpu_experiment_free(&ex);
    rpu_dataset ds = {0};
    expect(rpu_dataset_load_dir("/nonexistent-rpusim-consumer", true, &ds) != RPU_OK,
           "a missing data directory is refused");
    rpu_dataset_free(&ds);

    int total = 0;
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("rpusim consumer: %d rank(s), u = %.6f, y = [%.4f %.4f %.4f], %s\n", size, (double)u,
               (double)y[0], (double)y[1], (double)y[2], total ? "FAILED" : "OK");
    MPI_Finalize();
    return total ? 1 : 0;
}
