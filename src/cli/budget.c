/* Size arithmetic with overflow checks and memory estimates of the subcommands (budget.h). */
#define _POSIX_C_SOURCE 200809L
#include "budget.h"

#include "args.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t cli_mul(size_t a, size_t b, bool *overflow) {
    if (a != 0 && b > SIZE_MAX / a) {
        *overflow = true;
        return SIZE_MAX;
    }
    return a * b;
}

void cli_budget_add(cli_budget *b, size_t count, size_t elem_size) {
    const size_t add = cli_mul(count, elem_size, &b->overflow);
    if (b->overflow) return;
    if (add > SIZE_MAX - b->bytes)
        b->overflow = true;
    else
        b->bytes += add;
}

void cli_format_bytes(double bytes, char *buf, size_t n) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) {
        bytes /= 1024;
        ++u;
    }
    if (u == 0)
        snprintf(buf, n, "%.0f B", bytes);
    else
        snprintf(buf, n, "%.1f %s", bytes, unit[u]);
}

double cli_physical_memory(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

/* The memory estimates are checked against: RPUSIM_MEMORY_LIMIT if set (a number of bytes
 * with an optional K, M, G or T: binary units), else the physical memory. Writes where the
 * limit comes from to `src` ("this machine", "RPUSIM_MEMORY_LIMIT=8G"). Returns the bytes
 * (0: not known), or -1 after a message for a malformed setting. */
static double memory_limit(const char *cmd, char *src, size_t n) {
    const char *env = getenv("RPUSIM_MEMORY_LIMIT");
    if (!env) {
        snprintf(src, n, "this machine");
        return cli_physical_memory();
    }
    char num[32], buf[96];
    const size_t len = strlen(env);
    const char *unit = len ? strchr("KMGT", env[len - 1]) : NULL;
    const size_t digits = unit ? len - 1 : len;
    double v = -1;
    if (digits < sizeof num) {
        memcpy(num, env, digits);
        num[digits] = '\0';
        if (cli_double_fault(num, 1, 1e30, &v, buf, sizeof buf)) v = -1;
    }
    if (v < 0) {
        fprintf(stderr,
                "rpusim %s: RPUSIM_MEMORY_LIMIT='%s': want a number of bytes >= 1 with an "
                "optional K, M, G or T (binary units), e.g. 8G\n",
                cmd, env);
        return -1;
    }
    for (int k = unit ? (int)(unit - "KMGT") + 1 : 0; k > 0; --k)
        v *= 1024;
    snprintf(src, n, "RPUSIM_MEMORY_LIMIT=%.40s", env);
    return v;
}

int cli_budget_check(const char *cmd, const char *what, const cli_budget *b, FILE *out) {
    char need[32], have[32], src[64];
    const double limit = memory_limit(cmd, src, sizeof src);
    if (limit < 0) return 2;
    cli_format_bytes(limit, have, sizeof have);
    if (b->overflow) {
        fprintf(stderr,
                "rpusim %s: %s needs more than %zu bytes of memory (the sizes overflow), more "
                "than the %s of %s\n",
                cmd, what, (size_t)SIZE_MAX, have, src);
        return 2;
    }
    cli_format_bytes((double)b->bytes, need, sizeof need);
    if (limit > 0 && (double)b->bytes > limit) {
        fprintf(stderr, "rpusim %s: %s needs about %s of memory, more than the %s of %s\n", cmd,
                what, need, have, src);
        return 2;
    }
    if (out) {
        fprintf(out, "rpusim %s: %s: about %s of memory (%s: %s)\n", cmd, what, need, src, have);
        fflush(out);
    }
    return 0;
}
