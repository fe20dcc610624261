#include "error_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only mutable state with static storage in the library (allowed by DESIGN.md:
 * "a readable message retrievable with rpu_last_error()"): one record per thread. */
#define RPU_ERR_MSG 1024
static _Thread_local struct {
    char message[RPU_ERR_MSG];   /* for users */
    char location[128];          /* "file.c:line" where the failure was detected */
    char shown[RPU_ERR_MSG + 8]; /* message, plus " [location]" when switched on */
} last;

/* Whether messages carry their location (see error_impl.h); evaluated per failure. */
static int show_location(void) {
#ifdef RPUSIM_ERROR_LOCATION
    return 1;
#else
    const char *v = getenv("RPUSIM_ERROR_LOCATION");
    return v && *v && strcmp(v, "0") != 0;
#endif
}

static void compose(void) {
    if (show_location() && last.location[0])
        snprintf(last.shown, sizeof last.shown, "%.*s [%s]", RPU_ERR_MSG - 140, last.message,
                 last.location);
    else
        snprintf(last.shown, sizeof last.shown, "%s", last.message);
}

const char *rpu_last_error(void) {
    return last.shown;
}

const char *rpu_last_error_location(void) {
    return last.location;
}

const char *rpu_error_message(void) {
    return last.message;
}

void rpu_clear_error(void) {
    last.message[0] = last.location[0] = last.shown[0] = '\0';
}

rpu_status rpu_error_at(rpu_status code, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last.message, sizeof last.message, fmt, ap);
    va_end(ap);
    const char *base = file ? strrchr(file, '/') : NULL;
    snprintf(last.location, sizeof last.location, "%s:%d", base ? base + 1 : (file ? file : "?"),
             line);
    compose();
    return code;
}

rpu_status rpu_error_prefix(rpu_status code, const char *fmt, ...) {
    char prefix[256], old[RPU_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", last.message);
    snprintf(last.message, sizeof last.message, "%.255s: %.*s", prefix, RPU_ERR_MSG - 260, old);
    compose();
    return code;
}

rpu_status rpu_error_set(rpu_status code, const char *message, const char *location) {
    snprintf(last.message, sizeof last.message, "%s", message ? message : "");
    snprintf(last.location, sizeof last.location, "%s", location ? location : "");
    compose();
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
