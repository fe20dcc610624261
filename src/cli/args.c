/* Strict parsing of the subcommands' option values (see args.h): the whole string must be
 * one number in the option's range; the message names what is wrong. */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The faults of the text around a number that strto* read from text up to end: none
 * (NULL), or "empty", "starts with a space", "not KIND", "not KIND ('junk' after 3"). */
static const char *syntax_fault(const char *text, const char *end, const char *kind, char *buf,
                                size_t n) {
    if (!*text) return snprintf(buf, n, "empty"), buf;
    if (isspace((unsigned char)text[0])) return snprintf(buf, n, "starts with a space"), buf;
    if (end == text) return snprintf(buf, n, "not %s", kind), buf;
    if (*end)
        return snprintf(buf, n, "not %s ('%.24s%s' after %.*s)", kind, end,
                        strlen(end) > 24 ? "..." : "", (int)(end - text), text),
               buf;
    return NULL;
}

const char *cli_int_fault(const char *text, long long lo, long long hi, long long *out, char *buf,
                          size_t n) {
    char *end;
    text = text ? text : "";
    errno = 0;
    const long long v = strtoll(text, &end, 10);
    const char *fault = syntax_fault(text, end, "an integer", buf, n);
    if (fault) return fault;
    if (errno == ERANGE) return snprintf(buf, n, "out of range"), buf;
    if (v < lo) return snprintf(buf, n, "below the minimum %lld", lo), buf;
    if (v > hi) return snprintf(buf, n, "above the maximum %lld", hi), buf;
    *out = v;
    return NULL;
}

const char *cli_double_fault(const char *text, double lo, double hi, double *out, char *buf,
                             size_t n) {
    char *end;
    text = text ? text : "";
    errno = 0;
    const double v = strtod(text, &end);
    const char *fault = syntax_fault(text, end, "a number", buf, n);
    if (fault) return fault;
    /* ERANGE: overflow (+-HUGE_VAL) or underflow (a tiny value, kept) */
    if (errno == ERANGE && !isfinite(v)) return snprintf(buf, n, "out of range of a double"), buf;
    if (!isfinite(v)) return snprintf(buf, n, "not finite"), buf;
    if (v < lo) return snprintf(buf, n, "below the minimum %g", lo), buf;
    if (v > hi) return snprintf(buf, n, "above the maximum %g", hi), buf;
    *out = v;
    return NULL;
}

bool cli_arg_int(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out) {
    char buf[96];
    long long v;
    const char *fault = cli_int_fault(text, lo, hi, &v, buf, sizeof buf);
    if (fault) {
        fprintf(stderr, "rpusim %s: %s '%s': %s; want an integer in %d..%d\n", cmd, opt,
                text ? text : "", fault, lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

bool cli_arg_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                    double *out) {
    char buf[96];
    const char *fault = cli_double_fault(text, lo, hi, out, buf, sizeof buf);
    if (fault) {
        fprintf(stderr, "rpusim %s: %s '%s': %s; want a number in [%g, %g]\n", cmd, opt,
                text ? text : "", fault, lo, hi);
        return false;
    }
    return true;
}

/* Splits text at commas and checks each entry with check(entry, k, ctx); returns the count,
 * or -1 after printing "rpusim CMD: OPT 'TEXT': entry K 'E': FAULT; WANT". */
typedef const char *(*entry_check)(const char *entry, int k, void *ctx, char *buf, size_t n);

static int parse_list(const char *cmd, const char *opt, const char *text, int max,
                      entry_check check, void *ctx, const char *want) {
    char entry[128], buf[96];
    const char *p = text ? text : "";
    for (int k = 0;; ++k) {
        const size_t len = strcspn(p, ",");
        if (k == max) {
            fprintf(stderr, "rpusim %s: %s '%s': more than %d values; want %s\n", cmd, opt,
                    text ? text : "", max, want);
            return -1;
        }
        const char *fault = "too long";
        if (len < sizeof entry) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            fault = check(entry, k, ctx, buf, sizeof buf);
        }
        if (fault) {
            fprintf(stderr, "rpusim %s: %s '%s': value %d '%.*s': %s; want %s\n", cmd, opt,
                    text ? text : "", k + 1, (int)(len < 40 ? len : 40), p, fault, want);
            return -1;
        }
        if (!p[len]) return k + 1;
        p += len + 1;
    }
}

typedef struct {
    long long lo, hi;
    int *out;
} int_ctx;

static const char *check_int(const char *entry, int k, void *vctx, char *buf, size_t n) {
    const int_ctx *c = vctx;
    long long v;
    const char *fault = cli_int_fault(entry, c->lo, c->hi, &v, buf, n);
    if (!fault) c->out[k] = (int)v;
    return fault;
}

int cli_arg_int_list(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out,
                     int max) {
    char want[96];
    snprintf(want, sizeof want, "up to %d comma-separated integers in %d..%d", max, lo, hi);
    int_ctx c = {lo, hi, out};
    return parse_list(cmd, opt, text, max, check_int, &c, want);
}

typedef struct {
    double lo, hi;
    double *out;
} double_ctx;

static const char *check_double(const char *entry, int k, void *vctx, char *buf, size_t n) {
    const double_ctx *c = vctx;
    return cli_double_fault(entry, c->lo, c->hi, &c->out[k], buf, n);
}

int cli_arg_double_list(const char *cmd, const char *opt, const char *text, double lo, double hi,
                        double *out, int max) {
    char want[96];
    snprintf(want, sizeof want, "up to %d comma-separated numbers in [%g, %g]", max, lo, hi);
    double_ctx c = {lo, hi, out};
    return parse_list(cmd, opt, text, max, check_double, &c, want);
}

int cli_parse_int_list(const char *text, int *out, int max) {
    char buf[96];
    const char *p = text ? text : "";
    int k = 0;
    for (;;) {
        const size_t len = strcspn(p, ",");
        char entry[32];
        long long v;
        if (k == max || len >= sizeof entry) return -1;
        memcpy(entry, p, len);
        entry[len] = '\0';
        if (cli_int_fault(entry, 1, 1 << 24, &v, buf, sizeof buf)) return -1;
        out[k++] = (int)v;
        if (!p[len]) return k;
        p += len + 1;
    }
}
