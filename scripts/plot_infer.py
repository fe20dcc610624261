#!/usr/bin/python3
"""Plot the accuracy-vs-time table of `rpusim infer` (summary CSV) as a PNG.

usage: python3 scripts/plot_infer.py OUT.png INFER.csv [INFER2.csv ...] [--title TEXT]

Each CSV is one curve (labelled by its compensation column and file name): mean test
accuracy with a band of +- one standard deviation over the repeats, against the time
since programming on a log axis (t = 0 is drawn at 0.1 s). Needs matplotlib
(Debian: python3-matplotlib).
"""
import csv
import sys


def read_summary(path):
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"t_inference", "compensation", "acc_mean", "acc_std"}
        if not reader.fieldnames or not need.issubset(reader.fieldnames):
            raise ValueError(f"{path}: not an rpusim infer summary (needs columns {sorted(need)})")
        for line, r in enumerate(reader, start=2):
            try:
                rows.append((float(r["t_inference"]), r["compensation"], float(r["acc_mean"]),
                             float(r["acc_std"])))
            except ValueError as e:
                raise ValueError(f"{path}:{line}: {e}") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def main(argv):
    args = list(argv[1:])
    title = "rpusim infer: accuracy after programming"
    if "--title" in args:
        i = args.index("--title")
        if i + 1 >= len(args):
            print("plot_infer.py: --title needs a value", file=sys.stderr)
            return 2
        title = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out, inputs = args[0], args[1:]
    try:
        curves = [(p, read_summary(p)) for p in inputs]
    except (OSError, ValueError) as e:
        print(f"plot_infer.py: {e}", file=sys.stderr)
        return 1
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for path, rows in curves:
        t = [max(r[0], 0.1) for r in rows]
        m = [r[2] for r in rows]
        s = [r[3] for r in rows]
        label = f"{rows[0][1]} ({path.rsplit('/', 1)[-1]})"
        ax.plot(t, m, marker="o", label=label)
        ax.fill_between(t, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("time since programming [s]")
    ax.set_ylabel("test accuracy (mean ± std over repeats)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
