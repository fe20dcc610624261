/* rpusim — rpu_config as text: set and get one key, write, parse (the INI syntax of
 * config_ini.c), compare and list keys, all by walking the key table of config_table.c. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "rpusim/config.h"

#include "config_ini_impl.h"
#include "config_table_impl.h"
#include "error_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Public API.
 * ------------------------------------------------------------------------------------- */

rpu_status rpu_config_set(rpu_config *cfg, const char *key, const char *value) {
    if (!cfg || !key || !value)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_set: %s is NULL",
                        !cfg ? "cfg" : (!key ? "key" : "value"));
    char err[CONFIG_ERR_MAX];
    if (config_set_key(cfg, key, value, err, sizeof err) != RPU_OK)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    return RPU_OK;
}

rpu_status rpu_config_get(const rpu_config *cfg, const char *key, char *buf, size_t size) {
    if (!cfg || !key || !buf)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_get: %s is NULL",
                        !cfg ? "cfg" : (!key ? "key" : "buf"));
    config_sub_desc sub;
    char err[CONFIG_ERR_MAX];
    const field_desc *d = config_lookup(cfg, key, false, &sub, err, sizeof err);
    if (!d) {
        /* a row that does not apply to this device.type still reads back (its default) */
        d = config_find_field(key);
        if (!d) return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    }
    char val[CONFIG_VALUE_MAX];
    config_format_value(cfg, d, val, sizeof val);
    size_t need = strlen(val) + 1;
    if (need > size)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_config_get(%s): buffer of %zu bytes too small (%zu needed)", d->key,
                        size, need);
    memcpy(buf, val, need);
    return RPU_OK;
}

/* Appends one "key = value" line into buf (size bytes, may be 0 with buf NULL) at *pos. */
static void emit_line(const rpu_config *cfg, const field_desc *d, char *buf, size_t size,
                      size_t *pos) {
    char val[CONFIG_VALUE_MAX];
    config_format_value(cfg, d, val, sizeof val);
    char *dst = (buf && *pos < size) ? buf + *pos : NULL;
    size_t room = dst ? size - *pos : 0;
    int n = snprintf(dst, room, "%s = %s\n", d->key, val);
    if (n > 0) *pos += (size_t)n;
}

typedef struct {
    const rpu_config *cfg;
    char *buf;
    size_t size, pos;
} emit_ctx;

static void emit_row(const field_desc *d, void *ctx) {
    emit_ctx *e = (emit_ctx *)ctx;
    emit_line(e->cfg, d, e->buf, e->size, &e->pos);
}

/* Writes all "key = value" lines into buf (size bytes, may be 0 with buf NULL); returns the
 * length of the full text. The rows that apply to the device type in table order, then each
 * sub-device of a compound (config_visit_sub_rows). */
static size_t emit_text(const rpu_config *cfg, char *buf, size_t size) {
    emit_ctx e = {.cfg = cfg, .buf = buf, .size = size, .pos = 0};
    for (size_t i = 0; i < config_n_fields; ++i)
        if (config_field_applies(cfg, &config_fields[i])) emit_row(&config_fields[i], &e);
    config_visit_sub_rows(cfg, emit_row, &e);
    return e.pos;
}

rpu_status rpu_config_write(const rpu_config *cfg, FILE *out) {
    if (!cfg || !out)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_write: %s is NULL", !cfg ? "cfg" : "out");
    char *text = NULL;
    RPU_CHECK(rpu_config_to_text(cfg, &text));
    const size_t len = strlen(text);
    const bool ok = fwrite(text, 1, len, out) == len;
    free(text);
    if (!ok) return RPU_FAIL(RPU_ERR_IO, "rpu_config_write: write failed");
    return RPU_OK;
}

rpu_status rpu_config_to_text(const rpu_config *cfg, char **text) {
    if (!cfg || !text)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_to_text: %s is NULL", !cfg ? "cfg" : "text");
    size_t len = emit_text(cfg, NULL, 0);
    char *s = malloc(len + 1);
    if (!s)
        return RPU_FAIL(RPU_ERR_NOMEM, "rpu_config_to_text: cannot allocate %zu bytes", len + 1);
    emit_text(cfg, s, len + 1);
    *text = s;
    return RPU_OK;
}

/* A key trimmed into buf (size bytes); "" if it does not fit (then it is no resetting key
 * and rpu_config_set reports it). */
static const char *trimmed_key(const char *key, char *buf, size_t size) {
    while (*key == ' ' || *key == '\t')
        ++key;
    size_t n = strlen(key);
    while (n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\t'))
        --n;
    if (n >= size) n = 0;
    memcpy(buf, key, n);
    buf[n] = '\0';
    return buf;
}

/* Number of '.' in the first n bytes of key: the depth of a resetting key's level. */
static int depth_of(const char *key, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; ++i)
        d += key[i] == '.';
    return d;
}

/* The shared body of rpu_config_set_entries and rpu_config_parse: err gets the message
 * without location, *bad the index of the entry at fault. */
static rpu_status set_entries(rpu_config *cfg, int n, const char *const *keys,
                              const char *const *values, int *bad, char *err, size_t errsz) {
    int *order = n > 0 ? malloc((size_t)n * sizeof *order) : NULL;
    int *depth = n > 0 ? malloc((size_t)n * sizeof *depth) : NULL;
    size_t *plen = n > 0 ? malloc((size_t)n * sizeof *plen) : NULL;
    rpu_status s = RPU_OK;
    *bad = -1;
    if (n > 0 && (!order || !depth || !plen)) {
        snprintf(err, errsz, "out of memory");
        s = RPU_ERR_NOMEM;
    }
    int max_depth = -1;
    for (int i = 0; s == RPU_OK && i < n; ++i) {
        char ki[256];
        trimmed_key(keys[i], ki, sizeof ki);
        depth[i] = -1;
        if (config_key_role_of(ki, &plen[i]) == KEY_PLAIN) continue;
        depth[i] = depth_of(ki, plen[i]);
        if (depth[i] > max_depth) max_depth = depth[i];
        for (int j = 0; j < i; ++j) {
            char kj[256];
            trimmed_key(keys[j], kj, sizeof kj);
            if (depth[j] < 0 || plen[j] != plen[i] || memcmp(ki, kj, plen[i]) != 0 ||
                !strcmp(ki, kj))
                continue;
            snprintf(err, errsz,
                     "%s cannot be combined with %s: both reset the same settings (%s); keep "
                     "one of them",
                     ki, kj,
                     plen[i] == 0 ? "a preset sets the kind itself"
                                  : "a device preset sets the device type itself");
            *bad = i;
            s = RPU_ERR_CONFIG;
            break;
        }
    }
    int m = 0;
    for (int d = 0; s == RPU_OK && d <= max_depth; ++d)
        for (int i = 0; i < n; ++i)
            if (depth[i] == d) order[m++] = i;
    for (int i = 0; s == RPU_OK && i < n; ++i)
        if (depth[i] < 0) order[m++] = i;
    rpu_config tmp = *cfg;
    for (int k = 0; s == RPU_OK && k < n; ++k) {
        s = config_set_key(&tmp, keys[order[k]], values[order[k]], err, errsz);
        if (s != RPU_OK) *bad = order[k];
    }
    if (s == RPU_OK) *cfg = tmp;
    free(order);
    free(depth);
    free(plen);
    return s;
}

rpu_status rpu_config_set_entries(rpu_config *cfg, int n, const char *const *keys,
                                  const char *const *values, int *bad) {
    int b = -1;
    if (bad) *bad = -1;
    if (!cfg || n < 0 || (n > 0 && (!keys || !values)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_set_entries: %s",
                        !cfg ? "cfg is NULL" : (n < 0 ? "n < 0" : "keys or values is NULL"));
    for (int i = 0; i < n; ++i)
        if (!keys[i] || !values[i])
            return RPU_FAIL(RPU_ERR_ARG, "rpu_config_set_entries: entry %d is NULL", i);
    char err[CONFIG_ERR_MAX];
    rpu_status s = set_entries(cfg, n, keys, values, &b, err, sizeof err);
    if (bad) *bad = b;
    return s == RPU_OK ? RPU_OK : RPU_FAIL(s, "%s", err);
}

bool rpu_config_key_replaces(const char *key, const char *other) {
    if (!key || !other) return false;
    char k[256], o[256];
    trimmed_key(key, k, sizeof k);
    trimmed_key(other, o, sizeof o);
    size_t pk, po;
    config_key_role rk = config_key_role_of(k, &pk), ro = config_key_role_of(o, &po);
    if (rk == KEY_PLAIN || ro == KEY_PLAIN || !strcmp(k, o)) return false;
    if (pk == po && !memcmp(k, o, pk)) return true; /* the same level */
    bool is_preset = rk == KEY_CONFIG_PRESET || rk == KEY_DEVICE_PRESET;
    return is_preset && po > pk && !memcmp(k, o, pk); /* a level below a preset */
}

/* One entry of a parsed text. */
typedef struct {
    char *key, *value;
    int line;
} text_entry;

rpu_status rpu_config_parse(rpu_config *cfg, const char *text, const char *source) {
    if (!cfg || !text)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_parse: %s is NULL", !cfg ? "cfg" : "text");
    const char *src = source ? source : "<config text>";
    ini_reader r;
    ini_open(&r, text, strlen(text));
    rpu_status s = RPU_OK;
    text_entry *ent = NULL;
    int n = 0, cap = 0;
    for (ini_token t; s == RPU_OK && (t = ini_next(&r)) != INI_END;) {
        if (t == INI_ERROR) {
            s = RPU_FAIL(r.nomem ? RPU_ERR_NOMEM : RPU_ERR_CONFIG, "%s:%d: %s", src, r.line, r.err);
        } else if (t == INI_SECTION) {
            s = RPU_FAIL(RPU_ERR_CONFIG,
                         "%s:%d: [%.80s]: config text has no sections (write forward.out_noise "
                         "= 0.1, not [forward])",
                         src, r.line, r.name);
        } else {
            if (n == cap) {
                int nc = cap ? 2 * cap : 64;
                text_entry *ne = realloc(ent, (size_t)nc * sizeof *ne);
                if (!ne) {
                    s = RPU_FAIL(RPU_ERR_NOMEM, "%s:%d: out of memory", src, r.line);
                    break;
                }
                ent = ne;
                cap = nc;
            }
            ent[n].key = strdup(r.name);
            ent[n].value = strdup(r.value);
            ent[n].line = r.line;
            ++n;
            if (!ent[n - 1].key || !ent[n - 1].value)
                s = RPU_FAIL(RPU_ERR_NOMEM, "%s:%d: out of memory", src, r.line);
        }
    }
    ini_close(&r);
    const char **keys = NULL, **values = NULL;
    if (s == RPU_OK && n > 0) {
        keys = malloc((size_t)n * sizeof *keys);
        values = malloc((size_t)n * sizeof *values);
        if (!keys || !values) s = RPU_FAIL(RPU_ERR_NOMEM, "%s: out of memory", src);
    }
    if (s == RPU_OK) {
        for (int i = 0; i < n; ++i) {
            keys[i] = ent[i].key;
            values[i] = ent[i].value;
        }
        int bad = -1;
        char err[CONFIG_ERR_MAX];
        rpu_status e = set_entries(cfg, n, keys, values, &bad, err, sizeof err);
        if (e != RPU_OK) s = RPU_FAIL(e, "%s:%d: %s", src, bad >= 0 ? ent[bad].line : 0, err);
    }
    free(keys);
    free(values);
    for (int i = 0; i < n; ++i) {
        free(ent[i].key);
        free(ent[i].value);
    }
    free(ent);
    return s;
}

typedef struct {
    const rpu_config *a, *b;
    bool equal;
} equal_ctx;

static void equal_row(const field_desc *d, void *ctx) {
    equal_ctx *e = (equal_ctx *)ctx;
    e->equal = e->equal && config_field_equal(e->a, e->b, d);
}

bool rpu_config_equal(const rpu_config *a, const rpu_config *b) {
    if (!a || !b) return a == b;
    for (size_t i = 0; i < config_n_fields; ++i)
        if (!config_field_equal(a, b, &config_fields[i])) return false;
    if (a->compound.n_devices != b->compound.n_devices) return false;
    for (int n = 0; n < a->compound.n_devices && n < RPU_MAX_UNIT_CELL_DEVICES; ++n)
        if (rpu_device_type_is_unit_cell(a->compound.unit_cell_devices[n].type) &&
            a->cells[n].n_devices != b->cells[n].n_devices)
            return false;
    equal_ctx e = {.a = a, .b = b, .equal = true};
    config_visit_sub_rows(a, equal_row, &e);
    return e.equal;
}

int rpu_config_keys(const char *const **keys) {
    if (keys) *keys = config_field_keys;
    return (int)config_n_fields;
}
