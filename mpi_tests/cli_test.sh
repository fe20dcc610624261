#!/usr/bin/env bash
# Command-line checks of the rpusim tool: help, unknown commands and options give the
# documented exit codes and name the problem; the benchmarks run on small shapes and
# write well-formed JSON with one row per case.
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

check "help exits 0 and lists bench" \
    bash -c "'$rpusim' help | grep -q 'bench tile'"
check "version" bash -c "'$rpusim' version | grep -Eq '^rpusim [0-9]+\.[0-9]+'"
check "no command: exit 2" expect_rc 2 "$work/none.txt" "$rpusim"
check "unknown command: exit 2" expect_rc 2 "$work/unk.txt" "$rpusim" frobnicate
check "unknown command is named" grep -q "frobnicate" "$work/unk.txt"
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

if [ "${RPUSIM_HAVE_UPDATE:-1}" = 1 ]; then
    check "bench update runs" expect_rc 0 "$work/upd.txt" "$rpusim" bench update --size 32 \
        --batch 4 --repeats 1 --json "$work/upd.json"
    check "bench update: 7 timed rows" \
        bash -c "[ \$(grep -cE '^(floating_point|constant_step|soft_bounds) +[0-9.]+ +[0-9.]+' '$work/upd.txt') -eq 7 ]"
    check "bench update: bytes per cell of constant_step is 20" \
        bash -c "grep -E '^constant_step +20\.0$' '$work/upd.txt' >/dev/null"
fi
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
    '0 0 0 0 0-1 0-2 3x18 54 0' '1 0 0 1 0-1 3-4 2x18 36 2' '2 0 1 0 2-3 0-2 3x18 54 1' \
    '3 0 1 1 2-3 3-4 2x18 36 2' '4 0 2 0 4 0-2 3x9 27 0' '5 0 2 1 4 3-4 2x9 18 1') \
    <(tr -s ' ' <'$work/map7.txt' | sed 's/^ //' | grep -E '^[0-9]+ 0 [0-9] [0-9] ')"
check "map: cells per rank 81 72 72, 20 bytes each (constant_step)" bash -c "diff \
    <(printf '%s\n' '0 2 81 1620 - -' '1 2 72 1440 - -' '2 2 72 1440 - -') \
    <(tr -s ' ' <'$work/map7.txt' | sed 's/^ //' | grep -E '^[0-9] 2 [0-9]+ [0-9]+ - -$')"
check "map: utilisation 225 / (6 x 3 x 21)" grep -q "225 cells of 6 tiles x 3x21 = 59.52%" \
    "$work/map7.txt"
# communication: output 32x32x32 x batch 32 int64 = 8388608 bytes + 16 (max, flag); on 2
# ranks a ring allreduce sends 2(P-1)/P = 1 x that per rank; backward 16x32x32 x 32 x 8
check "map with --input runs" expect_rc 0 "$work/map8.txt" "$rpusim" map \
    --layer "conv2d in=16 out=32 k=3 padding=1" --input 16x32x32 --batch 32 --ranks 2
check "map: send bytes per rank" bash -c "tr -s ' ' <'$work/map8.txt' | sed 's/^ //' |
    grep -qx '1 0 0 0 8388624 4194320'"
check "map: linear after conv flattens" expect_rc 0 "$work/map9.txt" "$rpusim" map \
    --layer "conv1d in=2 out=4 k=3" --layer "linear in=24 out=10" --input 2x8 --ranks 2 --summary
check "map: totals over layers" grep -q "^all layers:" "$work/map9.txt"
check "map: mismatched input: exit 2" expect_rc 2 "$work/map10.txt" "$rpusim" map \
    --layer "conv1d in=2 out=4 k=3" --layer "linear in=25 out=10" --input 2x8 --ranks 2
check "map: mismatched input is named" grep -q "layer 2 (linear in=25): the input 4x6 has 24" \
    "$work/map10.txt"
check "bench conv runs (singleton MPI)" expect_rc 0 "$work/conv.txt" "$rpusim" bench conv \
    --batch 2 --size 8 --repeats 1
check "bench conv: 4 configurations timed" \
    bash -c "[ \$(grep -cE '^(floating_point|constant_step|fp_8tiles|cs_8tiles) +[0-9]+ ' '$work/conv.txt') -eq 4 ]"
check "bench conv: bad option exits 2" expect_rc 2 "$work/convbad.txt" "$rpusim" bench conv --batch x
finish cli_test
