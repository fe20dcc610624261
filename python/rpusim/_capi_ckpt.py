"""ctypes declarations of the checkpoint C API (include/rpusim/ckpt.h), of
rpu_config_to_text (CConfig.to_text) and of the C library's free for their texts. Structures mirror the C ones field by field;
python/tests/test_ckpt_abi.py compares their sizes and offsets with the C compiler's
(python/tests/abi_ckpt_layout.c). Nothing here computes: these are the C functions, typed.
"""
import ctypes
from ctypes import POINTER, c_bool, c_char, c_char_p, c_double, c_int, c_int64, c_uint64, c_void_p

from rpusim._lib import MPI_Comm, declare

__all__ = ["CkptLayer", "CkptArray", "CkptMeta", "CkptInfo", "CkptSaveOpts", "STRUCTS",
           "MAX_DIMS", "DTYPES", "libc_free"]

MAX_DIMS = 8  # RPU_CKPT_MAX_DIMS (checked by test_ckpt_abi.py)

# rpu_ckpt_dtype values by torch-independent name
F32, F64, I32, I64, U64, U8 = 0, 1, 2, 3, 4, 5
DTYPES = {"float32": F32, "float64": F64, "int32": I32, "int64": I64, "uint64": U64,
          "uint8": U8}


class CkptLayer(ctypes.Structure):
    """rpu_ckpt_layer."""
    _fields_ = [("name", c_char_p), ("layer", c_void_p)]


class CkptArray(ctypes.Structure):
    """rpu_ckpt_array."""
    _fields_ = [("path", c_char_p), ("dtype", c_int), ("ndim", c_int),
                ("dims", c_int64 * MAX_DIMS), ("data", c_void_p), ("optional", c_bool),
                ("check_shape", c_bool)]


class CkptMeta(ctypes.Structure):
    """rpu_ckpt_meta."""
    _fields_ = [("seed", c_uint64), ("step", c_int64), ("epoch", c_int64), ("config", c_char_p)]


class CkptInfo(ctypes.Structure):
    """rpu_ckpt_info (config: malloc'ed by C, freed by rpu_ckpt_info_free)."""
    _fields_ = [("schema_version", c_int), ("rpusim_version", c_char * 32), ("seed", c_uint64),
                ("step", c_int64), ("epoch", c_int64), ("ranks_at_save", c_int),
                ("config", c_void_p)]


class CkptSaveOpts(ctypes.Structure):
    """rpu_ckpt_save_opts."""
    _fields_ = [("keep_last", c_int), ("fail_rank", c_int), ("fail_write", c_int),
                ("skip_free_space_check", c_bool)]


STRUCTS = {"rpu_ckpt_layer": CkptLayer, "rpu_ckpt_array": CkptArray,
           "rpu_ckpt_meta": CkptMeta, "rpu_ckpt_info": CkptInfo,
           "rpu_ckpt_save_opts": CkptSaveOpts}

_P = c_void_p

save_opts_default = declare("rpu_ckpt_save_opts_default", None, POINTER(CkptSaveOpts))
save = declare("rpu_ckpt_save", c_int, MPI_Comm, c_char_p, POINTER(CkptMeta), POINTER(CkptLayer),
               c_int, POINTER(CkptArray), c_int, POINTER(CkptSaveOpts))
load = declare("rpu_ckpt_load", c_int, MPI_Comm, c_char_p, POINTER(CkptLayer), c_int,
               POINTER(CkptArray), c_int, POINTER(CkptInfo))
info_free = declare("rpu_ckpt_info_free", None, POINTER(CkptInfo))
file_open = declare("rpu_ckpt_open", c_int, c_char_p, POINTER(c_void_p))
file_close = declare("rpu_ckpt_close", None, POINTER(c_void_p))
file_read = declare("rpu_ckpt_file_read", c_int, _P, c_char_p, POINTER(POINTER(c_double)),
                    POINTER(c_int), POINTER(c_int64))
config_to_text = declare("rpu_config_to_text", c_int, _P, POINTER(c_void_p))

# The C library's buffers (loaded arrays, texts) are malloc'ed: free them with the
# process's free (librpusim and this process share the C library).
libc_free = ctypes.CDLL(None).free
libc_free.restype = None
libc_free.argtypes = [c_void_p]
