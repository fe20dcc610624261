/* Private: the table of rpu_config's settable fields, shared by the files of the config
 * module (config_table.c owns it; config.c, config_validate.c use it).
 *
 * Every settable field is described once (key, value type, offset in rpu_config, accepted
 * range, enum names), in the X-macro table of config_table.c. Setting, reading, printing,
 * comparing, validating and listing keys all walk the table, so a field added there is
 * handled everywhere. */
#ifndef RPUSIM_CONFIG_TABLE_IMPL_H
#define RPUSIM_CONFIG_TABLE_IMPL_H

#include "rpusim/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    T_BOOL,    /* bool */
    T_INT,     /* int, range-checked */
    T_U64,     /* uint64_t, any value */
    T_FLOAT,   /* float, finite, range-checked */
    T_ENUM,    /* int-sized enum, spelled by names[] */
    T_LIST,    /* float array (+ int count unless F_FIXED_LEN), elements range-checked */
    T_KIND,    /* "kind": an enum whose setting resets the whole config */
    T_DEVTYPE, /* "device.type": an enum whose setting resets the device fields */
    T_SUBTYPE  /* "device.unit_cell_devices.N.type": creates or resets sub-device N */
} field_type;

enum {
    F_LO_OPEN = 1u,  /* lower bound excluded */
    F_HI_OPEN = 2u,  /* upper bound excluded */
    F_FIXED_LEN = 4u /* list has exactly cap elements (no count field) */
};

typedef struct {
    const char *key;
    size_t off;               /* offset of the value in rpu_config */
    size_t cnt_off;           /* T_LIST without F_FIXED_LEN: offset of the int element count */
    size_t cap;               /* T_LIST: capacity in elements */
    double lo, hi;            /* accepted range (T_INT, T_FLOAT, T_LIST elements) */
    const char *const *names; /* enum spellings */
    field_type type;
    unsigned flags;
} field_desc;

/* The table, in rpu_config_keys() order, and its keys. */
extern const field_desc config_fields[];
extern const char *const config_field_keys[];
extern const size_t config_n_fields;

/* Longest value text (a 64-element list) and longest error message we produce. */
#define CONFIG_VALUE_MAX 4096
#define CONFIG_ERR_MAX 900

/* The field of a key (exact, case-sensitive), or NULL. Rows only: sub-device keys are
 * found by config_lookup. */
const field_desc *config_find_field(const char *key);

/* Room for a sub-device field's key ("device.unit_cell_devices.N.<key after device.>"). */
#define CONFIG_SUBKEY_MAX 128
typedef struct {
    field_desc d;
    char key[CONFIG_SUBKEY_MAX];
} config_sub_desc;

/* The field of a key for cfg: a row of the table, or, for a key
 * "device.unit_cell_devices.N.<rest>", the single-device row "device.<rest>" moved onto
 * sub-device N (into *sub). for_set: the key may create sub-device N (N = n_devices with
 * <rest> = type). Returns NULL with a message naming the key in err when the key is unknown
 * or does not apply to cfg's device.type (rpu_config_key_applies). */
const field_desc *config_lookup(const rpu_config *cfg, const char *key, bool for_set,
                                config_sub_desc *sub, char *err, size_t errsz);
/* Whether a table row applies to cfg's device.type (see rpu_config_key_applies). */
bool config_field_applies(const rpu_config *cfg, const field_desc *d);
/* The row of table row d moved onto sub-device n (d must be a single-device row). */
void config_sub_field(const field_desc *d, int n, config_sub_desc *out);
/* The compound row d (a key of rpu_compound_params) moved onto cells[n], the unit cell that is
 * sub-device n: key device.unit_cell_devices.n.<key after device.>. */
void config_cell_field(const field_desc *d, int n, config_sub_desc *out);
/* The single-device row d (or device.type) moved onto device m of the unit cell cells[n]:
 * key device.unit_cell_devices.n.unit_cell_devices.m.<key after device.>. */
void config_cell_sub_field(const field_desc *d, int n, int m, config_sub_desc *out);
/* True for the compound rows a unit cell of type cell has (update_policy, refresh_every, ...). */
bool config_is_cell_field(const field_desc *d, rpu_device_type cell);
/* Calls fn on every sub-device row of cfg in key order: per sub-device n its type row, then
 * a single device's rows, or a unit cell's own rows and per device m of it its type row and
 * rows. Nothing for a single-device cfg. */
typedef void (*config_row_fn)(const field_desc *d, void *ctx);
void config_visit_sub_rows(const rpu_config *cfg, config_row_fn fn, void *ctx);
/* True for the rows that are per-device parameters of single devices (device.dw_min, ...;
 * not device.type and device.construction_seed): the keys a sub-device has. */
bool config_is_single_device_field(const field_desc *d);
/* "unknown config key ..." with the closest known key, into err (errsz bytes). */
void config_unknown_key_message(const char *key, char *err, size_t errsz);
/* The value of one field as config text (what rpu_config_get returns). */
void config_format_value(const rpu_config *cfg, const field_desc *d, char *buf, size_t size);
/* Sets one field from text (key and value trimmed); on failure cfg is untouched, err holds
 * the message and the result is RPU_ERR_CONFIG. "kind" and "device.type" reset what they
 * govern. */
rpu_status config_set_field(rpu_config *cfg, const char *key, const char *value, char *err,
                            size_t errsz);
/* Checks the stored value of one field against its type and range (err on failure). */
bool config_check_field(const rpu_config *cfg, const field_desc *d, char *err, size_t errsz);
/* True if field d is equal in a and b (lists by length and their elements). */
bool config_field_equal(const rpu_config *a, const rpu_config *b, const field_desc *d);
/* The spelling of value v of the enum field key ("?" when out of range). */
const char *config_enum_name(const char *key, int v);

/* config_presets.c (above this table: it sets fields through config_set_field).
 *
 * What a key does besides setting its field:
 *   KEY_PLAIN          sets one field;
 *   KEY_RESET          "kind" (prefix "") or "P type" of a device (prefix "P"): resets
 *                      what it governs;
 *   KEY_CONFIG_PRESET  "preset": resets the whole config to a named preset (prefix "");
 *   KEY_DEVICE_PRESET  "P preset" where "P type" is a device-type key: resets the device
 *                      at prefix P to a named device preset.
 * *prefix_len (if not NULL) gets the length of the prefix P ("device." -> 7). key is
 * trimmed. */
typedef enum { KEY_PLAIN = 0, KEY_RESET, KEY_CONFIG_PRESET, KEY_DEVICE_PRESET } config_key_role;
config_key_role config_key_role_of(const char *key, size_t *prefix_len);
/* config_set_field, or for a preset key (KEY_CONFIG_PRESET, KEY_DEVICE_PRESET) the named
 * preset applied (an unknown name gets a message listing the accepted names). On failure
 * cfg is untouched and err holds the message. What rpu_config_set does. */
rpu_status config_set_key(rpu_config *cfg, const char *key, const char *value, char *err,
                          size_t errsz);

#endif
