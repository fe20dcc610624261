"""ctypes declarations of the mapped-layer C API (include/rpusim/layer.h, the parts of
mapping.h and tile.h it uses). Structures mirror the C ones field by field;
python/tests/test_abi.py compares their sizes and offsets with the C compiler's
(python/tests/abi_layout.c). Nothing here computes: these are the C functions, typed.
"""
import ctypes
from ctypes import POINTER, c_bool, c_char, c_double, c_float, c_int, c_uint32, c_uint64, c_void_p

from rpusim._lib import MPI_Comm, declare

__all__ = [
    "ConvParams", "LinearParams", "TileSlot", "TileGrid", "ProgramParams", "STRUCTS",
    "BIAS_NONE", "BIAS_DIGITAL", "BIAS_ANALOG", "PAD_ZEROS", "READ_EXACT", "READ_REALISTIC",
    "MAC_BLAS", "MAC_EXACT", "LAYER_NAME_MAX", "SPLIT_MAPPED", "SPLIT_TILE_ARRAY",
]

BIAS_NONE, BIAS_DIGITAL, BIAS_ANALOG = 0, 1, 2
PAD_ZEROS, PAD_REFLECT, PAD_REPLICATE, PAD_CIRCULAR = 0, 1, 2, 3
READ_EXACT, READ_REALISTIC = 0, 1
MAC_BLAS, MAC_EXACT = 0, 1
SPLIT_MAPPED, SPLIT_TILE_ARRAY = 0, 1  # rpu_split (mapping.h)
LAYER_NAME_MAX = 63

_enum = c_int  # C enums of this API are int-sized (checked by test_abi.py)
# float * / const float * tensor buffers are declared void *: a call then takes the int of
# tensor.data_ptr() as it is (float_ptr), where POINTER(c_float) would need a ctypes.cast
# per argument (~1 us each, a dozen per layer and step); ctypes arrays and pointers are
# still accepted.
_float_p = c_void_p
_int_p = POINTER(c_int)


class ConvParams(ctypes.Structure):
    """rpu_conv_params."""
    _fields_ = [
        ("ndim", c_int), ("in_channels", c_int), ("out_channels", c_int),
        ("kernel", c_int * 3), ("stride", c_int * 3), ("padding", c_int * 3),
        ("dilation", c_int * 3), ("groups", c_int), ("bias", _enum),
        ("padding_mode", _enum), ("use_indexed", c_bool), ("layer_id", c_uint32),
        ("seed", c_uint64), ("mac", _enum), ("name", c_char * (LAYER_NAME_MAX + 1)),
        ("split", _enum),
    ]


class LinearParams(ctypes.Structure):
    """rpu_linear_params."""
    _fields_ = [
        ("in_features", c_int), ("out_features", c_int), ("bias", _enum),
        ("layer_id", c_uint32), ("seed", c_uint64), ("mac", _enum),
        ("name", c_char * (LAYER_NAME_MAX + 1)), ("split", _enum),
    ]


class TileSlot(ctypes.Structure):
    """rpu_tile_slot: one tile of a layer's grid."""
    _fields_ = [(n, c_int) for n in ("group", "in_split", "out_split", "in_ch0", "in_ch",
                                     "out_ch0", "out_ch", "col0", "ncol", "rows", "cols",
                                     "owner", "holders")]


class TileGrid(ctypes.Structure):
    """rpu_tile_grid."""
    _fields_ = [(n, c_int) for n in ("groups", "n_in", "n_out", "n_tiles", "kernel_elems",
                                     "in_per_group", "out_per_group", "analog_bias")] + \
        [("split", _enum), ("in_share", c_int), ("tiles", POINTER(TileSlot))]


class ProgramParams(ctypes.Structure):
    """rpu_program_params (realistic write)."""
    _fields_ = [("learning_rate", c_float), ("max_iter", c_int), ("tolerance", c_float),
                ("w_init", c_float)]


# name in C -> ctypes structure (test_abi.py checks each against abi_layout.c's output)
STRUCTS = {"rpu_conv_params": ConvParams, "rpu_linear_params": LinearParams,
           "rpu_tile_slot": TileSlot, "rpu_tile_grid": TileGrid,
           "rpu_program_params": ProgramParams}

_P = c_void_p          # rpu_conv * / rpu_linear * / const rpu_config *
_PP = POINTER(c_void_p)

# ---------------------------------------------------------------- conv
conv_params_default = declare("rpu_conv_params_default", None, POINTER(ConvParams), c_int, c_int,
                              c_int, c_int)
conv_tile_size = declare("rpu_conv_tile_size", c_int, c_int, c_int, c_int, _int_p)
conv_output_size = declare("rpu_conv_output_size", c_int, POINTER(ConvParams), _int_p, _int_p)
conv_create = declare("rpu_conv_create", c_int, MPI_Comm, POINTER(ConvParams), _P, _PP)
conv_destroy = declare("rpu_conv_destroy", None, _PP)
conv_from_digital = declare("rpu_conv_from_digital", c_int, MPI_Comm, POINTER(ConvParams), _P,
                            _float_p, _float_p, _PP)
conv_set_training = declare("rpu_conv_set_training", None, _P, c_bool)
conv_forward = declare("rpu_conv_forward", c_int, _P, _float_p, c_int, _int_p, _float_p)
conv_backward = declare("rpu_conv_backward", c_int, _P, _float_p, _float_p)
conv_get_grad = declare("rpu_conv_get_grad", c_int, _P, _float_p, _float_p)
conv_update = declare("rpu_conv_update", c_int, _P, c_float)
conv_post_update = declare("rpu_conv_post_update", c_int, _P)
conv_update_begin = declare("rpu_conv_update_begin", c_int, _P, c_float, _int_p)
conv_update_end = declare("rpu_conv_update_end", c_int, _P, _int_p, c_int)
conv_update_splits = declare("rpu_conv_update_splits", c_bool, _P)
conv_set_update_owners = declare("rpu_conv_set_update_owners", c_int, _P, _int_p)
conv_update_owners = declare("rpu_conv_update_owners", c_int, POINTER(_P), c_int,
                             POINTER(_int_p))
conv_program = declare("rpu_conv_program", c_int, _P, c_uint64)
conv_drift = declare("rpu_conv_drift", c_int, _P, c_double, c_uint32)
conv_set_weights = declare("rpu_conv_set_weights", c_int, _P, _float_p, _float_p)
conv_get_weights = declare("rpu_conv_get_weights", c_int, _P, _float_p, _float_p, _enum)
conv_get_digital_bias = declare("rpu_conv_get_digital_bias", c_int, _P, _float_p)
conv_set_digital_bias = declare("rpu_conv_set_digital_bias", c_int, _P, _float_p)
conv_program_weights = declare("rpu_conv_program_weights", c_int, _P, _float_p, _float_p,
                               POINTER(ProgramParams), _int_p, _float_p)
conv_set_readout_oversampling = declare("rpu_conv_set_readout_oversampling", c_int, _P, c_int)
conv_grid = declare("rpu_conv_grid", POINTER(TileGrid), _P)
conv_weight_count = declare("rpu_conv_weight_count", c_int, _P)
conv_is_linear = declare("rpu_conv_is_linear", c_bool, _P)

# ---------------------------------------------------------------- linear
linear_params_default = declare("rpu_linear_params_default", None, POINTER(LinearParams), c_int,
                                c_int)
linear_create = declare("rpu_linear_create", c_int, MPI_Comm, POINTER(LinearParams), _P, _PP)
linear_destroy = declare("rpu_linear_destroy", None, _PP)
linear_from_digital = declare("rpu_linear_from_digital", c_int, MPI_Comm, POINTER(LinearParams),
                              _P, _float_p, _float_p, _PP)
linear_set_training = declare("rpu_linear_set_training", None, _P, c_bool)
linear_forward = declare("rpu_linear_forward", c_int, _P, _float_p, c_int, _float_p)
linear_backward = declare("rpu_linear_backward", c_int, _P, _float_p, _float_p)
linear_get_grad = declare("rpu_linear_get_grad", c_int, _P, _float_p, _float_p)
linear_update = declare("rpu_linear_update", c_int, _P, c_float)
linear_post_update = declare("rpu_linear_post_update", c_int, _P)
linear_set_weights = declare("rpu_linear_set_weights", c_int, _P, _float_p, _float_p)
linear_get_weights = declare("rpu_linear_get_weights", c_int, _P, _float_p, _float_p, _enum)
linear_as_conv = declare("rpu_linear_as_conv", c_void_p, _P)

# ---------------------------------------------------------------- misc
bias_for_config = declare("rpu_bias_for_config", _enum, c_bool, _P)
bias_for_split = declare("rpu_bias_for_split", _enum, c_bool, _P, _enum, c_int, c_int)
tile_array_used = declare("rpu_tile_array_used", c_bool, c_int, c_int, c_int, c_int)
program_params_default = declare("rpu_program_params_default", None, POINTER(ProgramParams))


def float_ptr(tensor):
    """The float * (as the int address the void * parameters take) of a contiguous float32
    CPU tensor (None: NULL)."""
    if tensor is None:
        return None
    return tensor.data_ptr()
