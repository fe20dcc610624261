/* Private error helpers: record a message with file and line, return the code. */
#ifndef RPUSIM_ERROR_IMPL_H
#define RPUSIM_ERROR_IMPL_H

#include "rpusim/status.h"

#if defined(__GNUC__)
#define RPU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RPU_PRINTF(a, b)
#endif

/* Records "message (file:line)" as the thread's last error and returns code. */
rpu_status rpu_error_at(rpu_status code, const char *file, int line, const char *fmt, ...)
    RPU_PRINTF(4, 5);

#define RPU_FAIL(code, ...) rpu_error_at((code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failure from a callee unchanged (its message is already recorded). */
#define RPU_CHECK(expr)                                                                            \
    do {                                                                                           \
        rpu_status rpu_check_s_ = (expr);                                                          \
        if (rpu_check_s_ != RPU_OK) return rpu_check_s_;                                           \
    } while (0)

#endif
