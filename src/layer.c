/* Mapped convolution (1d/2d/3d) and linear layers over MPI (spec §1, §7; DESIGN.md
 * "Distributed model").
 *
 * Every spatial case is handled as 3-d with unit sizes for the missing dimensions (a linear
 * layer is the 0-d case: one patch per sample, kernel 1). A tile's input vectors are its
 * columns [col0, col0 + ncol) of its group's unfolded patch (column c*K + kernel position),
 * row n*L + p (image-major, pixel-minor), + a last column of ones for the analog bias on
 * input split 0. The mapped split gives whole channels (col0 and ncol multiples of K); the
 * tile_array split any range, so a channel's kernel block may be cut between tiles.
 *
 * Reduction: each tile's partial results are converted to 64-bit integers at a scale 2^S
 * chosen from the global maximum magnitude and the number of terms, summed (exact and
 * order-free, so the result does not depend on which rank holds which tile) and reduced
 * with one MPI_Allreduce of int64; the col2im of the backward is done in the same integer
 * domain. */
#include "rpusim/readout.h"

#include "fixed_impl.h"
#include "layer_impl.h"
#include "patches_impl.h"
#include "placement_impl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rpu_bias rpu_bias_for_config(bool bias, const rpu_config *cfg) {
    if (!bias) return RPU_BIAS_NONE;
    return (!cfg || cfg->mapping.digital_bias) ? RPU_BIAS_DIGITAL : RPU_BIAS_ANALOG;
}

rpu_bias rpu_bias_for_split(bool bias, const rpu_config *cfg, rpu_split split, int in_features,
                            int out_features) {
    if (!bias) return RPU_BIAS_NONE;
    if (cfg && split == RPU_SPLIT_TILE_ARRAY &&
        rpu_tile_array_used(in_features, out_features, cfg->mapping.max_input_size,
                            cfg->mapping.max_output_size))
        return RPU_BIAS_DIGITAL;
    return rpu_bias_for_config(bias, cfg);
}

void rpu_conv_params_default(rpu_conv_params *p, int ndim, int in_channels, int out_channels,
                             int k) {
    memset(p, 0, sizeof *p);
    p->ndim = ndim;
    p->in_channels = in_channels;
    p->out_channels = out_channels;
    for (int a = 0; a < 3; ++a) {
        p->kernel[a] = k;
        p->stride[a] = 1;
        p->padding[a] = 0;
        p->dilation[a] = 1;
    }
    p->groups = 1;
    p->bias = RPU_BIAS_DIGITAL;
    p->padding_mode = RPU_PAD_ZEROS;
    p->use_indexed = true; /* faster here (see README) */
    p->mac = RPU_MAC_BLAS;
}

int rpu_conv_tile_size(int in_channels, int groups, int ndim, const int *kernel) {
    if (groups < 1 || ndim < 0 || ndim > 3 || (ndim > 0 && !kernel)) return 0;
    int s = in_channels / groups;
    for (int a = 0; a < ndim; ++a)
        s *= kernel[a];
    return s;
}

/* ------------------------------------------------------------------ create / destroy */

/* Kernel, stride, dilation >= 1 and padding >= 0 in the first ndim dimensions. */
static rpu_status check_dims(const rpu_conv_params *p, int ndim, const char *lb) {
    for (int a = 0; a < ndim; ++a)
        if (p->kernel[a] < 1 || p->stride[a] < 1 || p->dilation[a] < 1 || p->padding[a] < 0)
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: dimension %d: kernel %d, stride %d, dilation %d must be >= "
                            "1 and padding %d >= 0",
                            lb, a, p->kernel[a], p->stride[a], p->dilation[a], p->padding[a]);
    return RPU_OK;
}

static rpu_status check_params(const rpu_conv_params *p, int ndim) {
    static const char *pad_names[] = {"zeros", "reflect", "replicate", "circular"};
    if (memchr(p->name, '\0', sizeof p->name) == NULL)
        return RPU_FAIL(RPU_ERR_ARG, "layer %u: name is not NUL-terminated within %d characters",
                        p->layer_id, RPU_LAYER_NAME_MAX);
    char lb[RPU_LAYER_NAME_MAX + 16];
    params_label(p, lb, sizeof lb);
    if (p->in_channels < 1 || p->out_channels < 1)
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: in_channels (%d) and out_channels (%d) must be >= 1", lb,
                        p->in_channels, p->out_channels);
    if (p->groups < 1 || p->in_channels % p->groups || p->out_channels % p->groups)
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: groups = %d must divide in_channels (%d) and out_channels (%d)",
                        lb, p->groups, p->in_channels, p->out_channels);
    RPU_CHECK(check_dims(p, ndim, lb));
    if ((int)p->padding_mode < 0 || (int)p->padding_mode > 3)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: unknown padding mode %d", lb, (int)p->padding_mode);
    if (p->padding_mode != RPU_PAD_ZEROS)
        return RPU_FAIL(RPU_ERR_MODULE,
                        "layer %s: only 'zeros' padding mode is supported (got '%s')", lb,
                        pad_names[p->padding_mode]);
    if ((int)p->bias < RPU_BIAS_NONE || (int)p->bias > RPU_BIAS_ANALOG)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: unknown bias kind %d (none, digital or analog)", lb,
                        (int)p->bias);
    if (p->mac != RPU_MAC_BLAS && p->mac != RPU_MAC_EXACT)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: unknown MAC mode %d", lb, (int)p->mac);
    if (p->split != RPU_SPLIT_MAPPED && p->split != RPU_SPLIT_TILE_ARRAY)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: unknown split %d (mapped or tile_array)", lb,
                        (int)p->split);
    return RPU_OK;
}

/* Kaiming-uniform (a = sqrt(5)) weights and bias as PyTorch's reset_parameters, the same
 * on every rank. */
static rpu_status init_weights(rpu_conv *l) {
    const int nw = rpu_conv_weight_count(l), O = l->p.out_channels;
    float *w = (float *)malloc(sizeof(float) * (size_t)nw),
          *b = (float *)malloc(sizeof(float) * (size_t)O);
    if (!w || !b) {
        free(w), free(b);
        return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for initial weights", l->label);
    }
    const double fan_in = (double)(l->p.in_channels / l->p.groups) * l->K;
    const float bound = (float)(1.0 / sqrt(fan_in));
    rpu_rng r;
    rpu_rng_init(&r, l->p.seed, rpu_stream_id(l->p.layer_id, 0, RPU_PURPOSE_INIT));
    for (int q = 0; q < nw; ++q)
        w[q] = bound * (2.0f * rpu_rng_uniform(&r) - 1.0f);
    for (int q = 0; q < O; ++q)
        b[q] = bound * (2.0f * rpu_rng_uniform(&r) - 1.0f);
    rpu_status s = rpu_conv_set_weights(l, w, l->p.bias != RPU_BIAS_NONE ? b : NULL);
    free(w), free(b);
    return s;
}

static rpu_status conv_create(MPI_Comm comm, const rpu_conv_params *p, int ndim,
                              const rpu_config *cfg, rpu_conv **layer) {
    if (!layer) return RPU_FAIL(RPU_ERR_ARG, "layer create: output pointer is NULL");
    *layer = NULL;
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "layer create: params or config is NULL");
    RPU_CHECK(check_params(p, ndim));
    char lb[RPU_LAYER_NAME_MAX + 16];
    params_label(p, lb, sizeof lb);
    rpu_status s = rpu_config_validate(cfg);
    if (s != RPU_OK) return rpu_error_prefix(s, "layer %s", lb);
    rpu_conv *l = (rpu_conv *)calloc(1, sizeof *l);
    if (!l) return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", lb);
    l->p = *p;
    memcpy(l->label, lb, sizeof l->label);
    l->ndim = ndim;
    l->cfg = *cfg;
    l->training = true;
    l->readout_oversampling = 10;
    /* spatial dimensions right-aligned: [L] -> (1, 1, L), [H, W] -> (1, H, W) */
    l->K = 1;
    for (int a = 0; a < 3; ++a) {
        const int src = a - (3 - ndim); /* dimension of p, < 0: unused */
        l->k3[a] = src >= 0 ? p->kernel[src] : 1;
        l->s3[a] = src >= 0 ? p->stride[src] : 1;
        l->p3[a] = src >= 0 ? p->padding[src] : 0;
        l->d3[a] = src >= 0 ? p->dilation[src] : 1;
        l->K *= l->k3[a];
    }
    int rc = MPI_Comm_dup(comm, &l->comm);
    if (rc != MPI_SUCCESS) {
        free(l);
        return mpi_fail(rc, "MPI_Comm_dup");
    }
    MPI_Comm_set_errhandler(l->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(l->comm, &l->rank);
    MPI_Comm_size(l->comm, &l->size);
    /* the grid, its owners and holders: the same placement rpu_conv_placement reports, and
     * the config's properties (the same on every rank, whether it holds a tile or not) */
    config_props props;
    s = rpu_conv_place(p, cfg, l->size, &l->grid, &props);
    if (s != RPU_OK) {
        rpu_error_prefix(s, "layer %s", l->label);
        goto fail;
    }
    l->tiles = (rpu_tile **)calloc((size_t)l->grid.n_tiles, sizeof(rpu_tile *));
    l->xoffs = (size_t *)calloc((size_t)l->grid.n_tiles, sizeof(size_t));
    l->uowner = (int *)malloc(sizeof(int) * 2 * (size_t)l->grid.n_tiles);
    l->kowner = l->uowner ? l->uowner + l->grid.n_tiles : NULL;
    for (int t = 0; l->uowner && t < 2 * l->grid.n_tiles; ++t)
        l->uowner[t] = -1;
    l->bcounts = (int *)calloc(2 * (size_t)l->size, sizeof(int));
    if (p->bias == RPU_BIAS_DIGITAL)
        l->bias = (float *)calloc((size_t)p->out_channels, sizeof(float));
    if (p->bias != RPU_BIAS_NONE)
        l->bias_grad = (float *)calloc((size_t)p->out_channels, sizeof(float));
    if (!l->tiles || !l->xoffs || !l->uowner || !l->bcounts || (p->bias == RPU_BIAS_DIGITAL && !l->bias) ||
        (p->bias != RPU_BIAS_NONE && !l->bias_grad)) {
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", l->label);
        goto fail;
    }
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        if (rpu_tile_holder_index(ts, l->rank, l->size) < 0) continue;
        rpu_tile_params tp = {.out_size = ts->rows,
                              .in_size = ts->cols,
                              .seed = p->seed,
                              .layer_id = p->layer_id,
                              .tile_id = (uint32_t)t,
                              .mac = p->mac};
        s = tile_error(l, t, rpu_tile_create(&tp, cfg, &l->tiles[t]));
    }
    /* every rank must agree before the first collective use (the first failure's message) */
    if ((s = rpu_agree(l->comm, s)) != RPU_OK) goto fail;
    l->batch_split = props.batch_split;
    l->summable = props.summable;
    l->x_all = props.x_all;
    l->split = props.split;
    l->row_block = props.row_block;
    /* the holders' communicator: a rank holds one tile of several holders (more ranks than
     * tiles), or every tile and every tile has every rank (rpu_hold_everywhere); every rank
     * knows the grid, so all take this branch or none */
    bool shared = false;
    for (int t = 0; t < l->grid.n_tiles; ++t)
        shared = shared || l->grid.tiles[t].holders > 1;
    if (shared) {
        int color = MPI_UNDEFINED, key = 0;
        for (int t = 0; t < l->grid.n_tiles; ++t) {
            const int m = rpu_tile_holder_index(&l->grid.tiles[t], l->rank, l->size);
            if (m >= 0 && l->grid.tiles[t].holders > 1) color = t, key = m;
        }
        int rc = MPI_Comm_split(l->comm, color, key, &l->hcomm);
        if (rc != MPI_SUCCESS) {
            s = mpi_fail(rc, "MPI_Comm_split");
            goto fail;
        }
        if (l->hcomm != MPI_COMM_NULL) {
            l->have_hcomm = 1;
            MPI_Comm_set_errhandler(l->hcomm, MPI_ERRORS_RETURN);
        }
    }
    if ((s = init_weights(l)) != RPU_OK) goto fail;
    *layer = l;
    return RPU_OK;
fail:
    rpu_conv_destroy(&l);
    return s;
}

rpu_status rpu_conv_create(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                           rpu_conv **layer) {
    if (p && (p->ndim < 1 || p->ndim > 3)) {
        if (layer) *layer = NULL;
        char lb[RPU_LAYER_NAME_MAX + 16] = "";
        if (memchr(p->name, '\0', sizeof p->name)) params_label(p, lb, sizeof lb);
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: ndim = %d, must be 1, 2 or 3", lb, p->ndim);
    }
    return conv_create(comm, p, p ? p->ndim : 0, cfg, layer);
}

void rpu_conv_destroy(rpu_conv **layer) {
    if (!layer || !*layer) return;
    rpu_conv *l = *layer;
    if (l->tiles)
        for (int t = 0; t < l->grid.n_tiles; ++t)
            rpu_tile_destroy(&l->tiles[t]);
    free(l->tiles);
    rpu_tile_grid_free(&l->grid);
    free(l->bias), free(l->bias_grad), free(l->xp), free(l->dp), free(l->xoffs), free(l->uowner);
    free(l->umax);
    free(l->pbuf), free(l->obuf), free(l->sbuf), free(l->acc), free(l->bsum), free(l->bcounts);
    free(l->xmax), free(l->dmax), free(l->xin);
    rpu_contrib_free(&l->ctab);
    rpu_deliver_buf_free(&l->dbuf);
    if (l->have_hcomm) MPI_Comm_free(&l->hcomm);
    if (l->comm != MPI_COMM_NULL && l->comm != 0) MPI_Comm_free(&l->comm);
    free(l);
    *layer = NULL;
}

rpu_status rpu_conv_from_digital(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                                 const float *weight, const float *bias, rpu_conv **layer) {
    RPU_CHECK(rpu_conv_create(comm, p, cfg, layer));
    /* set_weights communicates nothing: agree before the collective destroy */
    rpu_status s = rpu_agree((*layer)->comm, rpu_conv_set_weights(*layer, weight, bias));
    if (s != RPU_OK) rpu_conv_destroy(layer);
    return s;
}

/* ------------------------------------------------------------------ accessors */

const rpu_tile_grid *rpu_conv_grid(const rpu_conv *l) {
    return l ? &l->grid : NULL;
}
MPI_Comm rpu_conv_comm(const rpu_conv *l) {
    return l ? l->comm : MPI_COMM_NULL;
}
rpu_tile *rpu_conv_tile(const rpu_conv *l, int t) {
    return (l && t >= 0 && t < l->grid.n_tiles) ? l->tiles[t] : NULL;
}
rpu_tile *rpu_conv_tile_owned(const rpu_conv *l, int t) {
    rpu_tile *tile = rpu_conv_tile(l, t);
    return tile && l->grid.tiles[t].owner == l->rank ? tile : NULL;
}
const rpu_conv_params *rpu_conv_get_params(const rpu_conv *l) {
    return l ? &l->p : NULL;
}
const rpu_config *rpu_conv_config(const rpu_conv *l) {
    return l ? &l->cfg : NULL;
}
bool rpu_conv_is_linear(const rpu_conv *l) {
    return l && l->ndim == 0;
}
void rpu_conv_state_loaded(rpu_conv *l) {
    if (!l) return;
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->tiles[t]) rpu_tile_state_loaded(l->tiles[t]);
    l->have_x = l->have_dy = l->have_bgrad = 0;
}
int rpu_conv_weight_count(const rpu_conv *l) {
    return l ? l->p.out_channels * (l->p.in_channels / l->p.groups) * l->K : 0;
}
void rpu_conv_set_training(rpu_conv *l, bool training) {
    if (!l) return;
    l->training = training;
    if (!training) l->have_x = l->have_dy = 0;
}

/* ------------------------------------------------------------------ weights */

/* Sets every owned tile from the layer's weights: exactly (p NULL) or by closed-loop
 * pulsed programming (p; iterations and errors maxima over the owned tiles). Local. */
static rpu_status set_tiles(rpu_conv *l, const float *weight, const float *bias,
                            const rpu_program_params *p, int *max_it, float *max_err) {
    const int Kc = (l->p.in_channels / l->p.groups) * l->K; /* columns of one output row */
    for (int t = 0; t < l->grid.n_tiles; ++t) {
        rpu_tile *tile = l->tiles[t];
        if (!tile) continue;
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        float *w = (float *)malloc(sizeof(float) * (size_t)ts->rows * ts->cols);
        if (!w) return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", l->label);
        for (int r = 0; r < ts->rows; ++r) {
            const int o = out_channel(l, ts, r);
            const float *src = weight + (size_t)o * Kc + (size_t)ts->col0;
            memcpy(w + (size_t)r * ts->cols, src, sizeof(float) * (size_t)ts->ncol);
            if (l->grid.analog_bias && ts->in_split == 0)
                w[(size_t)r * ts->cols + ts->cols - 1] = bias[o];
        }
        int it = 0;
        float err = 0;
        rpu_status s = p ? rpu_tile_program_weights(tile, w, p, &it, &err)
                         : rpu_tile_set_weights(tile, w, RPU_WEIGHTS_SCALED);
        free(w);
        RPU_CHECK(tile_error(l, t, s));
        if (max_it && it > *max_it) *max_it = it;
        if (max_err && err > *max_err) *max_err = err;
    }
    if (l->bias) memcpy(l->bias, bias, sizeof(float) * (size_t)l->p.out_channels);
    return RPU_OK;
}

rpu_status rpu_conv_set_weights(rpu_conv *l, const float *weight, const float *bias) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "set_weights: NULL layer");
    if (!weight) return RPU_FAIL(RPU_ERR_ARG, "layer %s: set_weights: weight is NULL", l->label);
    RPU_CHECK(bias_rule(l, bias, "set_weights", "bias"));
    return set_tiles(l, weight, bias, NULL, NULL, NULL);
}

rpu_status rpu_conv_get_digital_bias(const rpu_conv *l, float *bias) {
    if (!l || !bias) return RPU_FAIL(RPU_ERR_ARG, "get_digital_bias: NULL argument");
    if (!l->bias)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: get_digital_bias: the layer has no digital bias",
                        l->label);
    memcpy(bias, l->bias, sizeof(float) * (size_t)l->p.out_channels);
    return RPU_OK;
}

rpu_status rpu_conv_set_digital_bias(rpu_conv *l, const float *bias) {
    if (!l || !bias) return RPU_FAIL(RPU_ERR_ARG, "set_digital_bias: NULL argument");
    if (!l->bias)
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: set_digital_bias: the layer has no digital bias (an analog "
                        "bias is part of the tile weights: use set_weights)",
                        l->label);
    memcpy(l->bias, bias, sizeof(float) * (size_t)l->p.out_channels);
    return RPU_OK;
}

rpu_status rpu_conv_program_weights(rpu_conv *l, const float *weight, const float *bias,
                                    const rpu_program_params *p, int *max_iterations,
                                    float *max_error) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "program_weights: NULL layer");
    if (!weight)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: program_weights: weight is NULL", l->label);
    RPU_CHECK(bias_rule(l, bias, "program_weights", "bias"));
    rpu_program_params d;
    if (!p) {
        rpu_program_params_default(&d);
        p = &d;
    }
    int it = 0;
    float err = 0;
    rpu_status s = rpu_agree(l->comm, set_tiles(l, weight, bias, p, &it, &err));
    if (s == RPU_OK) {
        double v[2] = {it, err};
        if (MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_DOUBLE, MPI_MAX, l->comm) != MPI_SUCCESS)
            return RPU_FAIL(RPU_ERR_MPI, "layer %s: MPI_Allreduce failed", l->label);
        if (max_iterations) *max_iterations = (int)v[0];
        if (max_error) *max_error = (float)v[1];
    }
    return s;
}

/* Realistic read-out of tile t (spec §8.1), collective: probe inputs X [m, cols]
 * (standard normals from stream (seed, layer, t, RPU_PURPOSE_READOUT) at block
 * call << 32, the analog-bias column driven by 1), Y = the owner's eval forward of X
 * (noisy, with mapping scales and drift compensation) broadcast from the owner, and
 * W_hat = argmin ||X W_hatᵀ - Y|| by ScaLAPACK on the layer's communicator; what [rows,
 * cols] is the same on every rank. */
static rpu_status readout_tile(rpu_conv *l, int t, uint64_t call, float *what) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const int n = ts->cols, k = ts->rows, m = n * l->readout_oversampling;
    const bool bias_col = l->grid.analog_bias && ts->in_split == 0;
    const size_t mn = (size_t)m * n, mk = (size_t)m * k;
    float *xf = (float *)malloc(sizeof(float) * (mn + mk));
    double *X = (double *)malloc(sizeof(double) * (mn + mk + (size_t)n * k));
    rpu_status s = RPU_OK;
    if (!xf || !X)
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the read-out of tile %d", l->label,
                     t);
    if ((s = rpu_agree(l->comm, s)) != RPU_OK) {
        free(xf);
        free(X);
        return s;
    }
    float *yf = xf + mn;
    double *Y = X + mn, *B = Y + mk;
    rpu_rng r;
    rpu_rng_init(&r, l->p.seed, rpu_stream_id(l->p.layer_id, (uint32_t)t, RPU_PURPOSE_READOUT));
    rpu_rng_normal_at(&r, call << 32, xf, mn);
    if (bias_col)
        for (int i = 0; i < m; ++i)
            xf[(size_t)i * n + n - 1] = 1.0f;
    if (l->tiles[t]) s = tile_error(l, t, rpu_tile_forward(l->tiles[t], xf, m, yf, RPU_MODE_EVAL));
    s = rpu_agree(l->comm, s);
    if (s == RPU_OK) {
        int rc = MPI_Bcast(yf, (int)mk, MPI_FLOAT, ts->owner, l->comm);
        if (rc != MPI_SUCCESS) s = mpi_fail(rc, "MPI_Bcast");
    }
    if (s == RPU_OK) {
        for (size_t q = 0; q < mn; ++q)
            X[q] = xf[q];
        for (size_t q = 0; q < mk; ++q)
            Y[q] = yf[q];
        s = rpu_readout_lstsq(l->comm, m, n, k, X, Y, B);
    }
    if (s == RPU_OK)
        for (int i = 0; i < k; ++i)
            for (int j = 0; j < n; ++j)
                what[(size_t)i * n + j] = (float)B[(size_t)j * k + i];
    free(xf);
    free(X);
    return s;
}

/* Realistic weights of the whole layer: every tile read out in tile order. */
static rpu_status get_realistic(rpu_conv *l, float *weight, float *bias) {
    const int O = l->p.out_channels, Kc = (l->p.in_channels / l->p.groups) * l->K;
    const uint64_t call = l->readout_calls++;
    rpu_status s = RPU_OK;
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        float *w = (float *)malloc(sizeof(float) * (size_t)ts->rows * ts->cols);
        if (!w) return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", l->label);
        s = readout_tile(l, t, call, w);
        for (int r = 0; r < ts->rows && s == RPU_OK; ++r) {
            const int o = out_channel(l, ts, r);
            memcpy(weight + (size_t)o * Kc + (size_t)ts->col0, w + (size_t)r * ts->cols,
                   sizeof(float) * (size_t)ts->ncol);
            if (bias && l->grid.analog_bias && ts->in_split == 0)
                bias[o] = w[(size_t)r * ts->cols + ts->cols - 1];
        }
        free(w);
    }
    if (s == RPU_OK && bias && l->bias) memcpy(bias, l->bias, sizeof(float) * (size_t)O);
    return s;
}

rpu_status rpu_conv_set_readout_oversampling(rpu_conv *l, int over_sampling) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "set_readout_oversampling: NULL layer");
    if (over_sampling < 1 || over_sampling > 1000)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: read-out over_sampling %d outside 1..1000",
                        l->label, over_sampling);
    l->readout_oversampling = over_sampling;
    return RPU_OK;
}

rpu_status rpu_conv_get_weights(rpu_conv *l, float *weight, float *bias, rpu_weight_read read) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "get_weights: NULL layer");
    if (!weight) return RPU_FAIL(RPU_ERR_ARG, "layer %s: get_weights: weight is NULL", l->label);
    RPU_CHECK(bias_rule(l, bias, "get_weights", "bias"));
    if (read != RPU_READ_EXACT && read != RPU_READ_REALISTIC)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: get_weights: unknown read mode %d", l->label,
                        (int)read);
    if (read == RPU_READ_REALISTIC) return get_realistic(l, weight, bias);
    const int O = l->p.out_channels, Kc = (l->p.in_channels / l->p.groups) * l->K;
    const size_t nw = (size_t)O * Kc;
    /* weights then analog bias, as raw bit patterns: every value has one owner, so a
     * bitwise OR over ranks assembles them exactly */
    uint32_t *bits = (uint32_t *)calloc(nw + (size_t)O, sizeof(uint32_t));
    if (!bits) return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", l->label);
    rpu_status s = RPU_OK;
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        rpu_tile *tile = l->tiles[t];
        if (!tile) continue;
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        float *w = (float *)malloc(sizeof(float) * (size_t)ts->rows * ts->cols);
        if (!w) {
            s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory", l->label);
            break;
        }
        s = tile_error(l, t, rpu_tile_get_weights(tile, w, RPU_WEIGHTS_SCALED));
        for (int r = 0; r < ts->rows && s == RPU_OK; ++r) {
            const int o = out_channel(l, ts, r);
            memcpy(bits + (size_t)o * Kc + (size_t)ts->col0, w + (size_t)r * ts->cols,
                   sizeof(float) * (size_t)ts->ncol);
            if (l->grid.analog_bias && ts->in_split == 0)
                memcpy(bits + nw + o, w + (size_t)r * ts->cols + ts->cols - 1, sizeof(float));
        }
        free(w);
    }
    int ok = s == RPU_OK, all_ok = 0;
    int rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, l->comm);
    if (rc == MPI_SUCCESS && all_ok)
        rc = MPI_Allreduce(MPI_IN_PLACE, bits, (int)(nw + (size_t)O), MPI_UINT32_T, MPI_BOR,
                           l->comm);
    if (rc != MPI_SUCCESS)
        s = mpi_fail(rc, "MPI_Allreduce");
    else if (!all_ok && s == RPU_OK)
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: get_weights failed on another rank", l->label);
    if (s == RPU_OK) {
        memcpy(weight, bits, sizeof(float) * nw);
        if (bias) {
            if (l->bias)
                memcpy(bias, l->bias, sizeof(float) * (size_t)O);
            else if (l->grid.analog_bias)
                memcpy(bias, bits + nw, sizeof(float) * (size_t)O);
        }
    }
    free(bits);
    return s;
}

/* ------------------------------------------------------------------ exact reduction */

/* Allreduce of {local max, local error} (MAX): global max and whether any rank failed. */
static rpu_status agree_max(rpu_conv *l, rpu_status local, double *gmax, double lmax) {
    double v[2] = {lmax, local != RPU_OK ? 1.0 : 0.0}, g[2];
    int rc = MPI_Allreduce(v, g, 2, MPI_DOUBLE, MPI_MAX, l->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
    if (g[1] != 0) return rpu_agree(l->comm, local); /* every rank: the first failure */
    if (!isfinite(g[0]))
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: non-finite values in the layer's partial results (NaN or Inf in "
                        "the input, gradient or weights)",
                        l->label);
    *gmax = g[0];
    return RPU_OK;
}

/* ------------------------------------------------------------------ forward / backward */

/* Output sizes of the first ndim dimensions of p for in_size (lb names the layer). */
static rpu_status output_size(const rpu_conv_params *p, int ndim, const char *lb,
                              const int *in_size, int *out_size) {
    RPU_CHECK(check_dims(p, ndim, lb));
    for (int a = 0; a < ndim; ++a) {
        const long long span = (long long)p->dilation[a] * (p->kernel[a] - 1) + 1;
        const long long padded = (long long)in_size[a] + 2LL * p->padding[a];
        if (in_size[a] < 1 || padded < span)
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: input size %d in dimension %d is smaller than the kernel "
                            "span %lld (padding %d)",
                            lb, in_size[a], a, span, p->padding[a]);
        const long long o = (padded - span) / p->stride[a] + 1;
        if (o > INT_MAX)
            return RPU_FAIL(RPU_ERR_ARG, "layer %s: output size %lld in dimension %d is too large",
                            lb, o, a);
        out_size[a] = (int)o;
    }
    return RPU_OK;
}

rpu_status rpu_conv_output_size(const rpu_conv_params *p, const int *in_size, int *out_size) {
    if (!p || !in_size || !out_size) return RPU_FAIL(RPU_ERR_ARG, "output_size: NULL argument");
    if (p->ndim < 1 || p->ndim > 3)
        return RPU_FAIL(RPU_ERR_ARG, "output_size: ndim = %d, must be 1, 2 or 3", p->ndim);
    char lb[RPU_LAYER_NAME_MAX + 16] = "";
    if (memchr(p->name, '\0', sizeof p->name)) params_label(p, lb, sizeof lb);
    return output_size(p, p->ndim, lb, in_size, out_size);
}

static rpu_status set_shape(rpu_conv *l, int n, const int *in_size) {
    int out[3] = {1, 1, 1};
    RPU_CHECK(output_size(&l->p, l->ndim, l->label, in_size, out));
    l->n = n;
    l->Lin = l->Lout = 1;
    for (int a = 0; a < 3; ++a) {
        const int src = a - (3 - l->ndim);
        l->in3[a] = src >= 0 ? in_size[src] : 1;
        l->out3[a] = src >= 0 ? out[src] : 1;
        l->Lin *= l->in3[a];
        l->Lout *= l->out3[a];
    }
    l->own = rpu_conv_own_samples_rule(&l->grid, l->size, l->Lout, l->batch_split && !l->x_all,
                                       l->summable);
    memcpy(l->kowner, l->uowner, sizeof(int) * (size_t)l->grid.n_tiles);
    l->kann = l->uann;
    return RPU_OK;
}

/* ------------------------------------------------------------------ holders' shares */

/* The contributions of every rank to the output (outputs = 1) or to the input gradient
 * (0) of the last forward's batch, into l->ctab. Returns 0 when out of memory. */
static int contrib_table(rpu_conv *l, int outputs) {
    return rpu_contrib_build(&l->ctab, &l->grid, l->size, l->n, block_samples(l), l->batch_split,
                             outputs);
}

/* What every rank needs of the layer's input (outputs 0) or output gradient (1), into
 * l->ctab: its tiles' channels for the samples it computes, or for the whole batch where it
 * updates a training tile whose update takes it (not summable; keeps_all), of the output
 * gradient only its update rows where the split was announced (keeps_rows). Returns 0 when
 * out of memory. */
static int need_table(rpu_conv *l, int outputs) {
    const bool pulsed = l->training && !l->summable;
    return rpu_contrib_build_samples(&l->ctab, &l->grid, l->size, l->n, block_samples(l),
                                     l->batch_split, outputs,
                                     pulsed ? RPU_SAMPLES_UPDATE : RPU_SAMPLES_COMPUTED,
                                     pulsed ? l->kowner : NULL, l->kann ? l->row_block : 0);
}

/* Whether an update owner is announced for any tile (rpu_conv_set_update_owners; the same
 * on every rank). */
static bool owners_announced(const rpu_conv *l) {
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->kowner[t] >= 0) return true;
    return false;
}

/* The fetch of what this rank needs of v [n, C, L] from the owners of its samples
 * (collective; nothing when the layer reads only its own samples). Where the tiles read
 * every sample on every rank (a pulsed update's training step split by rows, a forward
 * that reads every vector) every owner would send its samples to every holder: the whole
 * array is gathered instead (rpu_gather_parts: a tree, not one sender per sample). With
 * update owners announced, only they take every sample (need_table). */
static rpu_status fetch(rpu_conv *l, float *v, int C, size_t L, int outputs) {
    if (l->size == 1 || l->own) return RPU_OK;
    /* (an announced split by rows: each holder takes its rows of the output gradient) */
    if ((l->training && !l->summable && !owners_announced(l) && !(outputs && l->kann)) ||
        (!outputs && l->x_all))
        return rpu_gather_parts(l->comm, l->size, v, l->n, (size_t)C * L, l->bcounts);
    rpu_status s = need_table(l, outputs)
                       ? rpu_fetch_prepare(&l->ctab, l->rank, l->n, C, L, &l->dbuf)
                       : RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the fetch", l->label);
    RPU_CHECK(agree_ok(l, s));
    return rpu_fetch(l->comm, &l->ctab, l->n, C, L, v, &l->dbuf);
}

rpu_status rpu_conv_fetch_input(rpu_conv *l, float *x, int n, const int *in_size) {
    if (!l || !x || (l->ndim > 0 && !in_size))
        return RPU_FAIL(RPU_ERR_ARG, "fetch_input: NULL argument");
    if (n < 1)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: fetch_input: batch size %d < 1", l->label, n);
    RPU_CHECK(set_shape(l, n, in_size));
    l->have_x = l->have_dy = l->have_bgrad = 0;
    return fetch(l, x, l->p.in_channels, (size_t)l->Lin, 0);
}

rpu_status rpu_conv_fetch_output_grad(rpu_conv *l, float *dy) {
    if (!l || !dy) return RPU_FAIL(RPU_ERR_ARG, "fetch_output_grad: NULL argument");
    if (l->n < 1)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: fetch_output_grad before any forward", l->label);
    return fetch(l, dy, l->p.out_channels, (size_t)l->Lout, 1);
}

/* Every rank's samples of v [n, C, L] to every rank (rpu_gather_parts; collective; the
 * delivery's counts are free again). */
static rpu_status replicate(rpu_conv *l, float *v, int C, size_t L) {
    return rpu_gather_parts(l->comm, l->size, v, l->n, (size_t)C * L, l->dbuf.counts);
}

/* The first owned tile of tile t's input split (same group and i), whose patches t shares;
 * tiles of one input split have consecutive indices. */
static int patch_leader(const rpu_conv *l, int t) {
    const int first = t - l->grid.tiles[t].out_split;
    for (int u = first; u < t; ++u)
        if (l->tiles[u]) return u;
    return t;
}

/* The samples [*s0, *s1) whose patches (inputs 1) or output gradients (0) held tile t
 * needs: those its holder computes, or every sample for a training tile whose update is
 * not summable and updated here (keeps_all: its update takes the whole batch) and for the
 * patches of a forward that reads every vector (rpu_tile_forward_reads_all). A tile that
 * shares its patches with other held tiles has one holder (a rank holds one tile when
 * tiles have several), so its share is the whole batch too. */
static void needed_samples(const rpu_conv *l, int t, int inputs, int *s0, int *s1) {
    *s0 = 0;
    *s1 = l->n;
    if (keeps_all(l, t) || (inputs && (l->x_all || keeps_rows(l, t)))) return;
    const share sh = holder_share(l, t);
    *s0 = sh.c0;
    *s1 = sh.c1;
}

/* Sum over the owned tiles of their output widths (rows_instead = 1) or, once per input
 * split, of their input widths (0). */
static size_t owned_width(const rpu_conv *l, int rows_instead) {
    size_t w = 0;
    for (int t = 0; t < l->grid.n_tiles; ++t) {
        if (!l->tiles[t]) continue;
        if (rows_instead)
            w += (size_t)l->grid.tiles[t].rows;
        else if (patch_leader(l, t) == t)
            w += (size_t)l->grid.tiles[t].cols;
    }
    return w;
}

/* The forward; replicated: every rank receives the whole output, else only its samples
 * (rpu_conv_forward_part). */
static rpu_status conv_forward(rpu_conv *l, const float *x, int n, const int *in_size, float *y,
                               int replicated) {
    if (!l || !x || !y || (l->ndim > 0 && !in_size))
        return RPU_FAIL(RPU_ERR_ARG, "forward: NULL argument");
    if (n < 1) return RPU_FAIL(RPU_ERR_ARG, "layer %s: forward: batch size %d < 1", l->label, n);
    /* shape first (the same on every rank: no collective needed to agree on it) */
    RPU_CHECK(set_shape(l, n, in_size));
    const size_t M = (size_t)n * l->Lout;
    const int Co = l->p.out_channels;
    rpu_status s = RPU_OK;
    l->have_x = l->have_dy = l->have_bgrad = 0;
    /* training: a pulsed update reads every patch row, so the patches are kept (xp); a
     * summed one gathers its blocks again from a copy of the input (xin), so a pass by
     * blocks needs only a block's patches at a time */
    const bool keep_patches = l->training && !l->summable, keep_input = l->training && l->summable;
    int x0 = n, x1 = 0; /* the samples of x that the tiles read */
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->tiles[t]) {
            int g0, g1;
            needed_samples(l, t, 1, &g0, &g1);
            x0 = g0 < x0 ? g0 : x0;
            x1 = g1 > x1 ? g1 : x1;
        }
    const size_t xper = (size_t)l->p.in_channels * l->Lin;
    if ((keep_patches &&
         !grow((void **)&l->xp, &l->xp_cap, sizeof(float) * M * (owned_width(l, 0) + 1))) ||
        (keep_input &&
         !grow((void **)&l->xin, &l->xin_cap, sizeof(float) * ((size_t)n * xper + 1))) ||
        !rpu_conv_keep_maxima(l))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory to keep the patches", l->label);
    if (s == RPU_OK && keep_input && x1 > x0)
        memcpy(l->xin + (size_t)x0 * xper, x + (size_t)x0 * xper,
               sizeof(float) * (size_t)(x1 - x0) * xper);
    /* one contributing tile per output element (n_in 1): each tile's results go straight
     * into y; else into the tiles' own output planes, one after the other in obuf, summed
     * below */
    const bool direct = l->grid.n_in == 1;
    size_t total = 0;
    for (int t = 0; t < l->grid.n_tiles && !direct; ++t)
        if (l->tiles[t]) total += M * (size_t)l->grid.tiles[t].rows;
    /* patches not kept: a pass by blocks gathers each block's patches of its own; another
     * pass reads the whole batch's from pbuf, gathered by the first tile of the input split */
    size_t pwidth = 0;
    for (int t = 0; t < l->grid.n_tiles && !keep_patches; ++t)
        if (l->tiles[t] && !rpu_tile_pass_by_blocks(l->tiles[t], false))
            pwidth =
                (size_t)l->grid.tiles[t].cols > pwidth ? (size_t)l->grid.tiles[t].cols : pwidth;
    if (s == RPU_OK &&
        (!grow((void **)&l->obuf, &l->obuf_cap, sizeof(float) * (total ? total : 1)) ||
         !grow((void **)&l->pbuf, &l->pbuf_cap, sizeof(float) * (M * pwidth + 1)) ||
         (l->bias_grad && !grow((void **)&l->bsum, &l->bsum_cap, sizeof(double) * (size_t)n * Co))))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for a batch of %d", l->label, n);
    double lmax = 0;
    size_t off = 0, xoff = 0;
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        if (!l->tiles[t]) continue;
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        const bool by = rpu_tile_pass_by_blocks(l->tiles[t], false);
        const int lead = patch_leader(l, t);
        int g0 = 0, g1 = 0;
        needed_samples(l, t, 1, &g0, &g1);
        if (lead == t) { /* the other tiles of the input split reuse its patches */
            l->xoffs[t] = xoff;
            xoff += M * (size_t)ts->cols;
        } else {
            l->xoffs[t] = l->xoffs[lead];
        }
        float *X = keep_patches ? l->xp + l->xoffs[t] : by ? NULL : l->pbuf;
        const bool make = lead == t || (by && !keep_patches);
        if (!make && keep_input)
            memcpy(l->xmax + (size_t)t * n, l->xmax + (size_t)lead * n, sizeof(float) * n);
        s = rpu_conv_tile_forward(l, t, x, X, make, g0, g1, direct ? y : l->obuf + off, direct,
                                  &lmax);
        if (!direct) off += M * (size_t)ts->rows;
    }
    const size_t ny = (size_t)n * Co * l->Lout;
    const size_t Lo = (size_t)l->Lout;
    int p0, p1; /* this rank's samples of the result */
    rpu_batch_part(n, l->rank, l->size, &p0, &p1);
    if (s == RPU_OK && !contrib_table(l, 1))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the delivery", l->label);
    if (direct) {
        /* each value goes from the rank that computed it (with the bias) to the owner of
         * its sample, as it is (-0 made +0) */
        if (s == RPU_OK)
            s = rpu_deliver_prepare(&l->ctab, l->rank, n, Co, Lo, sizeof(float), &l->dbuf);
        RPU_CHECK(agree_ok(l, s));
        RPU_CHECK(rpu_deliver(l->comm, RPU_DELIVER_COPY_FLOAT, &l->ctab, n, Co, Lo, y, &l->dbuf));
        if (replicated) RPU_CHECK(replicate(l, y, Co, Lo));
        l->have_x = l->training;
        return RPU_OK;
    }
    /* buffers of the reduction first: a local failure must be known to every rank before
     * the collectives */
    if (s == RPU_OK && !grow((void **)&l->acc, &l->acc_cap, sizeof(int64_t) * ny))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the reduction", l->label);
    if (s == RPU_OK)
        s = rpu_deliver_prepare(&l->ctab, l->rank, n, Co, Lo, sizeof(int64_t), &l->dbuf);
    double gmax = 0;
    RPU_CHECK(agree_max(l, s, &gmax, lmax));
    const int S = rpu_fixed_scale(gmax > 0 ? gmax : 1.0, l->grid.n_in);
    const double up = rpu_pow2(S);
    const float down = rpu_fixed_down(S);
    /* sample by sample, so that its sums stay in cache while every tile adds its terms */
    for (int nn = 0; nn < n; ++nn) {
        int64_t *an = l->acc + (size_t)nn * Co * Lo;
        memset(an, 0, sizeof(int64_t) * Co * Lo);
        off = 0;
        for (int t = 0; t < l->grid.n_tiles; ++t) {
            if (!l->tiles[t]) continue;
            const rpu_tile_slot *ts = &l->grid.tiles[t];
            const size_t blk = (size_t)ts->rows * Lo;
            const share sh = holder_share(l, t);
            if (nn >= sh.s0 && nn < sh.s1) {
                const float *T = l->obuf + off + (size_t)nn * blk; /* [rows, Lout] of nn */
                int64_t *a = an + (size_t)(ts->group * l->grid.out_per_group + ts->out_ch0) * Lo;
                rpu_to_fixed_add(a, T, blk, up);
            }
            off += M * (size_t)ts->rows;
        }
    }
    RPU_CHECK(rpu_deliver(l->comm, RPU_DELIVER_ADD_INT64, &l->ctab, n, Co, Lo, l->acc, &l->dbuf));
    for (int nn = p0; nn < p1; ++nn)
        for (int c = 0; c < Co; ++c) {
            const float b = l->bias ? l->bias[c] : 0.0f;
            const int64_t *a = l->acc + ((size_t)nn * Co + c) * Lo;
            float *yo = y + ((size_t)nn * Co + c) * Lo;
            for (size_t p = 0; p < Lo; ++p)
                yo[p] = rpu_from_fixed(a[p], S, down) + b;
        }
    if (replicated) RPU_CHECK(replicate(l, y, Co, Lo));
    l->have_x = l->training;
    return RPU_OK;
}

rpu_status rpu_conv_forward(rpu_conv *l, const float *x, int n, const int *in_size, float *y) {
    return conv_forward(l, x, n, in_size, y, 1);
}

rpu_status rpu_conv_forward_part(rpu_conv *l, const float *x, int n, const int *in_size, float *y) {
    return conv_forward(l, x, n, in_size, y, 0);
}

/* ps[c] = the sum of one sample's dy [Co, L] over the positions of channel c, in double in
 * position order. Eight channels at a time, each with its own sum (the same additions in
 * the same order), so that the additions of different channels overlap instead of each
 * waiting for the previous one. */
static void bias_sample_sums(const float *dy, int Co, int L, double *ps) {
    enum { B = 8 };
    for (int c0 = 0; c0 < Co; c0 += B) {
        const int nb = Co - c0 < B ? Co - c0 : B;
        double acc[B] = {0};
        const float *d = dy + (size_t)c0 * L;
        if (nb == B) {
            for (int p = 0; p < L; ++p)
                for (int j = 0; j < B; ++j)
                    acc[j] += d[(size_t)j * L + p];
        } else {
            for (int j = 0; j < nb; ++j)
                for (int p = 0; p < L; ++p)
                    acc[j] += d[(size_t)j * L + p];
        }
        for (int j = 0; j < nb; ++j)
            ps[c0 + j] = acc[j];
    }
}

/* The bias gradient of the last backward: per sample the sums over positions
 * (bias_sample_sums), then the samples' sums added in sample order in double and rounded
 * once to float, so the value does not depend on which rank summed which sample. Each rank
 * sums its own samples (rpu_batch_part: every channel of them is there, whatever the
 * layer fetched) and gathers the others' (one MPI_Allgatherv of doubles; collective). */
static rpu_status bias_grad(rpu_conv *l, const float *dy) {
    const int n = l->n, Co = l->p.out_channels, L = l->Lout;
    int s0 = 0, s1 = n;
    rpu_batch_part(n, l->rank, l->size, &s0, &s1);
    for (int nn = s0; nn < s1; ++nn)
        bias_sample_sums(dy + (size_t)nn * Co * L, Co, L, l->bsum + (size_t)nn * Co);
    if (l->size > 1) {
        int *counts = l->bcounts, *displs = l->bcounts + l->size;
        for (int q = 0; q < l->size; ++q) {
            int a, b;
            rpu_batch_part(n, q, l->size, &a, &b);
            counts[q] = (b - a) * Co;
            displs[q] = a * Co;
        }
        const int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, l->bsum, counts, displs,
                                      MPI_DOUBLE, l->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgatherv");
    }
    for (int c = 0; c < Co; ++c) {
        double a = 0;
        for (int nn = 0; nn < n; ++nn)
            a += l->bsum[(size_t)nn * Co + c];
        l->bias_grad[c] = (float)a;
    }
    l->have_bgrad = 1;
    return RPU_OK;
}

/* Tiles contributing to one element of the input gradient: one per output split times the
 * input splits that share a channel (grid.in_share: 1 unless the tile_array split cuts a
 * kernel block). */
static int dx_terms(const rpu_conv *l) {
    return l->grid.n_out * l->grid.in_share;
}

/* The backward; replicated: every rank receives the whole input gradient, else only its
 * samples' (rpu_conv_backward_part). */
static rpu_status conv_backward(rpu_conv *l, const float *dy, float *dx, int replicated) {
    if (!l || !dy) return RPU_FAIL(RPU_ERR_ARG, "backward: NULL argument");
    if (l->n < 1) return RPU_FAIL(RPU_ERR_ARG, "layer %s: backward before any forward", l->label);
    const int n = l->n, C = l->p.in_channels, K = l->K;
    const size_t M = (size_t)n * l->Lout;
    if (l->training) {
        if (!grow((void **)&l->dp, &l->dp_cap, sizeof(float) * M * (owned_width(l, 1) + 1)) ||
            !rpu_conv_keep_maxima(l))
            return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory to keep the gradients",
                            l->label);
        size_t doff = 0;
        for (int t = 0; t < l->grid.n_tiles; ++t) {
            if (!l->tiles[t]) continue;
            int g0, g1;
            needed_samples(l, t, 0, &g0, &g1);
            rpu_conv_gather_grads(l, t, dy, l->dp + doff, g0, g1, 0, l->grid.tiles[t].rows);
            if (keeps_rows(l, t)) { /* the other samples: its update rows only */
                int r0, r1;
                rpu_conv_update_rows(l, t, &r0, &r1);
                rpu_conv_gather_grads(l, t, dy, l->dp + doff, 0, g0, r0, r1);
                rpu_conv_gather_grads(l, t, dy, l->dp + doff, g1, l->n, r0, r1);
            }
            doff += M * (size_t)l->grid.tiles[t].rows;
        }
        l->have_dy = 1;
    }
    if (l->bias_grad) RPU_CHECK(bias_grad(l, dy));
    if (!dx) return RPU_OK;
    rpu_status s = RPU_OK;
    /* one contributing tile per input element (dx_terms 1): col2im of each tile's results
     * straight into dx; else into the tiles' own images, one after the other in obuf,
     * summed below */
    const bool direct = dx_terms(l) == 1;
    const size_t Li = (size_t)l->Lin;
    size_t total = 0;
    for (int t = 0; t < l->grid.n_tiles && !direct; ++t)
        if (l->tiles[t]) total += (size_t)n * l->grid.tiles[t].in_ch * Li;
    if (!grow((void **)&l->obuf, &l->obuf_cap, sizeof(float) * (total ? total : 1)))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for a batch of %d", l->label, n);
    double lmax = 0;
    size_t off = 0, doff = 0;
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        if (!l->tiles[t]) continue;
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        s = rpu_conv_tile_backward(l, t, dy, l->training ? l->dp + doff : NULL,
                                   direct ? dx : l->obuf + off, direct, &lmax);
        doff += M * (size_t)ts->rows;
        if (!direct) off += (size_t)n * ts->in_ch * Li;
    }
    const size_t nx = (size_t)n * C * l->Lin;
    int p0, p1; /* this rank's samples of the result */
    rpu_batch_part(n, l->rank, l->size, &p0, &p1);
    if (s == RPU_OK && !contrib_table(l, 0))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the delivery", l->label);
    if (direct) {
        /* col2im in float within the tile (a fixed order), then each value goes to the owner
         * of its sample as it is */
        if (s == RPU_OK)
            s = rpu_deliver_prepare(&l->ctab, l->rank, n, C, Li, sizeof(float), &l->dbuf);
        RPU_CHECK(agree_ok(l, s));
        RPU_CHECK(rpu_deliver(l->comm, RPU_DELIVER_COPY_FLOAT, &l->ctab, n, C, Li, dx, &l->dbuf));
        if (replicated) RPU_CHECK(replicate(l, dx, C, Li));
        return RPU_OK;
    }
    if (s == RPU_OK && !grow((void **)&l->acc, &l->acc_cap, sizeof(int64_t) * nx))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the reduction", l->label);
    if (s == RPU_OK)
        s = rpu_deliver_prepare(&l->ctab, l->rank, n, C, Li, sizeof(int64_t), &l->dbuf);
    double gmax = 0;
    RPU_CHECK(agree_max(l, s, &gmax, lmax));
    /* each tile's col2im in float (a fixed order within the tile; a value sums at most K
     * terms), then the tiles' images summed in int64 (dx_terms per element) */
    const int S = rpu_fixed_scale(gmax > 0 ? gmax * K : 1.0, (long)dx_terms(l));
    const double up = rpu_pow2(S);
    const float down = rpu_fixed_down(S);
    for (int nn = 0; nn < n; ++nn) { /* sample by sample, as the forward */
        int64_t *an = l->acc + (size_t)nn * C * Li;
        memset(an, 0, sizeof(int64_t) * C * Li);
        off = 0;
        for (int t = 0; t < l->grid.n_tiles; ++t) {
            if (!l->tiles[t]) continue;
            const rpu_tile_slot *ts = &l->grid.tiles[t];
            const size_t img = (size_t)ts->in_ch * Li;
            const share sh = holder_share(l, t);
            if (nn >= sh.s0 && nn < sh.s1) {
                const float *T = l->obuf + off + (size_t)nn * img; /* the tile's image of nn */
                int64_t *a = an + (size_t)(ts->group * l->grid.in_per_group + ts->in_ch0) * Li;
                rpu_to_fixed_add(a, T, img, up);
            }
            off += (size_t)n * ts->in_ch * Li;
        }
    }
    RPU_CHECK(rpu_deliver(l->comm, RPU_DELIVER_ADD_INT64, &l->ctab, n, C, Li, l->acc, &l->dbuf));
    const size_t q0 = (size_t)p0 * C * Li, q1 = (size_t)p1 * C * Li;
    for (size_t q = q0; q < q1; ++q)
        dx[q] = rpu_from_fixed(l->acc[q], S, down);
    if (replicated) RPU_CHECK(replicate(l, dx, C, Li));
    return RPU_OK;
}

rpu_status rpu_conv_backward(rpu_conv *l, const float *dy, float *dx) {
    return conv_backward(l, dy, dx, 1);
}

rpu_status rpu_conv_backward_part(rpu_conv *l, const float *dy, float *dx) {
    return conv_backward(l, dy, dx, 0);
}

rpu_status rpu_conv_program(rpu_conv *l, uint64_t repeat) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "program: NULL layer");
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->tiles[t]) RPU_CHECK(tile_error(l, t, rpu_tile_program(l->tiles[t], repeat)));
    return RPU_OK;
}

rpu_status rpu_conv_drift(rpu_conv *l, double t_inference, uint32_t draw) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "drift: NULL layer");
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->tiles[t])
            RPU_CHECK(tile_error(l, t, rpu_tile_drift_to(l->tiles[t], t_inference, draw)));
    return RPU_OK;
}

/* ------------------------------------------------------------------ linear */

void rpu_linear_params_default(rpu_linear_params *p, int in_features, int out_features) {
    memset(p, 0, sizeof *p);
    p->in_features = in_features;
    p->out_features = out_features;
    p->bias = RPU_BIAS_DIGITAL;
    p->mac = RPU_MAC_BLAS;
}

static rpu_conv_params linear_as_conv(const rpu_linear_params *p) {
    rpu_conv_params c;
    rpu_conv_params_default(&c, 0, p->in_features, p->out_features, 1);
    c.bias = p->bias;
    c.layer_id = p->layer_id;
    c.seed = p->seed;
    c.mac = p->mac;
    c.split = p->split;
    memcpy(c.name, p->name, sizeof c.name);
    return c;
}

rpu_status rpu_linear_create(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                             rpu_linear **layer) {
    if (!layer) return RPU_FAIL(RPU_ERR_ARG, "linear create: output pointer is NULL");
    *layer = NULL;
    if (!p) return RPU_FAIL(RPU_ERR_ARG, "linear create: params is NULL");
    rpu_conv_params c = linear_as_conv(p);
    if (memchr(c.name, '\0', sizeof c.name) && (p->in_features < 1 || p->out_features < 1)) {
        char lb[RPU_LAYER_NAME_MAX + 16];
        params_label(&c, lb, sizeof lb);
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: linear in_features (%d) and out_features (%d) must be >= 1", lb,
                        p->in_features, p->out_features);
    }
    rpu_linear *l = (rpu_linear *)calloc(1, sizeof *l);
    if (!l) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a linear layer");
    rpu_status s = conv_create(comm, &c, 0, cfg, &l->c);
    if (s != RPU_OK) {
        free(l);
        return s;
    }
    *layer = l;
    return RPU_OK;
}

void rpu_linear_destroy(rpu_linear **layer) {
    if (!layer || !*layer) return;
    rpu_conv_destroy(&(*layer)->c);
    free(*layer);
    *layer = NULL;
}

rpu_status rpu_linear_from_digital(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                                   const float *weight, const float *bias, rpu_linear **layer) {
    RPU_CHECK(rpu_linear_create(comm, p, cfg, layer));
    rpu_status s = rpu_agree((*layer)->c->comm, rpu_conv_set_weights((*layer)->c, weight, bias));
    if (s != RPU_OK) rpu_linear_destroy(layer);
    return s;
}

void rpu_linear_set_training(rpu_linear *l, bool training) {
    if (l) rpu_conv_set_training(l->c, training);
}
rpu_status rpu_linear_forward(rpu_linear *l, const float *x, int n, float *y) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear forward: NULL layer");
    return rpu_conv_forward(l->c, x, n, NULL, y);
}
rpu_status rpu_linear_forward_part(rpu_linear *l, const float *x, int n, float *y) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear forward: NULL layer");
    return rpu_conv_forward_part(l->c, x, n, NULL, y);
}
rpu_status rpu_linear_backward_part(rpu_linear *l, const float *dy, float *dx) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear backward: NULL layer");
    return rpu_conv_backward_part(l->c, dy, dx);
}
rpu_status rpu_linear_backward(rpu_linear *l, const float *dy, float *dx) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear backward: NULL layer");
    return rpu_conv_backward(l->c, dy, dx);
}
rpu_status rpu_linear_update(rpu_linear *l, float lr) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear update: NULL layer");
    return rpu_conv_update(l->c, lr);
}
rpu_status rpu_linear_post_update(rpu_linear *l) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear post_update: NULL layer");
    return rpu_conv_post_update(l->c);
}
rpu_status rpu_linear_set_weights(rpu_linear *l, const float *weight, const float *bias) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear set_weights: NULL layer");
    return rpu_conv_set_weights(l->c, weight, bias);
}
rpu_status rpu_linear_get_weights(rpu_linear *l, float *weight, float *bias, rpu_weight_read read) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear get_weights: NULL layer");
    return rpu_conv_get_weights(l->c, weight, bias, read);
}
rpu_status rpu_linear_get_grad(rpu_linear *l, float *weight_grad, float *bias_grad) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "linear get_grad: NULL layer");
    return rpu_conv_get_grad(l->c, weight_grad, bias_grad);
}
rpu_conv *rpu_linear_as_conv(rpu_linear *l) {
    return l ? l->c : NULL;
}
