#include "error_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The only mutable state with static storage in the library (allowed by DESIGN.md:
 * "a readable message retrievable with rpu_last_error()"): one buffer per thread. */
static _Thread_local char last_error[1024];

const char *rpu_last_error(void) {
    return last_error;
}

void rpu_clear_error(void) {
    last_error[0] = '\0';
}

rpu_status rpu_error_at(rpu_status code, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof last_error) {
        const char *base = strrchr(file, '/');
        snprintf(last_error + n, sizeof last_error - (size_t)n, " [%s:%d]", base ? base + 1 : file,
                 line);
    }
    return code;
}

const char *rpu_status_name(rpu_status s) {
    switch (s) {
    case RPU_OK:
        return "RPU_OK";
    case RPU_ERR_ARG:
        return "RPU_ERR_ARG";
    case RPU_ERR_CONFIG:
        return "RPU_ERR_CONFIG";
    case RPU_ERR_NOMEM:
        return "RPU_ERR_NOMEM";
    case RPU_ERR_MODULE:
        return "RPU_ERR_MODULE";
    case RPU_ERR_UNSUPPORTED:
        return "RPU_ERR_UNSUPPORTED";
    case RPU_ERR_IO:
        return "RPU_ERR_IO";
    case RPU_ERR_FORMAT:
        return "RPU_ERR_FORMAT";
    case RPU_ERR_MPI:
        return "RPU_ERR_MPI";
    case RPU_ERR_INTERNAL:
        return "RPU_ERR_INTERNAL";
    case RPU_STOPPED:
        return "RPU_STOPPED";
    }
    return "RPU_ERR_UNKNOWN";
}
