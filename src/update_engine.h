/* The pulsed update engine's shared parts (private to src/update.c and
 * src/update_trains.c): the call's shape, the per-chunk workspace, and the first phase of
 * the engine, which makes every vector's pulse trains (update_trains.c), for the row
 * kernels and the chunk loop of update.c. Local: nothing here communicates. */
#ifndef RPUSIM_UPDATE_ENGINE_H
#define RPUSIM_UPDATE_ENGINE_H

#include "rng_impl.h"
#include "tile_impl.h"

#include <stdbool.h>
#include <stdint.h>

/* Per vector of a chunk: pulse-train length (0: no update) and mask words. */
typedef struct {
    int BL, nw;
    int j0, j1; /* the columns where x may be non-zero (sparse x: its first and last + 1) */
    float A, B; /* bl_and_scales's (set by rpu_engine_predraw_chunk) */
    int pre;    /* rpu_update_pulses: the first normals of its pulsing rows are in pre */
} vec_info;

/* Uniforms per vector up to which a chunk draws x's (C BL) or d's (Rl BL + 3) pulse-train
 * values in one batch: below it a vector's own fill is short and pays mostly overhead. */
#define PRE_ROOM 256

/* Normals per vector up to which a row's sparse cells' normals are drawn in one batch
 * over the vectors (more: sparse_row draws its own). */
#define HIT_ROOM 16

/* Cycle-to-cycle normals per row up to which the vector-by-vector pass draws several
 * vectors' normals of the row in one batch of blocks (a vector that needs more draws its
 * own). */
#define ROW_ROOM 4096

/* Workspace of the pulsed engine, carved from one buffer (t->uws). C columns, Rl rows of
 * the tile (or slice), K vectors per chunk, NW mask words per element at most. */
typedef struct {
    int K, NW;
    vec_info *vi;  /* [K] */
    uint64_t *mx;  /* [K][NW][C]: word w of column j's train at mx[(k*NW + w)*C + j] */
    int8_t *sx;    /* [K][C] signs of x */
    float *fx;     /* [K][C] signed factors of x (count-based pulse types) */
    uint64_t *md;  /* [K][Rl][NW] */
    int8_t *sd;    /* [K][Rl] */
    float *fd;     /* [K][Rl] */
    float *px;     /* [C] probabilities of the vector being prepared */
    float *pd;     /* [Rl] */
    float *u;      /* uniforms of one draw: [max(C, Rl) * BLmax + 8] */
    uint8_t *cnt;  /* [K][C] pulses of the cells of one row, per vector of the chunk */
    int8_t *sgn;   /* [K][C] their signs */
    long *S;       /* [K] pulses of the row per vector */
    uint8_t *pas;  /* [C] passes (merged pulses) */
    uint16_t *nup; /* [C] pulses up of the row's cells over the chunk */
    uint16_t *ndn; /* [C] pulses down */
    uint8_t *mrg;  /* [C] cells whose pulses over the chunk merge */
    int32_t *lst;  /* [C] the row's other cells with pulses (sparse path) */
    float *pre;    /* [K][4 Rl] the normals of one block per row (sparse writes) */
    /* pieces of the read columns of a chunk (snapshots, see pieces_build): NPC at most */
    int npc, pc_ok, ev0, ev1, npart;
    int32_t *pc;        /* [4 NPC]: column, first and last vector, read event of piece p */
    int32_t *rup, *rdn; /* [snap->n] the row's running counts up/down after each read */
    uint8_t *evd;       /* [snap->n] reads snapshot by pieces_merge */
    uint64_t *evm;      /* [2 snap->n] per read: the one-slot vectors up to the read's whose x
                           pulses its column, x > 0 then x < 0, as bits (pieces_one_slot) */
    int32_t *part;      /* [2 C] partly merged columns: column, first single vector */
    float *pcn;         /* [NPC + 8] their normals (one per piece) */
    float *nrm;         /* [(C / 64 + 1) * 256] their normals, 256 per cell */
    float *xi;          /* [C * BLmax + 8] cycle-to-cycle normals of one row for one vector */
    float *wn;          /* [C + 8] write noise of one row */
    /* a chunk's pulse-train uniforms drawn in one batch (rpu_engine_predraw_chunk) */
    float *pux, *pud;   /* [K][PRE_ROOM] x's and d's, vector after vector */
    int pre_on;         /* the chunk's vectors were pre-drawn: vi[k].BL, A, B and upre hold */
    int chunk0;         /* the chunk's first vector in the call */
    const float **upre; /* [2K] vector k's x uniforms at upre[2k], d's at upre[2k + 1] (or
                           NULL: rpu_engine_prepare_vector draws them) */
    int64_t *grp;       /* [K + 1] the vectors of one pulse-train length */
    /* one-slot vectors (BL 1) of a chunk, for rows that only need their counts over the
     * chunk (rpu_engine_one_slot_bits): x's columns with a pulse as bit sets, by the sign of x */
    int CW;       /* 64-bit words per column set: (C + 63) / 64 */
    uint64_t *xb; /* [K][2][CW]: vector k's columns with x > 0 at xb[2k CW], x < 0 after */
    long *xs;     /* [K] their number (the pulses of any row whose d pulse fires) */
    /* a row's vectors that pulse its few unmerged cells (the sparse path), and their
     * cycle-to-cycle normals drawn in one batch: HIT_ROOM per vector */
    int64_t *hv;  /* [K] their index in the call */
    uint64_t *lm; /* [CW] the row's listed cells as a column set */
    float *hn;    /* [K][HIT_ROOM] */
    /* a row's cycle-to-cycle normals of a run of its pulsing vectors, drawn in one batch
     * (the vector-by-vector pass): vector k's at rn + roff[k] */
    float *rn;     /* [ROW_ROOM + 8] */
    int64_t *rblk; /* [ROW_ROOM / 4] their blocks (offsets from the run's first) */
    int32_t *roff; /* [K] */
} engine_ws;

/* The call's shape: C columns, rows [r0, r0 + Rl) of R, their weights and device state,
 * the layout of the whole tile. */
typedef struct {
    int C, R, Rl, r0;
    float *w;                    /* the weights of row r0 (rows [r0, r0 + Rl) follow) */
    const rpu_device_state *dev; /* device state whose row 0 is row r0 */
    rpu_update_layout L;
    uint64_t base;               /* first block of the call */
    uint64_t stride;             /* blocks per vector (L.total for a single device) */
    uint64_t qoff;               /* the device noise's offset in a vector's range (0; target q
                                    of a compound: q * L.total) */
    int sign_mode;               /* 0: every coincidence; +1 / -1: one_sided routing */
    const rpu_update_params *up; /* pulse-train parameters */
    float g;                     /* granularity of the pulse trains */
    const rpu_rng *rng;          /* the stream of the draws */
    const float *lrs;            /* per vector learning rates, or NULL: the call's lr */
    const float *dmax;           /* per vector of the call its max |d| over all R rows (a split
                                    update's holders combine theirs), or NULL: from d */
    const rpu_read_snap *snap;   /* column snapshots and unmerged columns, or NULL */
} call_shape;

static inline int8_t sgn(float v) {
    return (int8_t)((v > 0) - (v < 0));
}

/* Pulse-train length of every vector of a call with learning rate lr (0: no update). */
int rpu_engine_call_bl(const rpu_update_params *up, float g, float lr);

/* Carves the engine's workspace for C columns, Rl rows, K vectors per chunk, NW mask words,
 * trains of up to BLmax slots and NPC pieces from t->uws (grown as needed). */
rpu_status rpu_engine_workspace(rpu_tile *t, engine_ws *e, int C, int Rl, int K, int NW, int BLmax,
                                int NPC);

/* Phase 1 for vector k of the chunk: its train length, scales, probabilities, signs and
 * pulse trains (or count factors) of the columns and of the slice's rows. */
void rpu_engine_prepare_vector(const rpu_tile *t, engine_ws *e, const call_shape *cs, int k,
                               const float *x, const float *d, float lr, uint64_t vbase,
                               bool sparse);

/* The pulse-train uniforms of a chunk's vectors in one batch per train length, and the
 * vectors without a pulse in the slice's rows set to BL 0. */
void rpu_engine_predraw_chunk(engine_ws *e, const call_shape *cs, int k0, int kn, const float *x,
                              const float *d, float lr);

/* Vector k's one-slot x trains as the column sets e->xb and their size e->xs[k]. */
void rpu_engine_one_slot_bits(engine_ws *e, int C, int k);

#endif
