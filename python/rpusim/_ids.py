"""Layer ids and the run seed: the keys of every random stream of an analog layer.

Every random number of a layer's tiles (weight initialisation, device-to-device
variation, IO noise, pulse trains, programming noise) comes from a stream keyed by
(run seed, layer id, tile, purpose) in C. rpusim.nn gives each analog layer the next id
of a counter of this process (0, 1, 2, ... in creation order) and the current run seed.
Since every rank of an SPMD script creates the same layers in the same order, a layer
has the same id on every rank, and its weights start the same at every rank count.

    rpusim.manual_seed(seed)   # run seed for layers created from now on (default 0),
                               # and the layer counter restarts at 0

A layer's constructor also takes layer_id= and seed= to set them explicitly.
"""
import threading

__all__ = ["manual_seed", "initial_seed", "next_layer_id"]

_lock = threading.Lock()
_state = {"seed": 0, "next_id": 0}


def manual_seed(seed):
    """Sets the run seed of the analog layers created from now on (an int 0..2^64-1) and
    restarts the layer counter at 0, so that a model built after manual_seed(s) has the
    same ids and weights as any other model built the same way after manual_seed(s)."""
    seed = int(seed)
    if not 0 <= seed < 2 ** 64:
        raise ValueError("manual_seed: seed %d outside 0..2^64-1" % seed)
    with _lock:
        _state["seed"] = seed
        _state["next_id"] = 0


def initial_seed():
    """The run seed that new analog layers get."""
    return _state["seed"]


def next_layer_id():
    """The next layer id (creation order in this process)."""
    with _lock:
        lid = _state["next_id"]
        _state["next_id"] = lid + 1
    if lid >= 2 ** 32:
        raise OverflowError("more than 2^32 analog layers created in this process")
    return lid
