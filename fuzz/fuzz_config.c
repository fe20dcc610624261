/* Fuzz target: rpu_config_set / rpu_config_get / rpu_config_to_text / rpu_config_parse
 * round trips (include/rpusim/config.h).
 *
 * Input layout: byte 0 picks the starting kind (value % 3) and the mode (bit 7); the rest
 * is text.
 *   mode 0: the text is given to rpu_config_parse as config text;
 *   mode 1: each line "key=value" (split at the first '=') is given to rpu_config_set.
 * Every failed call must leave the config unchanged (byte for byte) with RPU_ERR_CONFIG and
 * a one-line message (rpu_config_parse's names "fuzz.cfg:LINE"). Then, whatever was set:
 *   - rpu_config_to_text, parsed onto a config of another kind, gives an equal config
 *     (rpu_config_equal) and the same text again;
 *   - the rpu_config_get text of every key the input changed, set on a copy, leaves the
 *     copy equal.
 * Any violation aborts, which libFuzzer reports as a crash. */
#include "rpusim/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void check_failure(rpu_status s, const rpu_config *before, const rpu_config *after,
                          const char *must_name) {
    if (s != RPU_ERR_CONFIG) abort();
    if (memcmp(before, after, sizeof *before)) abort(); /* unchanged on error */
    const char *msg = rpu_last_error();
    if (!*msg || strchr(msg, '\n') || strchr(msg, '\r')) abort();
    if (must_name && !strstr(msg, must_name)) abort();
}

/* The lines of two texts of rpu_config_to_text (one per key, in rpu_config_keys order). */
static const char *next_line(const char *p, size_t *len) {
    const char *nl = strchr(p, '\n');
    if (!nl) abort();
    *len = (size_t)(nl - p);
    return nl + 1;
}

static void round_trip(const rpu_config *cfg, const rpu_config *start, int other_kind) {
    char *text = NULL, *start_text = NULL;
    if (rpu_config_to_text(cfg, &text) != RPU_OK) abort();
    if (rpu_config_to_text(start, &start_text) != RPU_OK) abort();
    rpu_config back;
    memset(&back, 0, sizeof back);
    if (rpu_config_default(&back, (rpu_config_kind)other_kind) != RPU_OK) abort();
    if (rpu_config_parse(&back, text, "written.cfg") != RPU_OK) {
        fprintf(stderr, "the written text does not parse: %s\n", rpu_last_error());
        abort();
    }
    if (!rpu_config_equal(cfg, &back)) abort();
    char *again = NULL;
    if (rpu_config_to_text(&back, &again) != RPU_OK) abort();
    if (strcmp(text, again)) abort();
    free(again);

    /* every line is "key = value" with a key that applies to the config (the keys of its
     * device type, then those of its sub-devices); for the keys whose value differs from
     * the start's, the written value is rpu_config_get's, and setting it back changes
     * nothing */
    const char *p = text;
    char key[512], val[8192], sval[8192];
    while (*p) {
        size_t lp;
        const char *line = p;
        p = next_line(p, &lp);
        const char *eq = memchr(line, '=', lp);
        if (!eq || eq < line + 2 || eq[-1] != ' ' || eq + 1 >= line + lp || eq[1] != ' ') abort();
        const size_t klen = (size_t)(eq - 1 - line);
        if (klen >= sizeof key) abort();
        memcpy(key, line, klen);
        key[klen] = '\0';
        if (!rpu_config_key_applies(cfg, key)) abort();
        if (rpu_config_get(cfg, key, val, sizeof val) != RPU_OK) abort();
        if (strlen(val) != lp - klen - 3 || memcmp(val, line + klen + 3, lp - klen - 3)) abort();
        if (rpu_config_key_applies(start, key) &&
            rpu_config_get(start, key, sval, sizeof sval) == RPU_OK && !strcmp(val, sval))
            continue;
        rpu_config copy = *cfg;
        if (rpu_config_set(&copy, key, val) != RPU_OK) abort();
        /* "kind" and the device types reset what they govern: compare only the others */
        const bool resets = !strcmp(key, "kind") || !strcmp(key, "device.type") ||
                            (!strncmp(key, "device.unit_cell_devices.", 25) && klen > 5 &&
                             !strcmp(key + klen - 5, ".type"));
        if (!resets && !rpu_config_equal(cfg, &copy)) abort();
    }
    free(start_text);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int kind = data[0] % 3, mode = data[0] >> 7;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    rpu_config cfg;
    memset(&cfg, 0, sizeof cfg); /* padding too: failed calls are compared byte for byte */
    if (rpu_config_default(&cfg, (rpu_config_kind)kind) != RPU_OK) abort();
    rpu_config before;
    memcpy(&before, &cfg, sizeof cfg);
    if (mode == 0) {
        rpu_status s = rpu_config_parse(&cfg, text, "fuzz.cfg");
        if (s != RPU_OK) check_failure(s, &before, &cfg, "fuzz.cfg:");
    } else {
        for (char *line = text; line;) {
            char *next = strchr(line, '\n');
            if (next) *next++ = '\0';
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                memcpy(&before, &cfg, sizeof cfg);
                rpu_status s = rpu_config_set(&cfg, line, eq + 1);
                if (s != RPU_OK) check_failure(s, &before, &cfg, NULL);
            }
            line = next;
        }
    }
    rpu_config start;
    rpu_config_default(&start, (rpu_config_kind)kind);
    round_trip(&cfg, &start, (kind + 1) % 3);
    free(text);
    return 0;
}
