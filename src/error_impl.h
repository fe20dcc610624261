/* Private error helpers: record a message and the place it was detected, return the code.
 *
 * The message is for users; the place (source file and line) for developers: it is kept
 * apart (rpu_last_error_location) and appended to the message as " [file.c:line]" only in
 * builds with RPUSIM_ERROR_LOCATION defined (Debug builds) or when the environment variable
 * RPUSIM_ERROR_LOCATION is set to a value other than "" or "0" at the time of the failure
 * (read on every failure; nothing is cached). */
#ifndef RPUSIM_ERROR_IMPL_H
#define RPUSIM_ERROR_IMPL_H

#include "rpusim/status.h"

#if defined(__GNUC__)
#define RPU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RPU_PRINTF(a, b)
#endif

/* Records the formatted message and "file:line" as the thread's last error; returns code. */
rpu_status rpu_error_at(rpu_status code, const char *file, int line, const char *fmt, ...)
    RPU_PRINTF(4, 5);

/* Prepends "<formatted prefix>: " to the thread's last message (its location stays that of
 * the original failure) and returns code: callers add the context they know (the layer,
 * the tile) to a callee's message. */
rpu_status rpu_error_prefix(rpu_status code, const char *fmt, ...) RPU_PRINTF(2, 3);

/* The last message without the location suffix, and a way to record a message and a
 * location that another rank detected (rpu_agree). */
const char *rpu_error_message(void);
rpu_status rpu_error_set(rpu_status code, const char *message, const char *location);

#define RPU_FAIL(code, ...) rpu_error_at((code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failure from a callee unchanged (its message is already recorded). */
#define RPU_CHECK(expr)                                                                            \
    do {                                                                                           \
        rpu_status rpu_check_s_ = (expr);                                                          \
        if (rpu_check_s_ != RPU_OK) return rpu_check_s_;                                           \
    } while (0)

#endif
