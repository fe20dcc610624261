/* Experiment files: INI read with libinih into an ordered list of entries (section, key,
 * value, line), overrides applied, then interpreted into run parameters, an rpu_config and
 * layer specifications. Every message names the file and line. */
#include "experiment_impl.h"

#include "error_impl.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ entries */

static rpu_status add_entry(rpu_experiment *e, const char *section, const char *key,
                            const char *value, int line) {
    if (e->n_entries == e->cap_entries) {
        int cap = e->cap_entries ? 2 * e->cap_entries : 64;
        exp_entry *p = (exp_entry *)realloc(e->entries, sizeof *p * (size_t)cap);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", e->source);
        e->entries = p;
        e->cap_entries = cap;
    }
    exp_entry *x = &e->entries[e->n_entries];
    memset(x, 0, sizeof *x);
    if (strlen(section) >= sizeof x->section || strlen(key) >= sizeof x->key ||
        strlen(value) >= sizeof x->value)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: section, key or value too long", e->source, line);
    strcpy(x->section, section);
    strcpy(x->key, key);
    strcpy(x->value, value);
    x->line = line;
    e->n_entries++;
    return RPU_OK;
}

/* line counting around libinih: the reader sees every line before the handler does */
typedef struct {
    rpu_experiment *e;
    const char *text;
    size_t pos;
    int line;
    rpu_status status;
} reader_ctx;

static char *read_line(char *str, int num, void *stream) {
    reader_ctx *c = (reader_ctx *)stream;
    if (!c->text[c->pos]) return NULL;
    int k = 0;
    while (k < num - 1 && c->text[c->pos]) {
        char ch = c->text[c->pos++];
        str[k++] = ch;
        if (ch == '\n') break;
    }
    str[k] = '\0';
    c->line++;
    return str;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    reader_ctx *c = (reader_ctx *)user;
    if (!name) return 1; /* section start */
    if (!*section) {
        c->status = RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: key '%s' outside any [section]",
                             c->e->source, c->line, name);
        return 0;
    }
    c->status = add_entry(c->e, section, name, value, c->line);
    return c->status == RPU_OK;
}

/* "section.key=value"; for [layer.NAME] and [rpu] the section is the longest known prefix */
static rpu_status apply_override(rpu_experiment *e, const char *ov) {
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov)
        return RPU_FAIL(RPU_ERR_CONFIG, "override '%s': want section.key=value", ov);
    char lhs[256];
    size_t n = (size_t)(eq - ov);
    if (n >= sizeof lhs) return RPU_FAIL(RPU_ERR_CONFIG, "override '%s': key too long", ov);
    memcpy(lhs, ov, n);
    lhs[n] = '\0';
    char section[128], key[128];
    const char *dot;
    if (!strncmp(lhs, "layer.", 6)) dot = strchr(lhs + 6, '.');
    else dot = strchr(lhs, '.');
    if (!dot || !dot[1])
        return RPU_FAIL(RPU_ERR_CONFIG, "override '%s': want section.key=value (e.g. run.epochs=3)", ov);
    size_t sl = (size_t)(dot - lhs);
    if (sl >= sizeof section || strlen(dot + 1) >= sizeof key)
        return RPU_FAIL(RPU_ERR_CONFIG, "override '%s': name too long", ov);
    memcpy(section, lhs, sl);
    section[sl] = '\0';
    strcpy(key, dot + 1);
    for (int k = 0; k < e->n_entries; ++k) {
        exp_entry *x = &e->entries[k];
        if (!strcmp(x->section, section) && !strcmp(x->key, key)) {
            if (strlen(eq + 1) >= sizeof x->value)
                return RPU_FAIL(RPU_ERR_CONFIG, "override '%s': value too long", ov);
            strcpy(x->value, eq + 1);
            x->line = 0; /* from the command line */
            return RPU_OK;
        }
    }
    /* a new entry: after the last entry of its section, or at the end */
    int at = e->n_entries;
    for (int k = 0; k < e->n_entries; ++k)
        if (!strcmp(e->entries[k].section, section)) at = k + 1;
    RPU_CHECK(add_entry(e, section, key, eq + 1, 0));
    exp_entry tmp = e->entries[e->n_entries - 1];
    memmove(&e->entries[at + 1], &e->entries[at], sizeof tmp * (size_t)(e->n_entries - 1 - at));
    e->entries[at] = tmp;
    return RPU_OK;
}

/* ------------------------------------------------------------------ values */

/* where(e, x): "file:line" or "override" */
static const char *where(const rpu_experiment *e, const exp_entry *x, char *buf, size_t n) {
    if (x->line > 0) snprintf(buf, n, "%s:%d", e->source, x->line);
    else snprintf(buf, n, "%s (--set %s.%s)", e->source, x->section, x->key);
    return buf;
}

static rpu_status get_int(const rpu_experiment *e, const exp_entry *x, long lo, long hi, int *out) {
    char w[800];
    errno = 0;
    char *end;
    long v = strtol(x->value, &end, 10);
    while (*end && isspace((unsigned char)*end)) ++end;
    if (errno || end == x->value || *end || v < lo || v > hi)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s = '%s': want an integer in [%ld, %ld]",
                        where(e, x, w, sizeof w), x->section, x->key, x->value, lo, hi);
    *out = (int)v;
    return RPU_OK;
}

static rpu_status get_u64(const rpu_experiment *e, const exp_entry *x, uint64_t *out) {
    char w[800];
    errno = 0;
    char *end;
    unsigned long long v = strtoull(x->value, &end, 10);
    if (errno || end == x->value || *end || x->value[0] == '-')
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s = '%s': want a non-negative integer",
                        where(e, x, w, sizeof w), x->section, x->key, x->value);
    *out = (uint64_t)v;
    return RPU_OK;
}

static rpu_status get_float(const rpu_experiment *e, const exp_entry *x, double lo, double hi,
                            float *out) {
    char w[800];
    errno = 0;
    char *end;
    double v = strtod(x->value, &end);
    while (*end && isspace((unsigned char)*end)) ++end;
    if (errno || end == x->value || *end || !(v >= lo && v <= hi))
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s = '%s': want a number in [%g, %g]",
                        where(e, x, w, sizeof w), x->section, x->key, x->value, lo, hi);
    *out = (float)v;
    return RPU_OK;
}

static rpu_status get_bool(const rpu_experiment *e, const exp_entry *x, bool *out) {
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
    for (int k = 0; k < 4; ++k) {
        if (!strcmp(x->value, yes[k])) return *out = true, RPU_OK;
        if (!strcmp(x->value, no[k])) return *out = false, RPU_OK;
    }
    char w[800];
    return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s = '%s': want true or false",
                    where(e, x, w, sizeof w), x->section, x->key, x->value);
}

static rpu_status get_text(const rpu_experiment *e, const exp_entry *x, char *out, size_t n) {
    char w[800];
    if (strlen(x->value) >= n)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] %s: value too long", where(e, x, w, sizeof w),
                        x->section, x->key);
    strcpy(out, x->value);
    return RPU_OK;
}

static rpu_status unknown_key(const rpu_experiment *e, const exp_entry *x, const char *accepted) {
    char w[800];
    return RPU_FAIL(RPU_ERR_CONFIG, "%s: [%s] unknown key '%s' (accepted: %s)",
                    where(e, x, w, sizeof w), x->section, x->key, accepted);
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
        char w[800];
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [run] lr_schedule = '%s': want constant or step",
                        where(e, x, w, sizeof w), x->value);
    }
    if (!strcmp(k, "lr_step")) return get_int(e, x, 0, 1000000, &r->lr_step);
    if (!strcmp(k, "lr_gamma")) return get_float(e, x, 0, 1, &r->lr_gamma);
    if (!strcmp(k, "momentum")) return get_float(e, x, 0, 0.999999, &r->momentum);
    if (!strcmp(k, "output_dir")) return get_text(e, x, r->output_dir, sizeof r->output_dir);
    if (!strcmp(k, "checkpoint")) return get_text(e, x, r->checkpoint, sizeof r->checkpoint);
    if (!strcmp(k, "checkpoint_every")) return get_int(e, x, 0, 1000000, &r->checkpoint_every);
    if (!strcmp(k, "keep_checkpoints")) return get_int(e, x, 0, 1000, &r->keep_checkpoints);
    if (!strcmp(k, "progress_every")) return get_int(e, x, 1, 1000000, &r->progress_every);
    return unknown_key(e, x,
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
        char w[800];
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: [data] dataset = '%s': want digits, idx, fashion_mnist or synthetic",
                        where(e, x, w, sizeof w), x->value);
    }
    if (!strcmp(k, "path")) return get_text(e, x, r->data_path, sizeof r->data_path);
    if (!strcmp(k, "synthetic_n")) return get_int(e, x, 2, 1 << 24, &r->synthetic_n);
    if (!strcmp(k, "synthetic_classes")) return get_int(e, x, 2, 256, &r->synthetic_classes);
    if (!strcmp(k, "synthetic_size")) return get_int(e, x, 1, 4096, &r->synthetic_size);
    return unknown_key(e, x, "dataset, path, synthetic_n, synthetic_classes, synthetic_size");
}

static const char *const layer_types[] = {"conv1d",  "conv2d",  "conv3d",  "linear",
                                          "relu",    "tanh",    "sigmoid", "maxpool",
                                          "avgpool", "flatten", "dropout", NULL};

static rpu_status layer_entry(rpu_experiment *e, exp_layer *L, const exp_entry *x) {
    const char *k = x->key;
    if (!strcmp(k, "type")) {
        for (int q = 0; layer_types[q]; ++q)
            if (!strcmp(x->value, layer_types[q])) return L->type = (exp_layer_type)q, RPU_OK;
        char w[800];
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: [%s] type = '%s': unknown layer type (accepted: conv1d, conv2d, conv3d, "
                        "linear, relu, tanh, sigmoid, maxpool, avgpool, flatten, dropout)",
                        where(e, x, w, sizeof w), x->section, x->value);
    }
    if (!strcmp(k, "out")) return get_int(e, x, 1, 1 << 20, &L->out);
    if (!strcmp(k, "kernel")) return get_int(e, x, 1, 1024, &L->kernel);
    if (!strcmp(k, "stride")) return get_int(e, x, 1, 1024, &L->stride);
    if (!strcmp(k, "padding")) return get_int(e, x, 0, 1024, &L->padding);
    if (!strcmp(k, "dilation")) return get_int(e, x, 1, 1024, &L->dilation);
    if (!strcmp(k, "groups")) return get_int(e, x, 1, 1 << 20, &L->groups);
    if (!strcmp(k, "bias")) return get_bool(e, x, &L->bias);
    if (!strcmp(k, "p")) return get_float(e, x, 0, 0.999, &L->p);
    return unknown_key(e, x, "type, out, kernel, stride, padding, dilation, groups, bias, p");
}

static rpu_status interpret(rpu_experiment *e) {
    rpu_run_params *r = &e->run;
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
    rpu_config_default(&e->cfg, RPU_KIND_SINGLE);
    e->n_layers = 0;
    e->lr_schedule = -1;
    int have_loss = 0;
    for (int k = 0; k < e->n_entries; ++k) {
        const exp_entry *x = &e->entries[k];
        char w[800];
        if (!strcmp(x->section, "run")) {
            RPU_CHECK(run_entry(e, x));
        } else if (!strcmp(x->section, "data")) {
            RPU_CHECK(data_entry(e, x));
        } else if (!strcmp(x->section, "rpu")) {
            if (rpu_config_set(&e->cfg, x->key, x->value) != RPU_OK) {
                char inner[1024];
                snprintf(inner, sizeof inner, "%s", rpu_last_error());
                return RPU_FAIL(RPU_ERR_CONFIG, "%s: [rpu] %s", where(e, x, w, sizeof w), inner);
            }
        } else if (!strcmp(x->section, "loss")) {
            if (strcmp(x->key, "type")) return unknown_key(e, x, "type");
            if (strcmp(x->value, "cross_entropy"))
                return RPU_FAIL(RPU_ERR_CONFIG, "%s: [loss] type = '%s': want cross_entropy",
                                where(e, x, w, sizeof w), x->value);
            have_loss = 1;
        } else if (!strncmp(x->section, "layer.", 6) && x->section[6]) {
            exp_layer *L = NULL;
            for (int q = 0; q < e->n_layers; ++q)
                if (!strcmp(e->layers[q].name, x->section + 6)) L = &e->layers[q];
            if (!L) {
                if (e->n_layers == EXP_MAX_LAYERS)
                    return RPU_FAIL(RPU_ERR_CONFIG, "%s: more than %d layers",
                                    where(e, x, w, sizeof w), EXP_MAX_LAYERS);
                L = &e->layers[e->n_layers++];
                memset(L, 0, sizeof *L);
                snprintf(L->name, sizeof L->name, "%s", x->section + 6);
                L->type = EXP_NONE;
                L->line = x->line;
                L->kernel = 1, L->stride = 0, L->padding = 0, L->dilation = 1, L->groups = 1;
                L->bias = true;
                L->p = 0.5f;
            }
            RPU_CHECK(layer_entry(e, L, x));
        } else {
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%s: unknown section [%s] (accepted: run, rpu, data, layer.NAME, loss)",
                            where(e, x, w, sizeof w), x->section);
        }
    }
    (void)have_loss; /* cross_entropy is the only loss and the default */
    if (e->lr_schedule == 0) r->lr_step = 0;
    else if (e->lr_schedule == 1 && r->lr_step == 0) r->lr_step = 1;
    if (rpu_config_validate(&e->cfg) != RPU_OK) {
        char inner[1024];
        snprintf(inner, sizeof inner, "%s", rpu_last_error());
        return RPU_FAIL(RPU_ERR_CONFIG, "%s: [rpu] %s", e->source, inner);
    }
    for (int q = 0; q < e->n_layers; ++q) {
        exp_layer *L = &e->layers[q];
        if (L->type == EXP_NONE)
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [layer.%s] has no type", e->source, L->line,
                            L->name);
        if ((L->type <= EXP_LINEAR) && L->out < 1)
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [layer.%s] (%s) needs out = N", e->source,
                            L->line, L->name, layer_types[L->type]);
        if (L->stride == 0) L->stride = (L->type == EXP_MAXPOOL || L->type == EXP_AVGPOOL) ? L->kernel : 1;
    }
    if (e->n_layers == 0) return RPU_FAIL(RPU_ERR_CONFIG, "%s: no [layer.NAME] sections", e->source);
    return RPU_OK;
}

/* text of the experiment after the overrides, section by section in first-seen order */
static rpu_status render(rpu_experiment *e) {
    size_t cap = 256;
    for (int k = 0; k < e->n_entries; ++k)
        cap += strlen(e->entries[k].section) + strlen(e->entries[k].key) + strlen(e->entries[k].value) + 16;
    char *t = (char *)malloc(cap);
    if (!t) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    size_t len = 0;
    t[0] = '\0';
    char *done = (char *)calloc((size_t)e->n_entries + 1, 1);
    if (!done) {
        free(t);
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < e->n_entries; ++k) {
        if (done[k]) continue;
        len += (size_t)snprintf(t + len, cap - len, "%s[%s]\n", len ? "\n" : "", e->entries[k].section);
        for (int q = k; q < e->n_entries; ++q)
            if (!done[q] && !strcmp(e->entries[q].section, e->entries[k].section)) {
                len += (size_t)snprintf(t + len, cap - len, "%s = %s\n", e->entries[q].key,
                                        e->entries[q].value);
                done[q] = 1;
            }
    }
    free(done);
    free(e->text);
    e->text = t;
    return RPU_OK;
}

rpu_status rpu_experiment_parse(const char *text, const char *source,
                                const char *const *overrides, int n_overrides,
                                rpu_experiment **exp) {
    if (!exp) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: NULL output");
    *exp = NULL;
    if (!text) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: NULL text");
    rpu_experiment *e = (rpu_experiment *)calloc(1, sizeof *e);
    if (!e) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    snprintf(e->source, sizeof e->source, "%s", source ? source : "<experiment>");
    reader_ctx c = {e, text, 0, 0, RPU_OK};
    int bad = ini_parse_stream(read_line, &c, on_entry, &c);
    rpu_status s = RPU_OK;
    if (c.status != RPU_OK) s = c.status;
    else if (bad > 0)
        s = RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: not a valid INI line (want [section] or key = value)",
                     e->source, bad);
    else if (bad < 0)
        s = RPU_FAIL(RPU_ERR_NOMEM, "%s: out of memory while reading", e->source);
    for (int k = 0; s == RPU_OK && k < n_overrides; ++k) s = apply_override(e, overrides[k]);
    if (s == RPU_OK) s = interpret(e);
    if (s == RPU_OK) s = render(e);
    if (s != RPU_OK) {
        rpu_experiment_free(&e);
        return s;
    }
    *exp = e;
    return RPU_OK;
}

rpu_status rpu_experiment_load(const char *path, const char *const *overrides, int n_overrides,
                               rpu_experiment **exp) {
    if (exp) *exp = NULL;
    if (!path) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_load: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return RPU_FAIL(RPU_ERR_IO, "cannot open experiment file %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *p = (char *)realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = p;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return RPU_FAIL(RPU_ERR_IO, "error reading experiment file %s", path);
    }
    buf[len] = '\0';
    rpu_status s = rpu_experiment_parse(buf, path, overrides, n_overrides, exp);
    free(buf);
    return s;
}

void rpu_experiment_free(rpu_experiment **exp) {
    if (!exp || !*exp) return;
    free((*exp)->entries);
    free((*exp)->text);
    free(*exp);
    *exp = NULL;
}

const char *rpu_experiment_text(const rpu_experiment *exp) {
    return exp ? exp->text : NULL;
}
const rpu_config *rpu_experiment_config(const rpu_experiment *exp) {
    return exp ? &exp->cfg : NULL;
}
const rpu_run_params *rpu_experiment_run(const rpu_experiment *exp) {
    return exp ? &exp->run : NULL;
}
