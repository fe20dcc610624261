#!/usr/bin/python3
"""Write the weights of a PyTorch state_dict as an HDF5 file for `rpusim import`.

usage: python3 scripts/export_torch.py STATE_DICT OUT.h5 [--map torch_prefix=layer_name ...]

STATE_DICT is a file saved with torch.save (a state_dict, a dict holding one under
"state_dict" or "model_state_dict", or a whole nn.Module), loaded with
torch.load(map_location="cpu"); a NumPy .npz archive of the same keys works without torch.

Each key ending in ".weight" or ".bias" becomes the dataset /<key> of OUT.h5 (float32, or
float64 when the tensor is float64), after renaming: --map features.0=conv1 turns
"features.0.weight" into "conv1.weight" (the longest matching prefix wins; a prefix matches
whole dot-separated components). Other keys (running_mean, running_var,
num_batches_tracked, ...) are skipped with a notice on stderr. The names must then be the
analog layer names of the experiment file: /<layer>.weight [out, in/groups, k...] (conv) or
[out, in] (linear) and /<layer>.bias [out].

The core, export_state_dict(), takes a mapping of names to NumPy arrays (or anything
np.asarray accepts) and needs only numpy and h5py (Debian: python3-numpy python3-h5py).
"""
import argparse
import sys

import h5py
import numpy as np


def parse_maps(items):
    """["features.0=conv1", ...] -> [("features.0", "conv1"), ...]"""
    out = []
    for item in items or []:
        prefix, sep, name = item.partition("=")
        if not sep or not prefix or not name:
            raise ValueError(f"--map {item!r}: want torch_prefix=layer_name")
        out.append((prefix, name))
    return out


def rename_key(key, rename):
    """Apply the longest prefix of rename (pairs or a dict) that matches whole components."""
    pairs = rename.items() if isinstance(rename, dict) else (rename or [])
    best = None
    for prefix, name in pairs:
        if key == prefix or key.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, name)
    if best is None:
        return key
    return best[1] + key[len(best[0]):]


def export_state_dict(state, out_path, rename=None, log=sys.stderr):
    """Write the .weight/.bias entries of state (name -> array-like) to out_path.

    rename: pairs or a dict {torch_prefix: layer_name}. Returns the list of dataset names
    written. Raises ValueError for non-numeric or non-finite tensors and for two keys that
    end up with the same name; nothing is written then.
    """
    datasets = {}
    for key in state:
        if not (key.endswith(".weight") or key.endswith(".bias")):
            print(f"export_torch: skipping {key} (not a weight or bias)", file=log)
            continue
        arr = np.asarray(state[key])
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{key}: dtype {arr.dtype} is not numeric")
        if arr.dtype != np.float64:
            arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(f"{key}: non-finite value at index {list(map(int, bad))}")
        name = rename_key(key, rename)
        if "/" in name:
            raise ValueError(f"{key}: renamed to {name!r}, which contains '/'")
        if name in datasets:
            raise ValueError(f"{key}: name {name} given twice (check --map)")
        datasets[name] = arr
    with h5py.File(out_path, "w") as f:
        for name, arr in datasets.items():
            f.create_dataset(name, data=arr)
    return list(datasets)


def load_state(path):
    """A name -> array mapping from a torch file or a .npz archive."""
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    try:
        import torch  # noqa: PLC0415 (optional dependency)
    except ImportError:
        sys.exit(f"export_torch: {path}: loading a torch file needs PyTorch (import torch failed); "
                 "a .npz archive of the state_dict works without it")
    obj = torch.load(path, map_location="cpu")
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for k in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict):
        sys.exit(f"export_torch: {path}: not a state_dict (got {type(obj).__name__})")
    return {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in obj.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state_dict", help="torch.save file (or .npz)")
    ap.add_argument("out", help="HDF5 file to write")
    ap.add_argument("--map", action="append", default=[], metavar="PREFIX=LAYER",
                    help="rename keys starting with PREFIX. to LAYER. (repeatable)")
    a = ap.parse_args(argv)
    try:
        rename = parse_maps(a.map)
        names = export_state_dict(load_state(a.state_dict), a.out, rename)
    except (ValueError, OSError) as err:
        print(f"export_torch: {err}", file=sys.stderr)
        return 1
    print(f"export_torch: wrote {len(names)} datasets to {a.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
