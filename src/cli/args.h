/* Option values of the rpusim subcommands: every numeric value is parsed strictly (the
 * whole string is one decimal number, within the option's range), and a refused value gets
 * one message on stderr that names the command, the option, the value, what is wrong and
 * the accepted range, e.g.
 *     rpusim bench tile: --trials '3junk': not an integer ('junk' after 3); want an
 *     integer in 1..1000000
 * The subcommands call these; they call nothing of the subcommands (src/cli/args.c). */
#ifndef RPUSIM_CLI_ARGS_H
#define RPUSIM_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* Checks text as a whole decimal integer in [lo, hi]: no leading space, an optional sign,
 * digits, nothing after them. Returns NULL and sets *out, or a description of the fault
 * ("empty", "not an integer ('junk' after 3)", "out of range", "below the minimum 1",
 * "above the maximum 4095") written to buf (size n), which is returned. For values that
 * are not options (e.g. the keys of a `rpusim map --layer` spec), whose messages the
 * caller words itself. */
const char *cli_int_fault(const char *text, long long lo, long long hi, long long *out, char *buf,
                          size_t n);
/* The same for a finite number (strtod syntax) in [lo, hi]; "inf" and "nan" are refused as
 * "not finite", 1e999 as "out of range of a double". */
const char *cli_double_fault(const char *text, double lo, double hi, double *out, char *buf,
                             size_t n);

/* The value of option opt of `rpusim cmd` as an int in [lo, hi]. Returns true and sets
 * *out, or prints "rpusim CMD: OPT 'TEXT': FAULT; want an integer in LO..HI" and returns
 * false (*out unchanged). */
bool cli_arg_int(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out);
/* The same for a finite double in [lo, hi]. */
bool cli_arg_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                    double *out);
/* A comma-separated list of 1..max ints in [lo, hi] ("64,128"). Returns the count, or
 * prints a message naming the option, the list, the entry and its fault and returns -1. */
int cli_arg_int_list(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out,
                     int max);
/* A comma-separated list of 1..max finite doubles in [lo, hi]. */
int cli_arg_double_list(const char *cmd, const char *opt, const char *text, double lo, double hi,
                        double *out, int max);

/* Comma-separated list of ints in 1..2^24 (at most max): the count, or -1 for a malformed
 * list (no message). Kept for callers that word their own message. */
int cli_parse_int_list(const char *text, int *out, int max);

#endif
