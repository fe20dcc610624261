/* rpusim — rpu_config as text: set and get one key, write, parse (the INI syntax of
 * config_ini.c), compare and list keys, all by walking the key table of config_table.c. */
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
    if (config_set_field(cfg, key, value, err, sizeof err) != RPU_OK)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    return RPU_OK;
}

rpu_status rpu_config_get(const rpu_config *cfg, const char *key, char *buf, size_t size) {
    if (!cfg || !key || !buf)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_get: %s is NULL",
                        !cfg ? "cfg" : (!key ? "key" : "buf"));
    const field_desc *d = config_find_field(key);
    if (!d) {
        char err[CONFIG_ERR_MAX];
        config_unknown_key_message(key, err, sizeof err);
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
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

/* Writes all "key = value" lines into buf (size bytes, may be 0 with buf NULL); returns the
 * length of the full text. */
static size_t emit_text(const rpu_config *cfg, char *buf, size_t size) {
    size_t pos = 0;
    char val[CONFIG_VALUE_MAX];
    for (size_t i = 0; i < config_n_fields; ++i) {
        config_format_value(cfg, &config_fields[i], val, sizeof val);
        char *dst = (buf && pos < size) ? buf + pos : NULL;
        size_t room = dst ? size - pos : 0;
        int n = snprintf(dst, room, "%s = %s\n", config_fields[i].key, val);
        if (n > 0) pos += (size_t)n;
    }
    return pos;
}

rpu_status rpu_config_write(const rpu_config *cfg, FILE *out) {
    if (!cfg || !out)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_write: %s is NULL", !cfg ? "cfg" : "out");
    char val[CONFIG_VALUE_MAX];
    for (size_t i = 0; i < config_n_fields; ++i) {
        config_format_value(cfg, &config_fields[i], val, sizeof val);
        if (fprintf(out, "%s = %s\n", config_fields[i].key, val) < 0)
            return RPU_FAIL(RPU_ERR_IO, "rpu_config_write: write failed at key %s",
                            config_fields[i].key);
    }
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

rpu_status rpu_config_parse(rpu_config *cfg, const char *text, const char *source) {
    if (!cfg || !text)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_parse: %s is NULL", !cfg ? "cfg" : "text");
    const char *src = source ? source : "<config text>";
    rpu_config tmp = *cfg;
    char err[CONFIG_ERR_MAX];
    ini_reader r;
    ini_open(&r, text, strlen(text));
    rpu_status s = RPU_OK;
    for (ini_token t; s == RPU_OK && (t = ini_next(&r)) != INI_END;) {
        if (t == INI_ERROR)
            s = RPU_FAIL(r.nomem ? RPU_ERR_NOMEM : RPU_ERR_CONFIG, "%s:%d: %s", src, r.line, r.err);
        else if (t == INI_SECTION)
            s = RPU_FAIL(RPU_ERR_CONFIG,
                         "%s:%d: [%.80s]: config text has no sections (write forward.out_noise "
                         "= 0.1, not [forward])",
                         src, r.line, r.name);
        else if (config_set_field(&tmp, r.name, r.value, err, sizeof err) != RPU_OK)
            s = RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: %s", src, r.line, err);
    }
    ini_close(&r);
    if (s == RPU_OK) *cfg = tmp;
    return s;
}

bool rpu_config_equal(const rpu_config *a, const rpu_config *b) {
    if (!a || !b) return a == b;
    for (size_t i = 0; i < config_n_fields; ++i)
        if (!config_field_equal(a, b, &config_fields[i])) return false;
    return true;
}

int rpu_config_keys(const char *const **keys) {
    if (keys) *keys = config_field_keys;
    return (int)config_n_fields;
}
