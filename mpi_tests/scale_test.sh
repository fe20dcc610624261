#!/usr/bin/env bash
# `rpusim bench scale` on NP ranks with the PMPI wrapper preloaded (libpmpi_count.so, built
# from pmpi_count.c): every MPI call of every measured training step (the steps bracketed
# by MPI_Pcontrol) must be, rank by rank and in order, a `call` record the command printed
# from the communication plan (operation, element count, bytes per element, communicator
# size, peer), and the step's payload must be the `measured` record's. So the byte counts
# the model uses and prints are the ones the steps send. The network has one-tile layers
# (float reductions), several input and output splits (int64), a tile-array split that
# cuts kernel blocks and a grouped conv with analog bias; 6-, 3- and 18-tile layers are
# uneven on 4 ranks. Also: the projection records for the requested rank counts, the
# readable table, and (np 1) option errors. Both with pulsed updates (kind single) and with
# exact ones (floating_point: at 2-4 ranks the holders of 1-, 2- and 3-tile layers split
# the update by rows and gather them).
# usage: scale_test.sh RPUSIM MPIEXEC LIBPMPI_COUNT WORKDIR NP
set -u
rpusim=$1
mpiexec=$2
lib=$3
work=$4
np=$5
rm -rf "$work"
mkdir -p "$work"
# shellcheck source=testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"
expect_rc() { # expect_rc WANT OUTFILE CMD...
    local want=$1 out=$2
    shift 2
    "$@" >"$out" 2>&1
    local rc=$?
    [ "$rc" -eq "$want" ] || { echo "  exit $rc, want $want: $*" >&2; cat "$out" >&2; return 1; }
}
has() { # has FILE TEXT...: every TEXT occurs in FILE (fixed strings)
    local f=$1 x
    shift
    for x in "$@"; do
        grep -qF -- "$x" "$f" || { echo "  '$x' not in $f:" >&2; cat "$f" >&2; return 1; }
    done
}

cat >"$work/net.ini" <<'EOF'
[run]
seed = 5
batch_size = 5
[rpu]
kind = single
device.type = constant_step
mapping.max_input_size = 20
mapping.max_output_size = 6
mapping.digital_bias = false
[data]
dataset = synthetic
synthetic_n = 20
synthetic_classes = 4
synthetic_size = 10
synthetic_channels = 3
[layer.c1]
type = conv2d
out = 4
kernel = 2
[layer.r1]
type = relu
[layer.c2]
type = conv2d
out = 14
kernel = 3
padding = 1
[layer.p1]
type = maxpool
kernel = 2
[layer.c3]
type = conv2d
out = 6
kernel = 2
split = tile_array
[layer.c4]
type = conv2d
out = 12
kernel = 1
groups = 2
[layer.flat]
type = flatten
[layer.fc1]
type = linear
out = 13
[layer.t1]
type = tanh
[layer.fc2]
type = linear
out = 4
EOF

# the same network with exact updates: tiles with several holders (more ranks than tiles in
# a layer) split the update by samples and add their gradient sums (MPI_Allreduce of int64
# on the holders)
sed -e 's/^kind = single/kind = floating_point/' -e '/^device.type/d' "$work/net.ini" >"$work/fp.ini"

# LD_PRELOAD may hold the sanitizer shims of the test environment already: keep them
preload="$lib"
[ -n "${LD_PRELOAD:-}" ] && preload="${LD_PRELOAD}:$lib"
for kind in net fp; do
    rm -f "$work"/calls.*
    check "bench scale under the PMPI wrapper ($kind)" expect_rc 0 "$work/out-$kind.txt" \
        "$mpiexec" -n "$np" -x LD_PRELOAD="$preload" -x PMPI_COUNT_OUT="$work/calls" \
        "$rpusim" bench scale "$work/$kind.ini" --steps 2 --warmup 1 --ranks 1,8,64 \
        --ranks-per-node 4 --csv "$work/scale-$kind.csv"
    check "one call log per rank ($kind)" bash -c "[ \$(ls '$work'/calls.* | wc -l) -eq $np ]"
    check "the counted calls are the printed plan ($kind)" /usr/bin/python3 - "$work" "$np" \
        "$work/scale-$kind.csv" <<'EOF'
import csv, sys
work, np_, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
plan = {r: [] for r in range(np_)}
measured = None
for row in csv.reader(open(path)):
    if row[0] == "call":
        # call,rank,layer,phase,op,count,type_bytes,group,peer,payload_bytes,what
        plan[int(row[1])].append((row[4], int(row[5]), int(row[6]), int(row[7]), int(row[8])))
    elif row[0] == "measured":
        measured = row
ok = True
if measured is None or int(measured[1]) != np_:
    print(f"no measured record for {np_} ranks"); ok = False
for r in range(np_):
    steps, cur = [], None
    for line in open(f"{work}/calls.{r}"):
        f = line.strip().split(",")
        if f[0] == "mark":
            if f[1] == "1":
                cur = []
            else:
                steps.append(cur); cur = None
        elif f[0] == "call" and cur is not None:
            cur.append((f[1], int(f[2]), int(f[3]), int(f[4]), int(f[5])))
    if len(steps) != 3:  # warmup 1 + steps 2
        print(f"rank {r}: {len(steps)} marked steps, want 3"); ok = False
    if not plan[r]:
        print(f"rank {r}: no planned calls"); ok = False
    for k, got in enumerate(steps):
        if got != plan[r]:
            ok = False
            print(f"rank {r} step {k}: {len(got)} calls counted, {len(plan[r])} planned")
            for a, b in zip(got, plan[r]):
                if a != b:
                    print(f"  counted {a}, planned {b}"); break
# the measured record: the busiest rank's calls and payload per step
payload = max(sum(c[1] * c[2] for c in plan[r]) for r in range(np_))
calls = max(len(plan[r]) for r in range(np_))
if measured is not None and int(float(measured[11])) != payload:
    print(f"measured record: payload {measured[11]}, plan {payload}"); ok = False
if measured is not None and int(measured[10]) != calls:
    print(f"measured record: {measured[10]} calls, plan {calls}"); ok = False
print(f"{sum(len(v) for v in plan.values())} planned calls on {np_} rank(s) checked")
sys.exit(0 if ok else 1)
EOF
done
if [ "$np" -ge 2 ]; then
    check "exact updates: the holders add their sums" grep -q "^call,.*,update,allreduce," \
        "$work/scale-fp.csv"
    check "exact updates: no rows gathered" bash -c "! grep -q '^call,.*,update,allgather,' '$work/scale-fp.csv'"
fi
check "projection records for 1, 8 and 64 ranks, strong and weak" /usr/bin/python3 - "$work" <<'EOF'
import csv, sys
rows = [r for r in csv.reader(open(f"{sys.argv[1]}/scale-net.csv")) if r[0] == "predict"]
got = sorted((r[1], int(r[2]), int(r[3])) for r in rows)
want = sorted((m, n, (n + 3) // 4) for m in ("strong", "weak") for n in (1, 8, 64))
steps = [float(r[7]) for r in rows]
ok = got == want and all(s > 0 for s in steps)
# weak scaling: the batch is 5 x N
ok = ok and all(int(r[6]) == 5 * int(r[2]) for r in rows if r[1] == "weak")
print("predict records:", got if not ok else "ok")
sys.exit(0 if ok else 1)
EOF
check "table: layers, model, projection" has "$work/out-net.txt" "one rank, median of 2 steps" \
    "step: measured" "projection: nodes of 4 ranks" " fc1 "

if [ "$np" -eq 1 ]; then
    check "no experiment: exit 2" expect_rc 2 "$work/e1.txt" "$rpusim" bench scale
    check "no experiment: says so" has "$work/e1.txt" "no experiment file given"
    check "bad bandwidth unit: exit 2" expect_rc 2 "$work/e2.txt" "$rpusim" bench scale \
        "$work/net.ini" --bandwidth 100Gbit
    check "bad bandwidth unit: named" has "$work/e2.txt" "--bandwidth '100Gbit': unknown unit"
    check "bad latency: exit 2" expect_rc 2 "$work/e3.txt" "$rpusim" bench scale \
        "$work/net.ini" --latency -1us
    check "bad latency: named" has "$work/e3.txt" "--latency '-1us'"
    check "bad --ranks: exit 2" expect_rc 2 "$work/e4.txt" "$rpusim" bench scale \
        "$work/net.ini" --ranks 4,0
    check "unknown option: exit 2" expect_rc 2 "$work/e5.txt" "$rpusim" bench scale \
        "$work/net.ini" --frob
    check "missing file: exit 2, names it" expect_rc 2 "$work/e6.txt" "$rpusim" bench scale \
        "$work/none.ini"
    check "missing file: named" has "$work/e6.txt" "none.ini"
    check "help exits 0" expect_rc 0 "$work/h.txt" "$rpusim" bench scale --help
    check "help names the model's options" has "$work/h.txt" "--bandwidth" "--ranks-per-node" \
        "--measure-transport"
    check "--measure-transport on one rank: says it needs two" expect_rc 0 "$work/m1.txt" \
        "$rpusim" bench scale "$work/net.ini" --steps 1 --warmup 0 --measure-transport
    check "--measure-transport on one rank: named" has "$work/m1.txt" "needs 2 or more ranks"
fi
finish "scale_test np$np"
