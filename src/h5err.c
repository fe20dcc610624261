/* HDF5's error stack: quiet library calls and the reason of a failure (h5err_impl.h). */
#include "h5err_impl.h"

#include <stdio.h>

void rpu_h5_quiet_on(rpu_h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void rpu_h5_quiet_off(const rpu_h5_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = (char *)data;
    if (n == 0) {
        char minor[160] = "";
        H5Eget_msg(e->min_num, NULL, minor, sizeof minor);
        const char *d = e->desc ? e->desc : "";
        snprintf(buf, RPU_H5_WHY, "%s%s%s", d, *d && *minor ? "; " : "", minor);
    }
    return 0;
}

const char *rpu_h5_why(char *buf) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, why_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0]) snprintf(buf, RPU_H5_WHY, "HDF5 error");
    return buf;
}
