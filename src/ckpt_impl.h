/* Private: what the files of the checkpoint module share (include/rpusim/ckpt.h is the
 * public side; DESIGN.md "Checkpoint"; the schema is in README.md "Checkpoints").
 *
 *   ckpt_h5.c      HDF5 plumbing: error records and their agreement, element types,
 *                  attributes, files and objects (HDF5's error stack: h5err_impl.h)
 *   ckpt_schema.c  what is stored where: names, tile keys, the layer and root attributes,
 *                  the comparison of a stored layer with the model's
 *   ckpt_plan.c    the plan of a save or load (every tile's state items, the same on every
 *                  rank), argument checks, the size estimate of a save
 *   ckpt_save.c    rpu_ckpt_save: room check, collective write, atomic publish
 *   ckpt_read.c    verified reading of datasets, 1 x 1 items and layers; rpu_ckpt_load
 *   ckpt_file.c    the serial reader (rpu_ckpt_open ...) and rpu_ckpt_verify
 *
 * Parallel HDF5 1.10: files are opened with the MPI-IO driver, collective metadata reads
 * and writes and collective data transfers; the serial reader uses HDF5's default driver.
 * Every tile dataset is chunked with the Fletcher32 filter.
 *
 * Collectivity: every rank makes the same sequence of HDF5 calls. A failure that depends
 * only on the file's metadata (missing object, wrong shape) happens on every rank at the
 * same point (collective metadata reads give every rank the same bytes) and all stop there;
 * a failure of one rank's own data (a checksum, an allocation, an injected write failure)
 * is recorded in its ck_ctx and that rank keeps taking part with empty selections.
 * ck_agree() then gives every rank the first failing rank's status and message. */
#ifndef RPUSIM_CKPT_IMPL_H
#define RPUSIM_CKPT_IMPL_H

#include "rpusim/ckpt.h"
#include "rpusim/config.h"

#include "error_impl.h"
#include "h5err_impl.h"

#include <hdf5.h>

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef RPUSIM_VERSION
#define RPUSIM_VERSION "unknown"
#endif

#define CK_ITEM_NAME 48          /* longest state item name + NUL */
#define CK_LAYER_NAME 64         /* longest layer name + NUL */
#define CK_ARRAY_PATH 256        /* longest extra array path + NUL */
#define CK_CHUNK_ELEMS (1 << 20) /* elements per chunk (4 MiB of float32) */
#define CK_MSG 1024
#define CK_WHY RPU_H5_WHY     /* room for a failure's reason */
#define CK_COMPACT_ATTRS 1000 /* attributes kept in the (checksummed) object header */
/* links kept in the object header up to this count (more: dense storage; a compact
 * header scan would cost O(links^2)) */
#define CK_COMPACT_LINKS 64
#define CK_MAX_SPLITS 65536

/* ------------------------------------------------------------------ ckpt_h5.c */

/* The first failure of one call on this rank. */
typedef struct {
    const char *path;  /* the checkpoint named in messages */
    rpu_status st;     /* first failure on this rank (or the agreed one) */
    char text[CK_MSG]; /* its message, without the source location */
    const char *file;  /* where it was detected */
    int line;
} ck_ctx;

/* A context for the checkpoint at path with no failure. */
ck_ctx ck_ctx_for(const char *path);

/* Records "checkpoint <path>: <obj>: <text>" (obj may be NULL) as this rank's failure,
 * unless one is recorded already (the first failure is the cause). Returns code. */
rpu_status ck_fail_at(ck_ctx *cx, rpu_status code, const char *file, int line, const char *obj,
                      const char *fmt, ...) RPU_PRINTF(6, 7);
#define CK_FAIL(cx, code, obj, ...) ck_fail_at((cx), (code), __FILE__, __LINE__, (obj), __VA_ARGS__)

/* Every rank gets the status and message of the lowest failing rank (collective on comm,
 * through rpu_agree); RPU_OK when no rank failed. */
rpu_status ck_agree(MPI_Comm comm, ck_ctx *cx);

/* Element types: file (little endian) and memory types of an rpu_ckpt_dtype, its size and
 * name; the rpu_ckpt_dtype of a stored type (-1 if none). */
hid_t ck_file_type(rpu_ckpt_dtype t);
hid_t ck_mem_type(rpu_ckpt_dtype t);
size_t ck_dtype_size(rpu_ckpt_dtype t);
const char *ck_dtype_name(int t);
bool ck_valid_dtype(int t);
int ck_dtype_of(hid_t type);

/* Attributes. Writes return 0 or -1 (n < 0: scalar, else 1-d of n values). */
int ck_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n, const void *v);
int ck_attr_write_str(hid_t obj, const char *name, const char *s);
int ck_attr_write_i32(hid_t obj, const char *name, int v);
int ck_attr_write_i32s(hid_t obj, const char *name, const int *v, int n);

/* An open attribute with its type and dataspace (any of them < 0 when opening failed). */
typedef struct {
    hid_t a, t, sp;
} ck_attr_h;
ck_attr_h ck_attr_open(hid_t obj, const char *name);
bool ck_attr_ok(const ck_attr_h *h);
void ck_attr_close(ck_attr_h *h);

/* Attribute reads fill `why` (CK_WHY bytes) on failure and return -1: an integer
 * attribute (scalar or 1-d, at most max values) as int64 (count in *n); exactly one
 * integer; one unsigned 64-bit integer; one string (fixed or variable length) into a
 * malloc'ed *out. */
int ck_attr_read_ints(hid_t obj, const char *name, int64_t *v, int max, int *n, char *why);
int ck_attr_read_int(hid_t obj, const char *name, int64_t *v, char *why);
int ck_attr_read_u64(hid_t obj, const char *name, uint64_t *v, char *why);
int ck_attr_read_str(hid_t obj, const char *name, char **out, char *why);

/* File access properties: the MPI-IO driver on comm with collective metadata operations,
 * or HDF5's default driver for MPI_COMM_NULL; library format v1.10; strong close. */
hid_t ck_make_fapl(MPI_Comm comm);
/* Group (or file) creation properties: links and attributes in creation order, kept in
 * the object header. Returns 0 or -1. */
int ck_set_group_props(hid_t gcpl);
/* Opens path read-only; a missing (with check_exists), unreadable or non-HDF5/truncated
 * file is recorded. */
hid_t ck_open_file(const char *path, hid_t fapl, ck_ctx *cx, bool check_exists);
/* Opens loc/name as a group or a dataset (want), after checking that the link exists and
 * the object has that type; records "missing", the wrong type or HDF5's reason (a
 * corrupted header fails its checksum here). objpath names it in messages. */
hid_t ck_open_obj(hid_t loc, const char *name, H5O_type_t want, const char *objpath, ck_ctx *cx);
/* Whether every component of path (relative to file) exists. */
bool ck_path_exists(hid_t file, const char *path);
/* Iterates the links of g in creation order when it is tracked, else by name. */
herr_t ck_iterate(hid_t g, H5L_iterate_t cb, void *data);
/* Links in g ((hsize_t)-1 when unreadable). */
hsize_t ck_link_count(hid_t g);

/* ------------------------------------------------------------------ ckpt_schema.c */

/* Names: a path component of [A-Za-z0-9_.-], not "." or ".."; an extra array path. */
bool ck_valid_component(const char *s, size_t n);
bool ck_valid_array_path(const char *p);
/* The group name of tile t under /layers/<name>/tiles ("i_j", or "g<g>_i_j"). */
void ck_tile_key(int groups, int n_in, int n_out, int t, char key[48]);

/* Everything a layer group's attributes say about the layer. */
typedef struct {
    char type[8];
    int ndim; /* 0: linear */
    int in_ch, out_ch, groups;
    int kernel[3], stride[3], padding[3], dilation[3];
    char padding_mode[16];
    char bias[8];
    char split[16]; /* "mapped" or "tile_array" (absent in older files: mapped) */
    uint32_t layer_id;
    uint64_t seed;
    char mac[8];
    int use_indexed;
    int n_in, n_out, n_tiles;
    int *in_split, *out_split;
    char *rpu_config;
} ck_lattrs;

void ck_lattrs_free(ck_lattrs *a);
/* The description of a model's layer. */
rpu_status ck_lattrs_from_layer(rpu_conv *l, ck_lattrs *a);
/* Writes a layer group's attributes (0 or -1). */
int ck_lattrs_write(hid_t g, const ck_lattrs *a);
/* Reads a layer group's attributes (why: the first problem; -1). */
int ck_lattrs_read(hid_t g, ck_lattrs *a, char *why);
/* 1 when the file's description f equals the model's m; else 0 and why the first
 * difference. */
int ck_lattrs_match(const ck_lattrs *f, const ck_lattrs *m, char *why);
/* 1 when the stored rpu_config text parses and (model != NULL) equals the model's config
 * up to the inference-time parameters; else 0 and why. */
int ck_config_match(const char *text, const rpu_config *model, char *why);

/* Writes the root attributes (format, schema version, metadata). */
void ck_write_root(hid_t file, const rpu_ckpt_meta *m, const char *config, int size, ck_ctx *cx);
/* Reads and checks the root attributes into info (its config malloc'ed). -1 on failure
 * (recorded). */
int ck_read_root(hid_t file, rpu_ckpt_info *info, ck_ctx *cx);

/* ------------------------------------------------------------------ ckpt_plan.c */

/* One state item of a tile. rows/cols < 0 (the verifier's plans): any shape. */
typedef struct {
    char name[CK_ITEM_NAME];
    int dtype;
    int rows, cols;
    int attr;               /* stored as an attribute of the tile group */
    unsigned char value[8]; /* 1 x 1 items: the value (save) */
} ck_item;

typedef struct {
    int n_items;
    ck_item *items;
    void **buf; /* load: temporaries of an owned tile's items */
} ck_tile;

/* One layer of a plan. layer is NULL in the verifier's plans (built from the file). */
typedef struct {
    rpu_conv *layer;
    char name[CK_LAYER_NAME];
    ck_lattrs attrs;
    ck_tile *tiles;
    float *bias_buf; /* load: temporary digital bias */
} ck_lplan;

/* The plan of layers[0..n_layers) (collective): the state items of every tile of every
 * layer, the same on every rank. Local failures are recorded in cx; the caller agrees. */
ck_lplan *ck_plan_build(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers, ck_ctx *cx);
void ck_plan_free(ck_lplan *pl, int n_layers);

/* Local checks of save/load arguments; returns a hash that must match on every rank. */
uint64_t ck_check_args(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers,
                       const rpu_ckpt_array *arrays, int n_arrays, bool saving, ck_ctx *cx);
/* Records a failure unless h is the same on every rank (collective). */
void ck_check_same(MPI_Comm comm, uint64_t h, ck_ctx *cx);
/* FNV-1a steps for ck_check_args' hash. */
uint64_t ck_hash_i64(uint64_t h, int64_t v);
uint64_t ck_hash_str(uint64_t h, const char *s);

/* An upper bound of the size in bytes of the file a save of the plan, the arrays and the
 * texts writes (data, checksums, object headers, attributes, indexes). */
int64_t ck_plan_file_bytes(const ck_lplan *pl, int n_layers, const rpu_ckpt_array *arrays,
                           int n_arrays, int64_t config_bytes);

/* ------------------------------------------------------------------ ckpt_read.c */

typedef struct {
    ck_ctx *cx;
    hid_t dxpl;   /* data transfer properties: collective (load) or default (serial) */
    int64_t objs; /* groups and datasets read so far */
} ck_reader;

/* Reads dataset loc/name (objpath in messages) of element type dt (-1: any known type)
 * and want_ndim dimensions (allow_ndim: 1 or 2) with shape want (NULL: any): checks the
 * type, the shape and the Fletcher32 filter, then reads the data (collective on the file's
 * communicator: every rank calls it; where `mine`, into a malloc'ed *buf, the data
 * checksums verified). got_ndim/got/got_dt (may be NULL) receive what is stored.
 * Returns 0, -1 on a failure of the file's metadata (the same on every rank: the caller
 * stops) or 1 on a failure of this rank's data (recorded; carry on). */
int ck_read_dataset(ck_reader *r, hid_t loc, const char *name, const char *objpath, int dt,
                    int want_ndim, const hsize_t *want, bool allow_ndim, int *got_ndim,
                    hsize_t *got, int *got_dt, bool mine, void **buf);

/* Reads and verifies the layer group /layers/<pl->name> against the plan: attributes
 * (equal to the model's when pl->layer is set), digital bias, the tile groups and every
 * item of every tile (datasets with their checksums, 1 x 1 attributes), nothing more and
 * nothing less. With pl->layer, the items of the tiles this rank owns are kept in
 * pl->tiles[t].buf and the bias in pl->bias_buf; without (the verifier), everything is
 * read and dropped. *stop is set on a failure every rank shares. */
void ck_read_layer(hid_t layers_g, ck_lplan *pl, ck_reader *r, int *stop);

#endif
