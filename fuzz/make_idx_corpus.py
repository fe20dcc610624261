#!/usr/bin/env python3
"""Writes the seeds of fuzz/corpus/fuzz_idx/ that test the IDX reader's edges (run once;
the output is committed; Python standard library only).

Each seed is what fuzz_idx.c reads: a little-endian uint16 length L, L bytes of the image
file, then the label file (L + 0xC000: both files to be gzip-compressed by the harness).
The samples are cut from data/digits-test-*-ubyte.

usage: python3 fuzz/make_idx_corpus.py   (from the repository root)
"""
import gzip
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus", "fuzz_idx")


def digits(n):
    with open(os.path.join(ROOT, "data", "digits-test-images-idx3-ubyte"), "rb") as f:
        pix = f.read()[16:16 + 64 * n]
    with open(os.path.join(ROOT, "data", "digits-test-labels-idx1-ubyte"), "rb") as f:
        lab = f.read()[8:8 + n]
    return pix, lab


def images(dims, payload, magic=0x803):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def labels(n, payload):
    return struct.pack(">II", 0x801, n) + payload


def gz(data):
    return gzip.compress(data, mtime=0)


def seed(name, img, lab, harness_gz=False):
    assert len(img) < 0x8000
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<H", len(img) + (0xC000 if harness_gz else 0)) + img + lab)


pix, lab = digits(3)
img3 = images([3, 8, 8], pix)
lab3 = labels(3, lab)
seed("digits3-members-gz", gz(img3[:40]) + gz(b"") + gz(img3[40:]), gz(lab3))
seed("digits3-trailing-garbage-gz", gz(img3) + b"garbage", lab3)
seed("digits3-trailing-zeros-gz", gz(img3), gz(lab3) + bytes(8))
seed("digits3-cut-gz", gz(img3)[:-5], lab3)
seed("digits3-label-12", img3, labels(3, lab[:1] + b"\x0c" + lab[2:]))
seed("digits3-4x16", images([3, 4, 16], pix), lab3)
seed("digits3-extra-byte", img3 + b"\x00", lab3)
seed("zero-images", images([0, 8, 8], b""), labels(0, b""))
seed("zero-rows", images([3, 0, 8], b""), lab3)
seed("four-dims", images([3, 2, 4, 8], pix, magic=0x804), lab3)
seed("labels-as-images", lab3, lab3)
seed("one-column-many", images([200, 1, 1], bytes(range(200))), labels(200, bytes(i % 7 for i in range(200))))
seed("digits3-harness-gz", img3, lab3, harness_gz=True)
seed("digits3-8x9-harness-gz", images([3, 8, 9], pix), lab3, harness_gz=True)
