"""Fashion-MNIST for the examples, read from Debian's dataset-fashion-mnist package.

The package installs the four gzip-compressed IDX files of the data set in
/usr/share/datasets/fashion-mnist (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). This module reads them (or plain
IDX files of the same names, as `rpusim train` does) into torch tensors and wraps them in
torch DataLoaders, so that the examples keep aihwkit's DataLoader-based loops without
torchvision.

SPMD: every rank reads the same files and shuffles with a torch.Generator seeded with the
same seed, so every rank sees the same batches in the same order.
"""
import gzip
import os
import struct

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"

# IDX type codes (the third byte of the magic number) this loader accepts.
_UBYTE = 0x08


def read_idx(path):
    """The array of one IDX file of unsigned bytes (gzip-compressed or plain), with the
    shape its header gives. Raises ValueError naming the file when it is malformed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE:
        raise ValueError("%s: not an IDX file of unsigned bytes (magic %s)"
                         % (path, raw[:4].hex()))
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise ValueError("%s: IDX header with %d dimensions is truncated" % (path, ndim))
    shape = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise ValueError("%s: the header says %s = %d bytes, the file has %d"
                         % (path, shape, int(np.prod(shape)), len(body)))
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _find(root, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(root, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError("%s: neither %s.gz nor %s found (install Debian's "
                            "dataset-fashion-mnist, or give --data DIR)" % (root, stem, stem))


def load_split(root=DEFAULT_ROOT, train=True, samples=None):
    """(images, labels) of one split: images float32 [N, 1, 28, 28] in [0, 1] (byte / 255,
    as torchvision's ToTensor), labels int64 [N]. samples: keep the first that many (None:
    all)."""
    prefix = "train" if train else "t10k"
    images = read_idx(_find(root, prefix + "-images-idx3-ubyte"))
    labels = read_idx(_find(root, prefix + "-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (root, images.shape[0], labels.shape[0]))
    if samples is not None:
        if samples < 1:
            raise ValueError("samples must be positive, got %d" % samples)
        images, labels = images[:samples], labels[:samples]
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def loaders(batch_size, seed, root=DEFAULT_ROOT, train_samples=None, test_samples=None):
    """(train DataLoader, test DataLoader): the training set shuffled every epoch by a
    torch.Generator seeded with `seed` (the same order on every rank), the test set in
    stored order."""
    train_set = TensorDataset(*load_split(root, True, train_samples))
    test_set = TensorDataset(*load_split(root, False, test_samples))
    generator = torch.Generator()
    generator.manual_seed(seed)
    train_data = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    test_data = DataLoader(test_set, batch_size=batch_size, shuffle=False)
    return train_data, test_data


def write_subset(root, out_dir, train_samples, test_samples=None):
    """Writes the first train_samples training and test_samples test images and labels of
    `root` as plain IDX files into out_dir (for `rpusim train` on the same subset)."""
    os.makedirs(out_dir, exist_ok=True)
    for prefix, n in (("train", train_samples), ("t10k", test_samples)):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            arr = read_idx(_find(root, "%s-%s" % (prefix, kind)))
            if n is not None:
                arr = arr[:n]
            header = bytes([0, 0, _UBYTE, arr.ndim]) + struct.pack(">%dI" % arr.ndim, *arr.shape)
            with open(os.path.join(out_dir, "%s-%s" % (prefix, kind)), "wb") as f:
                f.write(header + np.ascontiguousarray(arr).tobytes())
