/* Sizes of a subcommand's work: products in size_t with overflow checks, and the one-line
 * estimate printed before large work starts, checked against the machine's memory
 * (src/cli/budget.c). Called by the subcommands; calls none of them. */
#ifndef RPUSIM_CLI_BUDGET_H
#define RPUSIM_CLI_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A byte count accumulated with overflow checks: once a product or sum overflows size_t,
 * overflow stays set (bytes is then meaningless). */
typedef struct {
    size_t bytes;
    bool overflow;
} cli_budget;

/* a x b, or SIZE_MAX with *overflow set. */
size_t cli_mul(size_t a, size_t b, bool *overflow);
/* Adds count elements of elem_size bytes to b. */
void cli_budget_add(cli_budget *b, size_t count, size_t elem_size);

/* "512 B", "3.0 MiB", "2.4 GiB", "1.5 TiB" (binary units). */
void cli_format_bytes(double bytes, char *buf, size_t n);
/* Physical memory of this machine in bytes (0 if unknown). */
double cli_physical_memory(void);

/* Prints "rpusim CMD: WHAT: about X of memory (this machine: Y)" to out and checks the
 * estimate against the limit: the environment variable RPUSIM_MEMORY_LIMIT when set (bytes
 * with an optional K, M, G or T, binary units; e.g. a job's share of a node), else the
 * physical memory. Returns 0, or (the estimate overflowed or exceeds the limit, or the
 * variable is malformed) prints "rpusim CMD: WHAT needs about X of memory, more than the Y
 * of this machine" on stderr and returns 2. out may be NULL: only a refusal is printed. */
int cli_budget_check(const char *cmd, const char *what, const cli_budget *b, FILE *out);

#endif
