/* The sections of an experiment: [run], [data], [rpu], [layer.NAME] and [loss] entries
 * turned into run parameters, an rpu_config and layer specifications, with the checks
 * that can be made before a run starts (values, ranges, layer names, paths). */
#define _POSIX_C_SOURCE 200809L
#include "experiment_impl.h"

#include "config_ini_impl.h"
#include "error_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ values */

/* "FILE:LINE" or "FILE (--set section.key)" of an entry. */
/* (experiment_impl.h) Here rather than in experiment.c, so that experiment.c calls this file
 * and not the other way round (no call cycle). */
const char *exp_where(const rpu_experiment *e, const char *section, const char *key, char *buf,
                      size_t n) {
    for (int k = 0; k < e->n_entries; ++k) {
        const exp_entry *x = &e->entries[k];
        if (strcmp(x->section, section) || strcmp(x->key, key)) continue;
        if (x->line > 0)
            snprintf(buf, n, "%s:%d", e->source, x->line);
        else
            snprintf(buf, n, "%s (--set %s.%s)", e->source, section, key);
        return buf;
    }
    snprintf(buf, n, "%s", e->source);
    return buf;
}

static const char *where(const rpu_experiment *e, const exp_entry *x, char *buf, size_t n) {
    if (x->line > 0)
        snprintf(buf, n, "%s:%d", e->source, x->line);
    else
        snprintf(buf, n, "%s (--set %s.%s)", e->source, x->section, x->key);
    return buf;
}

/* "FILE:LINE: [section] key = 'value'" + a reason. */
static rpu_status bad_value(const rpu_experiment *e, const exp_entry *x, const char *want) {
    char w[700], vis[160];
    ini_visible(vis, sizeof vis, x->value, 100);
    return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s = '%s': %s", where(e, x, w, sizeof w), x->section,
                    x->key, vis, want);
}

static rpu_status get_int(const rpu_experiment *e, const exp_entry *x, long lo, long hi, int *out) {
    errno = 0;
    char *end;
    long v = strtol(x->value, &end, 10);
    if (errno || end == x->value || *end || v < lo || v > hi) {
        char want[80];
        snprintf(want, sizeof want, "want an integer in [%ld, %ld]", lo, hi);
        return bad_value(e, x, want);
    }
    *out = (int)v;
    return RPU_OK;
}

static rpu_status get_u64(const rpu_experiment *e, const exp_entry *x, uint64_t *out) {
    errno = 0;
    char *end;
    unsigned long long v = strtoull(x->value, &end, 10);
    if (errno || end == x->value || *end || x->value[0] < '0' || x->value[0] > '9')
        return bad_value(e, x, "want a non-negative integer");
    *out = (uint64_t)v;
    return RPU_OK;
}

static rpu_status get_float(const rpu_experiment *e, const exp_entry *x, double lo, double hi,
                            float *out) {
    errno = 0;
    char *end;
    double v = strtod(x->value, &end);
    if (errno || end == x->value || *end || !(v >= lo && v <= hi)) {
        char want[80];
        snprintf(want, sizeof want, "want a number in [%g, %g]", lo, hi);
        return bad_value(e, x, want);
    }
    *out = (float)v;
    return RPU_OK;
}

static rpu_status get_bool(const rpu_experiment *e, const exp_entry *x, bool *out) {
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
    for (int k = 0; k < 4; ++k) {
        if (!strcmp(x->value, yes[k])) return *out = true, RPU_OK;
        if (!strcmp(x->value, no[k])) return *out = false, RPU_OK;
    }
    return bad_value(e, x, "want true or false");
}

static rpu_status get_text(const rpu_experiment *e, const exp_entry *x, char *out, size_t n) {
    size_t len = strlen(x->value);
    if (len >= n) {
        char w[700];
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s: the value is %zu bytes long (at most %zu)",
                        where(e, x, w, sizeof w), x->section, x->key, len, n - 1);
    }
    memcpy(out, x->value, len + 1);
    return RPU_OK;
}

static rpu_status unknown_key(const rpu_experiment *e, const exp_entry *x, const char *accepted) {
    char w[700], vis[160];
    ini_visible(vis, sizeof vis, x->key, 100);
    return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] unknown key '%s' (accepted: %s)",
                    where(e, x, w, sizeof w), x->section, vis, accepted);
}

/* ------------------------------------------------------------------ sections */

static rpu_status run_entry(rpu_experiment *e, const exp_entry *x) {
    rpu_run_params *r = &e->run;
    const char *k = x->key;
    if (!strcmp(k, "seed")) return get_u64(e, x, &r->seed);
    if (!strcmp(k, "epochs")) return get_int(e, x, 0, 1000000, &r->epochs);
    if (!strcmp(k, "batch_size")) return get_int(e, x, 1, 1 << 20, &r->batch_size);
    if (!strcmp(k, "lr")) return get_float(e, x, 0, 1e6, &r->lr);
    if (!strcmp(k, "lr_schedule")) {
        if (!strcmp(x->value, "constant")) return e->lr_schedule = 0, RPU_OK;
        if (!strcmp(x->value, "step")) return e->lr_schedule = 1, RPU_OK;
        return bad_value(e, x, "want constant or step");
    }
    if (!strcmp(k, "lr_step")) return get_int(e, x, 0, 1000000, &r->lr_step);
    if (!strcmp(k, "lr_gamma")) return get_float(e, x, 0, 1, &r->lr_gamma);
    if (!strcmp(k, "momentum")) return get_float(e, x, 0, 0.999999, &r->momentum);
    if (!strcmp(k, "output_dir")) {
        if (!x->value[0]) return bad_value(e, x, "want a directory");
        return get_text(e, x, r->output_dir, sizeof r->output_dir);
    }
    if (!strcmp(k, "checkpoint")) {
        size_t n = strlen(x->value);
        if (n > 0 && x->value[n - 1] == '/')
            return bad_value(e, x,
                             "names a directory; want the checkpoint file's path (or "
                             "nothing for no checkpoints)");
        return get_text(e, x, r->checkpoint, sizeof r->checkpoint);
    }
    if (!strcmp(k, "checkpoint_every")) return get_int(e, x, 0, 1000000, &r->checkpoint_every);
    if (!strcmp(k, "keep_checkpoints")) return get_int(e, x, 0, 1000, &r->keep_checkpoints);
    if (!strcmp(k, "progress_every")) return get_int(e, x, 1, 1000000, &r->progress_every);
    return unknown_key(
        e, x,
        "seed, epochs, batch_size, lr, lr_schedule, lr_step, lr_gamma, momentum, "
        "output_dir, checkpoint, checkpoint_every, keep_checkpoints, progress_every");
}

static rpu_status data_entry(rpu_experiment *e, const exp_entry *x) {
    rpu_run_params *r = &e->run;
    const char *k = x->key;
    if (!strcmp(k, "dataset")) {
        static const char *ok[] = {"digits", "idx", "fashion_mnist", "synthetic"};
        for (int q = 0; q < 4; ++q)
            if (!strcmp(x->value, ok[q])) return get_text(e, x, r->dataset, sizeof r->dataset);
        return bad_value(e, x, "want digits, idx, fashion_mnist or synthetic");
    }
    if (!strcmp(k, "path")) return get_text(e, x, r->data_path, sizeof r->data_path);
    if (!strcmp(k, "synthetic_n")) return get_int(e, x, 2, 1 << 24, &r->synthetic_n);
    if (!strcmp(k, "synthetic_classes")) return get_int(e, x, 2, 256, &r->synthetic_classes);
    if (!strcmp(k, "synthetic_size")) return get_int(e, x, 1, 4096, &r->synthetic_size);
    if (!strcmp(k, "synthetic_channels")) return get_int(e, x, 1, 256, &r->synthetic_channels);
    return unknown_key(e, x,
                       "dataset, path, synthetic_n, synthetic_classes, synthetic_size, "
                       "synthetic_channels");
}

static const char *const layer_types[] = {"conv1d",  "conv2d",  "conv3d",  "linear",
                                          "relu",    "tanh",    "sigmoid", "maxpool",
                                          "avgpool", "flatten", "dropout", NULL};

static rpu_status layer_entry(rpu_experiment *e, exp_layer *L, const exp_entry *x) {
    const char *k = x->key;
    if (!strcmp(k, "type")) {
        for (int q = 0; layer_types[q]; ++q)
            if (!strcmp(x->value, layer_types[q])) return L->type = (exp_layer_type)q, RPU_OK;
        return bad_value(e, x,
                         "unknown layer type (accepted: conv1d, conv2d, conv3d, linear, relu, "
                         "tanh, sigmoid, maxpool, avgpool, flatten, dropout)");
    }
    if (!strcmp(k, "out")) return get_int(e, x, 1, 1 << 20, &L->out);
    if (!strcmp(k, "kernel")) return get_int(e, x, 1, 1024, &L->kernel);
    if (!strcmp(k, "stride")) return get_int(e, x, 1, 1024, &L->stride);
    if (!strcmp(k, "padding")) return get_int(e, x, 0, 1024, &L->padding);
    if (!strcmp(k, "dilation")) return get_int(e, x, 1, 1024, &L->dilation);
    if (!strcmp(k, "groups")) return get_int(e, x, 1, 1 << 20, &L->groups);
    if (!strcmp(k, "bias")) return get_bool(e, x, &L->bias);
    if (!strcmp(k, "p")) return get_float(e, x, 0, 0.999, &L->p);
    if (!strcmp(k, "split")) {
        if (rpu_split_parse(x->value, &L->split) != RPU_OK)
            return bad_value(e, x, "want mapped or tile_array");
        return RPU_OK;
    }
    return unknown_key(e, x,
                       "type, out, kernel, stride, padding, dilation, groups, bias, p, split");
}

/* The [rpu] entries, in the order of rpu_config_set_entries (presets and the keys that
 * reset others first, wherever they stand). */
static rpu_status rpu_entries(rpu_experiment *e) {
    int n = 0;
    for (int k = 0; k < e->n_entries; ++k)
        n += !strcmp(e->sections[e->entries[k].sec].name, "rpu");
    if (n == 0) return RPU_OK;
    const char **keys = (const char **)malloc((size_t)n * sizeof *keys);
    const char **values = (const char **)malloc((size_t)n * sizeof *values);
    int *at = (int *)malloc((size_t)n * sizeof *at);
    rpu_status s = RPU_OK;
    if (!keys || !values || !at) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    for (int k = 0, i = 0; s == RPU_OK && k < e->n_entries; ++k)
        if (!strcmp(e->sections[e->entries[k].sec].name, "rpu")) {
            keys[i] = e->entries[k].key;
            values[i] = e->entries[k].value;
            at[i++] = k;
        }
    int bad = -1;
    rpu_status r = s == RPU_OK ? rpu_config_set_entries(&e->cfg, n, keys, values, &bad) : s;
    if (s == RPU_OK && r != RPU_OK) {
        char inner[1024], w[700];
        snprintf(inner, sizeof inner, "%s", rpu_last_error());
        const char *loc = bad >= 0 ? where(e, &e->entries[at[bad]], w, sizeof w) : e->source;
        s = RPU_FAIL(r, "%s: [rpu] %s", loc, inner);
    }
    free(keys);
    free(values);
    free(at);
    return s;
}

static rpu_status loss_entry(rpu_experiment *e, const exp_entry *x) {
    if (strcmp(x->key, "type")) return unknown_key(e, x, "type");
    if (strcmp(x->value, "cross_entropy")) return bad_value(e, x, "want cross_entropy");
    return RPU_OK;
}

static void run_defaults(rpu_run_params *r) {
    memset(r, 0, sizeof *r);
    r->seed = 1;
    r->epochs = 1;
    r->batch_size = 32;
    r->lr = 0.01f;
    r->lr_gamma = 0.5f;
    r->checkpoint_every = 1;
    r->keep_checkpoints = 1;
    r->progress_every = 20;
    strcpy(r->output_dir, "rpusim-out");
    strcpy(r->dataset, "digits");
    strcpy(r->data_path, "data");
    r->synthetic_n = 512;
    r->synthetic_classes = 4;
    r->synthetic_size = 8;
    r->synthetic_channels = 1;
}

/* One layer per [layer.NAME] section, in section order. */
static rpu_status make_layers(rpu_experiment *e) {
    e->n_layers = 0;
    for (int q = 0; q < e->n_sections; ++q) {
        exp_section *s = &e->sections[q];
        s->layer = -1;
        if (strncmp(s->name, "layer.", 6)) continue;
        if (e->n_layers == EXP_MAX_LAYERS)
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [%s]: more than %d layers", e->source, s->line,
                            s->name, EXP_MAX_LAYERS);
        s->layer = e->n_layers;
        exp_layer *L = &e->layers[e->n_layers++];
        memset(L, 0, sizeof *L);
        snprintf(L->name, sizeof L->name, "%s", s->name + 6); /* checked: fits */
        L->type = EXP_NONE;
        L->line = s->line;
        L->kernel = 1, L->stride = 0, L->padding = 0, L->dilation = 1, L->groups = 1;
        L->bias = true;
        L->p = 0.5f;
    }
    return RPU_OK;
}

rpu_status exp_interpret(rpu_experiment *e) {
    run_defaults(&e->run);
    rpu_config_default(&e->cfg, RPU_KIND_SINGLE);
    e->lr_schedule = -1;
    RPU_CHECK(make_layers(e));
    for (int k = 0; k < e->n_entries; ++k) {
        const exp_entry *x = &e->entries[k];
        const exp_section *s = &e->sections[x->sec];
        if (s->layer >= 0)
            RPU_CHECK(layer_entry(e, &e->layers[s->layer], x));
        else if (!strcmp(s->name, "run"))
            RPU_CHECK(run_entry(e, x));
        else if (!strcmp(s->name, "data"))
            RPU_CHECK(data_entry(e, x));
        else if (!strcmp(s->name, "rpu"))
            continue; /* below, in the order of rpu_config_set_entries */
        else
            RPU_CHECK(loss_entry(e, x)); /* the sections were checked on reading */
    }
    RPU_CHECK(rpu_entries(e));
    rpu_run_params *r = &e->run;
    if (e->lr_schedule == 0)
        r->lr_step = 0;
    else if (e->lr_schedule == 1 && r->lr_step == 0)
        r->lr_step = 1;
    if (rpu_config_validate(&e->cfg) != RPU_OK) {
        char inner[1024];
        snprintf(inner, sizeof inner, "%s", rpu_last_error());
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [rpu] %s", e->source, inner);
    }
    for (int q = 0; q < e->n_layers; ++q) {
        exp_layer *L = &e->layers[q];
        if (L->type == EXP_NONE)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%s:%d: [layer.%s] has no type (type = conv2d, "
                            "linear, relu, ...)",
                            e->source, L->line, L->name);
        if ((L->type <= EXP_LINEAR) && L->out < 1)
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [layer.%s] (%s) needs out = N", e->source,
                            L->line, L->name, layer_types[L->type]);
        if (L->stride == 0)
            L->stride = (L->type == EXP_MAXPOOL || L->type == EXP_AVGPOOL) ? L->kernel : 1;
    }
    if (e->n_layers == 0)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: no [layer.NAME] sections", e->source);
    return RPU_OK;
}

/* ------------------------------------------------------------------ paths */

/* Longest run.checkpoint that MPI-IO can open. Open MPI's OMPIO (the default MPI-IO of
 * Open MPI 4) probes file locking at every MPI_File_open by writing the file name plus
 * ".locktest.<rank>" into a 256-byte stack buffer with sprintf (sharedfp/lockedfile), and
 * the process aborts ("buffer overflow detected") when it does not fit. The checkpoint
 * writer opens "<checkpoint>.tmp" and a resume "<checkpoint>.K" (K < 1000): 4 bytes more,
 * 10 for ".locktest.", up to 7 rank digits and the NUL leave 234. The name counts as given
 * (a relative path stays relative). */
#define EXP_MAX_CHECKPOINT_PATH (256 - 1 - 10 - 7 - 4)

/* mkdir -p of the first len bytes of path. */
static int make_dirs(const char *path, size_t len, char *failed, size_t n) {
    char *d = (char *)malloc(len + 1);
    if (!d) return ENOMEM;
    memcpy(d, path, len);
    d[len] = '\0';
    int err = 0;
    for (size_t i = 1; i <= len && !err; ++i) {
        if (i < len && d[i] != '/') continue;
        char c = d[i];
        d[i] = '\0';
        struct stat st;
        if (mkdir(d, 0777) != 0 && errno != EEXIST)
            err = errno;
        else if (stat(d, &st) != 0)
            err = errno;
        else if (!S_ISDIR(st.st_mode))
            err = ENOTDIR;
        if (err) snprintf(failed, n, "%s", d);
        d[i] = c;
    }
    free(d);
    return err;
}

rpu_status exp_prepare_paths(const rpu_experiment *e) {
    const rpu_run_params *r = &e->run;
    char w[700], failed[600];
    int err = make_dirs(r->output_dir, strlen(r->output_dir), failed, sizeof failed);
    if (err)
        return RPU_FAIL(RPU_ERR_IO, "%s: [run] output_dir = '%s': cannot create directory %s: %s",
                        exp_where(e, "run", "output_dir", w, sizeof w), r->output_dir, failed,
                        strerror(err));
    if (!r->checkpoint[0]) return RPU_OK;
    const size_t len = strlen(r->checkpoint);
    if (len > EXP_MAX_CHECKPOINT_PATH)
        return RPU_FAIL(RPU_ERR_IO,
                        "%s: [run] checkpoint is %zu bytes long; MPI-IO (Open MPI's OMPIO) "
                        "cannot open a file name of more than %d bytes (a fixed buffer in its "
                        "file-locking probe); use a relative path or a shorter directory",
                        exp_where(e, "run", "checkpoint", w, sizeof w), len,
                        EXP_MAX_CHECKPOINT_PATH);
    const char *slash = strrchr(r->checkpoint, '/');
    const char *dir = slash ? r->checkpoint : ".";
    size_t dlen = slash ? (size_t)(slash - r->checkpoint) : 1;
    if (slash == r->checkpoint) dlen = 1; /* "/x.h5": the root */
    err = make_dirs(dir, dlen, failed, sizeof failed);
    if (!err) {
        snprintf(failed, sizeof failed, "%.*s", (int)dlen, dir);
        if (access(failed, W_OK | X_OK) != 0) err = errno;
    }
    if (err)
        return RPU_FAIL(
            RPU_ERR_IO, "%s: [run] checkpoint = '%s': cannot write checkpoints in directory %s: %s",
            exp_where(e, "run", "checkpoint", w, sizeof w), r->checkpoint, failed, strerror(err));
    struct stat st;
    if (stat(r->checkpoint, &st) == 0 && S_ISDIR(st.st_mode))
        return RPU_FAIL(RPU_ERR_IO, "%s: [run] checkpoint = '%s' is a directory; want a file path",
                        exp_where(e, "run", "checkpoint", w, sizeof w), r->checkpoint);
    return RPU_OK;
}
