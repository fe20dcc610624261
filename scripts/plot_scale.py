#!/usr/bin/python3
"""Strong- and weak-scaling plot of an experiment from `rpusim bench scale` and
scripts/scale_check.sh output, as one PNG with two panels.

usage: python3 scripts/plot_scale.py OUT.png --model MODEL.csv [--strong CHECK.csv]
           [--weak CHECK.csv] [--title TEXT] [--max-ranks 1024]

MODEL.csv: `rpusim bench scale EXPERIMENT --ranks 1,2,4,...,1024 --csv MODEL.csv` (its
`predict` records: the model of a cluster, lines). CHECK.csv: `scripts/scale_check.sh
EXPERIMENT --csv CHECK.csv` (strong) and `... --weak --csv CHECK.csv` (weak): measured
step times at 1-4 ranks on this machine with shared memory and with TCP, and the model's
prediction for each run (points). Strong panel: speedup T(1) / T(N) at a fixed batch;
weak panel: efficiency T(1 rank, batch b) / T(N ranks, batch N b). Measured speedups are
relative to the median one-rank shared-memory step of the same file. Needs matplotlib
(Debian: python3-matplotlib).
"""
import csv
import statistics
import sys


def read_model(path):
    """{mode: [(ranks, speedup, efficiency, step_s)]} from the predict records."""
    header, out = None, {"strong": [], "weak": []}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            if row[0] == "#predict":
                header = row[1:]
            elif row[0] == "predict":
                if header is None:
                    raise ValueError(f"{path}: a predict record before its #predict header")
                r = dict(zip(header, row[1:]))
                out[r["mode"]].append((int(r["ranks"]), float(r["speedup"]),
                                       float(r["efficiency"]), float(r["step_s"])))
    if not out["strong"]:
        raise ValueError(f"{path}: no predict records (run rpusim bench scale with --csv)")
    for v in out.values():
        v.sort()
    return out


def read_check(path):
    """{transport: {np: (median measured step, median model step)}} of scale_check.sh."""
    runs = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["transport"], int(r["np"]))
            runs.setdefault(key, []).append((float(r["step_measured_s"]),
                                             float(r["step_model_s"])))
    if not runs:
        raise ValueError(f"{path}: no runs")
    out = {}
    for (tr, n), v in runs.items():
        out.setdefault(tr, {})[n] = (statistics.median(m for m, _ in v),
                                     statistics.median(p for _, p in v))
    return out


def main(argv):
    args = list(argv[1:])
    opts = {"--model": None, "--strong": None, "--weak": None, "--title": "",
            "--max-ranks": "1024"}
    out = None
    while args:
        a = args.pop(0)
        if a in opts:
            if not args:
                print(f"plot_scale.py: {a} needs a value", file=sys.stderr)
                return 2
            opts[a] = args.pop(0)
        elif a.startswith("-"):
            print(f"plot_scale.py: unknown option {a}\n{__doc__}", file=sys.stderr)
            return 2
        elif out is None:
            out = a
        else:
            print(f"plot_scale.py: more than one output ({out}, {a})", file=sys.stderr)
            return 2
    if out is None or opts["--model"] is None:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        model = read_model(opts["--model"])
        strong = read_check(opts["--strong"]) if opts["--strong"] else {}
        weak = read_check(opts["--weak"]) if opts["--weak"] else {}
        max_ranks = int(opts["--max-ranks"])
    except (OSError, ValueError, KeyError) as e:
        print(f"plot_scale.py: {e}", file=sys.stderr)
        return 1

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_w) = plt.subplots(1, 2, figsize=(10, 4.2))
    styles = {"shm": ("o", "tab:blue", "shared memory"), "tcp": ("s", "tab:red", "TCP (btl tcp,self)")}

    ms = [m for m in model["strong"] if m[0] <= max_ranks]
    ax_s.plot([m[0] for m in ms], [m[0] for m in ms], ":", color="grey", label="ideal")
    ax_s.plot([m[0] for m in ms], [m[1] for m in ms], "-", color="black",
              label="model, cluster (see README)")
    base = strong.get("shm", {}).get(1)
    for tr, pts in sorted(strong.items()):
        mk, col, name = styles.get(tr, ("^", "tab:green", tr))
        ns = sorted(pts)
        if base:
            ax_s.plot(ns, [base[0] / pts[n][0] for n in ns], mk, color=col, ms=7,
                      label=f"measured here, {name}")
            ax_s.plot(ns, [base[1] / pts[n][1] for n in ns], mk, color=col, ms=11,
                      mfc="none", label=f"model of this machine, {name}")
    ax_s.set_xscale("log", base=2)
    ax_s.set_yscale("log", base=2)
    ax_s.set_xlabel("ranks")
    ax_s.set_ylabel("speedup T(1) / T(N), fixed batch")
    ax_s.set_title("strong scaling")
    ax_s.grid(True, which="both", alpha=0.3)
    ax_s.legend(fontsize=7)

    mw = [m for m in model["weak"] if m[0] <= max_ranks]
    ax_w.plot([m[0] for m in mw], [1.0] * len(mw), ":", color="grey", label="ideal")
    ax_w.plot([m[0] for m in mw], [m[2] for m in mw], "-", color="black",
              label="model, cluster (see README)")
    base = weak.get("shm", {}).get(1)
    for tr, pts in sorted(weak.items()):
        mk, col, name = styles.get(tr, ("^", "tab:green", tr))
        ns = sorted(pts)
        if base:
            ax_w.plot(ns, [base[0] / pts[n][0] for n in ns], mk, color=col, ms=7,
                      label=f"measured here, {name}")
            ax_w.plot(ns, [base[1] / pts[n][1] for n in ns], mk, color=col, ms=11,
                      mfc="none", label=f"model of this machine, {name}")
    ax_w.set_xscale("log", base=2)
    ax_w.set_yscale("log", base=2)
    ax_w.set_xlabel("ranks")
    ax_w.set_ylabel("efficiency T(1, b) / T(N, N b)")
    ax_w.set_title("weak scaling (batch grows with the ranks)")
    ax_w.grid(True, which="both", alpha=0.3)
    ax_w.legend(fontsize=7)

    if opts["--title"]:
        fig.suptitle(opts["--title"])
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
