/* Inference and hardware-aware training of a tile (spec §6): PCM-like programming noise,
 * conductance drift with 1/f read noise, global / per-column drift compensation, and the
 * post-update steps weight clipping -> remapping -> weight modifier.
 *
 * Random numbers: programming repeat r of a tile draws from stream (seed, layer, tile,
 * RPU_PURPOSE_PROGRAM + 16 (r + 1)): four arrays of one normal per cell at blocks 0, B, 2B,
 * 3B (programming noise of g+, drift exponent of g+, programming noise of g-, drift
 * exponent of g-, spec §6.2 order), then read-out draw d at blocks (4 + 2d) B (g+) and
 * (5 + 2d) B (g-), B = blocks of one array. The modifier draws from the tile's post-update
 * stream: normals at pnext, uniforms (stochastic rounding) at pnext + B, drop uniforms at
 * pnext + 2B, and advances pnext by 3B per application. */
#include "error_impl.h"
#include "tile_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t n_cells(const rpu_tile *t) {
    return (size_t)t->p.out_size * (size_t)t->p.in_size;
}

static bool modifier_on(const rpu_config *c) {
    return c->modifier.type != RPU_MOD_NONE || c->modifier.pdrop > 0;
}

rpu_status rpu_infer_alloc(rpu_tile *t) {
    const size_t cells = n_cells(t), NO = (size_t)t->p.out_size;
    rpu_infer_state *s = &t->inf;
    memset(s, 0, sizeof *s);
    if (t->cfg.remap.type != RPU_REMAP_NONE && t->cfg.remap.max_scale_range > 0)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "remap.max_scale_range = %g: the bounded-range remapping is not "
                        "available (use 0)",
                        (double)t->cfg.remap.max_scale_range);
    if (modifier_on(&t->cfg) && !(s->w_fb = (float *)calloc(cells, sizeof(float)))) goto nomem;
    if (t->cfg.kind == RPU_KIND_INFERENCE) {
        s->w_ref = (float *)calloc(cells, sizeof(float));
        s->w_prog = (float *)calloc(cells, sizeof(float));
        s->nu_plus = (float *)calloc(cells, sizeof(float));
        s->nu_minus = (float *)calloc(cells, sizeof(float));
        s->baseline = (float *)calloc(NO, sizeof(float));
        s->alpha = (float *)calloc(NO, sizeof(float));
        if (!s->w_ref || !s->w_prog || !s->nu_plus || !s->nu_minus || !s->baseline || !s->alpha)
            goto nomem;
        for (size_t i = 0; i < NO; ++i)
            s->alpha[i] = s->baseline[i] = 1.0f;
    }
    return RPU_OK;
nomem:
    rpu_infer_free(t);
    return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the inference state of a %d x %d tile",
                    t->p.out_size, t->p.in_size);
}

void rpu_infer_free(rpu_tile *t) {
    rpu_infer_state *s = &t->inf;
    free(s->w_fb);
    free(s->w_ref);
    free(s->w_prog);
    free(s->nu_plus);
    free(s->nu_minus);
    free(s->baseline);
    free(s->alpha);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ clip, remap */

static float max_abs(const float *w, size_t n) {
    float m = 0;
    for (size_t k = 0; k < n; ++k)
        m = fmaxf(m, fabsf(w[k]));
    return m;
}

static void clip_all(float *w, size_t n, float c) {
    for (size_t k = 0; k < n; ++k)
        w[k] = fminf(fmaxf(w[k], -c), c);
}

/* WeightClipParameter (spec §6.5). Returns whether W changed. */
static bool apply_clip(rpu_tile *t) {
    const rpu_clip_params *c = &t->cfg.clip;
    const int NO = t->p.out_size, NI = t->p.in_size;
    const size_t cells = n_cells(t);
    float lim = -1;
    switch (c->type) {
    case RPU_CLIP_NONE:
        return false;
    case RPU_CLIP_FIXED_VALUE:
        lim = c->fixed_value;
        break;
    case RPU_CLIP_LAYER_GAUSSIAN: {
        double sum = 0, sq = 0;
        for (size_t k = 0; k < cells; ++k)
            sum += t->w[k];
        const double mean = sum / (double)cells;
        for (size_t k = 0; k < cells; ++k)
            sq += ((double)t->w[k] - mean) * ((double)t->w[k] - mean);
        const double sd = cells > 1 ? sqrt(sq / (double)(cells - 1)) : 0.0;
        lim = (float)(c->sigma * sd);
        if (c->fixed_value > 0) lim = fminf(lim, c->fixed_value);
        break;
    }
    case RPU_CLIP_AVERAGE_CHANNEL_MAX: {
        double sum = 0;
        for (int i = 0; i < NO; ++i)
            sum += max_abs(t->w + (size_t)i * NI, (size_t)NI);
        lim = (float)(sum / NO);
        if (c->fixed_value > 0) lim = fminf(lim, c->fixed_value);
        break;
    }
    }
    if (!(lim >= 0)) return false; /* fixed_value <= 0: no clipping */
    clip_all(t->w, cells, lim);
    if (c->type == RPU_CLIP_FIXED_VALUE)
        t->pnext += rpu_device_apply_bounds(&t->dev, t->w, &t->pstream, t->pnext);
    return true;
}

/* WeightRemapParameter (spec §6.6): the stored weights are rescaled so that their
 * (row) maximum is remapped_wmax, and the mapping scales absorb the factor. */
static bool apply_remap(rpu_tile *t) {
    const rpu_remap_params *r = &t->cfg.remap;
    const int NO = t->p.out_size, NI = t->p.in_size;
    if (r->type == RPU_REMAP_NONE) return false;
    const float gmax = r->type == RPU_REMAP_LAYERWISE_SYMMETRIC ? max_abs(t->w, n_cells(t)) : 0;
    for (int i = 0; i < NO; ++i) {
        float *row = t->w + (size_t)i * NI;
        float a = (r->type == RPU_REMAP_LAYERWISE_SYMMETRIC ? gmax : max_abs(row, (size_t)NI)) /
                  r->remapped_wmax;
        if (!(a > 0)) a = 1.0f;
        t->scales[i] *= a;
        for (int j = 0; j < NI; ++j)
            row[j] /= a;
    }
    return true;
}

/* ------------------------------------------------------------------ modifier */

static float discretize(float v, float res, bool sto, float u) {
    /* v in units of amax; res > 1 means 1/res levels (as IO resolutions) */
    if (res > 1) res = 1.0f / res;
    if (!(res > 0)) return v;
    const float q = v / res;
    return (sto ? floorf(q + u) : rintf(q)) * res;
}

static float poly(const rpu_modifier_params *m, float a) {
    float p = 0, ak = 1;
    for (int k = 0; k < m->n_coeffs; ++k) {
        p += m->coeffs[k] * ak;
        ak *= a;
    }
    return p;
}

/* WeightModifierParameter (spec §6.4): w_fb from w. */
static rpu_status apply_modifier(rpu_tile *t) {
    const rpu_modifier_params *m = &t->cfg.modifier;
    rpu_infer_state *s = &t->inf;
    const int NO = t->p.out_size, NI = t->p.in_size;
    const size_t cells = n_cells(t);
    const uint64_t B = rpu_rng_blocks_for(cells);
    const uint64_t base = t->pnext;
    t->pnext += 3 * B;
    s->mod_calls++;
    float amax = m->assumed_wmax;
    if (m->rel_to_actual_wmax) {
        amax = 0;
        const int nc = m->copy_last_column && NI > 1 ? NI - 1 : NI;
        for (int i = 0; i < NO; ++i)
            amax = fmaxf(amax, max_abs(t->w + (size_t)i * NI, (size_t)nc));
        if (amax == 0) amax = 1.0f;
    }
    const bool need_u = m->sto_round || m->pdrop > 0;
    float *u = need_u ? (float *)malloc(sizeof(float) * cells) : NULL;
    if (need_u && !u) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the weight modifier");
    float *fb = s->w_fb;
    const float *w = t->w;
    const bool normals = m->type == RPU_MOD_MULT_NORMAL || m->type == RPU_MOD_ADD_NORMAL ||
                         m->type == RPU_MOD_DISCRETIZE_ADD_NORMAL || m->type == RPU_MOD_POLY ||
                         m->type == RPU_MOD_PROG_NOISE;
    if (normals) rpu_rng_normal_at(&t->pstream, base, fb, cells); /* xi in place */
    if (m->sto_round) rpu_rng_uniform_at(&t->pstream, base + B, u, cells);
    const float sd = m->std_dev;
    for (size_t k = 0; k < cells; ++k) {
        const float x = w[k];
        const float xi = normals ? fb[k] : 0.0f;
        const float uk = m->sto_round ? u[k] : 0.0f;
        float y = x;
        switch (m->type) {
        case RPU_MOD_NONE:
        case RPU_MOD_DROP_CONNECT:
            break;
        case RPU_MOD_DISCRETIZE:
            y = amax * discretize(x / amax, m->res, m->sto_round, uk);
            break;
        case RPU_MOD_MULT_NORMAL:
            y = x + x * sd * amax * xi;
            break;
        case RPU_MOD_ADD_NORMAL:
            y = x + sd * amax * xi;
            break;
        case RPU_MOD_DISCRETIZE_ADD_NORMAL:
            y = amax * discretize(x / amax, m->res, m->sto_round, uk) + sd * amax * xi;
            break;
        case RPU_MOD_DOREFA: {
            const float th = tanhf(amax);
            const float scale = th != 0 ? fabsf(m->dorefa_clip / th) : 0.0f;
            y = discretize(tanhf(x) * scale, m->res, m->sto_round, uk);
            break;
        }
        case RPU_MOD_POLY:
            y = x + amax * sd * poly(m, fabsf(x) / amax) * xi;
            break;
        case RPU_MOD_PROG_NOISE: {
            const float noisy = x + amax * (sd / m->g_max) * poly(m, fabsf(x) / amax) * xi;
            y = x >= 0 ? fabsf(noisy) : -fabsf(noisy);
            break;
        }
        }
        fb[k] = y;
    }
    if (m->pdrop > 0) {
        rpu_rng_uniform_at(&t->pstream, base + 2 * B, u, cells);
        for (size_t k = 0; k < cells; ++k)
            if (u[k] < m->pdrop) fb[k] = 0.0f;
    }
    if (m->copy_last_column)
        for (int i = 0; i < NO; ++i)
            fb[(size_t)i * NI + NI - 1] = w[(size_t)i * NI + NI - 1];
    free(u);
    s->fb_valid = 1;
    return RPU_OK;
}

rpu_status rpu_infer_post_update(rpu_tile *t) {
    bool changed = apply_clip(t);
    changed = apply_remap(t) || changed;
    if (changed) {
        rpu_infer_weights_changed(t);
        t->abs_w_valid = 0;
    }
    if (t->inf.w_fb) RPU_CHECK(apply_modifier(t));
    return RPU_OK;
}

/* ------------------------------------------------------------------ programming, drift */

/* Stream of programming repeat r. */
static void program_stream(const rpu_tile *t, uint64_t repeat, rpu_rng *r) {
    const uint32_t purpose = (uint32_t)(RPU_PURPOSE_PROGRAM + 16u * (uint32_t)(repeat + 1));
    rpu_rng_init(r, t->p.seed, rpu_stream_id(t->p.layer_id, t->p.tile_id, purpose));
}

/* Single-pair conversion (spec §6.2): scale s and the two conductances of w. */
static float pair_scale(const rpu_noise_model_params *nm, const float *w, size_t n) {
    return (nm->g_max - nm->g_min) / fmaxf(max_abs(w, n), 1e-7f);
}

static void to_pair(const rpu_noise_model_params *nm, float s, float w, float *gp, float *gm) {
    *gp = fminf(fmaxf(s * w, 0.0f), nm->g_max) + nm->g_min;
    *gm = fminf(fmaxf(-s * w, 0.0f), nm->g_max) + nm->g_min;
}

/* The g_max at which the PCM programming-noise coefficients were fitted (spec §6.2): the
 * configured reference, else aihwkit's rule (25 µS for its default coefficients, g_max for
 * coefficients given explicitly). */
static float prog_reference(const rpu_noise_model_params *nm) {
    static const float defaults[3] = {0.26348f, 1.9650f, -1.1731f};
    if (nm->prog_coeff_g_max_reference > 0) return nm->prog_coeff_g_max_reference;
    return memcmp(nm->prog_coeff, defaults, sizeof defaults) ? nm->g_max : 25.0f;
}

static float prog_noisy(const rpu_noise_model_params *nm, float g, float xi) {
    float sigma;
    if (nm->type == RPU_NOISE_MODEL_PCM_LIKE) {
        const float r = g / nm->g_max;
        sigma = (nm->prog_coeff[0] + nm->prog_coeff[1] * r + nm->prog_coeff[2] * r * r) *
                nm->g_max / prog_reference(nm);
    } else {
        sigma = nm->prog_std;
    }
    return fmaxf(g + nm->prog_noise_scale * sigma * xi, 0.0f);
}

static float drift_nu(const rpu_noise_model_params *nm, float g, float xi) {
    float mu, sd;
    if (nm->type == RPU_NOISE_MODEL_PCM_LIKE) {
        const float gr = fmaxf(fabsf(g / nm->g_max), 1e-7f);
        const float lg = logf(gr);
        mu = fminf(fmaxf(-0.0155f * lg + 0.0244f, 0.049f), 0.1f);
        sd = fminf(fmaxf(-0.0125f * lg - 0.0059f, 0.008f), 0.045f);
    } else {
        mu = nm->drift_nu_mean;
        sd = nm->drift_nu_std;
    }
    return fmaxf(fabsf(mu + sd * xi), 0.0f) * nm->drift_scale;
}

/* Drift to time t (seconds since programming) plus read noise of one conductance. */
static float drift_read(const rpu_noise_model_params *nm, float g, float nu, double tt, float xi) {
    const double t = tt + nm->t_0;
    const float gd = t > nm->t_0 ? (float)(g * pow(t / nm->t_0, -(double)nu)) : g;
    const float sr = (float)sqrt(log((t + nm->t_read) / (2.0 * nm->t_read)));
    float sig;
    if (nm->type == RPU_NOISE_MODEL_PCM_LIKE) {
        const float qs = fminf(0.0088f / fmaxf(powf(fabsf(g) / nm->g_max, 0.65f), 1e-3f), 0.2f);
        sig = fabsf(gd) * qs * sr;
    } else {
        sig = fabsf(gd / nm->g_max) * sr;
    }
    return fmaxf(gd + nm->read_noise_scale * sig * xi, 0.0f);
}

static rpu_status need_inference(const rpu_tile *t, const char *fn) {
    if (!t) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL tile", fn);
    if (!t->inf.w_prog)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: programming and drift need an inference config (kind = inference)",
                        fn);
    return RPU_OK;
}

/* Output read-out of the compensation (spec §6.3): mean |y| of the non-ideal forward of
 * the identity, over everything (global) or per output (per_column), at least 1e-4. */
static rpu_status comp_readout(rpu_tile *t, float *out) {
    const int NO = t->p.out_size, NI = t->p.in_size;
    const rpu_drift_compensation c = t->cfg.drift_compensation;
    if (c == RPU_DRIFT_COMP_NONE) {
        for (int i = 0; i < NO; ++i)
            out[i] = 1.0f;
        return RPU_OK;
    }
    float *eye = (float *)calloc((size_t)NI * NI + (size_t)NI * NO, sizeof(float));
    if (!eye) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the drift read-out");
    float *y = eye + (size_t)NI * NI;
    for (int j = 0; j < NI; ++j)
        eye[(size_t)j * NI + j] = 1.0f;
    rpu_status s = rpu_tile_forward_raw(t, eye, NI, y);
    if (s == RPU_OK) {
        double tot = 0;
        for (int i = 0; i < NO; ++i) {
            double col = 0;
            for (int j = 0; j < NI; ++j)
                col += fabs((double)y[(size_t)j * NO + i]);
            tot += col;
            out[i] = (float)fmax(col / NI, 1e-4);
        }
        if (c == RPU_DRIFT_COMP_GLOBAL)
            for (int i = 0; i < NO; ++i)
                out[i] = (float)fmax(tot / ((double)NI * NO), 1e-4);
    }
    free(eye);
    return s;
}

static rpu_status update_alpha(rpu_tile *t) {
    const int NO = t->p.out_size;
    float *cur = (float *)malloc(sizeof(float) * (size_t)NO);
    if (!cur) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the drift read-out");
    rpu_status s = comp_readout(t, cur);
    if (s == RPU_OK)
        for (int i = 0; i < NO; ++i)
            t->inf.alpha[i] = t->inf.baseline[i] / cur[i];
    free(cur);
    return s;
}

rpu_status rpu_tile_program(rpu_tile *t, uint64_t repeat) {
    RPU_CHECK(need_inference(t, "rpu_tile_program"));
    if (repeat >= 4095)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_program: repeat %llu: at most 4095 repeats",
                        (unsigned long long)repeat);
    rpu_infer_state *s = &t->inf;
    const rpu_noise_model_params *nm = &t->cfg.noise_model;
    const size_t cells = n_cells(t);
    if (!s->ref_valid) {
        memcpy(s->w_ref, t->w, sizeof(float) * cells);
        s->ref_valid = 1;
    }
    if (nm->type == RPU_NOISE_MODEL_NONE) {
        memcpy(s->w_prog, s->w_ref, sizeof(float) * cells);
        memset(s->nu_plus, 0, sizeof(float) * cells);
        memset(s->nu_minus, 0, sizeof(float) * cells);
    } else {
        float *xi = (float *)malloc(sizeof(float) * cells * 4);
        if (!xi) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for programming noise");
        rpu_rng r;
        program_stream(t, repeat, &r);
        const uint64_t B = rpu_rng_blocks_for(cells);
        for (int a = 0; a < 4; ++a)
            rpu_rng_normal_at(&r, (uint64_t)a * B, xi + (size_t)a * cells, cells);
        const float sc = pair_scale(nm, s->w_ref, cells);
        for (size_t k = 0; k < cells; ++k) {
            float gp, gm;
            to_pair(nm, sc, s->w_ref[k], &gp, &gm);
            const float pp = prog_noisy(nm, gp, xi[k]);
            s->nu_plus[k] = drift_nu(nm, gp, xi[cells + k]);
            const float pm = prog_noisy(nm, gm, xi[2 * cells + k]);
            s->nu_minus[k] = drift_nu(nm, gm, xi[3 * cells + k]);
            s->w_prog[k] = ((pp - nm->g_min) - (pm - nm->g_min)) / sc;
        }
        free(xi);
    }
    memcpy(t->w, s->w_prog, sizeof(float) * cells);
    t->abs_w_valid = 0;
    t->abs_src = NULL;
    s->fb_valid = 0;
    /* the IO noise of this realisation: a region of the forward/backward streams of its
     * own, whatever the tile computed before */
    t->next_block[0] = t->next_block[1] = (repeat + 1) << 50;
    s->programmed = 1;
    s->repeat = repeat;
    s->t_inference = 0;
    RPU_CHECK(comp_readout(t, s->baseline));
    for (int i = 0; i < t->p.out_size; ++i)
        s->alpha[i] = 1.0f;
    return RPU_OK;
}

rpu_status rpu_tile_drift_to(rpu_tile *t, double t_inference, uint32_t draw) {
    RPU_CHECK(need_inference(t, "rpu_tile_drift_to"));
    if (!(t_inference >= 0) || !isfinite(t_inference))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_drift_to: time %g must be >= 0 and finite",
                        t_inference);
    if (draw >= (1u << 24))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_drift_to: draw %u: at most 2^24 read-outs", draw);
    rpu_infer_state *s = &t->inf;
    if (!s->programmed) RPU_CHECK(rpu_tile_program(t, 0));
    const rpu_noise_model_params *nm = &t->cfg.noise_model;
    const size_t cells = n_cells(t);
    if (nm->type == RPU_NOISE_MODEL_NONE) {
        memcpy(t->w, s->w_prog, sizeof(float) * cells);
    } else {
        float *xi = (float *)malloc(sizeof(float) * cells * 2);
        if (!xi) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for read noise");
        rpu_rng r;
        program_stream(t, s->repeat, &r);
        const uint64_t B = rpu_rng_blocks_for(cells);
        rpu_rng_normal_at(&r, (4 + 2 * (uint64_t)draw) * B, xi, cells);
        rpu_rng_normal_at(&r, (5 + 2 * (uint64_t)draw) * B, xi + cells, cells);
        /* the programmed weights are converted afresh (their own scale), as aihwkit does */
        const float sc = pair_scale(nm, s->w_prog, cells);
        for (size_t k = 0; k < cells; ++k) {
            float gp, gm;
            to_pair(nm, sc, s->w_prog[k], &gp, &gm);
            const float dp = drift_read(nm, gp, s->nu_plus[k], t_inference, xi[k]);
            const float dm = drift_read(nm, gm, s->nu_minus[k], t_inference, xi[cells + k]);
            t->w[k] = ((dp - nm->g_min) - (dm - nm->g_min)) / sc;
        }
        free(xi);
    }
    t->abs_w_valid = 0;
    t->abs_src = NULL;
    s->fb_valid = 0;
    s->t_inference = t_inference;
    return update_alpha(t);
}

bool rpu_tile_programmed(const rpu_tile *t) {
    return t && t->inf.programmed;
}

double rpu_tile_t_inference(const rpu_tile *t) {
    return t ? t->inf.t_inference : 0;
}

const float *rpu_tile_compensation(const rpu_tile *t) {
    return t ? t->inf.alpha : NULL;
}

const float *rpu_tile_fb_weights(const rpu_tile *t) {
    return (t && t->inf.fb_valid) ? t->inf.w_fb : NULL;
}

/* ------------------------------------------------------------------ state items */

int rpu_infer_state_items(rpu_tile *t, rpu_state_item *items, int n, int max) {
    rpu_infer_state *s = &t->inf;
    const int NO = t->p.out_size, NI = t->p.in_size;
    const size_t cells = n_cells(t);
    if (s->w_fb) {
        n = rpu_state_item_add(items, n, max, "fb_weights", RPU_STATE_F32, cells, NO, NI, s->w_fb);
        n = rpu_state_item_add(items, n, max, "fb_valid", RPU_STATE_U64, 1, 1, 1, &s->fb_valid);
        n = rpu_state_item_add(items, n, max, "modifier_calls", RPU_STATE_U64, 1, 1, 1,
                               &s->mod_calls);
    }
    if (s->w_prog) {
        n = rpu_state_item_add(items, n, max, "reference_weights", RPU_STATE_F32, cells, NO, NI,
                               s->w_ref);
        n = rpu_state_item_add(items, n, max, "programmed_weights", RPU_STATE_F32, cells, NO, NI,
                               s->w_prog);
        n = rpu_state_item_add(items, n, max, "drift_nu_plus", RPU_STATE_F32, cells, NO, NI,
                               s->nu_plus);
        n = rpu_state_item_add(items, n, max, "drift_nu_minus", RPU_STATE_F32, cells, NO, NI,
                               s->nu_minus);
        n = rpu_state_item_add(items, n, max, "drift_baseline", RPU_STATE_F32, (size_t)NO, NO, 1,
                               s->baseline);
        n = rpu_state_item_add(items, n, max, "drift_alpha", RPU_STATE_F32, (size_t)NO, NO, 1,
                               s->alpha);
        n = rpu_state_item_add(items, n, max, "t_inference", RPU_STATE_F64, 1, 1, 1,
                               &s->t_inference);
        n = rpu_state_item_add(items, n, max, "reference_valid", RPU_STATE_U64, 1, 1, 1,
                               &s->ref_valid);
        n = rpu_state_item_add(items, n, max, "programmed", RPU_STATE_U64, 1, 1, 1, &s->programmed);
        n = rpu_state_item_add(items, n, max, "program_repeat", RPU_STATE_U64, 1, 1, 1, &s->repeat);
    }
    return n;
}
