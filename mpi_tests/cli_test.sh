#!/usr/bin/env bash
# Command-line checks of the rpusim tool: help, unknown commands and options give the
# documented exit codes and name the problem; the benchmarks run on small shapes and
# write well-formed JSON with one row per case.
# usage: cli_test.sh RPUSIM WORKDIR
set -u
rpusim=$1
work=$2
mkdir -p "$work"
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi
}
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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
