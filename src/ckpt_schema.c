/* Checkpoints: the schema — names and tile keys, the attributes of the root and of a layer
 * group, and the comparison of a stored layer with the model's (README.md "Checkpoints"). */
#include "ckpt_impl.h"

#include "rpusim/mapping.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ names */

bool ck_valid_component(const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; ++i) {
        const char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool ck_valid_array_path(const char *p) {
    if (!p || strlen(p) >= CK_ARRAY_PATH) return false;
    const char *s = p;
    for (bool first = true;; first = false) {
        const char *e = strchr(s, '/');
        const size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!ck_valid_component(s, n)) return false;
        if (first && n == 6 && !strncmp(s, "layers", 6)) return false;
        if (!e) return true;
        s = e + 1;
    }
}

void ck_tile_key(int groups, int n_in, int n_out, int t, char key[48]) {
    const int j = t % n_out, i = (t / n_out) % n_in, g = t / (n_out * n_in);
    if (groups > 1)
        snprintf(key, 48, "g%d_%d_%d", g, i, j);
    else
        snprintf(key, 48, "%d_%d", i, j);
}

/* ------------------------------------------------------------------ layer attributes */

void ck_lattrs_free(ck_lattrs *a) {
    free(a->in_split);
    free(a->out_split);
    free(a->rpu_config);
    a->in_split = a->out_split = NULL;
    a->rpu_config = NULL;
}

static const char *pad_mode_name(rpu_padding_mode m) {
    switch (m) {
    case RPU_PAD_ZEROS:
        return "zeros";
    case RPU_PAD_REFLECT:
        return "reflect";
    case RPU_PAD_REPLICATE:
        return "replicate";
    case RPU_PAD_CIRCULAR:
        return "circular";
    }
    return "unknown";
}

rpu_status ck_lattrs_from_layer(rpu_conv *l, ck_lattrs *a) {
    memset(a, 0, sizeof *a);
    const rpu_conv_params *p = rpu_conv_get_params(l);
    const rpu_tile_grid *g = rpu_conv_grid(l);
    const bool lin = rpu_conv_is_linear(l);
    a->ndim = lin ? 0 : p->ndim;
    if (lin)
        snprintf(a->type, sizeof a->type, "linear");
    else
        snprintf(a->type, sizeof a->type, "conv%dd", p->ndim);
    a->in_ch = p->in_channels;
    a->out_ch = p->out_channels;
    a->groups = lin ? 1 : p->groups;
    for (int d = 0; d < a->ndim; ++d) {
        a->kernel[d] = p->kernel[d];
        a->stride[d] = p->stride[d];
        a->padding[d] = p->padding[d];
        a->dilation[d] = p->dilation[d];
    }
    snprintf(a->padding_mode, sizeof a->padding_mode, "%s", pad_mode_name(p->padding_mode));
    snprintf(a->bias, sizeof a->bias, "%s",
             p->bias == RPU_BIAS_NONE     ? "none"
             : p->bias == RPU_BIAS_ANALOG ? "analog"
                                          : "digital");
    snprintf(a->split, sizeof a->split, "%s", rpu_split_name(g->split));
    a->layer_id = p->layer_id;
    a->seed = p->seed;
    snprintf(a->mac, sizeof a->mac, "%s", p->mac == RPU_MAC_EXACT ? "exact" : "blas");
    a->use_indexed = p->use_indexed ? 1 : 0;
    a->n_in = g->n_in;
    a->n_out = g->n_out;
    a->n_tiles = g->n_tiles;
    a->in_split = (int *)malloc((size_t)g->n_in * sizeof(int));
    a->out_split = (int *)malloc((size_t)g->n_out * sizeof(int));
    if (!a->in_split || !a->out_split) {
        ck_lattrs_free(a);
        return RPU_FAIL(RPU_ERR_NOMEM, "checkpoint: out of memory");
    }
    /* mapped: input channels per split; tile_array: columns of the unfolded patch */
    for (int i = 0; i < g->n_in; ++i) {
        const rpu_tile_slot *ts = &g->tiles[(size_t)i * (size_t)g->n_out];
        a->in_split[i] = g->split == RPU_SPLIT_MAPPED ? ts->in_ch : ts->ncol;
    }
    for (int j = 0; j < g->n_out; ++j)
        a->out_split[j] = g->tiles[j].out_ch;
    rpu_status s = rpu_config_to_text(rpu_conv_config(l), &a->rpu_config);
    if (s != RPU_OK) ck_lattrs_free(a);
    return s;
}

int ck_lattrs_write(hid_t g, const ck_lattrs *a) {
    int e = 0;
    e |= ck_attr_write_str(g, "type", a->type);
    e |= ck_attr_write_i32(g, "in_channels", a->in_ch);
    e |= ck_attr_write_i32(g, "out_channels", a->out_ch);
    if (a->ndim > 0) {
        e |= ck_attr_write_i32s(g, "kernel", a->kernel, a->ndim);
        e |= ck_attr_write_i32s(g, "stride", a->stride, a->ndim);
        e |= ck_attr_write_i32s(g, "padding", a->padding, a->ndim);
        e |= ck_attr_write_i32s(g, "dilation", a->dilation, a->ndim);
        e |= ck_attr_write_str(g, "padding_mode", a->padding_mode);
        e |= ck_attr_write_i32(g, "use_indexed", a->use_indexed);
    }
    e |= ck_attr_write_i32(g, "groups", a->groups);
    e |= ck_attr_write_str(g, "bias", a->bias);
    e |= ck_attr_write_str(g, "split", a->split);
    e |= ck_attr_write_i32s(g, "in_split_sizes", a->in_split, a->n_in);
    e |= ck_attr_write_i32s(g, "out_split_sizes", a->out_split, a->n_out);
    e |= ck_attr_write(g, "layer_id", H5T_STD_U32LE, H5T_NATIVE_UINT32, -1, &a->layer_id);
    e |= ck_attr_write(g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &a->seed);
    e |= ck_attr_write_str(g, "mac", a->mac);
    e |= ck_attr_write_str(g, "rpu_config", a->rpu_config);
    return e ? -1 : 0;
}

static int read_small_str(hid_t g, const char *name, char *dst, size_t cap, char *why) {
    char *s = NULL;
    if (ck_attr_read_str(g, name, &s, why) < 0) return -1;
    if (strlen(s) >= cap) {
        snprintf(why, CK_WHY, "attribute '%s' is too long", name);
        free(s);
        return -1;
    }
    snprintf(dst, cap, "%s", s);
    free(s);
    return 0;
}

static int read_split(hid_t g, const char *name, int **out, int *n, char *why) {
    int64_t *v = (int64_t *)malloc(CK_MAX_SPLITS * sizeof *v);
    if (!v) {
        snprintf(why, CK_WHY, "out of memory");
        return -1;
    }
    int cnt = 0;
    int r = ck_attr_read_ints(g, name, v, CK_MAX_SPLITS, &cnt, why);
    if (r == 0 && cnt < 1) {
        snprintf(why, CK_WHY, "attribute '%s' is empty", name);
        r = -1;
    }
    if (r == 0) {
        *out = (int *)malloc((size_t)cnt * sizeof(int));
        if (!*out) {
            snprintf(why, CK_WHY, "out of memory");
            r = -1;
        }
        for (int i = 0; r == 0 && i < cnt; ++i) {
            if (v[i] < 1 || v[i] > INT_MAX) {
                snprintf(why, CK_WHY, "attribute '%s' holds %lld", name, (long long)v[i]);
                r = -1;
            } else {
                (*out)[i] = (int)v[i];
            }
        }
        *n = cnt;
    }
    free(v);
    return r;
}

int ck_lattrs_read(hid_t g, ck_lattrs *a, char *why) {
    memset(a, 0, sizeof *a);
    int64_t v[3];
    int n;
    if (read_small_str(g, "type", a->type, sizeof a->type, why) < 0) return -1;
    if (!strcmp(a->type, "linear"))
        a->ndim = 0;
    else if (!strcmp(a->type, "conv1d"))
        a->ndim = 1;
    else if (!strcmp(a->type, "conv2d"))
        a->ndim = 2;
    else if (!strcmp(a->type, "conv3d"))
        a->ndim = 3;
    else {
        snprintf(why, CK_WHY, "unknown layer type '%s'", a->type);
        return -1;
    }
    if (ck_attr_read_int(g, "in_channels", v, why) < 0) return -1;
    a->in_ch = (int)v[0];
    if (ck_attr_read_int(g, "out_channels", v, why) < 0) return -1;
    a->out_ch = (int)v[0];
    if (ck_attr_read_int(g, "groups", v, why) < 0) return -1;
    a->groups = (int)v[0];
    if (a->in_ch < 1 || a->out_ch < 1 || a->groups < 1) {
        snprintf(why, CK_WHY, "channels %d -> %d, groups %d are invalid", a->in_ch, a->out_ch,
                 a->groups);
        return -1;
    }
    snprintf(a->padding_mode, sizeof a->padding_mode, "zeros");
    if (a->ndim > 0) {
        static const char *const names[4] = {"kernel", "stride", "padding", "dilation"};
        int *dst[4] = {a->kernel, a->stride, a->padding, a->dilation};
        for (int k = 0; k < 4; ++k) {
            if (ck_attr_read_ints(g, names[k], v, 3, &n, why) < 0) return -1;
            if (n != a->ndim) {
                snprintf(why, CK_WHY, "attribute '%s' has %d values for a %s", names[k], n,
                         a->type);
                return -1;
            }
            for (int d = 0; d < n; ++d)
                dst[k][d] = (int)v[d];
        }
        if (read_small_str(g, "padding_mode", a->padding_mode, sizeof a->padding_mode, why) < 0)
            return -1;
        if (ck_attr_read_int(g, "use_indexed", v, why) < 0) return -1;
        a->use_indexed = v[0] != 0;
    }
    if (read_small_str(g, "bias", a->bias, sizeof a->bias, why) < 0) return -1;
    if (strcmp(a->bias, "none") && strcmp(a->bias, "digital") && strcmp(a->bias, "analog")) {
        snprintf(why, CK_WHY, "bias is '%s' (none, digital or analog)", a->bias);
        return -1;
    }
    /* split: written since the tile_array split; a file without it is mapped */
    const htri_t has_split = H5Aexists(g, "split");
    if (has_split < 0) {
        snprintf(why, CK_WHY, "attribute 'split' unreadable");
        return -1;
    }
    snprintf(a->split, sizeof a->split, "mapped");
    if (has_split > 0 && read_small_str(g, "split", a->split, sizeof a->split, why) < 0) return -1;
    if (strcmp(a->split, "mapped") && strcmp(a->split, "tile_array")) {
        snprintf(why, CK_WHY, "split is '%s' (mapped or tile_array)", a->split);
        return -1;
    }
    if (read_split(g, "in_split_sizes", &a->in_split, &a->n_in, why) < 0) goto fail;
    if (read_split(g, "out_split_sizes", &a->out_split, &a->n_out, why) < 0) goto fail;
    if ((int64_t)a->groups * a->n_in * a->n_out > INT_MAX) {
        snprintf(why, CK_WHY, "too many tiles");
        goto fail;
    }
    a->n_tiles = a->groups * a->n_in * a->n_out;
    if (ck_attr_read_int(g, "layer_id", v, why) < 0) goto fail;
    a->layer_id = (uint32_t)v[0];
    if (ck_attr_read_u64(g, "seed", &a->seed, why) < 0) goto fail;
    if (read_small_str(g, "mac", a->mac, sizeof a->mac, why) < 0) goto fail;
    if (ck_attr_read_str(g, "rpu_config", &a->rpu_config, why) < 0) goto fail;
    return 0;
fail:
    ck_lattrs_free(a);
    return -1;
}

static bool ints_equal(const int *a, const int *b, int n) {
    for (int i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

static void ints_text(const int *v, int n, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o + 16 < cap; ++i)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", v[i]);
    if (n > 0 && o + 16 >= cap) snprintf(buf + o, cap - o, ",...");
}

int ck_lattrs_match(const ck_lattrs *f, const ck_lattrs *m, char *why) {
    char x[96], y[96];
    if (strcmp(f->type, m->type)) {
        snprintf(why, CK_WHY, "type is %s in the file, %s in the model", f->type, m->type);
        return 0;
    }
    if (f->in_ch != m->in_ch || f->out_ch != m->out_ch || f->groups != m->groups) {
        snprintf(why, CK_WHY,
                 "channels %d -> %d (groups %d) in the file, %d -> %d (groups %d) in the model",
                 f->in_ch, f->out_ch, f->groups, m->in_ch, m->out_ch, m->groups);
        return 0;
    }
    static const char *const names[4] = {"kernel", "stride", "padding", "dilation"};
    const int *fv[4] = {f->kernel, f->stride, f->padding, f->dilation};
    const int *mv[4] = {m->kernel, m->stride, m->padding, m->dilation};
    for (int k = 0; k < 4; ++k)
        if (!ints_equal(fv[k], mv[k], m->ndim)) {
            ints_text(fv[k], m->ndim, x, sizeof x);
            ints_text(mv[k], m->ndim, y, sizeof y);
            snprintf(why, CK_WHY, "%s is %s in the file, %s in the model", names[k], x, y);
            return 0;
        }
    if (strcmp(f->padding_mode, m->padding_mode)) {
        snprintf(why, CK_WHY, "padding_mode is %s in the file, %s in the model", f->padding_mode,
                 m->padding_mode);
        return 0;
    }
    if (strcmp(f->bias, m->bias)) {
        snprintf(why, CK_WHY, "bias is %s in the file, %s in the model", f->bias, m->bias);
        return 0;
    }
    if (strcmp(f->split, m->split)) {
        snprintf(why, CK_WHY,
                 "split is %s in the file, %s in the model (a layer's tiles cover other columns "
                 "under the other split)",
                 f->split, m->split);
        return 0;
    }
    if (f->n_in != m->n_in || !ints_equal(f->in_split, m->in_split, m->n_in)) {
        ints_text(f->in_split, f->n_in, x, sizeof x);
        ints_text(m->in_split, m->n_in, y, sizeof y);
        snprintf(why, CK_WHY, "in_split_sizes are [%s] in the file, [%s] in the model", x, y);
        return 0;
    }
    if (f->n_out != m->n_out || !ints_equal(f->out_split, m->out_split, m->n_out)) {
        ints_text(f->out_split, f->n_out, x, sizeof x);
        ints_text(m->out_split, m->n_out, y, sizeof y);
        snprintf(why, CK_WHY, "out_split_sizes are [%s] in the file, [%s] in the model", x, y);
        return 0;
    }
    if (f->layer_id != m->layer_id || f->seed != m->seed) {
        snprintf(why, CK_WHY,
                 "random streams keyed by layer_id %u, seed %llu in the file, layer_id %u, "
                 "seed %llu in the model",
                 f->layer_id, (unsigned long long)f->seed, m->layer_id,
                 (unsigned long long)m->seed);
        return 0;
    }
    return 1;
}

int ck_config_match(const char *text, const rpu_config *model, char *why) {
    rpu_config fc;
    rpu_config_default(&fc, RPU_KIND_SINGLE);
    if (rpu_config_parse(&fc, text, "rpu_config") != RPU_OK) {
        snprintf(why, CK_WHY, "attribute rpu_config does not parse: %.250s", rpu_last_error());
        return 0;
    }
    if (!model) return 1;
    /* inference-time parameters are not training state: a trained network may be
     * programmed with another noise model or compensation than it was saved with */
    fc.noise_model = model->noise_model;
    fc.drift_compensation = model->drift_compensation;
    if (rpu_config_equal(&fc, model)) return 1;
    const char *const *keys;
    const int nk = rpu_config_keys(&keys);
    for (int k = 0; k < nk; ++k) {
        char a[256], b[256];
        if (rpu_config_get(&fc, keys[k], a, sizeof a) != RPU_OK ||
            rpu_config_get(model, keys[k], b, sizeof b) != RPU_OK)
            continue;
        if (strcmp(a, b)) {
            snprintf(why, CK_WHY,
                     "rpu_config differs: %s = %.100s in the file, %.100s in the model", keys[k], a,
                     b);
            return 0;
        }
    }
    snprintf(why, CK_WHY, "rpu_config differs from the model's");
    return 0;
}

/* ------------------------------------------------------------------ root attributes */

void rpu_ckpt_info_free(rpu_ckpt_info *info) {
    if (!info) return;
    free(info->config);
    info->config = NULL;
}

void ck_write_root(hid_t file, const rpu_ckpt_meta *m, const char *config, int size, ck_ctx *cx) {
    int e = 0;
    e |= ck_attr_write_str(file, "format", RPU_CKPT_FORMAT);
    e |= ck_attr_write_i32(file, "schema_version", RPU_CKPT_SCHEMA_VERSION);
    e |= ck_attr_write_str(file, "rpusim_version", RPUSIM_VERSION);
    e |= ck_attr_write_str(file, "config", config);
    e |= ck_attr_write(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &m->seed);
    e |= ck_attr_write(file, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &m->step);
    e |= ck_attr_write(file, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &m->epoch);
    e |= ck_attr_write_i32(file, "ranks_at_save", size);
    if (e) {
        char why[CK_WHY];
        CK_FAIL(cx, RPU_ERR_IO, "/", "cannot write the root attributes (%s)", rpu_h5_why(why));
    }
}

int ck_read_root(hid_t file, rpu_ckpt_info *info, ck_ctx *cx) {
    char why[CK_WHY];
    char *fmt = NULL;
    memset(info, 0, sizeof *info);
    if (ck_attr_read_str(file, "format", &fmt, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "not an rpusim checkpoint (%s)", why);
        return -1;
    }
    const int bad = strcmp(fmt, RPU_CKPT_FORMAT);
    if (bad)
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "not an rpusim checkpoint (format is '%.60s', not '%s')",
                fmt, RPU_CKPT_FORMAT);
    free(fmt);
    if (bad) return -1;
    int64_t v;
    if (ck_attr_read_int(file, "schema_version", &v, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        return -1;
    }
    if (v != RPU_CKPT_SCHEMA_VERSION) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/",
                "schema_version %lld is not supported (this rpusim %s reads version %d)",
                (long long)v, RPUSIM_VERSION, RPU_CKPT_SCHEMA_VERSION);
        return -1;
    }
    info->schema_version = (int)v;
    char *ver = NULL;
    if (ck_attr_read_str(file, "rpusim_version", &ver, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        return -1;
    }
    snprintf(info->rpusim_version, sizeof info->rpusim_version, "%s", ver);
    free(ver);
    if (ck_attr_read_u64(file, "seed", &info->seed, why) < 0 ||
        ck_attr_read_int(file, "step", &info->step, why) < 0 ||
        ck_attr_read_int(file, "epoch", &info->epoch, why) < 0 ||
        ck_attr_read_int(file, "ranks_at_save", &v, why) < 0 ||
        ck_attr_read_str(file, "config", &info->config, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        rpu_ckpt_info_free(info);
        return -1;
    }
    info->ranks_at_save = (int)v;
    return 0;
}
