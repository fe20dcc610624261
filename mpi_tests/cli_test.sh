#!/usr/bin/env bash
# Command-line checks of the rpusim tool: help, unknown commands and options give the
# documented exit codes and name the problem; every numeric option value is parsed
# strictly (the whole value, in range; the message names the option, the value and the
# fault); sizes are bounded and large work gets a one-line memory or tile estimate first
# (RPUSIM_MEMORY_LIMIT lowers the limit estimates are checked against); the benchmarks
# run on small shapes and write well-formed JSON with one row per case.
# RPUSIM_HAVE_BENCH=1|0 (set by CTest from RPUSIM_BENCHMARKS): with 0, `rpusim bench`
# must refuse and say how to get it.
# usage: cli_test.sh RPUSIM WORKDIR
set -u
rpusim=$1
work=$2
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
case "${RPUSIM_HAVE_BENCH:-}" in
0 | 1) ;;
*)
    echo "cli_test.sh: set RPUSIM_HAVE_BENCH to 1 or 0 (CTest does, from RPUSIM_BENCHMARKS)" >&2
    exit 1
    ;;
esac

check "help exits 0" expect_rc 0 "$work/help.txt" "$rpusim" help
check "version" bash -c "'$rpusim' version | grep -Eq '^rpusim [0-9]+\.[0-9]+'"
check "no command: exit 2" expect_rc 2 "$work/none.txt" "$rpusim"
check "unknown command: exit 2" expect_rc 2 "$work/unk.txt" "$rpusim" frobnicate
check "unknown command is named" grep -q "frobnicate" "$work/unk.txt"
# rpusim map: pure computation, no MPI. Errors exit 2 and name the problem.
check "help lists map" bash -c "'$rpusim' help | grep -q 'map --layer'"
check "map --help: exit 0" expect_rc 0 "$work/maph.txt" "$rpusim" map --help
check "map without --ranks: exit 2" expect_rc 2 "$work/map1.txt" "$rpusim" map \
    --layer "conv2d in=16 out=32 k=3"
check "map: missing --ranks is named" grep -q -- "--ranks" "$work/map1.txt"
check "map unknown layer kind: exit 2" expect_rc 2 "$work/map2.txt" "$rpusim" map \
    --layer "conv4d in=16 out=32 k=3" --ranks 2
check "map: unknown kind is named" grep -q "conv4d" "$work/map2.txt"
check "map unknown layer key: exit 2" expect_rc 2 "$work/map3.txt" "$rpusim" map \
    --layer "conv2d in=16 out=32 k=3 strid=2" --ranks 2
check "map: unknown layer key is named" grep -q "strid" "$work/map3.txt"
check "map bad number: exit 2" expect_rc 2 "$work/map4.txt" "$rpusim" map \
    --layer "conv2d in=16 out=3x k=3" --ranks 2
check "map: bad number is named" grep -q "out=3x" "$work/map4.txt"
check "map unknown --set key: exit 2" expect_rc 2 "$work/map5.txt" "$rpusim" map \
    --layer "linear in=8 out=4" --ranks 2 --set mapping.max_inputsize=4
check "map: unknown --set key is named" grep -q "mapping.max_inputsize" "$work/map5.txt"
check "map kernel larger than a tile: exit 2" expect_rc 2 "$work/map6.txt" "$rpusim" map \
    --layer "conv2d in=4 out=4 k=3" --ranks 2 --set mapping.max_input_size=8
check "map: kernel error message" \
    grep -q "tile size too small to fit a single kernel: 9 > 8" "$work/map6.txt"
check "map: no partial report on error" bash -c "! grep -q '^layer' '$work/map6.txt'"
# spec §1.3 example: in=5 3x3 max_in=21 -> [2, 2, 1]; out=5 max_out=3 -> [3, 2]; 6 tiles,
# works 54 36 54 36 27 18, owners on 3 ranks 0 2 1 2 0 1 (largest first, least loaded rank)
check "map known grid runs" expect_rc 0 "$work/map7.txt" "$rpusim" map \
    --layer "conv2d in=5 out=5 k=3" --ranks 3 --set mapping.max_input_size=21 \
    --set mapping.max_output_size=3
check "map: in splits" grep -q "in splits (channels): *\[2, 2, 1\]" "$work/map7.txt"
check "map: out splits" grep -q "out splits (channels): \[3, 2\]" "$work/map7.txt"
check "map: tiles with shapes and owners" bash -c "diff <(printf '%s\n' \
    '0 0 0 0 0-1 0-2 3x18 54 0 1' '1 0 0 1 0-1 3-4 2x18 36 2 1' '2 0 1 0 2-3 0-2 3x18 54 1 1' \
    '3 0 1 1 2-3 3-4 2x18 36 2 1' '4 0 2 0 4 0-2 3x9 27 0 1' '5 0 2 1 4 3-4 2x9 18 1 1') \
    <(tr -s ' ' <'$work/map7.txt' | sed 's/^ //' | grep -E '^[0-9]+ 0 [0-9] [0-9] ')"
# the same grid on 8 ranks: the 2 ranks more than tiles hold copies of the tiles with the
# most work per holder (t0, then t2: 54 / 1 > 54 / 2); tiles take consecutive ranks
check "map on more ranks than tiles runs" expect_rc 0 "$work/maph.txt" "$rpusim" map \
    --layer "conv2d in=5 out=5 k=3" --ranks 8 --set mapping.max_input_size=21 \
    --set mapping.max_output_size=3
check "map: owners and holders on 8 ranks" bash -c "diff <(printf '%s\n' 0 2 2 1 3 2 5 1 6 1 7 1) \
    <(tr -s ' ' <'$work/maph.txt' | sed 's/^ //' | grep -E '^[0-9]+ 0 [0-9] [0-9] ' | \
      cut -d' ' -f9,10 | tr ' ' '\n')"
check "map: cells per rank 81 72 72, 20 bytes each (constant_step)" bash -c "diff \
    <(printf '%s\n' '0 2 81 1620 - - -' '1 2 72 1440 - - -' '2 2 72 1440 - - -') \
    <(tr -s ' ' <'$work/map7.txt' | sed 's/^ //' | grep -E '^[0-9] 2 [0-9]+ [0-9]+ - - -$')"
check "map: utilisation 225 / (6 x 3 x 21)" grep -q "225 cells of 6 tiles x 3x21 = 59.52%" \
    "$work/map7.txt"
# aihwkit 1.1's tile-array split: 4 ch x 3x3 = 36 columns at 16 -> 3 chunks of 12 columns
# (channels 0-1, 1-2, 2-3); out 6 at 4 -> [3, 3]; 6 equal tiles of 3x12 dealt in (out split,
# in split) order -> owners 0 0 1 1 2 2; the array keeps the bias digital even with
# mapping.digital_bias=false. The same layer mapped: 4 one-channel tiles per out split.
check "map --split tile_array runs" expect_rc 0 "$work/mta.txt" "$rpusim" map \
    --layer "conv2d in=4 out=6 k=3" --ranks 3 --set mapping.max_input_size=16 \
    --set mapping.max_output_size=4 --set mapping.digital_bias=false --split tile_array
check "map tile_array: header" grep -q "bias=digital split=tile_array$" "$work/mta.txt"
check "map tile_array: in splits in columns" grep -q "in splits (columns): *\[12, 12, 12\]" \
    "$work/mta.txt"
check "map tile_array: tiles with columns, shapes and owners" bash -c "diff <(printf '%s\n' \
    '0 0 0 0 0-1 0-11 0-2 3x12 36 0 1' '1 0 0 1 0-1 0-11 3-5 3x12 36 0 1' \
    '2 0 1 0 1-2 12-23 0-2 3x12 36 1 1' '3 0 1 1 1-2 12-23 3-5 3x12 36 1 1' \
    '4 0 2 0 2-3 24-35 0-2 3x12 36 2 1' '5 0 2 1 2-3 24-35 3-5 3x12 36 2 1') \
    <(tr -s ' ' <'$work/mta.txt' | sed 's/^ //' | grep -E '^[0-9]+ 0 [0-9] [0-9] ')"
check "map split=mapped overrides --split" expect_rc 0 "$work/mtm.txt" "$rpusim" map \
    --layer "conv2d in=4 out=6 k=3 split=mapped" --ranks 3 --set mapping.max_input_size=16 \
    --set mapping.max_output_size=4 --split tile_array
check "map split=mapped: channels [1 (x4)]" grep -q "in splits (channels): *\[1 (x4)\]" \
    "$work/mtm.txt"
check "map split=tiles: exit 2" expect_rc 2 "$work/mts.txt" "$rpusim" map \
    --layer "conv2d in=4 out=6 k=3 split=tiles" --ranks 3
check "map split=tiles: named" has "$work/mts.txt" "bad value 'split=tiles' (want mapped or tile_array)"
check "map --split foo: exit 2" expect_rc 2 "$work/mtf.txt" "$rpusim" map \
    --layer "linear in=8 out=4" --ranks 1 --split foo
check "map --split foo: named" has "$work/mtf.txt" "--split 'foo': want mapped or tile_array"
# communication: one tile (32 x 144, float forward and input gradient), 2 holders that
# split the 32 samples in blocks of one ([0, 16), [16, 32)), which are also the ranks' own
# samples: the delivery sends nothing; agreeing on errors is a ring allreduce of one int
# (2(P-1)/P x 4 = 4 bytes) each way; the last layer's outputs are gathered (ring
# allgather: (P-1)/P x 32 x 32x32x32 x 4 = 2097152); the backward gathers the per-sample
# bias-gradient sums (ring allgather: (P-1)/P x 32 x 32 x 8 = 4096) after its check (4);
# rank 1 holds a copy (4608 cells, 20 bytes each); the update splits by rows (announced):
# the holders' status (4) and maxima of 32 x 1024 vectors (ring allreduce: 2(P-1)/P x
# 131072 = 131072), then the status (4) and the gather of the rows (1/2 x 32 x 144 x 4 =
# 9216): 140296
check "map with --input runs" expect_rc 0 "$work/map8.txt" "$rpusim" map \
    --layer "conv2d in=16 out=32 k=3 padding=1" --input 16x32x32 --batch 32 --ranks 2
check "map: send bytes per rank" bash -c "tr -s ' ' <'$work/map8.txt' | sed 's/^ //' |
    grep -qx '1 1 4608 92160 2097156 4100 140296'"
# linear 100 -> 10, batch 6: the 6 samples are one MAC block (32 vectors), so holder 0 (rank 1,
# the owner) computes them all and sends rank 0 its samples [0, 3): 3 x 10 floats (120) + 4 +
# the gather of the outputs (1/2 x 6 x 10 x 4 = 120) = 244, rank 0 4 + 120; backward 3 x
# 100 floats (1200) + 4, rank 0 4, each + the gather of the per-sample bias-gradient sums
# (1/2 x 6 x 10 x 8 = 240)
check "map linear with --input runs" expect_rc 0 "$work/map8l.txt" "$rpusim" map \
    --layer "linear in=100 out=10" --input 100 --batch 6 --ranks 2
check "map: send bytes to the owners of the samples" bash -c "tr -s ' ' <'$work/map8l.txt' |
    sed 's/^ //' | grep -E '^[01] 1 ' | cut -d' ' -f1,5,6 | tr '\n' ' ' |
    grep -qx '0 124 244 1 244 1444 '"
# per-rank volumes cost about ranks x (ranks + tiles) steps: beyond 4e9 they are left out
check "map of 100000 ranks with --input runs" expect_rc 0 "$work/map100k.txt" "$rpusim" map \
    --layer "conv2d in=8 out=8 k=3" --input 8x6x6 --ranks 100000 --summary
check "map of 100000 ranks: volumes not computed, and said so" has "$work/map100k.txt" \
    "send bytes: not computed for 100000 ranks and 1 tiles"
check "map: linear after conv flattens" expect_rc 0 "$work/map9.txt" "$rpusim" map \
    --layer "conv1d in=2 out=4 k=3" --layer "linear in=24 out=10" --input 2x8 --ranks 2 --summary
check "map: totals over layers" grep -q "^all layers:" "$work/map9.txt"
check "map: mismatched input: exit 2" expect_rc 2 "$work/map10.txt" "$rpusim" map \
    --layer "conv1d in=2 out=4 k=3" --layer "linear in=25 out=10" --input 2x8 --ranks 2
check "map: mismatched input is named" grep -q "layer 2 (linear in=25): the input 4x6 has 24" \
    "$work/map10.txt"
# ---- strict values and limits of map (issue 13, defects 8 and 9)
check "map --ranks '2x': exit 2" expect_rc 2 "$work/mr.txt" "$rpusim" map \
    --layer "linear in=8 out=4" --ranks 2x
check "map --ranks '2x': option, value, fault and range named" has "$work/mr.txt" \
    "--ranks '2x': not an integer ('x' after 2)" "1..16777216"
check "map k=3x: exit 2" expect_rc 2 "$work/mk.txt" "$rpusim" map \
    --layer "conv2d in=8 out=4 k=3x" --ranks 2
check "map k=3x: the empty second value is named" has "$work/mk.txt" "'k=3x': value 2 '': empty"
check "map kernel of 4096x4096x2 elements: exit 2" expect_rc 2 "$work/mkk.txt" "$rpusim" map \
    --layer "conv3d in=1 out=1 k=4096x4096x2" --ranks 1
check "map: kernel too large is named" has "$work/mkk.txt" "more than 16777216 elements"
# 2000 x 1000 tiles of 1 x 1: one line on stderr with the tile count and the memory,
# before the report (stdout), which is unchanged
"$rpusim" map --layer "linear in=2000 out=1000" --ranks 3 --set mapping.max_input_size=1 \
    --set mapping.max_output_size=1 --summary >"$work/mbig.out" 2>"$work/mbig.err"
check "map of 2000000 tiles runs" test $? -eq 0
check "map of 2000000 tiles: the estimate comes first, on stderr" has "$work/mbig.err" \
    "rpusim map: the plan of 2000000 tiles in 1 layer on 3 ranks: about "
check "map of 2000000 tiles: one line" test "$(wc -l <"$work/mbig.err")" -eq 1
check "map of 2000000 tiles: the report" has "$work/mbig.out" "tiles: 2000000 (2000 in x 1000 out)"
check "map of 5 tiles: no estimate line" bash -c "! grep -q 'plan of' '$work/map7.txt'"
# the same with the per-tile table (2000000 lines of about 80 bytes) under a 64 MiB limit
RPUSIM_MEMORY_LIMIT=64M "$rpusim" map --layer "linear in=2000 out=1000" --ranks 3 \
    --set mapping.max_input_size=1 --set mapping.max_output_size=1 >"$work/mlim.out" 2>"$work/mlim.err"
check "map over RPUSIM_MEMORY_LIMIT: exit 2" test $? -eq 2
check "map over RPUSIM_MEMORY_LIMIT: the estimate and the limit named" has "$work/mlim.err" \
    "the plan of 2000000 tiles" "needs about" "more than the 64.0 MiB of RPUSIM_MEMORY_LIMIT=64M"
check "map over RPUSIM_MEMORY_LIMIT: no report" test ! -s "$work/mlim.out"

# ---- export / import: strict option values (the options are checked before any file)
check "export --over-sampling 10.5: exit 2" expect_rc 2 "$work/eo.txt" "$rpusim" export \
    none.h5 -o out.h5 --over-sampling 10.5
check "export --over-sampling 10.5: named" has "$work/eo.txt" \
    "--over-sampling '10.5': not an integer ('.5' after 10); want an integer in 1..1000"
check "import --program-max-iter 1e3: exit 2" expect_rc 2 "$work/im.txt" "$rpusim" import \
    none.h5 --experiment none.ini -o out.h5 --program-max-iter 1e3
check "import --program-max-iter 1e3: named" has "$work/im.txt" \
    "--program-max-iter '1e3': not an integer ('e3' after 1)"
check "import --program-tolerance 1e300: exit 2" expect_rc 2 "$work/it.txt" "$rpusim" import \
    none.h5 --experiment none.ini -o out.h5 --program-tolerance 1e300
check "import --program-tolerance 1e300: out of a float's range" has "$work/it.txt" \
    "--program-tolerance '1e300': above the maximum 3.40282e+38"
check "import --program-lr nan: exit 2" expect_rc 2 "$work/il.txt" "$rpusim" import \
    none.h5 --experiment none.ini -o out.h5 --program-lr nan
check "import --program-lr nan: not finite" has "$work/il.txt" "--program-lr 'nan': not finite"

# ---- benchmarks
if [ "$RPUSIM_HAVE_BENCH" = 0 ]; then
    check "without benchmarks: bench exits 2" expect_rc 2 "$work/nob.txt" "$rpusim" bench tile
    check "without benchmarks: says how to get them" has "$work/nob.txt" \
        "built without benchmarks (configure with -DRPUSIM_BENCHMARKS=ON)"
    check "without benchmarks: help says so" has "$work/help.txt" "built without the benchmarks"
    check "without benchmarks: help lists no bench command" \
        bash -c "! grep -q 'bench tile \[options\]' '$work/help.txt'"
    finish cli_test
    exit
fi
check "help lists bench" has "$work/help.txt" "bench tile [options]" "bench conv [options]"
check "bad --sizes: exit 2" expect_rc 2 "$work/bad.txt" "$rpusim" bench tile --sizes 12,x
check "bad --sizes is named" grep -q -- "--sizes" "$work/bad.txt"
check "unknown bench option: exit 2" expect_rc 2 "$work/opt.txt" "$rpusim" bench tile --frob 1
check "unknown benchmark: exit 2" expect_rc 2 "$work/ub.txt" "$rpusim" bench nothing

check "bench tile runs" expect_rc 0 "$work/tile.txt" "$rpusim" bench tile --sizes 16,24 \
    --batches 1,5 --trials 1 --trial-ms 1 --json "$work/tile.json"
# 2 sizes x 2 batches x (perfect, default) rows, each with a positive ratio
check "bench tile: 8 rows in the table" \
    bash -c "[ \$(grep -cE '^ +[0-9]+x[0-9]+ +[0-9]+ (perfect|default) ' '$work/tile.txt') -eq 8 ]"
check "bench tile: 8 JSON rows" bash -c "[ \$(grep -c '\"forward_ratio\"' '$work/tile.json') -eq 8 ]"
check "bench tile: JSON closes" bash -c "tail -1 '$work/tile.json' | grep -q '^\]}'"
check "bench tile: names the BLAS kernel" grep -q "OpenBLAS core" "$work/tile.txt"

check "bench update runs" expect_rc 0 "$work/upd.txt" "$rpusim" bench update --size 32 \
    --batch 4 --repeats 1 --json "$work/upd.json"
check "bench update: 7 timed rows" \
    bash -c "[ \$(grep -cE '^(floating_point|constant_step|soft_bounds) +[0-9.]+ +[0-9.]+' '$work/upd.txt') -eq 7 ]"
check "bench update: bytes per cell of constant_step is 20" \
    bash -c "grep -E '^constant_step +20\.0$' '$work/upd.txt' >/dev/null"
# --device: one device's three learning rates (plus the floating-point row), the BL
# column; no speed-up against figures of another tool that this run did not measure
check "bench update --device exp_step runs" expect_rc 0 "$work/upde.txt" "$rpusim" bench update \
    --size 16 --batch 2 --repeats 1 --device exp_step
check "bench update --device exp_step: 3 exp_step rows" \
    bash -c "[ \$(grep -cE '^exp_step +[0-9.]+ +[0-9.]+ +[0-9]+$' '$work/upde.txt') -eq 3 ]"
check "bench update: no speed-up column" bash -c "! grep -qi 'speedup' '$work/upd.txt'"
check "bench update: no aihwkit seconds" bash -c "! grep -qiE 'aihwkit_s|aihwkit.*[0-9] ?(s|ms)\b' '$work/upd.txt'"
check "bench update --device floating_point: exit 2" expect_rc 2 "$work/updf.txt" "$rpusim" \
    bench update --device floating_point
check "bench update --device: names the value" has "$work/updf.txt" \
    "--device 'floating_point': not a pulsed device type"
# a compound beside its sub-device alone: its rows, the sub-device's rows and the ratio line
check "bench update --device chopped_transfer --sub soft_bounds runs" expect_rc 0 \
    "$work/updc.txt" "$rpusim" bench update --size 16 --batch 2 --repeats 1 \
    --device chopped_transfer --sub soft_bounds
check "bench update compound: 3 rows each" \
    bash -c "[ \$(grep -cE '^(chopped_transfer|soft_bounds) +[0-9.]+ +[0-9.]+ +[0-9]+$' '$work/updc.txt') -eq 6 ]"
check "bench update compound: the ratio line" \
    grep -qE '^chopped_transfer / soft_bounds .*lr 10: [0-9.]+x$' "$work/updc.txt"
check "bench update --sub transfer: exit 2" expect_rc 2 "$work/upds.txt" "$rpusim" \
    bench update --device transfer --sub transfer
check "bench update --sub: names the value" has "$work/upds.txt" \
    "--sub 'transfer': not a pulsed single device type"
# unit cells inside a compound: transfer of reference cells beside one reference cell alone
check "bench update --sub reference --cell-device soft_bounds runs" expect_rc 0 \
    "$work/updn.txt" "$rpusim" bench update --size 16 --batch 2 --repeats 1 \
    --device transfer --sub reference --cell-device soft_bounds
check "bench update nested: 3 rows each" \
    bash -c "[ \$(grep -cE '^(transfer|reference) +[0-9.]+ +[0-9.]+ +[0-9]+$' '$work/updn.txt') -eq 6 ]"
check "bench update nested: the ratio line" \
    grep -qE '^transfer / reference .*lr 10: [0-9.]+x$' "$work/updn.txt"
check "bench update nested: bytes per cell of the compound" \
    grep -qE '^transfer +[0-9]+\.[0-9]$' "$work/updn.txt"
check "bench update --cell-device reference: exit 2" expect_rc 2 "$work/updcd.txt" "$rpusim" \
    bench update --device transfer --sub reference --cell-device reference
check "bench update --cell-device: names the value" has "$work/updcd.txt" \
    "--cell-device 'reference'"
check "bench conv runs (singleton MPI)" expect_rc 0 "$work/conv.txt" "$rpusim" bench conv \
    --batch 2 --size 8 --repeats 1
check "bench conv: 4 configurations timed" \
    bash -c "[ \$(grep -cE '^(floating_point|constant_step|fp_8tiles|cs_8tiles) +[0-9]+ ' '$work/conv.txt') -eq 4 ]"
check "bench conv: bad option exits 2" expect_rc 2 "$work/convbad.txt" "$rpusim" bench conv --batch x
# issue 15: no ratio against figures of another run; they are printed as such, dated
check "bench conv: no aihwkit ratio column" bash -c \
    "! grep -qE '^config .*aihwkit' '$work/conv.txt'"
check "bench conv: outside figures labelled, dated" has "$work/conv.txt" \
    "Not measured in this run (issue 15, 2026-12-05" "Use --torch for a ratio measured in this run."
# --torch: PyTorch's step timed in the same run by a child Python (setup.sh installs
# python3-torch); an interpreter that fails is named with its exit status
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    check "bench conv --torch runs" expect_rc 0 "$work/convt.txt" "$rpusim" bench conv \
        --batch 2 --size 8 --repeats 1 --torch
    check "bench conv --torch: PyTorch's step and a /torch column" bash -c \
        "grep -qE '^PyTorch [0-9.a-z+]+ Conv2d step \(torch.nn.Conv2d \+ SGD, 1 thread\): [0-9.]+ ms$' '$work/convt.txt' &&
         grep -qE '^config .* /torch$' '$work/convt.txt' &&
         [ \$(grep -cE '^(floating_point|constant_step|fp_8tiles|cs_8tiles) .* [0-9.]+x +[0-9.]+x$' '$work/convt.txt') -eq 4 ]"
else
    check "bench conv --torch without torch: exit 1" expect_rc 1 "$work/convt.txt" "$rpusim" \
        bench conv --batch 2 --size 8 --repeats 1 --torch
    check "bench conv --torch without torch: named" has "$work/convt.txt" \
        "--torch: could not time PyTorch: /usr/bin/python3 exited with status 1"
fi
# the PyTorch child's glibc heap keeps its tensors' memory (MALLOC_*_THRESHOLD_ unless the
# user set them): a stand-in interpreter reports the values it got as its "version"
cat >"$work/envpy.sh" <<'PYEOF'
#!/bin/sh
echo "rpusim-torch 1.5 mmap=${MALLOC_MMAP_THRESHOLD_:-none},trim=${MALLOC_TRIM_THRESHOLD_:-none}"
PYEOF
chmod +x "$work/envpy.sh"
check "bench conv --torch: the child's malloc settings" expect_rc 0 "$work/conve.txt" \
    env -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ "$rpusim" bench conv --batch 2 \
    --size 8 --repeats 1 --torch --python "$work/envpy.sh"
check "bench conv --torch: the child got 32 MiB / 1 GiB, printed" has "$work/conve.txt" \
    "PyTorch mmap=33554432,trim=1073741824 Conv2d step" \
    "PyTorch's heap: MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824"
check "bench conv --torch: a user's malloc setting wins" expect_rc 0 "$work/conve2.txt" \
    env -u MALLOC_TRIM_THRESHOLD_ MALLOC_MMAP_THRESHOLD_=65536 "$rpusim" bench conv --batch 2 \
    --size 8 --repeats 1 --torch --python "$work/envpy.sh"
check "bench conv --torch: the user's value reaches the child, named" has "$work/conve2.txt" \
    "PyTorch mmap=65536,trim=1073741824 Conv2d step" \
    "MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=1073741824 (one from the environment)"
# a BLAS kernel family older than the CPU is pointed out (this CPU's flags decide)
if grep -qw avx512f /proc/cpuinfo; then
    check "bench tile, Haswell kernels on AVX-512: runs" expect_rc 0 "$work/tileh.txt" \
        env OPENBLAS_CORETYPE=Haswell "$rpusim" bench tile --sizes 16 --batches 1 --trials 1 \
        --trial-ms 1
    check "bench tile, Haswell kernels on AVX-512: the note" has "$work/tileh.txt" \
        "note: OpenBLAS runs its Haswell kernels on a CPU with AVX-512 (OPENBLAS_CORETYPE=Haswell)"
    check "bench tile, SkylakeX kernels: runs" expect_rc 0 "$work/tiles.txt" \
        env OPENBLAS_CORETYPE=SkylakeX "$rpusim" bench tile --sizes 16 --batches 1 --trials 1 \
        --trial-ms 1
    check "bench tile, SkylakeX kernels: no note" bash -c "! grep -q '^note: OpenBLAS' '$work/tiles.txt'"
else
    check "bench tile without AVX-512: no note" bash -c "! grep -q '^note: OpenBLAS' '$work/tile.txt'"
fi
check "bench conv --cpu runs" expect_rc 0 "$work/convc.txt" "$rpusim" bench conv --batch 2 \
    --size 8 --repeats 1 --cpu
check "bench conv --cpu: says which clock" has "$work/convc.txt" \
    "best of 1, CPU time of the process (--cpu)"
check "bench conv --python /bin/false: exit 1" expect_rc 1 "$work/convf.txt" "$rpusim" bench conv \
    --batch 2 --size 8 --repeats 1 --python /bin/false
check "bench conv --python /bin/false: interpreter and status named" has "$work/convf.txt" \
    "rpusim bench conv: --torch: could not time PyTorch: /bin/false exited with status 1: no output"

# strict values (defect 9: --trials 3junk was read as 3 by atoi)
check "bench tile --trials 3junk: exit 2" expect_rc 2 "$work/tj.txt" "$rpusim" bench tile \
    --trials 3junk --sizes 8 --batches 1 --trial-ms 1
check "bench tile --trials 3junk: option, value, fault and range named" has "$work/tj.txt" \
    "rpusim bench tile: --trials '3junk': not an integer ('junk' after 3); want an integer in 1..1000000"
check "bench tile --trial-ms 5ms: exit 2" expect_rc 2 "$work/tm.txt" "$rpusim" bench tile \
    --trial-ms 5ms --sizes 8 --batches 1 --trials 1
check "bench tile --trial-ms 5ms: named" has "$work/tm.txt" "--trial-ms '5ms': not a number ('ms' after 5)"
check "bench tile --sizes 16,,32: exit 2" expect_rc 2 "$work/ts.txt" "$rpusim" bench tile --sizes 16,,32
check "bench tile --sizes 16,,32: the empty entry named" has "$work/ts.txt" \
    "--sizes '16,,32': value 2 '': empty"
check "bench update --repeats 0: exit 2" expect_rc 2 "$work/ur.txt" "$rpusim" bench update --repeats 0
check "bench update --repeats 0: named" has "$work/ur.txt" "--repeats '0': below the minimum 1"
# sizes (defect 8: --batch 16777216 --size 16777216 overflowed an int, corrupted the heap
# and hung): bounded before any work, products in size_t
check "bench conv --batch 16777216 --size 16777216: exit 2 at once" expect_rc 2 "$work/cb.txt" \
    timeout 120 "$rpusim" bench conv --batch 16777216 --size 16777216
check "bench conv: the batch limit named" has "$work/cb.txt" \
    "--batch '16777216': above the maximum 1048576"
# within the bounds, the output of 2^20 x 32 x 46340^2 elements does not fit an MPI count
check "bench conv --batch 1048576 --size 46340: exit 2 at once" expect_rc 2 "$work/cc.txt" \
    timeout 120 "$rpusim" bench conv --batch 1048576 --size 46340
check "bench conv: the element count named" has "$work/cc.txt" \
    "= 72054639637299200 elements, more than the 2147483647 an MPI reduction counts"
# the estimate before the work: batch 2, 16 -> 32 channels, 8 x 8, 3 x 3 kernel: x, dx
# 2048 floats, y, dy, output 4096, columns 2x144x64 = 18432 (twice), weights 32x144 (twice),
# and the layer's patches (18432 floats), output (4096 x 12 bytes) and input gradient
# (2048 x 12 bytes): 397312 bytes = 388.0 KiB
check "bench conv: the memory estimate is the first line" bash -c \
    "head -1 '$work/conv.txt' | grep -qF 'rpusim bench conv: batch 2 of 16x8x8, per rank: about 388.0 KiB of memory'"
# a 1024 x 1024 constant_step tile: 1048576 cells x (20 bytes of state + 4 of weights) +
# 4 x 1024 floats = 24.0 MiB
check "bench tile over RPUSIM_MEMORY_LIMIT=1M: exit 2" expect_rc 2 "$work/tl.txt" \
    env RPUSIM_MEMORY_LIMIT=1M "$rpusim" bench tile --sizes 1024 --batches 1
check "bench tile over the limit: estimate and limit named" has "$work/tl.txt" \
    "the largest case (tile 1024x1024, batch 1) needs about 24.0 MiB of memory, more than the 1.0 MiB of RPUSIM_MEMORY_LIMIT=1M"
check "bench tile under the limit: the estimate first" bash -c \
    "head -1 '$work/tile.txt' | grep -q '^rpusim bench tile: the largest case (tile 24x24, batch 5): about .* of memory'"
check "a malformed RPUSIM_MEMORY_LIMIT: exit 2" expect_rc 2 "$work/tlx.txt" \
    env RPUSIM_MEMORY_LIMIT=lots "$rpusim" bench update --size 8
check "a malformed RPUSIM_MEMORY_LIMIT is named" has "$work/tlx.txt" "RPUSIM_MEMORY_LIMIT='lots'"
finish cli_test
