"""rpusim: aihwkit's analog layer API over librpusim's MPI tile engine.

Every rank of an MPI job runs the same script (SPMD, `mpirun -n P python3 script.py`);
analog layers are collective C calls on an mpi4py communicator (COMM_WORLD by default),
digital torch modules compute the same values on every rank.
"""
from rpusim._ids import initial_seed, manual_seed  # noqa: F401
from rpusim._lib import RPUError  # noqa: F401

__version__ = "0.1.0"
