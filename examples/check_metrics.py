"""Checks of the examples' metrics CSVs (used by examples_test.sh; standard library only).

    check_metrics.py train CSV EPOCHS TEST_SAMPLES     training CSV of lenet5_training.py
                                                       or resnet_drift.py
    check_metrics.py drift CSV TIMES REPEATS TEST_SAMPLES
    check_metrics.py same CSV_A CSV_B                  equal except the seconds column

Bounds (the reasons are in examples/README.md, "Tests"):
  * chance level of a 10-class classifier on n test images: a guessing classifier's
    accuracy has mean 10 % and standard deviation 100 sqrt(0.1 * 0.9 / n) %; a trained
    network must exceed 10 % by 4 of those standard deviations;
  * train: the mean training loss of the last epoch is below that of the first;
  * drift: the mean accuracy over repeats at the last time (1 year) is not above the mean
    at the first time (1 s) by more than 3 standard deviations of the difference of two
    such means (binomial, n test images x R repeats each), and the accuracy at 1 s exceeds
    chance by the margin above.
Exit status 0 when every check passes; each failure is printed.
"""
import csv
import math
import sys

N_CLASSES = 10


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit("%s: no data rows" % path)
    return rows


def chance_margin(n):
    """(chance accuracy, 4 standard deviations of a guessing classifier's accuracy), %."""
    p = 1.0 / N_CLASSES
    return 100 * p, 4 * 100 * math.sqrt(p * (1 - p) / n)


def check_train(path, epochs, n_test):
    rows = read(path)
    errors = []
    header = ["epoch", "train_loss", "valid_loss", "accuracy", "seconds"]
    if list(rows[0].keys()) != header:
        errors.append("header %s, expected %s" % (list(rows[0].keys()), header))
        return errors
    if [int(r["epoch"]) for r in rows] != list(range(epochs)):
        errors.append("epochs %s, expected 0..%d" % ([r["epoch"] for r in rows], epochs - 1))
    for r in rows:
        for k in header:
            if not math.isfinite(float(r[k])):
                errors.append("epoch %s: %s = %s is not finite" % (r["epoch"], k, r[k]))
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    if epochs > 1 and not last < first:
        errors.append("train loss did not decrease: %g (epoch 0) -> %g (epoch %d)"
                      % (first, last, epochs - 1))
    chance, margin = chance_margin(n_test)
    acc = float(rows[-1]["accuracy"])
    if not acc > chance + margin:
        errors.append("final accuracy %.2f%% not above chance %.1f%% + %.2f%% (%d test images)"
                      % (acc, chance, margin, n_test))
    print("%s: train loss %.4f -> %.4f, accuracy %.2f%% (bound %.2f%%)"
          % (path, first, last, acc, chance + margin))
    return errors


def check_drift(path, times, repeats, n_test):
    rows = read(path)
    errors = []
    header = ["t_inference", "repeat", "accuracy"]
    if list(rows[0].keys()) != header:
        return ["header %s, expected %s" % (list(rows[0].keys()), header)]
    want = [(t, r) for r in range(repeats) for t in times]
    got = [(float(x["t_inference"]), int(x["repeat"])) for x in rows]
    if got != want:
        errors.append("rows (t, repeat) %s, expected %s" % (got, want))
        return errors
    mean = {t: sum(float(x["accuracy"]) for x in rows if float(x["t_inference"]) == t) / repeats
            for t in times}
    p = mean[times[0]] / 100
    sd_diff = 100 * math.sqrt(2 * p * (1 - p) / (n_test * repeats))
    if mean[times[-1]] > mean[times[0]] + 3 * sd_diff:
        errors.append("mean accuracy at t = %g s (%.2f%%) above the one at t = %g s (%.2f%%) "
                      "by more than 3 x %.2f%%" % (times[-1], mean[times[-1]], times[0],
                                                  mean[times[0]], sd_diff))
    chance, margin = chance_margin(n_test)
    if not mean[times[0]] > chance + margin:
        errors.append("mean accuracy %.2f%% at t = %g s not above chance %.1f%% + %.2f%%"
                      % (mean[times[0]], times[0], chance, margin))
    print("%s: mean accuracy %s" % (path, ", ".join("%g s: %.2f%%" % (t, mean[t])
                                                    for t in times)))
    return errors


def check_same(path_a, path_b):
    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    a, b = strip(read(path_a)), strip(read(path_b))
    if a != b:
        for i, (ra, rb) in enumerate(zip(a, b)):
            if ra != rb:
                return ["%s and %s differ at data row %d: %s vs %s" % (path_a, path_b, i + 1,
                                                                      ra, rb)]
        return ["%s has %d rows, %s has %d" % (path_a, len(a), path_b, len(b))]
    return []


def main(argv):
    if len(argv) >= 2 and argv[1] == "train" and len(argv) == 5:
        errors = check_train(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 2 and argv[1] == "drift" and len(argv) == 6:
        times = [float(t) for t in argv[3].split(",")]
        errors = check_drift(argv[2], times, int(argv[4]), int(argv[5]))
    elif len(argv) >= 2 and argv[1] == "same" and len(argv) == 4:
        errors = check_same(argv[2], argv[3])
    else:
        raise SystemExit(__doc__)
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
