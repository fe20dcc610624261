/* rpusim — status codes and error reporting shared by every module.
 *
 * Every library function that can fail returns rpu_status. On failure it records a
 * message for users (naming what failed and where in the user's terms: the file, line and
 * key of a config, the layer and tile, the checkpoint object) that rpu_last_error() returns
 * until the next failure on the same thread, and the source file and line where the
 * library detected it (rpu_last_error_location(), for developers). The message ends in
 * " [file.c:line]" only in Debug builds (RPUSIM_ERROR_LOCATION defined) or when the
 * environment variable RPUSIM_ERROR_LOCATION is set to a value other than "" and "0" at the
 * time of the failure. The record is thread-local; nothing here is collective. The library
 * never exits or aborts the process. */
#ifndef RPUSIM_STATUS_H
#define RPUSIM_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RPU_OK = 0,
    RPU_ERR_ARG = 1,         /* bad argument: NULL pointer, wrong shape, out of range */
    RPU_ERR_CONFIG = 2,      /* unknown key, wrong type or out-of-range config value */
    RPU_ERR_NOMEM = 3,       /* allocation failed */
    RPU_ERR_MODULE = 4,      /* layer cannot be built with this configuration */
    RPU_ERR_UNSUPPORTED = 5, /* feature not available (yet) in this build */
    RPU_ERR_IO = 6,          /* file could not be read or written */
    RPU_ERR_FORMAT = 7,      /* file content invalid: schema, checksum, shape */
    RPU_ERR_MPI = 8,         /* an MPI call failed */
    RPU_ERR_INTERNAL = 9,    /* invariant violated: a bug in rpusim */
    RPU_STOPPED = 10         /* not an error: rpu_train stopped early because its
                                should_stop hook asked it to (the message says where and
                                which checkpoint holds the state) */
} rpu_status;

/* Message of the most recent failure on this thread ("" if none). Never NULL. Local. */
const char *rpu_last_error(void);

/* Where the library detected the most recent failure on this thread: "file.c:line" of the
 * innermost check ("" if none). For bug reports; callers that add context to a message
 * keep the location of the original failure. Never NULL. Local. */
const char *rpu_last_error_location(void);

/* Short constant name of a status code ("RPU_ERR_CONFIG"; "RPU_ERR_UNKNOWN" for other
 * values). Local (pure). */
const char *rpu_status_name(rpu_status s);

/* Clears the recorded message and location of this thread (tests use it). Local. */
void rpu_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
