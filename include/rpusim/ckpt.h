/* rpusim — checkpoints: the complete state of a list of mapped layers (and whatever the
 * caller adds, e.g. the training state under /train) in one HDF5 file (DESIGN.md
 * "Checkpoint"; the schema is documented in README.md, "Checkpoints").
 *
 * Writing and reading are collective over a communicator with parallel HDF5 (MPI-IO,
 * collective metadata, collective data transfers). Tiles are stored by logical key (layer
 * name, group, input split, output split), never by rank: every rank writes the datasets of
 * the tiles it owns and reads the ones it owns under the communicator it loads on, so a
 * checkpoint written on P ranks loads on Q.
 *
 * Save is atomic: the file is written as "<path>.tmp", every rank agrees that every write
 * succeeded, then rank 0 renames it over <path>. Until that rename the previous checkpoint
 * is untouched; a failed save removes the .tmp, a killed one leaves a stale .tmp that load
 * never reads and the next save overwrites. A save that would not fit (free space, file
 * size limit, quota) fails before its first write (see rpu_ckpt_save).
 *
 * Load is verified before anything is written into the layers: format and schema version,
 * every expected object present with its type and shape, Fletcher32 checksums of all data,
 * and the model (layer names, types, shapes, split sizes, stream keys, rpu_config) equal
 * to the layers passed. All ranks agree on success; only then is the state replaced. A
 * failure leaves the layers unchanged and returns the same status and message on every
 * rank, naming the file and the bad object.
 *
 * Nothing here keeps global state (fault injection is an option of the call). */
#ifndef RPUSIM_CKPT_H
#define RPUSIM_CKPT_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpusim/layer.h"
#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RPU_CKPT_FORMAT "rpusim-checkpoint" /* root attribute "format" */
#define RPU_CKPT_SCHEMA_VERSION 1           /* root attribute "schema_version" */
#define RPU_CKPT_MAX_TEXT 60000             /* longest text attribute (config texts), bytes */

/* One layer of the model: stored under /layers/<name>. Names are 1..63 characters from
 * [A-Za-z0-9_.-], not "." or "..", unique within a call. A linear layer is passed as
 * rpu_linear_as_conv(l). */
typedef struct {
    const char *name;
    rpu_conv *layer;
} rpu_ckpt_layer;

/* Element types of the caller's extra arrays. */
typedef enum {
    RPU_CKPT_F32 = 0,
    RPU_CKPT_F64 = 1,
    RPU_CKPT_I32 = 2,
    RPU_CKPT_I64 = 3,
    RPU_CKPT_U64 = 4,
    RPU_CKPT_U8 = 5
} rpu_ckpt_dtype;

/* "float32", "float64", "int32", "int64", "uint64", "uint8" ("unknown type" otherwise).
 * Local. */
const char *rpu_ckpt_dtype_name(rpu_ckpt_dtype t);

/* An extra dataset outside /layers, replicated on every rank: the generic way for callers
 * (the training loop: history table, data order, optimizer state) to add their own state.
 *   path   "train/history/loss": components of [A-Za-z0-9_.-], separated by '/', no
 *          leading '/'; the first component must not be "layers"; groups are created as
 *          needed; at most 255 characters.
 *   dtype, ndim (1 or 2), dims (>= 0 each; an array may be empty).
 *   data   save: the values (rank 0's are written; every rank must pass the same path,
 *          dtype and dims). load: ignored on input; on success a malloc'ed buffer with the
 *          values on every rank (the caller frees it; NULL for an empty or missing array),
 *          and ndim/dims are set from the file.
 *   optional  load: a missing array is not an error (data NULL, dims 0). */
typedef struct {
    const char *path;
    rpu_ckpt_dtype dtype;
    int ndim;
    int64_t dims[2];
    void *data;
    bool optional;
} rpu_ckpt_array;

/* Root metadata written by save (rank 0's values are used). */
typedef struct {
    uint64_t seed;      /* the run seed */
    int64_t step;       /* optimizer steps done */
    int64_t epoch;      /* epochs done */
    const char *config; /* the full experiment config text (NULL: ""), at most
                           RPU_CKPT_MAX_TEXT bytes */
} rpu_ckpt_meta;

/* Root metadata as read from a file. */
typedef struct {
    int schema_version;
    char rpusim_version[32]; /* version of the rpusim that wrote the file */
    uint64_t seed;
    int64_t step;
    int64_t epoch;
    int ranks_at_save;
    char *config; /* malloc'ed by load / rpu_ckpt_open (rpu_ckpt_info_free frees it) */
} rpu_ckpt_info;

/* Frees info->config and sets it to NULL; accepts NULL. Local. */
void rpu_ckpt_info_free(rpu_ckpt_info *info);

typedef struct {
    /* Keep the previous checkpoints as <path>.1 (newest) ... <path>.K (oldest) when K > 0;
     * 0: the new file replaces <path>. The rotation hard-links <path> to <path>.1 before
     * the new file is renamed over <path>, so <path> always exists. */
    int keep_last;
    /* Fault injection for tests: with fail_write > 0, rank fail_rank fails its
     * fail_write-th (1-based) own dataset write (the data is not written, the rank
     * records an error "injected write failure"); the save then fails on every rank as for
     * a real write error. 0: off. */
    int fail_rank;
    int fail_write;
    /* For tests: skip the comparison with the free space of the file system (statvfs), so
     * that the reservation of the .tmp's blocks alone must catch a full file system (see
     * rpu_ckpt_save). The file size limit is always checked. */
    bool skip_free_space_check;
} rpu_ckpt_save_opts;

/* keep_last 0, no fault injection. Local. */
void rpu_ckpt_save_opts_default(rpu_ckpt_save_opts *opts);

/* Writes a checkpoint of the layers and arrays to path (collective on comm; every layer's
 * communicator must be congruent to comm: same ranks in the same order).
 * Inputs: path (same on every rank, on a file system every rank sees), meta (NULL: zeros
 * and ""), layers[0..n_layers) (n_layers >= 0), arrays[0..n_arrays) (NULL if 0), opts
 * (NULL: defaults). The layer names, array paths/types/shapes and opts must be the same on
 * every rank.
 * Room: before anything is written, every rank compares an upper bound of the file's size
 * with the file size limit of its process (RLIMIT_FSIZE, `ulimit -f`) and with the free
 * space of the file system of <path> (statvfs, counting a stale .tmp as free), and rank 0
 * then reserves that many bytes for the .tmp (fallocate, where the file system supports
 * it: this also catches quotas and space taken by others since the check; the unused part
 * is returned when the file is complete). A save that does not fit fails there with
 * RPU_ERR_IO, a message naming the file, the size needed and the room found, and nothing
 * written. (Parallel HDF5 cannot recover from a write that fails on some ranks: they end
 * up in different collectives of the library; so the writes must not run out of room.)
 * The bound exceeds the real size by 256 KiB plus a generous estimate of HDF5's metadata
 * (a few percent on models with large tiles, ~1.4x on models of a thousand tiny tiles),
 * so a file system with less room than the bound refuses a save that might just have
 * fitted.
 * Errors (the same status and message on every rank): RPU_ERR_ARG (NULL, bad names or
 * paths, communicators not congruent, arguments that differ between ranks, text too long),
 * RPU_ERR_IO (not enough room as above, the .tmp cannot be created or written,
 * rename/rotation failed, injected failure; the message names the file and the dataset),
 * RPU_ERR_NOMEM, RPU_ERR_MPI. On error <path> is as before and the .tmp is removed (so are
 * the rotated copies, unless the rotation itself failed part way). Neither HDF5's error
 * printing nor any other process-wide HDF5 setting is changed (it is switched off during
 * the call and restored). */
rpu_status rpu_ckpt_save(MPI_Comm comm, const char *path, const rpu_ckpt_meta *meta,
                         const rpu_ckpt_layer *layers, int n_layers, const rpu_ckpt_array *arrays,
                         int n_arrays, const rpu_ckpt_save_opts *opts);

/* Reads a checkpoint into layers that were created with the same parameters and config as
 * the saved ones, on any number of ranks (collective on comm; every layer's communicator
 * congruent to comm). Each rank reads the tiles it owns and every digital bias, then every
 * owned tile gets rpu_conv_state_loaded. arrays (NULL if n_arrays is 0) are read as
 * described at rpu_ckpt_array; info (may be NULL) receives the root metadata.
 * Verified before anything is replaced: root attributes format and schema_version; the
 * file has exactly the layers passed, each with the same type, channels, kernel, stride,
 * padding, dilation, groups, padding mode, bias kind, split sizes, layer_id and seed
 * (the keys of the random streams) and an rpu_config equal to the layer's; each tile group
 * holds exactly the layer's state items with their element type and shape and a Fletcher32
 * filter; every dataset's data passes its checksum.
 * Errors (same status and message on every rank; layers, arrays and info untouched):
 * RPU_ERR_ARG (NULL, bad names, communicators), RPU_ERR_IO (file missing or unreadable),
 * RPU_ERR_FORMAT (not an rpusim checkpoint, unsupported schema version, truncated file,
 * checksum mismatch, missing/extra/misshaped object, model mismatch: the message names
 * the file and the object, e.g. "checkpoint run.h5: /layers/conv1/tiles/0_1/weights:
 * data checksum (Fletcher32) mismatch"), RPU_ERR_NOMEM, RPU_ERR_MPI. */
rpu_status rpu_ckpt_load(MPI_Comm comm, const char *path, const rpu_ckpt_layer *layers,
                         int n_layers, rpu_ckpt_array *arrays, int n_arrays, rpu_ckpt_info *info);

/* ------------------------------------------------------------------ reading without MPI
 *
 * A read-only view of a checkpoint for tools (rpusim inspect) and for programs that need
 * the saved config before they can build the model. Local: no MPI, nothing collective
 * (HDF5's default file driver); works in a process that never called MPI_Init. */

typedef struct rpu_ckpt_file rpu_ckpt_file;

/* One layer as described by its attributes. Pointers stay valid until rpu_ckpt_close. */
typedef struct {
    const char *name;
    const char *type; /* "conv1d", "conv2d", "conv3d", "linear" */
    int ndim;         /* 1..3; 0 for linear */
    int in_channels, out_channels, groups;
    int kernel[3], stride[3], padding[3], dilation[3]; /* first ndim entries */
    const char *bias;                                  /* "none", "digital", "analog" */
    uint32_t layer_id;
    uint64_t seed;
    int n_in, n_out, n_tiles;   /* grid: n_tiles = groups * n_in * n_out */
    const int *in_split_sizes;  /* [n_in] per split (per group): input channels (split
                                   "mapped") or columns of the unfolded patch ("tile_array") */
    const int *out_split_sizes; /* [n_out] output channels per split (per group) */
    const char *rpu_config;     /* the layer's rpu_config as text */
    const char *split;          /* "mapped" or "tile_array" (mapping.h, rpu_split) */
} rpu_ckpt_layer_desc;

/* One state item of a tile group (element type as stored). */
typedef struct {
    const char *name; /* state item name, e.g. "weights", "max_bound", "forward_calls" */
    rpu_ckpt_dtype dtype;
    int64_t rows, cols; /* every tile dataset is 2-d; attributes are 1 x 1 */
    bool attribute;     /* a 1 x 1 item, stored as an attribute of the tile group */
} rpu_ckpt_item_desc;

/* Opens path, checks format and schema version and reads the root and layer attributes.
 * Errors: RPU_ERR_ARG, RPU_ERR_IO (cannot open), RPU_ERR_FORMAT (not a checkpoint, schema,
 * bad attributes; message names file and object), RPU_ERR_NOMEM. Local (no MPI). */
rpu_status rpu_ckpt_open(const char *path, rpu_ckpt_file **file);

/* Closes the file and frees everything; sets *file to NULL; accepts NULL. Local. */
void rpu_ckpt_close(rpu_ckpt_file **file);

/* Root metadata (owned by the file). Local. */
const rpu_ckpt_info *rpu_ckpt_file_info(const rpu_ckpt_file *f);

/* Number of layers and layer `index` (in creation order). Errors: RPU_ERR_ARG. Local. */
int rpu_ckpt_file_layer_count(const rpu_ckpt_file *f);
rpu_status rpu_ckpt_file_layer(const rpu_ckpt_file *f, int index, rpu_ckpt_layer_desc *desc);

/* Key of tile t of a layer ("i_j", or "g<g>_i_j" when groups > 1), t = (g n_in + i) n_out
 * + j; the group name under /layers/<name>/tiles. key has room for 48 bytes.
 * Errors: RPU_ERR_ARG (index out of range). Local (pure). */
rpu_status rpu_ckpt_tile_key(const rpu_ckpt_layer_desc *desc, int t, char key[48]);

/* The state items of tile t of layer `layer`: its datasets, then its attributes (the 1 x 1
 * items), each in the order they were written (the tile's state item order): up to max
 * descriptors into items, the total in *count. Names stay valid until the next call or
 * rpu_ckpt_close. Errors: RPU_ERR_ARG, RPU_ERR_FORMAT (missing group, a dataset that is not
 * 2-d or of an unknown type, an attribute that is not one number). Local. */
rpu_status rpu_ckpt_file_tile_items(rpu_ckpt_file *f, int layer, int t, rpu_ckpt_item_desc *items,
                                    int max, int *count);

/* Reads the dataset at `path` (relative to the root, e.g. "layers/fc/tiles/0_0/weights",
 * "train/history/loss") converted to double: *values malloc'ed (caller frees), ndim and
 * dims[0..ndim) set (1 <= ndim <= 2). Checksums are verified. A 1 x 1 tile item stored as
 * an attribute ("layers/fc/tiles/0_0/forward_calls") reads as a 1 x 1 array.
 * Errors: RPU_ERR_ARG, RPU_ERR_FORMAT (missing, checksum, not numeric, rank > 2),
 * RPU_ERR_NOMEM. Local. */
rpu_status rpu_ckpt_file_read(rpu_ckpt_file *f, const char *path, double **values, int *ndim,
                              int64_t dims[2]);

/* Turns HDF5's automatic error printing off for the whole process (HDF5's default is on);
 * local. For programs that report errors themselves, as the rpusim command does. The
 * functions above switch the printing off only for their own duration and then restore
 * the caller's setting; but once HDF5 1.10 has met a corrupted object header it keeps
 * memory it cannot free and, if the printing is on when it shuts down (at exit, or in
 * MPI_Finalize), prints "HDF5: infinite loop closing library". */
void rpu_ckpt_silence_hdf5(void);

/* Reads and checks every object of the file as rpu_ckpt_load does, without a model (local,
 * no MPI): the root attributes; every layer group (its attributes; its rpu_config must
 * parse), its digital bias and every tile group, each with the items of the layer's first
 * tile (datasets and 1 x 1 attributes of the schema's element types, nothing more), every
 * dataset's Fletcher32 filter and the checksums of all its data; every group and dataset
 * outside /layers (the caller's arrays, e.g. /train) likewise. Object headers carry their
 * own checksums, so a flipped bit anywhere in an object's header or data is found.
 * objects (may be NULL): the groups and datasets verified (root included).
 * Errors: RPU_ERR_ARG, RPU_ERR_FORMAT (the message names the file and the object),
 * RPU_ERR_NOMEM, RPU_ERR_IO. */
rpu_status rpu_ckpt_verify(rpu_ckpt_file *f, int64_t *objects);

#ifdef __cplusplus
}
#endif
#endif
