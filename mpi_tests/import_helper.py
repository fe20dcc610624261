#!/usr/bin/python3
"""Helpers of import_test.sh, independent of rpusim's C code (numpy + h5py only).

  random OUT.h5 SEED         random weights for data/digits-cnn.ini's layers, written by
                             scripts/export_torch.py's export_state_dict under torch-style
                             names renamed to the layer names (plus a skipped BN key)
  readback CKPT.h5 OUT.h5    the logical weights of an rpusim checkpoint, reassembled from
                             its tiles (weights x mapping_scales, split sizes), in the
                             PyTorch layout of a weights file
  compare A.h5 B.h5 RTOL     the same datasets, equal within RTOL (relative to each
                             dataset's max |value|); prints the worst difference
  reference WEIGHTS.h5 DIR   accuracy of a numpy forward of digits-cnn on DIR's digits test
                             set (IDX files) with the weights file's weights
  bad KIND IN.h5 OUT.h5      a broken copy of a weights file (KIND: missing, shape, int,
                             extra, nan, float16)
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from export_torch import export_state_dict  # noqa: E402

SHAPES = {"conv1": (16, 1, 3, 3), "conv2": (32, 16, 3, 3), "fc": (10, 128)}


def cmd_random(out, seed):
    rng = np.random.default_rng(int(seed))
    torch_names = {"conv1": "features.0", "conv2": "features.3", "fc": "classifier"}
    state = {}
    for layer, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        bound = 1.0 / np.sqrt(fan_in)
        # float64 for one layer: the importer converts
        dt = np.float64 if layer == "conv2" else np.float32
        state[torch_names[layer] + ".weight"] = rng.uniform(-bound, bound, shape).astype(dt)
        state[torch_names[layer] + ".bias"] = rng.uniform(-bound, bound, shape[0]).astype(dt)
    state["features.1.running_mean"] = np.zeros(16, np.float32)
    state["features.1.num_batches_tracked"] = np.array(3)
    rename = {v: k for k, v in torch_names.items()}
    names = export_state_dict(state, out, rename)
    assert sorted(names) == sorted(f"{k}.{s}" for k in SHAPES for s in ("weight", "bias")), names


def cmd_readback(ckpt, out):
    res = {}
    with h5py.File(ckpt, "r") as f:
        for name, g in f["layers"].items():
            a = g.attrs
            ins = [int(v) for v in a["in_split_sizes"]]
            outs = [int(v) for v in a["out_split_sizes"]]
            groups = int(a["groups"])
            assert groups == 1, "readback handles groups == 1 only"
            bias_kind = a["bias"].decode() if isinstance(a["bias"], bytes) else str(a["bias"])
            kern = [int(v) for v in a["kernel"]] if "kernel" in a else []
            K = int(np.prod(kern)) if kern else 1
            cin, cout = int(a["in_channels"]), int(a["out_channels"])
            w = np.full((cout, cin * K), np.nan)
            b = np.full(cout, np.nan)
            for i, ni in enumerate(ins):
                for j, nj in enumerate(outs):
                    t = g["tiles"][f"{i}_{j}"]
                    tw = t["weights"][()].astype(np.float64) * t["mapping_scales"][()]
                    c0, o0 = sum(ins[:i]) * K, sum(outs[:j])
                    w[o0:o0 + nj, c0:c0 + ni * K] = tw[:, :ni * K]
                    if bias_kind == "analog" and i == 0:
                        b[o0:o0 + nj] = tw[:, -1]
            assert not np.isnan(w).any(), f"{name}: tiles do not cover the weight matrix"
            res[name + ".weight"] = w.reshape([cout, cin] + kern)
            if bias_kind == "digital":
                res[name + ".bias"] = g["bias"][()].astype(np.float64)
            elif bias_kind == "analog":
                res[name + ".bias"] = b
    export_state_dict(res, out)


def cmd_compare(a, b, rtol):
    worst = 0.0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        if sorted(fa) != sorted(fb):
            sys.exit(f"compare: different datasets {sorted(fa)} vs {sorted(fb)}")
        for k in fa:
            x, y = fa[k][()].astype(np.float64), fb[k][()].astype(np.float64)
            if x.shape != y.shape:
                sys.exit(f"compare: {k}: shapes {x.shape} vs {y.shape}")
            scale = max(np.abs(x).max(), 1e-30)
            d = np.abs(x - y).max() / scale
            worst = max(worst, d)
            if d > float(rtol):
                sys.exit(f"compare: {k}: max relative difference {d:.3g} > {rtol}")
    print(f"compare: equal within {worst:.3g} (relative to max |w|)")


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def conv2d(x, w, b, pad):
    """x [n, c, h, w], w [o, c, kh, kw], stride 1, zero padding pad."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, o, ho, wo))
    for di in range(kh):
        for dj in range(kw):
            patch = xp[:, :, di:di + ho, dj:dj + wo]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, di, dj])
    return y + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def cmd_reference(weights, data_dir):
    x = read_idx(os.path.join(data_dir, "digits-test-images-idx3-ubyte")).astype(np.float64)
    y = read_idx(os.path.join(data_dir, "digits-test-labels-idx1-ubyte"))
    x = (x / 255.0)[:, None, :, :]
    with h5py.File(weights, "r") as f:
        p = {k: f[k][()].astype(np.float64) for k in f}
    h = maxpool2(np.maximum(conv2d(x, p["conv1.weight"], p["conv1.bias"], 1), 0))
    h = maxpool2(np.maximum(conv2d(h, p["conv2.weight"], p["conv2.bias"], 1), 0))
    logits = h.reshape(len(h), -1) @ p["fc.weight"].T + p["fc.bias"]
    acc = float((logits.argmax(axis=1) == y).mean())
    # the two best logits of the closest sample: how robust the argmax is
    top = np.sort(logits, axis=1)
    print(f"reference accuracy {acc:.6f} correct {int((logits.argmax(1) == y).sum())} "
          f"of {len(y)} min_margin {float((top[:, -1] - top[:, -2]).min()):.3g}")


def cmd_bad(kind, src, out):
    with h5py.File(src, "r") as f:
        d = {k: f[k][()] for k in f}
    if kind == "missing":
        del d["conv2.bias"]
    elif kind == "shape":
        d["conv2.weight"] = d["conv2.weight"].reshape(32, 16, 9)
    elif kind == "int":
        d["fc.weight"] = (d["fc.weight"] * 100).astype(np.int32)
    elif kind == "float16":
        d["fc.bias"] = d["fc.bias"].astype(np.float16)
    elif kind == "extra":
        d["conv3.weight"] = np.zeros((4, 4), np.float32)
    elif kind == "nan":
        d["fc.weight"] = d["fc.weight"].copy()
        d["fc.weight"][3, 7] = np.nan
    else:
        sys.exit(f"bad: unknown kind {kind}")
    with h5py.File(out, "w") as f:  # h5py directly: export_state_dict would refuse some
        for k, v in d.items():
            f.create_dataset(k, data=v)


def main():
    cmds = {"random": cmd_random, "readback": cmd_readback, "compare": cmd_compare,
            "reference": cmd_reference, "bad": cmd_bad}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
