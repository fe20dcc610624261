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

/* Writes all "key = value" lines into buf (size bytes, may be 0 with buf NULL); returns the
 * length of the full text. The rows that apply to the device type in table order, then each
 * sub-device of a compound: its type, then its single-device keys. */
static size_t emit_text(const rpu_config *cfg, char *buf, size_t size) {
    size_t pos = 0;
    for (size_t i = 0; i < config_n_fields; ++i)
        if (config_field_applies(cfg, &config_fields[i]))
            emit_line(cfg, &config_fields[i], buf, size, &pos);
    if (!rpu_device_type_is_compound(cfg->device.type)) return pos;
    const int nd = cfg->compound.n_devices;
    for (int n = 0; n < nd && n < RPU_MAX_UNIT_CELL_DEVICES; ++n) {
        config_sub_desc sub;
        config_sub_field(config_find_field("device.type"), n, &sub);
        emit_line(cfg, &sub.d, buf, size, &pos);
        for (size_t i = 0; i < config_n_fields; ++i)
            if (config_is_single_device_field(&config_fields[i])) {
                config_sub_field(&config_fields[i], n, &sub);
                emit_line(cfg, &sub.d, buf, size, &pos);
            }
    }
    return pos;
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
    if (a->compound.n_devices != b->compound.n_devices) return false;
    for (int n = 0; n < a->compound.n_devices && n < RPU_MAX_UNIT_CELL_DEVICES; ++n) {
        config_sub_desc sub;
        config_sub_field(config_find_field("device.type"), n, &sub);
        if (!config_field_equal(a, b, &sub.d)) return false;
        for (size_t i = 0; i < config_n_fields; ++i)
            if (config_is_single_device_field(&config_fields[i])) {
                config_sub_field(&config_fields[i], n, &sub);
                if (!config_field_equal(a, b, &sub.d)) return false;
            }
    }
    return true;
}

int rpu_config_keys(const char *const **keys) {
    if (keys) *keys = config_field_keys;
    return (int)config_n_fields;
}
