/* Private: per-element device state of a tile and the device models (spec §4), used by
 * the tile's update engine (update.c), the tile and later the checkpoint module.
 *
 * All arrays of one tile live in one allocation (block) and are [rows, cols] row-major
 * like the weights (rows = out = d_size, cols = in = x_size); only the arrays the
 * configured features use are allocated. Each array has its aihwkit name (spec §9). */
#ifndef RPUSIM_DEVICE_IMPL_H
#define RPUSIM_DEVICE_IMPL_H

#include "rpusim/config.h"
#include "rpusim/rng.h"
#include "rpusim/status.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define RPU_DEVICE_MAX_ARRAYS 24

typedef struct {
    const char *name; /* aihwkit hidden-parameter name, e.g. "max_bound" */
    float *data;      /* rows * cols values inside the block */
} rpu_device_array;

typedef struct {
    rpu_device_type type; /* as configured */
    /* effective parameters: soft_bounds_pmax mapped onto soft_bounds parameters (spec
     * §4.4), soft_bounds gammas fixed to 1, write_noise_std 0 for types without write noise */
    rpu_device_params par;
    int rows, cols;
    /* Row slice: this state holds rows [row0, row0 + rows) of a tile of rows_total rows
     * (0 and rows for a whole tile, as rpu_device_create sets them). The whole-array
     * operations below draw each cell's numbers at the whole tile's cell address and
     * return the whole tile's block counts, so a slice gets exactly the numbers of its rows
     * in the whole tile. */
    int row0, rows_total;
    /* 0 for floating_point and ideal (exact FP updates, no bounds, no per-cell arrays
     * except the drift state) */
    int pulsed;
    float granularity; /* weight granularity g (spec §3.3) */
    float *block;      /* the one allocation */
    size_t block_floats;
    /* views into block; NULL when the feature is off */
    float *max_bound, *min_bound, *dwmin_up, *dwmin_down;
    float *decay_scales;          /* lifetime > 0 */
    float *diffusion_rates;       /* diffusion > 0 */
    float *reset_bias;            /* reset_dtod > 0 (else the scalar par.reset) */
    float *slope_up, *slope_down; /* linear_step, soft_bounds(_pmax) */
    float *gamma_up, *gamma_down; /* pow_step */
    float *reference;             /* soft_bounds_reference */
    /* write_noise_std > 0 and the type has write noise (linear_step, soft_bounds(_pmax),
     * exp_step, pow_step, piecewise_step) */
    float *persistent_weights;
    float *drift_nu; /* drift.nu > 0 (any device type) */
    /* drift state (drift.nu > 0), arrays "drift_w0", "drift_t", "drift_prev": weight at the
     * drift start, start time (units of t_0), weight after the last drift call */
    float *drift_w0, *drift_t, *drift_prev;
    double drift_current_t; /* drift clock (units of t_0) */
    int drift_started;      /* 0 until the first drift call */
    int n_arrays;
    rpu_device_array arrays[RPU_DEVICE_MAX_ARRAYS];
} rpu_device_state;

/* Builds the device state of a rows x cols tile: draws every device-to-device value
 * (spec §4.1 draw order per element: j outer, i inner; device-specific values in a second
 * loop, i outer, j inner; drift nu_ij last in a third loop, i outer, j inner) from
 * `construct` (a cursor stream keyed by (construction seed, layer, tile,
 * RPU_PURPOSE_CONSTRUCT)) with rpu_rng_normal / rpu_rng_uniform, so the same stream
 * position gives identical arrays. Floating_point and ideal devices draw only drift nu.
 * dev is zeroed first, and left zeroed on error (rpu_device_free is then harmless).
 * Errors: RPU_ERR_ARG (NULL, non-positive shape), RPU_ERR_NOMEM, RPU_ERR_CONFIG (weight
 * range not containing 0, bad piecewise lists, bad soft_bounds_pmax range, drift t_0). */
rpu_status rpu_device_create(rpu_device_state *dev, const rpu_device_params *par, int rows,
                             int cols, rpu_rng *construct);
void rpu_device_free(rpu_device_state *dev);

/* A view of rows [r0, r1) of src without copying: every array points into src's (so the
 * view's operations act on src's rows), rows = r1 - r0, row0 = src->row0 + r0, the
 * rows_total of src's tile; the view owns nothing (never rpu_device_free it) and is valid
 * while src is. For updating some rows of a whole tile (rpu_tile_update_rows). Errors:
 * RPU_ERR_ARG (rows outside src); *view is zeroed on error. */
rpu_status rpu_device_rows_view(const rpu_device_state *src, int r0, int r1,
                                rpu_device_state *view);

/* A row slice of a state: *out receives rows [r0, r1) of src (every array, the
 * parameters, the drift clock) as a state with rows = r1 - r0, row0 = src->row0 + r0 and
 * the rows_total of src's tile; for building row-sliced tiles from a whole tile's state
 * (construction, restore). Errors: RPU_ERR_ARG (rows outside src), RPU_ERR_NOMEM; *out is
 * zeroed on error. */
rpu_status rpu_device_slice_rows(const rpu_device_state *src, int r0, int r1,
                                 rpu_device_state *out);

/* The array of that name, or NULL. */
float *rpu_device_array_by_name(const rpu_device_state *dev, const char *name);

/* Standard normals the device consumes per pulse for cycle-to-cycle noise (0 when
 * dw_min_std == 0 or the device is floating_point/ideal; 1 otherwise). */
int rpu_device_normals_per_pulse(const rpu_device_state *dev);

/* Applies n update-once pulses of one sign to cell c (= i * cols + j) whose weight is *w
 * (no-op for floating_point/ideal devices):
 * sign > 0 steps DOWN (decreases w), sign < 0 steps UP (spec §3.4). xi holds the n
 * normals of the cycle-to-cycle noise (n * normals_per_pulse values; ignored when
 * normals_per_pulse is 0; NULL means no noise). Each pulse is followed by the clip to the
 * cell's bounds. With write noise *w is the persistent weight. The reference of the update
 * engine. */
void rpu_device_pulses(const rpu_device_state *dev, size_t c, float *w, int sign, int n,
                       const float *xi);

/* Row kernel of the engine: for every j of row i with count[j] > 0 apply count[j] pulses
 * of sign sign[j] (+1 down, -1 up) to w_row[j], consuming cycle-to-cycle normals from xi
 * pass by pass: first the first pulse of every cell with count >= 1 in column order, then
 * the second pulse of every cell with count >= 2, and so on (normals_per_pulse each). Must
 * give exactly the same floats as rpu_device_pulses called cell by cell with each cell's
 * normals in that order. With write noise: w_row is the visible weight row;
 * the pulses act on the persistent row and, for every j with count[j] > 0, the visible
 * weight is redrawn as persistent + write_noise_std * dw_min * wn[j] (wn: cols normals;
 * NULL: the visible weight becomes the persistent one). Rows of floating_point/ideal
 * devices are left unchanged. */
void rpu_device_pulse_row(const rpu_device_state *dev, int i, float *w_row, const uint8_t *count,
                          const int8_t *sign, const float *xi, const float *wn);

/* Merged pulses (constant_step; the update engine's default, update.c). n pulses of one
 * sign on a cell whose weight cannot reach a bound on the way, whatever the
 * cycle-to-cycle normals (|xi| <= 5.77 for this generator, bounded by 6), are applied as
 * one step w + step (n + sigma sqrt(n) xi) with one normal: the same distribution as n
 * steps w + step (1 + sigma xi_k) (the sum of n normals is a normal of variance n), up to
 * float rounding. Cells that could reach a bound keep their n single pulses.
 *
 * rpu_device_merges_pulses: 1 for the devices that merge (constant_step).
 * rpu_device_merge_ok: 1 when n >= 2 pulses of that sign on cell c with weight w may be
 *   merged (merging device, no bound reachable: see device.c).
 * rpu_device_pulses_merged: one merged step of n pulses on cell c (xi: one normal, or NULL
 *   / ignored without cycle-to-cycle noise), then the clip; the reference of the row kernel.
 * rpu_device_row_passes: passes[j] for every cell of row i (weights w_row before the
 *   pulses): 1 for a cell whose count[j] pulses merge, count[j] otherwise (always count[j]
 *   for devices that do not merge); returns their sum (the row consumes that many times
 *   normals_per_pulse normals).
 * rpu_device_pulse_row_merged: the row kernel with merged cells. Normals are consumed pass
 *   by pass in column order: pass k takes one per cell with passes[j] > k; a merged cell
 *   takes its one normal in pass 0. Per cell the floats of rpu_device_pulses_merged
 *   (merged) or rpu_device_pulses (the others). Devices that do not merge: exactly
 *   rpu_device_pulse_row (passes == count). */
int rpu_device_merges_pulses(const rpu_device_state *dev);
int rpu_device_merge_ok(const rpu_device_state *dev, size_t c, float w, int sign, int n);
void rpu_device_pulses_merged(const rpu_device_state *dev, size_t c, float *w, int sign, int n,
                              const float *xi);
size_t rpu_device_row_passes(const rpu_device_state *dev, int i, const float *w_row,
                             const uint8_t *count, const int8_t *sign, uint8_t *passes);
void rpu_device_pulse_row_merged(const rpu_device_state *dev, int i, float *w_row,
                                 const uint8_t *count, const uint8_t *passes, const int8_t *sign,
                                 const float *xi, const float *wn);

/* The three row functions above on the columns [j0, j1) of row i only (0 <= j0 < j1 <=
 * cols; otherwise nothing happens): w_row, count, sign and passes are still indexed by
 * the row's column (pointers to its column 0), wn holds the write noise of columns
 * [j0, j1) (wn[0] is column j0's), and xi the normals of the range's passes. Where every cell
 * outside the range has count 0 this is the whole-row call, float for float and normal for normal
 * (the update engine uses it for the few columns of a row that take pulses vector by vector). */
void rpu_device_pulse_row_range(const rpu_device_state *dev, int i, int j0, int j1, float *w_row,
                                const uint8_t *count, const int8_t *sign, const float *xi,
                                const float *wn);
size_t rpu_device_row_passes_range(const rpu_device_state *dev, int i, int j0, int j1,
                                   const float *w_row, const uint8_t *count, const int8_t *sign,
                                   uint8_t *passes);
void rpu_device_pulse_row_merged_range(const rpu_device_state *dev, int i, int j0, int j1,
                                       float *w_row, const uint8_t *count, const uint8_t *passes,
                                       const int8_t *sign, const float *xi, const float *wn);

/* Merged pulses of both signs (constant_step; the update engine merges the pulses a cell
 * receives over a chunk of update vectors, update.c). n_up pulses up and n_down pulses
 * down in any order, on a cell that cannot reach a bound on the way whatever the order and
 * the normals, are applied as one step w + n_up up - n_down down + sigma sqrt(n_up up^2 +
 * n_down down^2) xi with one normal: in distribution the same as the single pulses (up to
 * float rounding).
 *
 * rpu_device_span_ok: 1 when the pulses of cell c at weight w may be merged so (merging
 *   device, at least one pulse, no bound reachable: device.c).
 * rpu_device_pulses_span: that merged step (xi: one normal, or NULL / ignored without
 *   cycle-to-cycle noise), then the clip; the reference of the row functions.
 * rpu_device_row_span_ok: merged[j] = rpu_device_span_ok for every cell of row i (0 for
 *   devices that do not merge); returns the number of merged cells.
 * rpu_device_row_span: the merged step of every cell with merged[j], consuming one
 *   normal per merged cell in column order. */
int rpu_device_span_ok(const rpu_device_state *dev, size_t c, float w, int n_up, int n_down);

/* The bound of the normals in the merge tests (device.c, MERGE_Z). */
#define RPU_MERGE_Z 6.0f

/* The arithmetic of a merged span on one cell's values (weight w, steps up and dn, bounds
 * lo and hi, nu pulses up and nd down, dw_min_std sigma), for rpu_device_span_ok /
 * rpu_device_pulses_span, the row functions and the update engine's read-column pieces
 * (update.c): n_up pulses up and n_down down in any order. Each up pulse moves the weight
 * by up (1 + sigma xi) within [-up max(0, sigma Z - 1), up (1 + sigma Z)], each down pulse
 * by -down (1 + sigma xi) within [-down (1 + sigma Z), down max(0, sigma Z - 1)], so every
 * partial sum lies in [w - reach_down, w + reach_up] with reach_up = n_up up (1 + sigma Z)
 * + n_down down max(0, sigma Z - 1) and reach_down symmetric. Inside the bounds no pulse is
 * clipped and the sum is n_up up - n_down down + sigma sqrt(n_up up^2 + n_down down^2) xi
 * in distribution (one normal). rpu_span_ok: whether the span stays inside the bounds;
 * rpu_span_step: the merged step (xi: one normal, or NULL), then the clip. */
static inline int rpu_span_ok(float w, float up, float dn, float lo, float hi, float nu, float nd,
                              float sigma) {
    const float z = sigma * RPU_MERGE_Z;
    const float fwd = 1.0f + z, back = z > 1.0f ? z - 1.0f : 0.0f;
    const float reach_up = nu * up * fwd + nd * dn * back;
    const float reach_dn = nd * dn * fwd + nu * up * back;
    return w - reach_dn >= lo && w + reach_up <= hi;
}

static inline float rpu_span_step(float w, float up, float dn, float lo, float hi, float nu,
                                  float nd, float sigma, const float *xi) {
    const float mean = nu * up - nd * dn;
    float y = xi ? w + (mean + (sigma * sqrtf(nu * up * up + nd * dn * dn)) * xi[0]) : w + mean;
    y = y > hi ? hi : y; /* clip() of device.c */
    return y < lo ? lo : y;
}
void rpu_device_pulses_span(const rpu_device_state *dev, size_t c, float *w, int n_up, int n_down,
                            const float *xi);
size_t rpu_device_row_span_ok(const rpu_device_state *dev, int i, const float *w_row,
                              const uint16_t *n_up, const uint16_t *n_down, uint8_t *merged);
void rpu_device_row_span(const rpu_device_state *dev, int i, float *w_row, const uint16_t *n_up,
                         const uint16_t *n_down, const uint8_t *merged, const float *xi);

/* Random numbers of the whole-array operations below come from stream `s` by random
 * access starting at block `blk` (rpu_rng_normal_at / rpu_rng_uniform_at); each function
 * returns how many blocks it used at most (the caller advances its counter by that), and
 * uses consecutive sub-ranges in the order documented per function. */

/* Clips w [rows, cols] to the per-cell bounds (pulsed devices; no-op otherwise) and, with
 * write noise, sets the persistent weights to the clipped w and redraws the visible ones
 * (rows*cols normals) if par.apply_write_noise_on_set (else visible = persistent, no
 * normals). Used after set_weights (spec §4.1). */
uint64_t rpu_device_apply_bounds(rpu_device_state *dev, float *w, const rpu_rng *s, uint64_t blk);

/* Post-update operations (spec §3.5) on the visible weights w (on the persistent weights
 * with write noise, whose visible weights are then all redrawn, whatever
 * apply_write_noise_on_set). Diffusion (diffusion > 0, else no-op): rows*cols normals in
 * cell order, then the write-noise normals; pulsed w += rho_ij xi then the clip, ideal/FP
 * w += diffusion xi. Decay (lifetime > 0, else no-op): pulsed
 * w <- (w - b_ij)(1 + alpha (delta_ij - 1)) + b_ij then the clip (b_ij = reset_bias or the
 * scalar reset), no normals except the write-noise ones; ideal/FP w (1 - alpha/lifetime)
 * if lifetime > 1. */
uint64_t rpu_device_diffuse(rpu_device_state *dev, float *w, const rpu_rng *s, uint64_t blk);
uint64_t rpu_device_decay(rpu_device_state *dev, float *w, float alpha, const rpu_rng *s,
                          uint64_t blk);

/* Resets columns start .. start+count-1 (mod cols, wrapping; count < 0 or > cols: all) of
 * every row, each cell with probability prob (<= 0: no-op): w = b_ij + reset_std * xi,
 * clipped (ideal/FP: reset_std * xi). The M = rows * ncols selected cells are numbered
 * m = i * ncols + k (k-th selected column); ranges of blocks_for(M) blocks each: normals
 * xi[m], then (prob < 1 only) uniforms u[m] (reset if u < prob), then (write noise only)
 * the normals redrawing the visible weight of each reset cell. */
uint64_t rpu_device_reset_columns(rpu_device_state *dev, float *w, int start, int count, float prob,
                                  const rpu_rng *s, uint64_t blk);

/* Drift by dt (DriftParameter of spec §4.1; no-op unless drift.nu > 0). The first call
 * starts every cell's drift at t = 0 from its current weight. Then t_cur += dt / t_0 and per
 * cell: a weight changed by more than reset_tol since the last call restarts (t_ij = t_cur,
 * w0 = w); otherwise w = w0 max(t_cur - t_ij, 1)^(-nu) (+ a (scale - 1), a = g_offset
 * wg_ratio + w_offset) with nu = nu_ij (+ nu_std nu xi) (- nu_k ln((w - w_offset)/wg_ratio +
 * g_offset) + nu_k log_g0, skipped where that conductance is not positive); then
 * w += w_noise_std xi', clip (pulsed). Ranges (blocks_for(rows*cols) blocks each, only
 * those in use): nu_std normals, w_noise_std normals, write-noise normals. */
uint64_t rpu_device_drift(rpu_device_state *dev, float *w, double dt, const rpu_rng *s,
                          uint64_t blk);

/* Bytes of device state per cell (excluding the weights themselves): 4 per allocated
 * array, e.g. 16 for a default constant_step device, 0 for floating_point/ideal. */
double rpu_device_bytes_per_cell(const rpu_device_state *dev);

#endif
