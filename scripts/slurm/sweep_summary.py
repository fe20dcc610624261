#!/usr/bin/env python3
"""Collects the tasks of an rpusim sweep (scripts/slurm/sweep.sbatch) into one CSV.

usage: python3 scripts/slurm/sweep_summary.py SWEEP_DIR [-o CSV]

SWEEP_DIR holds task-<i>/ directories, each with params.txt (the task's line of
section.key=value overrides) and the run's metrics.csv and experiment.ini. The CSV
(default SWEEP_DIR/summary.csv; "-" for stdout) has one row per task, sorted by task:

    task, <every parameter key, in the order first seen>, status, <the columns of the last
    row of metrics.csv: epoch, train_loss, train_acc, test_loss, test_acc, seconds, step>

status is "complete" when the last epoch is the run's run.epochs, "partial" when fewer
epochs finished, "no metrics" when the task wrote none (parameters are still listed).
Standard library only. Exit code 0, 1 if no task directory was found, 2 on bad usage.
"""
import argparse
import csv
import os
import re
import sys


def read_params(path):
    """Ordered (key, value) pairs of a params.txt line."""
    pairs = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                for tok in line.split():
                    key, sep, value = tok.partition("=")
                    pairs.append((key, value if sep else ""))
    except OSError:
        pass
    return pairs


def run_epochs(path):
    """run.epochs of an experiment.ini (the text after the overrides), or None."""
    section = None
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].split(";", 1)[0].strip()
                m = re.fullmatch(r"\[(.+)\]", line)
                if m:
                    section = m.group(1).strip()
                elif section == "run" and "=" in line:
                    key, value = (s.strip() for s in line.split("=", 1))
                    if key == "epochs":
                        return int(value)
    except (OSError, ValueError):
        pass
    return None


def last_metrics(path):
    """(header, last row) of a metrics.csv, or (None, None)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r]
    except OSError:
        return None, None
    if len(rows) < 2:
        return (rows[0] if rows else None), None
    return rows[0], rows[-1]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("-o", "--output", help="CSV file (default SWEEP_DIR/summary.csv, - for stdout)")
    a = ap.parse_args(argv)

    tasks = []
    for name in os.listdir(a.sweep_dir) if os.path.isdir(a.sweep_dir) else []:
        m = re.fullmatch(r"task-(\d+)", name)
        if m and os.path.isdir(os.path.join(a.sweep_dir, name)):
            tasks.append((int(m.group(1)), os.path.join(a.sweep_dir, name)))
    tasks.sort()
    if not tasks:
        print(f"sweep_summary.py: no task-<i> directories in {a.sweep_dir}", file=sys.stderr)
        return 1

    keys, metric_cols, rows = [], [], []
    for task, d in tasks:
        params = dict(read_params(os.path.join(d, "params.txt")))
        for k in params:
            if k not in keys:
                keys.append(k)
        header, last = last_metrics(os.path.join(d, "metrics.csv"))
        metrics = dict(zip(header, last)) if header and last else {}
        for c in header or []:
            if c not in metric_cols:
                metric_cols.append(c)
        if not metrics:
            status = "no metrics"
        else:
            want = run_epochs(os.path.join(d, "experiment.ini"))
            try:
                done = int(metrics.get("epoch", ""))
            except ValueError:
                done = -1
            status = "complete" if want is not None and done == want else "partial"
        rows.append((task, params, status, metrics))

    out_path = a.output or os.path.join(a.sweep_dir, "summary.csv")
    f = sys.stdout if out_path == "-" else open(out_path, "w", newline="", encoding="utf-8")
    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["task"] + keys + ["status"] + metric_cols)
        for task, params, status, metrics in rows:
            w.writerow([task] + [params.get(k, "") for k in keys] + [status] +
                       [metrics.get(c, "") for c in metric_cols])
    finally:
        if f is not sys.stdout:
            f.close()
    if out_path != "-":
        done = sum(1 for r in rows if r[2] == "complete")
        print(f"sweep_summary.py: {len(rows)} tasks ({done} complete) -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
