#!/usr/bin/env python3
"""Converts the 8x8 handwritten digits (UCI "Optical Recognition of Handwritten Digits",
CC BY 4.0) from the CSV copy in Debian's python3-sklearn package into the IDX files
shipped in data/ (see data/README.md). Run once; the output is committed.

    python3 scripts/convert_digits.py [CSV_GZ] [OUT_DIR]

CSV_GZ defaults to the python3-sklearn copy
(/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz), OUT_DIR to data/
beside this script's directory. Python standard library only (gzip, csv, struct).

Input: 1,797 rows of 65 integers: 64 pixels (row-major 8x8, values 0..16) and the label
(0..9) last. Output (IDX, big-endian header, unsigned bytes):
    digits-train-images-idx3-ubyte   magic 0x00000803, dims [1437, 8, 8]   rows 1..1437
    digits-train-labels-idx1-ubyte   magic 0x00000801, dims [1437]
    digits-test-images-idx3-ubyte    magic 0x00000803, dims [360, 8, 8]    rows 1438..1797
    digits-test-labels-idx1-ubyte    magic 0x00000801, dims [360]
Pixels are scaled to 0..255 as (v * 255 + 8) // 16 (v * 255 / 16 rounded half up), so a
reader's byte / 255 lies in [0, 1] and 16 maps to exactly 255.
"""
import csv
import gzip
import os
import struct
import sys

DEFAULT_CSV = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
N_ROWS = 1797
N_TRAIN = 1437  # the first 1,437 rows; the last 360 are the test set
SIDE = 8


def scale(v):
    return (v * 255 + 8) // 16


def read_rows(path):
    rows = []
    with gzip.open(path, "rt", newline="") as f:
        for lineno, rec in enumerate(csv.reader(f), start=1):
            if len(rec) != SIDE * SIDE + 1:
                sys.exit(f"{path}:{lineno}: {len(rec)} fields, want {SIDE * SIDE + 1}")
            vals = [int(float(s)) for s in rec]
            if any(v < 0 or v > 16 for v in vals[:-1]):
                sys.exit(f"{path}:{lineno}: pixel outside 0..16")
            if not 0 <= vals[-1] <= 9:
                sys.exit(f"{path}:{lineno}: label {vals[-1]} outside 0..9")
            rows.append(vals)
    if len(rows) != N_ROWS:
        sys.exit(f"{path}: {len(rows)} rows, want {N_ROWS}")
    return rows


def write_split(out_dir, name, rows):
    images = os.path.join(out_dir, f"digits-{name}-images-idx3-ubyte")
    labels = os.path.join(out_dir, f"digits-{name}-labels-idx1-ubyte")
    with open(images, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, len(rows), SIDE, SIDE))
        f.write(bytes(scale(v) for r in rows for v in r[:-1]))
    with open(labels, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(rows)))
        f.write(bytes(r[-1] for r in rows))
    hist = [0] * 10
    for r in rows:
        hist[r[-1]] += 1
    print(f"{name}: {len(rows)} samples, labels 0..9: {hist}, "
          f"pixel sum (0..16 scale) {sum(sum(r[:-1]) for r in rows)}")


def main():
    csv_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CSV
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data")
    rows = read_rows(csv_path)
    os.makedirs(out_dir, exist_ok=True)
    write_split(out_dir, "train", rows[:N_TRAIN])
    write_split(out_dir, "test", rows[N_TRAIN:])


if __name__ == "__main__":
    main()
