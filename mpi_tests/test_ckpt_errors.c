/* The library prints nothing on the error paths of its HDF5 files (issue 13, defect 9):
 * checkpoint save, load, open, verify and read, weight export and import. Every call runs
 * with HDF5's automatic error printing ON (its default, as a library user has it) and this
 * process's stderr captured in a file: the call must fail with the expected status and a
 * message naming the file and the fault, stderr must stay empty (HDF5 printed 14 lines of
 * HDF5-DIAG for `rpusim export -o missing-dir/w.h5`), and HDF5's printing must be as it
 * was; a message agreed across ranks names the failing rank once. Every rank runs every
 * check (the collective calls on every rank).
 *
 * Usage: test_ckpt_errors WORKDIR (files go to WORKDIR/np<ranks>) */
#define _POSIX_C_SOURCE 200809L
#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/net.h"
#include "testlib.h"

#include <hdf5.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_err[600]; /* this rank's capture file */
static int g_saved = -1;

/* Starts capturing this process's stderr. */
static void capture(void) {
    fflush(stderr);
    g_saved = dup(2);
    const int fd = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}

/* Stops capturing; returns the bytes written to stderr meanwhile (malloc'ed). */
static char *captured(void) {
    fflush(stderr);
    dup2(g_saved, 2);
    close(g_saved);
    FILE *f = fopen(g_err, "rb");
    char *buf = calloc(1, 65536);
    if (f && buf) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
    }
    if (f) fclose(f);
    return buf;
}

typedef struct {
    H5E_auto2_t func;
    void *data;
} auto_state;

static auto_state auto_now(void) {
    auto_state a;
    H5Eget_auto2(H5E_DEFAULT, &a.func, &a.data);
    return a;
}

/* The checks after a call that must fail. */
static void expect(const char *label, rpu_status got, rpu_status want, const char *needle1,
                   const char *needle2, const auto_state *before) {
    char *out = captured();
    CHECK(got == want, "%s: %s, expected %s (%s)", label, rpu_status_name(got),
          rpu_status_name(want), rpu_last_error());
    CHECK(strstr(rpu_last_error(), needle1) && (!needle2 || strstr(rpu_last_error(), needle2)),
          "%s: message lacks '%s'%s%s: %s", label, needle1, needle2 ? " or " : "",
          needle2 ? needle2 : "", rpu_last_error());
    const char *on = strstr(rpu_last_error(), " (on rank ");
    CHECK(!on || !strstr(on + 1, " (on rank "), "%s: the rank is named more than once: %s", label,
          rpu_last_error());
    CHECK(out && out[0] == '\0', "%s: the library printed on stderr: %.400s", label,
          out ? out : "?");
    const auto_state after = auto_now();
    CHECK(after.func == before->func && after.data == before->data,
          "%s: HDF5's automatic error printing changed", label);
    if (tl_rank() == 0) printf("%s: %s\n", label, rpu_last_error());
    free(out);
}

static void write_text(const char *path, const char *text) {
    if (tl_rank() == 0) {
        FILE *f = fopen(path, "w");
        if (f) fputs(text, f), fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A copy of src with the last `cut` bytes missing (rank 0). */
static void truncated_copy(const char *src, const char *dst, long cut) {
    if (tl_rank() == 0) {
        FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
        if (a && b) {
            fseek(a, 0, SEEK_END);
            const long n = ftell(a) - cut;
            fseek(a, 0, SEEK_SET);
            for (long i = 0; i < n; ++i)
                fputc(fgetc(a), b);
        }
        if (a) fclose(a);
        if (b) fclose(b);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static const char *exp_text =
    "[run]\nseed = 3\nepochs = 1\nbatch_size = 8\n\n[rpu]\nkind = single\n"
    "mapping.max_input_size = 16\nmapping.max_output_size = 8\n\n"
    "[data]\ndataset = synthetic\nsynthetic_n = 32\nsynthetic_classes = 4\nsynthetic_size = 4\n\n"
    "[layer.flat]\ntype = flatten\n\n[layer.fc]\ntype = linear\nout = 4\n\n"
    "[loss]\ntype = cross_entropy\n";

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    if (argc != 2) {
        if (tl_rank() == 0) fprintf(stderr, "usage: test_ckpt_errors WORKDIR\n");
        return tl_finish() + 2;
    }
    /* a directory of its own for each rank count (CTest runs them side by side) */
    char w[500];
    snprintf(w, sizeof w, "%s/np%d", argv[1], tl_size());
    if (tl_rank() == 0) {
        mkdir(argv[1], 0755);
        mkdir(w, 0755);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(g_err, sizeof g_err, "%s/stderr.%d", w, tl_rank());
    char ck[600], text[600], trunc[600], missing[600], nodir[600], out[600], wts[600];
    snprintf(ck, sizeof ck, "%s/ck.h5", w);
    snprintf(text, sizeof text, "%s/text.h5", w);
    snprintf(trunc, sizeof trunc, "%s/trunc.h5", w);
    snprintf(missing, sizeof missing, "%s/missing.h5", w);
    snprintf(nodir, sizeof nodir, "%s/missing-dir/x.h5", w);
    snprintf(out, sizeof out, "%s/w.h5", w);
    snprintf(wts, sizeof wts, "%s/weights.h5", w);
    write_text(text, "this is not an HDF5 file\n");
    /* HDF5's printing on, as HDF5 starts */
    H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)H5Eprint2, stderr);
    const auto_state before = auto_now();

    /* a small network and its checkpoint */
    rpu_experiment *e = NULL;
    CHECK_OK(rpu_experiment_parse(exp_text, "errors.ini", NULL, 0, &e));
    rpu_net *net = NULL;
    const int spatial[2] = {4, 4};
    if (e) CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, 1, 2, spatial, &net));
    if (!net) return tl_finish();
    CHECK_OK(rpu_net_save_checkpoint(MPI_COMM_WORLD, net, e, ck, 1, 1, NULL, 0, 0));
    truncated_copy(ck, trunc, 200);
    rpu_ckpt_layer cl = {"fc", rpu_net_analog_layer(net, 0)};

    /* checkpoints: save */
    capture();
    rpu_status s = rpu_ckpt_save(MPI_COMM_WORLD, nodir, NULL, &cl, 1, NULL, 0, NULL);
    expect("save into a missing directory", s, RPU_ERR_IO, nodir, "No such file or directory",
           &before);
    capture();
    s = rpu_ckpt_save(MPI_COMM_WORLD, w, NULL, &cl, 1, NULL, 0, NULL); /* w.tmp is free */
    expect("save over a directory", s, RPU_ERR_IO, w, NULL, &before);
    /* load */
    const char *bad[3] = {missing, text, trunc};
    const rpu_status want[3] = {RPU_ERR_IO, RPU_ERR_FORMAT, RPU_ERR_FORMAT};
    const char *why[3] = {"No such file", "not a readable HDF5 file", "truncated"};
    for (int k = 0; k < 3; ++k) {
        char label[64];
        snprintf(label, sizeof label, "load %s", k == 0 ? "missing" : k == 1 ? "text" : "trunc");
        capture();
        s = rpu_ckpt_load(MPI_COMM_WORLD, bad[k], &cl, 1, NULL, 0, NULL);
        expect(label, s, want[k], bad[k], why[k], &before);
        /* the serial reader */
        snprintf(label, sizeof label, "open %s", k == 0 ? "missing" : k == 1 ? "text" : "trunc");
        rpu_ckpt_file *f = NULL;
        capture();
        s = rpu_ckpt_open(bad[k], &f);
        expect(label, s, want[k], bad[k], why[k], &before);
        rpu_ckpt_close(&f);
    }
    {
        rpu_ckpt_file *f = NULL;
        CHECK_OK(rpu_ckpt_open(ck, &f));
        double *v = NULL;
        int nd = 0;
        int64_t dims[RPU_CKPT_MAX_DIMS];
        capture();
        s = rpu_ckpt_file_read(f, "layers/fc/tiles/9_9/weights", &v, &nd, dims);
        expect("read a missing dataset", s, RPU_ERR_FORMAT, ck, "9_9/weights", &before);
        free(v);
        int64_t n = 0;
        capture();
        s = rpu_ckpt_verify(f, &n);
        char *o = captured();
        CHECK(s == RPU_OK && n > 0 && o && !o[0], "verify of an intact file: %s, %lld, '%s'",
              rpu_status_name(s), (long long)n, o ? o : "");
        free(o);
        rpu_ckpt_close(&f);
    }

    /* weights: export */
    capture();
    s = rpu_net_export(MPI_COMM_WORLD, e, ck, nodir, false, 1, false);
    expect("export into a missing directory", s, RPU_ERR_IO, nodir, "No such file or directory",
           &before);
    capture();
    s = rpu_net_export(MPI_COMM_WORLD, e, trunc, out, false, 1, false);
    expect("export of a truncated checkpoint", s, RPU_ERR_FORMAT, trunc, "truncated", &before);
    CHECK_OK(rpu_net_export(MPI_COMM_WORLD, e, ck, wts, false, 1, true));
    /* import */
    capture();
    s = rpu_net_import(MPI_COMM_WORLD, e, missing, out, true, NULL, NULL, 0, NULL);
    expect("import of a missing file", s, RPU_ERR_IO, missing, "No such file", &before);
    capture();
    s = rpu_net_import(MPI_COMM_WORLD, e, text, out, true, NULL, NULL, 0, NULL);
    expect("import of a text file", s, RPU_ERR_FORMAT, text, "not an HDF5 file", &before);
    capture();
    s = rpu_net_import(MPI_COMM_WORLD, e, wts, nodir, true, NULL, NULL, 0, NULL);
    expect("import into a missing directory", s, RPU_ERR_IO, nodir, "No such file or directory",
           &before);

    rpu_net_destroy(&net);
    rpu_experiment_free(&e);
    MPI_Barrier(MPI_COMM_WORLD);
    unlink(g_err);
    return tl_finish();
}
