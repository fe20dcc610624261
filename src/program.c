/* Realistic weight write (spec §8.2, aihwkit's program_weights for training tiles): the
 * stored weights are driven towards a target by closed-loop pulsed updates, reading the
 * tile with noisy forwards of the identity, the way weights are written into a chip. */
#include "error_impl.h"
#include "tile_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rpu_program_params_default(rpu_program_params *p) {
    if (!p) return;
    p->learning_rate = 0.1f;
    p->max_iter = 10000;
    p->tolerance = 0.01f;
    p->w_init = 0.01f;
}

rpu_status rpu_tile_program_weights(rpu_tile *t, const float *w, const rpu_program_params *pp,
                                    int *iterations, float *error) {
    if (!t || !w) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_program_weights: NULL argument");
    rpu_program_params p;
    if (pp)
        p = *pp;
    else
        rpu_program_params_default(&p);
    if (!(p.learning_rate > 0) || p.max_iter < 0 || !(p.tolerance >= 0) || !(p.w_init >= 0))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_program_weights: learning_rate %g must be > 0, max_iter %d, "
                        "tolerance %g and w_init %g >= 0",
                        (double)p.learning_rate, p.max_iter, (double)p.tolerance, (double)p.w_init);
    const int NO = t->p.out_size, NI = t->p.in_size;
    const size_t cells = (size_t)NO * NI;
    /* the targets in stored units, and the mapping scales, as set_weights makes them */
    RPU_CHECK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_SCALED));
    float *buf = (float *)malloc(sizeof(float) * (3 * cells + (size_t)NI * NI + (size_t)NO));
    if (!buf)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for programming a %d x %d tile", NO, NI);
    float *target = buf, *init = target + cells, *y = init + cells, *eye = y + cells;
    float *scales = eye + (size_t)NI * NI;
    /* targets transposed to the layout of the identity's responses: T[k][i] = W[i][k] */
    double tmax = 0;
    for (int i = 0; i < NO; ++i)
        for (int k = 0; k < NI; ++k) {
            target[(size_t)k * NO + i] = t->w[(size_t)i * NI + k];
            tmax = fmax(tmax, fabs((double)t->w[(size_t)i * NI + k]));
        }
    if (tmax == 0) tmax = 1;
    memset(eye, 0, sizeof(float) * (size_t)NI * NI);
    for (int k = 0; k < NI; ++k)
        eye[(size_t)k * NI + k] = 1.0f;
    /* start: U(-w_init, w_init) from the tile's initialisation stream */
    rpu_rng r;
    rpu_rng_init(&r, t->p.seed, rpu_stream_id(t->p.layer_id, t->p.tile_id, RPU_PURPOSE_INIT));
    rpu_rng_uniform_at(&r, 0, init, cells);
    for (size_t q = 0; q < cells; ++q)
        init[q] = (2.0f * init[q] - 1.0f) * p.w_init;
    /* the loop works in stored units: scales 1 (restored below), no LR compensation */
    memcpy(scales, t->scales, sizeof(float) * (size_t)NO);
    const bool lrc = t->cfg.mapping.weight_scaling_lr_compensation;
    t->cfg.mapping.weight_scaling_lr_compensation = false;
    memcpy(t->w, init, sizeof(float) * cells);
    t->pnext += rpu_device_apply_bounds(&t->dev, t->w, &t->pstream, t->pnext);
    for (int i = 0; i < NO; ++i)
        t->scales[i] = 1.0f;
    rpu_status s = RPU_OK;
    int it = 0;
    double err = 0;
    for (;;) {
        t->abs_w_valid = 0;
        s = rpu_tile_forward_raw(t, eye, NI, y);
        if (s != RPU_OK) break;
        double sum = 0;
        for (size_t q = 0; q < cells; ++q) {
            y[q] -= target[q];
            sum += fabs((double)y[q]);
        }
        err = sum / (double)cells / tmax;
        if (err < p.tolerance || it >= p.max_iter) break;
        s = rpu_tile_update_impl(t, eye, y, NULL, NI, p.learning_rate, 0, t->p.out_size);
        if (s != RPU_OK) break;
        ++it;
    }
    memcpy(t->scales, scales, sizeof(float) * (size_t)NO);
    t->cfg.mapping.weight_scaling_lr_compensation = lrc;
    t->abs_w_valid = 0;
    rpu_infer_weights_changed(t);
    t->inf.fb_valid = 0;
    t->inf.programmed = 0;
    free(buf);
    if (iterations) *iterations = it;
    if (error) *error = (float)err;
    return s;
}
