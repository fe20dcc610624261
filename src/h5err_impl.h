/* Private: HDF5's error stack for the modules that use HDF5 (checkpoints, the weight
 * export): its automatic printing switched off for the duration of a library call, and
 * the reason of a failure for rpusim's own message. */
#ifndef RPUSIM_H5ERR_IMPL_H
#define RPUSIM_H5ERR_IMPL_H

#include <hdf5.h>

#define RPU_H5_WHY 320 /* room for rpu_h5_why */

/* The caller's automatic error printing, saved by rpu_h5_quiet_on (which switches it off)
 * and restored by rpu_h5_quiet_off (which also clears the error stack): no HDF5 setting
 * of the process is changed by a library call. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} rpu_h5_quiet;

void rpu_h5_quiet_on(rpu_h5_quiet *q);
void rpu_h5_quiet_off(const rpu_h5_quiet *q);

/* The innermost message of HDF5's error stack into buf (RPU_H5_WHY bytes), e.g. "data
 * error detected by Fletcher32 checksum"; the stack is cleared. Returns buf. */
const char *rpu_h5_why(char *buf);

#endif
