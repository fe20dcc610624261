/* Fuzz target: the experiment parser with --set overrides, and the fixed point of the text
 * it stores (issue 13, defects 4-6).
 *
 * Input layout: the experiment text, then any number of overrides, separated by NUL
 * bytes ("text\0run.epochs=3\0layer.fc.out=4"); at most 16 overrides are used.
 * On success, the stored text read again (without overrides) must parse, give the same
 * experiment (exp_same: every run parameter, the config, every layer) and the same text,
 * and no longer than checkpoints store. On failure the status must be RPU_ERR_CONFIG (or
 * RPU_ERR_NOMEM) and the message one line that names the file or the --set override.
 * Any violation aborts, which libFuzzer reports as a crash. */
#include "../mpi_tests/exp_same.h"
#include "rpusim/ckpt.h"
#include "rpusim/net.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 16

static void check_message(rpu_status s) {
    const char *msg = rpu_last_error();
    if (s != RPU_ERR_CONFIG && s != RPU_ERR_NOMEM) abort();
    if (strchr(msg, '\n') || strchr(msg, '\r')) abort();            /* one line */
    if (!strstr(msg, "fuzz.ini") && !strstr(msg, "--set")) abort(); /* names where */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a NUL-terminated copy: the text and the overrides are its NUL-separated pieces */
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *ov[MAX_OVERRIDES];
    int n = 0;
    for (size_t i = strlen(buf); i < size && n < MAX_OVERRIDES; i += strlen(buf + i)) {
        ++i; /* the NUL ending the previous piece */
        ov[n++] = buf + i;
    }

    rpu_experiment *e = NULL;
    rpu_clear_error();
    rpu_status s = rpu_experiment_parse(buf, "fuzz.ini", ov, n, &e);
    if (s != RPU_OK) {
        if (e) abort();
        check_message(s);
        free(buf);
        return 0;
    }
    const char *text = rpu_experiment_text(e);
    if (!text || strlen(text) > RPU_CKPT_MAX_TEXT) abort();
    rpu_experiment *again = NULL;
    s = rpu_experiment_parse(text, "stored.ini", NULL, 0, &again);
    if (s != RPU_OK) {
        fprintf(stderr, "the stored text does not parse: %s\n%s", rpu_last_error(), text);
        abort();
    }
    char why[200];
    if (!exp_same(e, again, why, sizeof why)) {
        fprintf(stderr, "re-reading the stored text changes %s\n%s", why, text);
        abort();
    }
    if (strcmp(text, rpu_experiment_text(again))) {
        fprintf(stderr, "the stored text changes:\n%s--\n%s", text, rpu_experiment_text(again));
        abort();
    }
    rpu_experiment_free(&again);
    rpu_experiment_free(&e);
    free(buf);
    return 0;
}
