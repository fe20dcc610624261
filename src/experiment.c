/* Experiment files: the text read into sections and entries (config_ini.c's format),
 * --set overrides applied, the entries interpreted (experiment_sections.c), and the
 * experiment written back as text.
 *
 * The stored text is a fixed point: reading it again (without overrides) gives the same
 * experiment and the same text. That holds because every value is kept as the value
 * itself (comments and quotes removed on reading, control characters refused everywhere,
 * --set values taken literally) and written back with ini_quote, section by section with
 * each section's entries in their order. Every message names the file and line, or the
 * --set override. */
#include "experiment_impl.h"

#include "config_ini_impl.h"
#include "error_impl.h"
#include "rpusim/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ names */

static char *dup_n(const char *s, size_t n) {
    char *d = (char *)malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Why s is not a name of [A-Za-z0-9_.-] of 1..max characters (not "." or ".."), or NULL. */
static const char *name_problem(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0) return "is empty";
    if (n > max) return "is too long";
    if (!strcmp(s, ".") || !strcmp(s, "..")) return "may not be '.' or '..'";
    for (size_t i = 0; i < n; ++i)
        if (!name_char(s[i])) return "has a character outside [A-Za-z0-9_.-]";
    return NULL;
}

static bool fixed_section(const char *s) {
    return !strcmp(s, "run") || !strcmp(s, "rpu") || !strcmp(s, "data") || !strcmp(s, "loss");
}

#define SECTIONS_ACCEPTED "run, rpu, data, layer.NAME, loss"

/* ------------------------------------------------------------------ sections and entries */

static int find_section(const rpu_experiment *e, const char *name) {
    for (int k = 0; k < e->n_sections; ++k)
        if (!strcmp(e->sections[k].name, name)) return k;
    return -1;
}

static int find_entry(const rpu_experiment *e, int sec, const char *key) {
    for (int k = 0; k < e->n_entries; ++k)
        if (e->entries[k].sec == sec && !strcmp(e->entries[k].key, key)) return k;
    return -1;
}

/* Makes room for one more element in the array *p of n used and *cap allocated elements
 * of size bytes (capacity doubled); false when out of memory (the array unchanged). */
static bool room_for_one(void **p, int n, int *cap, size_t size) {
    if (n < *cap) return true;
    int c = *cap ? 2 * *cap : 16;
    void *q = realloc(*p, size * (size_t)c);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Checks a section name (where: "FILE:LINE" or the --set text) and adds the section. */
static rpu_status add_section(rpu_experiment *e, const char *name, int line, const char *where) {
    char vis[120];
    ini_visible(vis, sizeof vis, name, 80);
    if (!strncmp(name, "layer.", 6)) {
        const char *why = name_problem(name + 6, EXP_MAX_NAME);
        if (why)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%s: [%s]: the layer name %s (a layer name has 1 to %d characters "
                            "from [A-Za-z0-9_.-], not '.' or '..', as checkpoints store it)",
                            where, vis, why, EXP_MAX_NAME);
    } else if (!fixed_section(name)) {
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: unknown section [%s] (accepted: " SECTIONS_ACCEPTED ")", where, vis);
    }
    int dup = find_section(e, name);
    if (dup >= 0)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: [%s] appears a second time (first at line %d); each section may "
                        "appear once",
                        where, name, e->sections[dup].line);
    if (!room_for_one((void **)&e->sections, e->n_sections, &e->cap_sections, sizeof *e->sections))
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", e->source);
    exp_section *s = &e->sections[e->n_sections];
    s->name = dup_n(name, strlen(name));
    if (!s->name) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", e->source);
    s->line = line;
    s->layer = -1;
    e->n_sections++;
    return RPU_OK;
}

/* Inserts a new entry at position at (0..n_entries). */
static rpu_status insert_entry(rpu_experiment *e, int at, int sec, const char *key,
                               const char *value, int line) {
    if (!room_for_one((void **)&e->entries, e->n_entries, &e->cap_entries, sizeof *e->entries))
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", e->source);
    exp_entry x = {.sec = sec, .line = line, .section = e->sections[sec].name};
    x.key = dup_n(key, strlen(key));
    x.value = dup_n(value, strlen(value));
    if (!x.key || !x.value) {
        free(x.key);
        free(x.value);
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory reading %s", e->source);
    }
    memmove(&e->entries[at + 1], &e->entries[at], sizeof x * (size_t)(e->n_entries - at));
    e->entries[at] = x;
    e->n_entries++;
    return RPU_OK;
}

/* Removes entry k. */
static void remove_entry(rpu_experiment *e, int k) {
    free(e->entries[k].key);
    free(e->entries[k].value);
    memmove(&e->entries[k], &e->entries[k + 1],
            sizeof e->entries[0] * (size_t)(e->n_entries - k - 1));
    e->n_entries--;
}

/* ------------------------------------------------------------------ reading the text */

static rpu_status read_text(rpu_experiment *e, const char *text, size_t len) {
    ini_reader r;
    ini_open(&r, text, len);
    rpu_status s = RPU_OK;
    int sec = -1;
    char where[600];
    for (ini_token t; s == RPU_OK && (t = ini_next(&r)) != INI_END;) {
        snprintf(where, sizeof where, "%s:%d", e->source, r.line);
        if (t == INI_ERROR) {
            s = RPU_FAIL(r.nomem ? RPU_ERR_NOMEM : RPU_ERR_CONFIG, "%s: %s", where, r.err);
        } else if (t == INI_SECTION) {
            s = add_section(e, r.name, r.line, where);
            sec = e->n_sections - 1;
        } else if (sec < 0) {
            char vis[120];
            ini_visible(vis, sizeof vis, r.name, 80);
            s = RPU_FAIL(RPU_ERR_CONFIG, "%s: key '%s' outside any [section]", where, vis);
        } else {
            int dup = find_entry(e, sec, r.name);
            if (dup >= 0)
                s = RPU_FAIL(RPU_ERR_CONFIG,
                             "%s: [%s] %s is given a second time (first at line %d)", where,
                             e->sections[sec].name, r.name, e->entries[dup].line);
            else
                s = insert_entry(e, e->n_entries, sec, r.name, r.value, r.line);
        }
    }
    ini_close(&r);
    return s;
}

/* ------------------------------------------------------------------ --set overrides */

/* Where an [rpu] key set by --set goes when the file does not have it: "kind" first and
 * "device.type" right after kind (they reset the keys after them), others last. */
static int rpu_insert_at(const rpu_experiment *e, int sec, const char *key) {
    int first = -1, kind = -1, last = -1;
    for (int k = 0; k < e->n_entries; ++k) {
        if (e->entries[k].sec != sec) continue;
        if (first < 0) first = k;
        if (!strcmp(e->entries[k].key, "kind") || !strcmp(e->entries[k].key, "preset")) kind = k;
        last = k;
    }
    if (first < 0) return e->n_entries;
    if (!strcmp(key, "kind") || !strcmp(key, "preset")) return first;
    if (!strcmp(key, "device.type") || !strcmp(key, "device.preset"))
        return kind >= 0 ? kind + 1 : first;
    return last + 1;
}

/* The names of the layers, for a message. */
static void layer_list(const rpu_experiment *e, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int q = 0; q < e->n_sections && k < n; ++q)
        if (!strncmp(e->sections[q].name, "layer.", 6))
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", e->sections[q].name + 6);
    if (!k) snprintf(buf, n, "none");
}

/* "section.key=value": the value is taken literally (white space around it dropped); for
 * [layer.NAME] the key is the last dotted part (names may contain '.'), for [rpu] all of
 * what follows "rpu.". Replaces the entry or adds it; layers must exist in the file. */
static rpu_status apply_override(rpu_experiment *e, const char *ov) {
    char vis[300];
    ini_visible(vis, sizeof vis, ov, 200);
    const char *bad = ini_control_char(ov);
    if (bad)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "--set '%s': control character 0x%02x at byte %d (values cannot contain "
                        "control characters such as newlines or tabs)",
                        vis, (unsigned char)*bad, (int)(bad - ov) + 1);
    const char *eq = strchr(ov, '=');
    const char *ls = ov, *le = eq ? eq : ov;
    while (ls < le && *ls == ' ')
        ++ls;
    while (le > ls && le[-1] == ' ')
        --le;
    const char *dot = memchr(ls, '.', (size_t)(le - ls));
    if (!eq || !dot || dot == ls || dot + 1 == le)
        return RPU_FAIL(RPU_ERR_CONFIG, "--set '%s': want section.key=value (e.g. run.epochs=3)",
                        vis);
    for (const char *p = ls; p < le; ++p)
        if (!name_char(*p))
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "--set '%s': '%c' in the name (section.key is made of [A-Za-z0-9_.-])",
                            vis, *p);
    const char *value = eq + 1;
    while (*value == ' ')
        ++value;
    size_t vlen = strlen(value);
    while (vlen > 0 && value[vlen - 1] == ' ')
        --vlen;

    /* split the name into section and key */
    const char *ks = dot + 1;
    if ((size_t)(dot - ls) == 5 && !strncmp(ls, "layer", 5)) {
        ks = le;
        while (ks[-1] != '.')
            --ks;
        if (ks - 1 == dot || ks == le)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "--set '%s': want layer.NAME.key=value (e.g. layer.conv1.out=16)", vis);
    }
    char *section = dup_n(ls, (size_t)(ks - 1 - ls));
    char *key = dup_n(ks, (size_t)(le - ks));
    char *val = dup_n(value, vlen);
    rpu_status s = RPU_OK;
    if (!section || !key || !val) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    int sec = s == RPU_OK ? find_section(e, section) : -1;
    if (s == RPU_OK && sec < 0) {
        if (!strncmp(section, "layer.", 6)) {
            char layers[400];
            layer_list(e, layers, sizeof layers);
            s = RPU_FAIL(RPU_ERR_CONFIG,
                         "--set '%s': %s has no [%s] (its layers: %s); --set changes the keys of "
                         "a layer of the file, it does not add layers",
                         vis, e->source, section, layers);
        } else {
            char where[400];
            snprintf(where, sizeof where, "--set '%s'", vis);
            s = add_section(e, section, 0, where);
            sec = e->n_sections - 1;
        }
    }
    /* an [rpu] key that resets what the file's entry governs replaces that entry too
     * (--set rpu.preset=X drops the file's kind and device.type: the preset sets them) */
    if (s == RPU_OK && !strcmp(section, "rpu"))
        for (int k = e->n_entries - 1; k >= 0; --k)
            if (e->entries[k].sec == sec && rpu_config_key_replaces(key, e->entries[k].key))
                remove_entry(e, k);
    if (s == RPU_OK) {
        int at = find_entry(e, sec, key);
        if (at >= 0) {
            exp_entry *x = &e->entries[at];
            free(x->value);
            x->value = val;
            val = NULL;
            x->line = 0;
        } else {
            at = strcmp(section, "rpu") ? e->n_entries : rpu_insert_at(e, sec, key);
            s = insert_entry(e, at, sec, key, val, 0);
        }
    }
    free(section);
    free(key);
    free(val);
    return s;
}

/* ------------------------------------------------------------------ writing the text */

/* The sections in order, each with its entries in order, values quoted where needed. */
static rpu_status render(rpu_experiment *e) {
    size_t cap = 1;
    for (int q = 0; q < e->n_sections; ++q)
        cap += strlen(e->sections[q].name) + 4;
    for (int k = 0; k < e->n_entries; ++k)
        cap += strlen(e->entries[k].key) + ini_quote(NULL, 0, e->entries[k].value) + 4;
    char *t = (char *)malloc(cap);
    if (!t) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    size_t len = 0;
    t[0] = '\0';
    for (int q = 0; q < e->n_sections; ++q) {
        len += (size_t)snprintf(t + len, cap - len, "%s[%s]\n", q ? "\n" : "", e->sections[q].name);
        for (int k = 0; k < e->n_entries; ++k) {
            const exp_entry *x = &e->entries[k];
            if (x->sec != q) continue;
            len += (size_t)snprintf(t + len, cap - len, "%s =%s", x->key, x->value[0] ? " " : "");
            len += ini_quote(t + len, cap - len, x->value);
            len += (size_t)snprintf(t + len, cap - len, "\n");
        }
    }
    free(e->text);
    e->text = t;
    if (len > RPU_CKPT_MAX_TEXT)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: the experiment text is %zu bytes long; checkpoints store at most %d",
                        e->source, len, RPU_CKPT_MAX_TEXT);
    return RPU_OK;
}

/* ------------------------------------------------------------------ public */

static rpu_status parse_n(const char *text, size_t len, const char *source,
                          const char *const *overrides, int n_overrides, rpu_experiment **exp) {
    rpu_experiment *e = (rpu_experiment *)calloc(1, sizeof *e);
    if (!e) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    const char *src = source ? source : "<experiment>";
    e->source = dup_n(src, strlen(src));
    rpu_status s = e->source ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    if (s == RPU_OK) s = read_text(e, text, len);
    for (int k = 0; s == RPU_OK && k < n_overrides; ++k)
        s = overrides[k] ? apply_override(e, overrides[k])
                         : RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: override %d is NULL", k);
    if (s == RPU_OK) s = exp_interpret(e);
    if (s == RPU_OK) s = render(e);
    if (s != RPU_OK) {
        rpu_experiment_free(&e);
        return s;
    }
    *exp = e;
    return RPU_OK;
}

rpu_status rpu_experiment_parse(const char *text, const char *source, const char *const *overrides,
                                int n_overrides, rpu_experiment **exp) {
    if (!exp) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: NULL output");
    *exp = NULL;
    if (!text) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: NULL text");
    if (n_overrides < 0 || (n_overrides > 0 && !overrides))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_parse: bad overrides");
    return parse_n(text, strlen(text), source, overrides, n_overrides, exp);
}

rpu_status rpu_experiment_load(const char *path, const char *const *overrides, int n_overrides,
                               rpu_experiment **exp) {
    if (exp) *exp = NULL;
    if (!path || !exp) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_load: NULL path or output");
    if (n_overrides < 0 || (n_overrides > 0 && !overrides))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_load: bad overrides");
    FILE *f = fopen(path, "rb");
    if (!f)
        return RPU_FAIL(RPU_ERR_IO, "cannot open experiment file %s: %s", path, strerror(errno));
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
    const int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        free(buf);
        return RPU_FAIL(RPU_ERR_IO, "cannot read experiment file %s: %s", path, strerror(err));
    }
    buf[len] = '\0';
    rpu_status s = parse_n(buf, len, path, overrides, n_overrides, exp);
    free(buf);
    return s;
}

void rpu_experiment_free(rpu_experiment **exp) {
    if (!exp || !*exp) return;
    rpu_experiment *e = *exp;
    for (int k = 0; k < e->n_entries; ++k) {
        free(e->entries[k].key);
        free(e->entries[k].value);
    }
    for (int k = 0; k < e->n_sections; ++k)
        free(e->sections[k].name);
    free(e->entries);
    free(e->sections);
    free(e->text);
    free(e->source);
    free(e);
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
