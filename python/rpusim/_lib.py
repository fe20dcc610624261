"""The ctypes binding of librpusim: finding the shared library, status codes as Python
exceptions, MPI communicators as C handles. Everything numeric happens in C; this module
only declares the C functions' signatures.

Why ctypes (and not cffi or a compiled extension): it is in the standard library, so the
package needs nothing beyond Debian's python3-torch and python3-mpi4py and no compiler at
install time; the public C API takes plain pointers, ints and POD structs, which ctypes
describes exactly (python/tests/test_abi.py checks every struct's size and field offsets
against the C compiler's).

The library is looked up in this order:
  1. $RPUSIM_LIBRARY (a path to librpusim.so);
  2. the CMake build tree next to the package source (../build/src/librpusim.so);
  3. the system's library path (ctypes.util.find_library("rpusim")), e.g. after
     `cmake --install` of a BUILD_SHARED_LIBS build into a prefix that ldconfig knows.
"""
import ctypes
import ctypes.util
import os

from mpi4py import MPI

__all__ = ["lib", "RPUError", "check", "comm_handle", "MPI_Comm", "library_path"]

_STATUS_NAMES = {
    1: "RPU_ERR_ARG", 2: "RPU_ERR_CONFIG", 3: "RPU_ERR_NOMEM", 4: "RPU_ERR_MODULE",
    5: "RPU_ERR_UNSUPPORTED", 6: "RPU_ERR_IO", 7: "RPU_ERR_FORMAT", 8: "RPU_ERR_MPI",
    9: "RPU_ERR_INTERNAL", 10: "RPU_STOPPED",
}


class RPUError(RuntimeError):
    """An error status of librpusim; the message is rpu_last_error()'s, status the code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, "status %d" % status)


def _find_library():
    env = os.environ.get("RPUSIM_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise ImportError("RPUSIM_LIBRARY=%s: no such file" % env)
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.join(here, "..", "..", "build", "src", "librpusim.so")
    if os.path.isfile(tree):
        return os.path.normpath(tree)
    found = ctypes.util.find_library("rpusim")
    if found:
        return found
    raise ImportError(
        "librpusim.so not found: build it (bash scripts/setup.sh builds ./build/src/"
        "librpusim.so) and set RPUSIM_LIBRARY to its path, or install a shared build "
        "(cmake -DBUILD_SHARED_LIBS=ON) where the dynamic linker finds it")


library_path = _find_library()
# RTLD_GLOBAL: Open MPI's components (dlopen'ed by MPI_Init, done by mpi4py) resolve
# symbols of libmpi in the global namespace; mpi4py already loaded libmpi this way.
lib = ctypes.CDLL(library_path, mode=ctypes.RTLD_GLOBAL)

# MPI_Comm is a pointer in Open MPI and an int in MPICH: mpi4py reports the handle's size.
MPI_Comm = ctypes.c_void_p if MPI._sizeof(MPI.Comm) == ctypes.sizeof(ctypes.c_void_p) \
    else ctypes.c_int


def comm_handle(comm):
    """The C handle (MPI_Comm) of an mpi4py communicator, for a ctypes call."""
    if not isinstance(comm, MPI.Comm):
        raise TypeError("comm must be an mpi4py communicator (mpi4py.MPI.Comm), got %s"
                        % type(comm).__name__)
    return MPI_Comm(MPI._handleof(comm))


lib.rpu_last_error.restype = ctypes.c_char_p
lib.rpu_last_error.argtypes = []


def check(status):
    """Raises RPUError with rpu_last_error()'s message for a nonzero status."""
    if status != 0:
        msg = lib.rpu_last_error()
        raise RPUError(status, msg.decode("utf-8", "replace") if msg else "rpusim error")
    return status


def declare(name, restype, *argtypes):
    """Declares a C function's signature once; returns the ctypes function."""
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn
