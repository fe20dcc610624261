/* Reference convolution by direct loops (see ref_conv.h). Every dimension is handled as
 * 3d: the missing leading dims of 1d/2d have size 1, kernel 1, stride 1, padding 0,
 * dilation 1. */
#include "ref_conv.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int cin, cout, groups, cin_g, cout_g;
    int k[3], s[3], pad[3], dil[3], in[3], out[3];
    int K;    /* kernel elements */
    int Lin;  /* input positions per channel */
    int Lout; /* output positions */
    int ok;   /* every output size >= 1 */
} geo;

static void geo_make(const rpu_conv_params *p, const int *in_size, geo *g) {
    const int off = 3 - p->ndim;
    g->cin = p->in_channels;
    g->cout = p->out_channels;
    g->groups = p->groups;
    g->cin_g = p->in_channels / p->groups;
    g->cout_g = p->out_channels / p->groups;
    g->K = 1;
    g->Lin = 1;
    g->Lout = 1;
    g->ok = 1;
    for (int a = 0; a < 3; ++a) {
        if (a < off) {
            g->k[a] = 1, g->s[a] = 1, g->pad[a] = 0, g->dil[a] = 1, g->in[a] = 1;
        } else {
            g->k[a] = p->kernel[a - off];
            g->s[a] = p->stride[a - off];
            g->pad[a] = p->padding[a - off];
            g->dil[a] = p->dilation[a - off];
            g->in[a] = in_size[a - off];
        }
        int span = g->in[a] + 2 * g->pad[a] - g->dil[a] * (g->k[a] - 1) - 1;
        g->out[a] = span < 0 ? 0 : span / g->s[a] + 1;
        if (g->out[a] < 1) g->ok = 0;
        g->K *= g->k[a];
        g->Lin *= g->in[a];
        g->Lout *= g->out[a];
    }
}

/* Input position (within one channel) read by output position (o0,o1,o2) through kernel
 * offset (k0,k1,k2), or -1 for a padding tap. */
static int tap(const geo *g, const int o[3], const int kk[3]) {
    int idx = 0;
    for (int a = 0; a < 3; ++a) {
        int i = o[a] * g->s[a] - g->pad[a] + kk[a] * g->dil[a];
        if (i < 0 || i >= g->in[a]) return -1;
        idx = idx * g->in[a] + i;
    }
    return idx;
}

static void unflatten(int q, const int dims[3], int v[3]) {
    v[2] = q % dims[2];
    q /= dims[2];
    v[1] = q % dims[1];
    v[0] = q / dims[1];
}

int ref_conv_out_size(const rpu_conv_params *p, const int *in_size, int *out_size) {
    geo g;
    geo_make(p, in_size, &g);
    for (int a = 0; a < p->ndim; ++a)
        out_size[a] = g.out[3 - p->ndim + a];
    return g.ok ? 0 : -1;
}

size_t ref_conv_in_elems(const rpu_conv_params *p, const int *in_size) {
    geo g;
    geo_make(p, in_size, &g);
    return (size_t)g.cin * (size_t)g.Lin;
}

size_t ref_conv_out_elems(const rpu_conv_params *p, const int *in_size) {
    geo g;
    geo_make(p, in_size, &g);
    return (size_t)g.cout * (size_t)g.Lout;
}

int ref_conv_out_positions(const rpu_conv_params *p, const int *in_size) {
    geo g;
    geo_make(p, in_size, &g);
    return g.Lout;
}

void ref_conv_forward(const rpu_conv_params *p, const float *x, int n, const int *in_size,
                      const float *w, const float *b, float *y) {
    geo g;
    geo_make(p, in_size, &g);
    for (int im = 0; im < n; ++im)
        for (int o = 0; o < g.cout; ++o) {
            const int grp = o / g.cout_g;
            for (int q = 0; q < g.Lout; ++q) {
                int op[3];
                unflatten(q, g.out, op);
                double acc = b ? (double)b[o] : 0.0;
                for (int c = 0; c < g.cin_g; ++c) {
                    const int ci = grp * g.cin_g + c;
                    const float *xc = x + ((size_t)im * g.cin + ci) * g.Lin;
                    for (int kp = 0; kp < g.K; ++kp) {
                        int kk[3];
                        unflatten(kp, g.k, kk);
                        int t = tap(&g, op, kk);
                        if (t < 0) continue;
                        acc += (double)w[((size_t)o * g.cin_g + c) * g.K + kp] * (double)xc[t];
                    }
                }
                y[((size_t)im * g.cout + o) * g.Lout + q] = (float)acc;
            }
        }
}

void ref_conv_backward(const rpu_conv_params *p, const float *dy, int n, const int *in_size,
                       const float *w, float *dx) {
    geo g;
    geo_make(p, in_size, &g);
    size_t total = (size_t)n * g.cin * g.Lin;
    double *acc = calloc(total, sizeof(double));
    if (!acc) abort();
    for (int im = 0; im < n; ++im)
        for (int o = 0; o < g.cout; ++o) {
            const int grp = o / g.cout_g;
            for (int q = 0; q < g.Lout; ++q) {
                int op[3];
                unflatten(q, g.out, op);
                const double d = dy[((size_t)im * g.cout + o) * g.Lout + q];
                for (int c = 0; c < g.cin_g; ++c) {
                    const int ci = grp * g.cin_g + c;
                    double *ac = acc + ((size_t)im * g.cin + ci) * g.Lin;
                    for (int kp = 0; kp < g.K; ++kp) {
                        int kk[3];
                        unflatten(kp, g.k, kk);
                        int t = tap(&g, op, kk);
                        if (t < 0) continue;
                        ac[t] += (double)w[((size_t)o * g.cin_g + c) * g.K + kp] * d;
                    }
                }
            }
        }
    for (size_t i = 0; i < total; ++i)
        dx[i] = (float)acc[i];
    free(acc);
}

void ref_conv_weight_grad(const rpu_conv_params *p, const float *x, const float *dy, int n,
                          const int *in_size, float *dw, float *db) {
    geo g;
    geo_make(p, in_size, &g);
    size_t nw = (size_t)g.cout * g.cin_g * g.K;
    double *acc = calloc(nw + (size_t)g.cout, sizeof(double));
    if (!acc) abort();
    double *accb = acc + nw;
    for (int im = 0; im < n; ++im)
        for (int o = 0; o < g.cout; ++o) {
            const int grp = o / g.cout_g;
            for (int q = 0; q < g.Lout; ++q) {
                int op[3];
                unflatten(q, g.out, op);
                const double d = dy[((size_t)im * g.cout + o) * g.Lout + q];
                accb[o] += d;
                for (int c = 0; c < g.cin_g; ++c) {
                    const int ci = grp * g.cin_g + c;
                    const float *xc = x + ((size_t)im * g.cin + ci) * g.Lin;
                    for (int kp = 0; kp < g.K; ++kp) {
                        int kk[3];
                        unflatten(kp, g.k, kk);
                        int t = tap(&g, op, kk);
                        if (t < 0) continue;
                        acc[((size_t)o * g.cin_g + c) * g.K + kp] += d * (double)xc[t];
                    }
                }
            }
        }
    for (size_t i = 0; i < nw; ++i)
        dw[i] = (float)acc[i];
    if (db)
        for (int o = 0; o < g.cout; ++o)
            db[o] = (float)accb[o];
    free(acc);
}

void ref_im2col(const rpu_conv_params *p, const float *x, int n, const int *in_size, float *cols) {
    geo g;
    geo_make(p, in_size, &g);
    const size_t width = (size_t)g.cin * g.K;
    for (int im = 0; im < n; ++im)
        for (int q = 0; q < g.Lout; ++q) {
            int op[3];
            unflatten(q, g.out, op);
            float *row = cols + ((size_t)im * g.Lout + q) * width;
            for (int c = 0; c < g.cin; ++c)
                for (int kp = 0; kp < g.K; ++kp) {
                    int kk[3];
                    unflatten(kp, g.k, kk);
                    int t = tap(&g, op, kk);
                    row[(size_t)c * g.K + kp] =
                        t < 0 ? 0.0f : x[((size_t)im * g.cin + c) * g.Lin + t];
                }
        }
}

void ref_col2im(const rpu_conv_params *p, const float *dcols, int n, const int *in_size,
                float *dx) {
    geo g;
    geo_make(p, in_size, &g);
    const size_t width = (size_t)g.cin * g.K;
    size_t total = (size_t)n * g.cin * g.Lin;
    double *acc = calloc(total, sizeof(double));
    if (!acc) abort();
    for (int im = 0; im < n; ++im)
        for (int q = 0; q < g.Lout; ++q) {
            int op[3];
            unflatten(q, g.out, op);
            const float *row = dcols + ((size_t)im * g.Lout + q) * width;
            for (int c = 0; c < g.cin; ++c)
                for (int kp = 0; kp < g.K; ++kp) {
                    int kk[3];
                    unflatten(kp, g.k, kk);
                    int t = tap(&g, op, kk);
                    if (t >= 0)
                        acc[((size_t)im * g.cin + c) * g.Lin + t] += row[(size_t)c * g.K + kp];
                }
        }
    for (size_t i = 0; i < total; ++i)
        dx[i] = (float)acc[i];
    free(acc);
}
