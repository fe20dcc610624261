"""rpusim.save / rpusim.load: one HDF5 checkpoint of a PyTorch model with analog layers,
its optimizer and the random state, in rpusim's checkpoint schema (README "Checkpoints").

    rpusim.save(model, optimizer, "run.h5", epoch=3)       # collective
    info = rpusim.load(model, optimizer, "run.h5")          # collective; info["epoch"] == 3

The file (written by the C library's rpu_ckpt_save: atomically, with Fletcher32 checksums,
tiles by logical key so that a file saved on P ranks loads on Q):

    /                                  root attributes of the schema (format, schema_version,
                                       rpusim_version, seed = rpusim.initial_seed(), step,
                                       epoch, ranks_at_save, config: the analog layers'
                                       rpu_configs as text, one [layer NAME] section each)
    /layers/<module name>/...          every analog layer (its qualified name in
                                       model.named_modules(), "root" for a model that is
                                       itself an analog layer): tiles, digital bias (C schema)
    /torch/manifest                    uint8: UTF-8 JSON describing every dataset below
                                       (kind, dtype, shape) and the optimizer's structure
    /torch/model/<state_dict key>      every tensor of model.state_dict(): digital weights,
                                       BatchNorm running stats and num_batches_tracked, the
                                       analog layers' digital bias Parameters (also stored by
                                       C in /layers), with their shape and dtype (bool as
                                       uint8; a 0-d tensor as shape [1])
    /torch/analog/<name>/program_count, drift_draw
                                       int64 [1]: the keys of the next program/drift draw of
                                       each analog layer (the rest of its state is in /layers)
    /torch/optim/param_groups/<g>/<key>  the hyper-parameters of group g (lr, momentum, ...;
                                       numbers as float64/int64/uint8 [1], None only in the
                                       manifest); the group's parameters by name in the
                                       manifest
    /torch/optim/state/<param name>/<key>  the optimizer state of a parameter (momentum_buffer,
                                       step, ...), tensors as they are
    /torch/rng/torch_cpu               uint8 [P, n]: torch.get_rng_state() of each of the P
                                       ranks at save
    /user/<key>                        metadata= values (numbers or tensors)

Every dataset is readable with h5py (h5py.File(path)["torch/model/0.weight"][...]).

Loading checks before it changes anything: the file's torch entries against the model's
state_dict (names, shapes, dtypes), the optimizer's parameter groups (same parameters by
name in the same order), that the random state can be restored (the same on every rank at
save, or as many ranks now as then); then the C load verifies the analog layers (names,
shapes, split sizes, rpu_config, stream keys) and every checksum. A failure raises
ValueError (the torch side) or RPUError (the C side), naming the file and the entry, and
leaves the model, the optimizer and the random state as they were.

Collectivity: save and load are collective over the analog layers' communicator (comm=,
default: the first analog layer's, else MPI.COMM_WORLD); every rank passes the same
model and arguments. The digital tensors and the optimizer state are rank 0's (an SPMD
script keeps them identical on every rank); each rank's torch random state is stored.
Not stored: Python's and numpy's random states, a data loader's position, train/eval
mode, and a gradient between backward() and optimizer.step() (save between steps).
"""
import ctypes
import json
import re

import torch
from mpi4py import MPI

from rpusim import _capi_ckpt as C
from rpusim import _ids
from rpusim._lib import RPUError, check, comm_handle, lib

__all__ = ["save", "load"]

MANIFEST = "torch/manifest"
FORMAT = "rpusim-torch"
VERSION = 1
MAX_TEXT = 60000  # RPU_CKPT_MAX_TEXT (checked by test_ckpt_abi.py)
_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_TORCH_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int32: "int32",
                 torch.int64: "int64", torch.uint8: "uint8", torch.bool: "bool"}
_FROM_NAME = {v: k for k, v in _TORCH_DTYPES.items()}
_ANALOG_COUNTERS = ("program_count", "drift_draw")  # AnalogMappedLayer._<name>


def _analog_layers(model):
    from rpusim.nn.base import named_analog_layers  # pylint: disable=import-outside-toplevel
    return [(name or "root", layer) for name, layer in named_analog_layers(model)]


def _comm_of(layers, comm):
    if comm is not None:
        return comm
    return layers[0][1].comm if layers else MPI.COMM_WORLD


def _check_path(path, what):
    comps = path.split("/")
    if len(path) > 255 or not all(_COMPONENT.match(c) and c not in (".", "..") for c in comps):
        raise ValueError("checkpoint: %s: the name %r cannot be stored (HDF5 path components "
                         "of [A-Za-z0-9_.-], at most 255 characters in all)" % (what, path))


# ---------------------------------------------------------------------------- encoding

class _Writer:
    """The arrays of a save: ctypes descriptors plus the tensors that own their bytes."""

    def __init__(self):
        self.arrays = []
        self.keep = []

    def tensor(self, path, t, what):
        """A tensor as a dataset; returns its manifest entry."""
        _check_path(path, what)
        if not isinstance(t, torch.Tensor):
            raise TypeError("checkpoint: %s is a %s, not a tensor" % (what, type(t).__name__))
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype not in _TORCH_DTYPES:
            raise TypeError("checkpoint: %s has dtype %s; rpusim checkpoints store %s"
                            % (what, t.dtype, ", ".join(sorted(_TORCH_DTYPES.values()))))
        shape = list(t.shape)
        if len(shape) > C.MAX_DIMS:
            raise ValueError("checkpoint: %s has %d dimensions; at most %d are stored"
                             % (what, len(shape), C.MAX_DIMS))
        name = _TORCH_DTYPES[t.dtype]
        data = t.to(torch.uint8) if t.dtype == torch.bool else t
        data = data.reshape(shape if shape else [1]).contiguous()
        self._add(path, "uint8" if name == "bool" else name, list(data.shape), data)
        return {"kind": "tensor", "path": path, "dtype": name, "shape": shape}

    def _add(self, path, dtype, dims, data):
        a = C.CkptArray()
        self.keep.append(path.encode())
        a.path = self.keep[-1]
        a.dtype = C.DTYPES[dtype]
        a.ndim = len(dims)
        for i, d in enumerate(dims):
            a.dims[i] = d
        if data is not None and data.numel() > 0:
            self.keep.append(data)
            a.data = data.data_ptr()
        self.arrays.append(a)

    def value(self, path, v, what):
        """A hyper-parameter, optimizer state value or metadata value."""
        if isinstance(v, torch.Tensor):
            return self.tensor(path, v, what)
        if v is None:
            return {"kind": "none"}
        if isinstance(v, str):
            return {"kind": "str", "value": v}
        if isinstance(v, bool):
            return dict(self.tensor(path, torch.tensor([v]), what), kind="bool")
        if isinstance(v, int):
            return dict(self.tensor(path, torch.tensor([v], dtype=torch.int64), what), kind="int")
        if isinstance(v, float):
            return dict(self.tensor(path, torch.tensor([v], dtype=torch.float64), what),
                        kind="float")
        if isinstance(v, (tuple, list)) and all(isinstance(x, (int, float)) and
                                                not isinstance(x, bool) for x in v):
            e = self.tensor(path, torch.tensor([float(x) for x in v], dtype=torch.float64), what)
            return dict(e, kind="tuple" if isinstance(v, tuple) else "list",
                        elems=["int" if isinstance(x, int) else "float" for x in v])
        raise TypeError("checkpoint: %s = %r: a %s cannot be stored (tensors, numbers, bools, "
                        "strings, None and tuples of numbers can)" % (what, v, type(v).__name__))


def _decode(entry, tensors):
    """The Python value of a manifest entry (tensors: path -> loaded tensor)."""
    kind = entry["kind"]
    if kind == "none":
        return None
    if kind == "str":
        return entry["value"]
    t = tensors[entry["path"]]
    if kind == "tensor":
        if entry["dtype"] == "bool":
            t = t.to(torch.bool)
        return t.reshape(entry["shape"])
    if kind == "bool":
        return bool(t[0])
    if kind == "int":
        return int(t[0])
    if kind == "float":
        return float(t[0])
    vals = [int(x) if k == "int" else float(x) for x, k in zip(t.tolist(), entry["elems"])]
    return tuple(vals) if kind == "tuple" else vals


def _param_names(model):
    return {id(p): name for name, p in model.named_parameters()}


def _optimizer_params(model, optimizer, path):
    """[(group index, parameter name)] in the optimizer's order (torch numbers its state by
    this order)."""
    names = _param_names(model)
    out = []
    for g, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError("checkpoint %s: parameter %d of the optimizer's group %d "
                                 "(shape %s) is not a parameter of the model"
                                 % (path, len(out), g, list(p.shape)))
            out.append((g, names[id(p)]))
    return out


def _config_text(layers):
    parts = ["# rpusim.save: a PyTorch model with %d analog layer(s); each section is one "
             "layer's rpu_config\n" % len(layers)]
    for name, layer in layers:
        parts.append("\n[layer %s]\n%s" % (name, layer._cconfig.to_text()))  # pylint: disable=protected-access
    out = "".join(parts)
    if len(out.encode()) > MAX_TEXT:
        out = out.encode()[:MAX_TEXT - 80].decode("utf-8", "ignore") + \
            "\n# ... (cut: see each layer's rpu_config attribute)\n"
    return out


# ---------------------------------------------------------------------------- save

def save(model, optimizer, path, *, epoch=0, step=0, metadata=None, keep_last=0, comm=None):
    """Writes the model (analog tiles, digital state), the optimizer (may be None), the
    ranks' torch random states and metadata (a dict of numbers or tensors) to path
    (collective; see the module doc). epoch and step go to the root attributes; keep_last
    keeps that many previous files as path.1 ... (rpu_ckpt_save). The save is atomic:
    path is replaced only after every rank wrote its part."""
    path = str(path)
    layers = _analog_layers(model)
    comm = _comm_of(layers, comm)
    w = _Writer()
    manifest = {"format": FORMAT, "version": VERSION, "model_class": type(model).__name__}

    entries = []
    for key, t in model.state_dict().items():
        entries.append(dict(w.tensor("torch/model/" + key, t, "model entry '%s'" % key),
                            name=key))
    manifest["model"] = entries

    analog = []
    for name, layer in layers:
        layer._sync_bias()  # pylint: disable=protected-access
        counters = {}
        for c in _ANALOG_COUNTERS:
            counters[c] = w.tensor("torch/analog/%s/%s" % (name, c),
                                   torch.tensor([int(getattr(layer, "_" + c))]),
                                   "analog layer '%s' %s" % (name, c))
        analog.append({"name": name, "counters": counters})
    manifest["analog"] = analog

    if optimizer is not None:
        params = _optimizer_params(model, optimizer, path)
        sd = optimizer.state_dict()
        groups = []
        for g, group in enumerate(sd["param_groups"]):
            hyper = {}
            for k, v in group.items():
                if k != "params":
                    hyper[k] = w.value("torch/optim/param_groups/%d/%s" % (g, k), v,
                                       "optimizer group %d '%s'" % (g, k))
            groups.append({"params": [n for gi, n in params if gi == g], "hyper": hyper})
        state = {}
        for idx, st in sd["state"].items():
            pname = params[idx][1]
            state[pname] = {k: w.value("torch/optim/state/%s/%s" % (pname, k), v,
                                       "optimizer state '%s' of %s" % (k, pname))
                            for k, v in st.items()}
        manifest["optimizer"] = {"class": type(optimizer).__name__, "param_groups": groups,
                                 "state": state}
    else:
        manifest["optimizer"] = None

    rng = torch.get_rng_state()
    rows = comm.allgather(rng.numpy().tobytes())
    table = torch.tensor([list(r) for r in rows], dtype=torch.uint8) if rows[0] else \
        torch.zeros((len(rows), 0), dtype=torch.uint8)
    manifest["rng"] = {"torch_cpu": w.tensor("torch/rng/torch_cpu", table, "torch RNG state"),
                       "same_on_all_ranks": all(r == rows[0] for r in rows)}

    user = {}
    for k, v in (metadata or {}).items():
        user[str(k)] = w.value("user/%s" % k, v, "metadata '%s'" % k)
    manifest["user"] = user

    text = torch.tensor(list(json.dumps(manifest, sort_keys=True).encode()), dtype=torch.uint8)
    w._add(MANIFEST, "uint8", [text.numel()], text)  # pylint: disable=protected-access

    ck_layers = (C.CkptLayer * max(1, len(layers)))()
    names = [n.encode() for n, _ in layers]
    for i, (_, layer) in enumerate(layers):
        ck_layers[i].name = names[i]
        ck_layers[i].layer = layer._conv.value  # pylint: disable=protected-access
    arrays = (C.CkptArray * len(w.arrays))(*w.arrays)
    config = _config_text(layers).encode()
    meta = C.CkptMeta(seed=_ids.initial_seed(), step=int(step), epoch=int(epoch), config=config)
    opts = C.CkptSaveOpts()
    C.save_opts_default(ctypes.byref(opts))
    opts.keep_last = int(keep_last)
    check(C.save(comm_handle(comm), path.encode(), ctypes.byref(meta), ck_layers, len(layers),
                 arrays, len(w.arrays), ctypes.byref(opts)))


# ---------------------------------------------------------------------------- load

def _read_manifest(path, comm):
    """Rank 0 reads /torch/manifest with the serial reader; every rank gets it or the same
    exception."""
    result = None
    if comm.Get_rank() == 0:
        f = ctypes.c_void_p()
        try:
            check(C.file_open(path.encode(), ctypes.byref(f)))
            vals = ctypes.POINTER(ctypes.c_double)()
            nd = ctypes.c_int()
            dims = (ctypes.c_int64 * C.MAX_DIMS)()
            st = C.file_read(f, MANIFEST.encode(), ctypes.byref(vals), ctypes.byref(nd), dims)
            if st != 0:
                raw = lib.rpu_last_error().decode("utf-8", "replace")
                raise ValueError("checkpoint %s: not written by rpusim.save (no readable "
                                 "/%s: %s)" % (path, MANIFEST, raw))
            try:
                data = bytes(int(vals[i]) for i in range(dims[0]))
            finally:
                C.libc_free(ctypes.cast(vals, ctypes.c_void_p))
            manifest = json.loads(data.decode())
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise ValueError("checkpoint %s: /%s: format %r version %r, expected %r %d"
                                 % (path, MANIFEST, manifest.get("format"),
                                    manifest.get("version"), FORMAT, VERSION))
            result = ("ok", manifest)
        except RPUError as e:
            result = ("rpu", (e.status, str(e)))
        except (ValueError, UnicodeDecodeError) as e:
            result = ("value", str(e) if isinstance(e, ValueError) and str(e).startswith(
                "checkpoint") else "checkpoint %s: /%s: unreadable (%s)" % (path, MANIFEST, e))
        finally:
            if f.value:
                C.file_close(ctypes.byref(f))
    kind, payload = comm.bcast(result, root=0)
    if kind == "rpu":
        raise RPUError(*payload)
    if kind == "value":
        raise ValueError(payload)
    return payload


def _shape_text(s):
    return "[%s]" % ", ".join(str(x) for x in s)


def _check_model(path, manifest, model, layers):
    want = {k: t for k, t in model.state_dict().items()}
    have = {e["name"]: e for e in manifest["model"]}
    for key, t in want.items():
        e = have.get(key)
        obj = "checkpoint %s: /torch/model/%s" % (path, key)
        if e is None:
            raise ValueError("%s: missing (the model has this state_dict entry, the file of "
                             "a %s does not)" % (obj, manifest.get("model_class")))
        if not isinstance(t, torch.Tensor) or e["kind"] != "tensor":
            raise ValueError("%s: not a tensor in the model or the file" % obj)
        if list(t.shape) != e["shape"]:
            raise ValueError("%s: shape %s in the file, the model has %s"
                             % (obj, _shape_text(e["shape"]), _shape_text(t.shape)))
        if _TORCH_DTYPES.get(t.dtype) != e["dtype"]:
            raise ValueError("%s: dtype %s in the file, the model has %s"
                             % (obj, e["dtype"], t.dtype))
    for key in have:
        if key not in want:
            raise ValueError("checkpoint %s: /torch/model/%s: the file has this entry, the "
                             "model (%s) does not" % (path, key, type(model).__name__))
    names = [n for n, _ in layers]
    saved = [a["name"] for a in manifest["analog"]]
    for n in saved:
        if n not in names:
            raise ValueError("checkpoint %s: /layers/%s: the file has this analog layer, the "
                             "model does not" % (path, n))
    for n in names:
        if n not in saved:
            raise ValueError("checkpoint %s: /layers/%s: missing (the model has this analog "
                             "layer, the file does not)" % (path, n))


def _check_optimizer(path, manifest, model, optimizer):
    saved = manifest["optimizer"]
    if optimizer is None:
        return
    if saved is None:
        raise ValueError("checkpoint %s: /torch/optim: missing (saved without an optimizer); "
                         "load with optimizer=None" % path)
    params = _optimizer_params(model, optimizer, path)
    if len(saved["param_groups"]) != len(optimizer.param_groups):
        raise ValueError("checkpoint %s: /torch/optim/param_groups: %d groups in the file, the "
                         "optimizer has %d" % (path, len(saved["param_groups"]),
                                               len(optimizer.param_groups)))
    for g, group in enumerate(saved["param_groups"]):
        mine = [n for gi, n in params if gi == g]
        if group["params"] != mine:
            raise ValueError("checkpoint %s: /torch/optim/param_groups/%d: parameters %s in the "
                             "file, the optimizer's group has %s"
                             % (path, g, group["params"], mine))
    shapes = dict((n, list(p.shape)) for n, p in model.named_parameters())
    for pname, st in saved["state"].items():
        if pname not in shapes:
            raise ValueError("checkpoint %s: /torch/optim/state/%s: not a parameter of the "
                             "optimizer" % (path, pname))
        buf = st.get("momentum_buffer")
        if buf and buf["kind"] == "tensor" and buf["shape"] != shapes[pname]:
            raise ValueError("checkpoint %s: /torch/optim/state/%s/momentum_buffer: shape %s, "
                             "the parameter has %s" % (path, pname, _shape_text(buf["shape"]),
                                                       _shape_text(shapes[pname])))


def _entries(manifest, with_optimizer):
    """Every dataset entry of the manifest that load reads."""
    out = list(manifest["model"])
    for a in manifest["analog"]:
        out.extend(a["counters"].values())
    if with_optimizer and manifest["optimizer"]:
        for g in manifest["optimizer"]["param_groups"]:
            out.extend(g["hyper"].values())
        for st in manifest["optimizer"]["state"].values():
            out.extend(st.values())
    out.append(manifest["rng"]["torch_cpu"])
    out.extend(manifest["user"].values())
    return [e for e in out if "path" in e]


def _stored_dtype(entry):
    return "uint8" if entry["dtype"] == "bool" else entry["dtype"]


def load(model, optimizer, path, *, restore_rng=True, comm=None):
    """Reads a checkpoint written by rpusim.save into a model (and optimizer, may be None)
    built the same way (same modules, analog layers with the same configs, layer ids and
    seed: e.g. after the same rpusim.manual_seed), on any number of ranks (collective).
    restore_rng=False leaves torch's random state alone. Returns a dict: epoch, step,
    seed, ranks_at_save, rpusim_version, schema_version, metadata (save's metadata=).
    Raises RPUError (file missing or unreadable, analog layers that do not match, corrupted
    data) or ValueError (torch side), naming the file and the entry; nothing is changed
    then."""
    path = str(path)
    layers = _analog_layers(model)
    comm = _comm_of(layers, comm)
    manifest = _read_manifest(path, comm)
    _check_model(path, manifest, model, layers)
    _check_optimizer(path, manifest, model, optimizer)
    rng = manifest["rng"]
    if restore_rng and not rng["same_on_all_ranks"] and \
            rng["torch_cpu"]["shape"][0] != comm.Get_size():
        raise ValueError("checkpoint %s: /torch/rng/torch_cpu: the %d ranks that saved had "
                         "different torch random states, which cannot be given to %d ranks; "
                         "load with restore_rng=False" % (path, rng["torch_cpu"]["shape"][0],
                                                          comm.Get_size()))
    if restore_rng and rng["torch_cpu"]["shape"][1] != torch.get_rng_state().numel():
        raise ValueError("checkpoint %s: /torch/rng/torch_cpu: states of %d bytes, this torch's "
                         "generator has %d; load with restore_rng=False"
                         % (path, rng["torch_cpu"]["shape"][1], torch.get_rng_state().numel()))

    entries = _entries(manifest, optimizer is not None)
    arrays = (C.CkptArray * max(1, len(entries)))()
    keep = []
    for i, e in enumerate(entries):
        keep.append(e["path"].encode())
        arrays[i].path = keep[-1]
        arrays[i].dtype = C.DTYPES[_stored_dtype(e)]
        dims = list(e["shape"]) if e["shape"] else [1]
        arrays[i].check_shape = True  # C refuses another shape before loading anything
        arrays[i].ndim = len(dims)
        for d, n in enumerate(dims):
            arrays[i].dims[d] = n
    ck_layers = (C.CkptLayer * max(1, len(layers)))()
    for i, (name, layer) in enumerate(layers):
        keep.append(name.encode())
        ck_layers[i].name = keep[-1]
        ck_layers[i].layer = layer._conv.value  # pylint: disable=protected-access
    info = C.CkptInfo()
    check(C.load(comm_handle(comm), path.encode(), ck_layers, len(layers), arrays,
                 len(entries), ctypes.byref(info)))
    # the tiles are loaded (C verified them and every checksum); the torch side follows
    try:
        tensors = {}
        for i, e in enumerate(entries):
            a = arrays[i]
            dims = [a.dims[d] for d in range(a.ndim)]
            dtype = _FROM_NAME[_stored_dtype(e)]
            n = 1
            for d in dims:
                n *= d
            if n == 0:
                tensors[e["path"]] = torch.empty(dims, dtype=dtype)
            else:
                nbytes = n * torch.tensor([], dtype=dtype).element_size()
                buf = (ctypes.c_char * nbytes).from_address(a.data)
                tensors[e["path"]] = torch.frombuffer(buf, dtype=dtype).clone().reshape(dims)
    finally:
        for i in range(len(entries)):
            if arrays[i].data:
                C.libc_free(arrays[i].data)
        result = {"epoch": info.epoch, "step": info.step, "seed": info.seed,
                  "ranks_at_save": info.ranks_at_save, "schema_version": info.schema_version,
                  "rpusim_version": info.rpusim_version.decode()}
        C.info_free(ctypes.byref(info))

    model_sd = {e["name"]: _decode(e, tensors) for e in manifest["model"]}
    with torch.no_grad():
        model.load_state_dict(model_sd, strict=True)
    by_name = dict(layers)
    for a in manifest["analog"]:
        layer = by_name[a["name"]]
        for c, e in a["counters"].items():
            setattr(layer, "_" + c, _decode(e, tensors))
        layer._pending = False  # pylint: disable=protected-access
    if optimizer is not None:
        saved = manifest["optimizer"]
        params = _optimizer_params(model, optimizer, path)
        index = {name: i for i, (_, name) in enumerate(params)}
        current = optimizer.state_dict()["param_groups"]
        groups = []
        for g, group in enumerate(saved["param_groups"]):
            hyper = {k: v for k, v in current[g].items() if k != "params"}
            hyper.update({k: _decode(e, tensors) for k, e in group["hyper"].items()})
            hyper["params"] = current[g]["params"]
            groups.append(hyper)
        state = {index[p]: {k: _decode(e, tensors) for k, e in st.items()}
                 for p, st in saved["state"].items()}
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    if restore_rng:
        table = tensors[rng["torch_cpu"]["path"]]
        row = 0 if rng["same_on_all_ranks"] else comm.Get_rank()
        torch.set_rng_state(table[row].clone())
    result["metadata"] = {k: _decode(e, tensors) for k, e in manifest["user"].items()}
    return result
