#!/bin/bash
# `rpusim inspect`, h5dump, h5ls and h5diff on checkpoints with known contents (issue 5).
# Usage: ckpt_tools_test.sh RPUSIM CKPT_TOOL MPIEXEC WORKDIR
#
# `ckpt_tool fixture` (2 ranks) writes a.h5 and b.h5 (the same state saved twice), c.h5 (one
# stored tile weight changed), d.h5 (with an array /train/history) and expected.txt, the
# statistics computed from the tiles' state items. inspect (run without mpiexec) must print
# them (numbers within 1e-5 relative); inspect --verify must pass d.h5 and reject copies
# with one byte inverted in headers and data that the plain inspect does not read, and a
# truncated copy; the HDF5 tools must read the files; h5diff must find a.h5 == b.h5 and
# report the changed dataset of c.h5.
set -u
RPUSIM=$1 TOOL=$2 MPIEXEC=$3 WORK=$4
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$MPIEXEC" -n 2 "$TOOL" fixture "$WORK" || { echo "FAIL: fixture"; exit 1; }

# ---- rpusim inspect
out=$WORK/inspect.txt
"$RPUSIM" inspect "$WORK/a.h5" > "$out" 2> "$WORK/inspect.err" || fail "inspect exit status $?"
cat "$out"
grep -q "^format: rpusim-checkpoint, schema_version 1, written by rpusim .* on 2 ranks$" "$out" \
    || fail "inspect: format line"
while IFS= read -r line; do
    case $line in
    header\ *)
        want=${line#header }
        grep -qF -- "$want" "$out" || fail "inspect: no line '$want'" ;;
    tile\ *|device\ *)
        kind=${line%% *}; rest=${line#* }; key=${rest%% *}
        if [ "$kind" = tile ]; then got=$(grep "^  tile $key " "$out")
        else got=$(grep "^  device $key " "$out"); fi
        [ -n "$got" ] || { fail "inspect: no $kind $key line"; continue; }
        # compare every name=value of the expected line with the printed one
        for pair in $rest; do
            case $pair in *=*) ;; *) continue ;; esac
            name=${pair%%=*} want=${pair#*=}
            have=$(printf '%s\n' "$got" | tr ' ' '\n' | grep "^$name=" | head -1)
            have=${have#*=}
            [ -n "$have" ] || { fail "inspect: $kind $key: no $name"; continue; }
            awk -v a="$have" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d;
                m = b < 0 ? -b : b; exit !(d <= 1e-5 * m + 1e-7) }' \
                || fail "inspect: $kind $key $name = $have, expected $want"
        done ;;
    tileitem\ *)
        set -- $line
        t=$2 item=$3 val=$4
        "$RPUSIM" inspect "$WORK/a.h5" --tile "$t" > "$WORK/tile.txt" || fail "inspect --tile $t"
        grep -q "^    $item .* $val$" "$WORK/tile.txt" || fail "inspect --tile $t: no '$item ... $val'" ;;
    esac
done < "$WORK/expected.txt"
"$RPUSIM" inspect "$WORK/a.h5" --layer lin --no-config > "$WORK/layer.txt" || fail "inspect --layer"
grep -q "^    device.type = constant_step$" "$WORK/layer.txt" || fail "inspect --layer: no rpu_config"
"$RPUSIM" inspect "$WORK/a.h5" --layer nope > /dev/null 2> "$WORK/err.txt"
[ $? -eq 1 ] && grep -q "no layer 'nope'" "$WORK/err.txt" || fail "inspect --layer nope"
"$RPUSIM" inspect "$WORK/a.h5" --tile 7_7 > /dev/null 2> "$WORK/err.txt"
[ $? -eq 1 ] && grep -q "no tile '7_7'" "$WORK/err.txt" || fail "inspect --tile 7_7"
"$RPUSIM" inspect "$WORK/missing.h5" > /dev/null 2> "$WORK/err.txt"
[ $? -eq 1 ] && grep -q "missing.h5" "$WORK/err.txt" || fail "inspect of a missing file"
head -c 2000 "$WORK/a.h5" > "$WORK/trunc.h5"
"$RPUSIM" inspect "$WORK/trunc.h5" > /dev/null 2> "$WORK/err.txt"
[ $? -eq 1 ] && grep -q "trunc.h5.*truncated" "$WORK/err.txt" || fail "inspect of a truncated file: $(cat "$WORK/err.txt")"

# ---- rpusim inspect --verify (issue 13, defect 10): d.h5 holds a.h5's layer and an array
# /train/history. Intact: exit 0, one line "verified N objects", N = h5stat's groups +
# datasets (an independent count), and ckpt_tool loads it.
D=$WORK/d.h5
"$RPUSIM" inspect "$D" --verify > "$WORK/verify.out" 2> "$WORK/verify.err"
rc=$?
n=$(sed -n 's/^verified \([0-9]*\) objects in .*/\1/p' "$WORK/verify.out")
[ $rc -eq 0 ] && [ "$(wc -l < "$WORK/verify.out")" -eq 1 ] && [ -n "$n" ] && [ ! -s "$WORK/verify.err" ] \
    || fail "inspect --verify of an intact file: exit $rc, $(cat "$WORK/verify.out" "$WORK/verify.err")"
groups=$(h5stat "$D" | sed -n 's/.*# of unique groups: //p')
dsets=$(h5stat "$D" | sed -n 's/.*# of unique datasets: //p')
[ "$n" = $((groups + dsets)) ] || fail "inspect --verify counted $n objects, h5stat $groups groups + $dsets datasets"
"$TOOL" load "$D" > /dev/null || fail "ckpt_tool load of the intact d.h5"
"$RPUSIM" inspect "$D" --verify --layer lin > /dev/null 2>&1
[ $? -eq 2 ] || fail "inspect --verify --layer: expected a usage error"

# flip FILE OFFSET: inverts the byte at OFFSET
flip() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# corrupt NAME OBJECT header|chunk SUMMARY: a copy of d.h5 with one byte of OBJECT's header (40
# bytes in) or first data chunk (2 bytes in) inverted. A load (what eval and resume do)
# must fail; inspect --verify must exit 1 with one line naming the file and OBJECT and no
# HDF5 diagnostics. SUMMARY 0: the plain inspect does not read that byte and exits 0 (the
# defect: inspect passed files that eval rejects).
corrupt() {
    local name=$1 obj=$2 where=$3 summary=$4 f=$WORK/bad_$1.h5 at
    cp "$D" "$f"
    at=$("$TOOL" locate "$f" "$obj" | awk -v w="$where" '$1 == w { print $2 + (w == "header" ? 40 : 2) }')
    [ -n "$at" ] || { fail "$name: cannot locate the $where of $obj"; return; }
    flip "$f" "$at"
    "$TOOL" load "$f" > /dev/null 2> "$WORK/load_$name.err" && fail "$name: a load accepts the corrupted file"
    "$RPUSIM" inspect "$f" --verify > "$WORK/v_$name.out" 2> "$WORK/v_$name.err"
    rc=$?
    [ $rc -eq 1 ] || fail "$name: inspect --verify exit $rc, expected 1"
    [ ! -s "$WORK/v_$name.out" ] || fail "$name: inspect --verify printed $(cat "$WORK/v_$name.out")"
    [ "$(wc -l < "$WORK/v_$name.err")" -eq 1 ] \
        && grep -q "^rpusim inspect: checkpoint $f: $obj: " "$WORK/v_$name.err" \
        || fail "$name: inspect --verify message: $(head -c 600 "$WORK/v_$name.err")"
    if [ "$summary" = 0 ]; then
        "$RPUSIM" inspect "$f" > /dev/null 2>&1 || fail "$name: plain inspect now fails (the test's premise)"
    fi
    echo "$name: $(cat "$WORK/v_$name.err")"
}
corrupt bias_header /layers/lin/bias header 0
corrupt scales_data /layers/lin/tiles/1_1/mapping_scales chunk 0
corrupt history_header /train/history header 0
corrupt history_data /train/history chunk 0
corrupt tile_header /layers/lin/tiles/0_1 header 1
corrupt weights_data /layers/lin/tiles/1_0/weights chunk 1
grep -q "checksum" "$WORK/v_scales_data.err" && grep -q "checksum" "$WORK/v_weights_data.err" \
    && grep -q "checksum" "$WORK/v_history_data.err" || fail "data corruption: the message does not say checksum"
# truncated: the file's last 100 bytes cut off
head -c $(( $(stat -c %s "$D") - 100 )) "$D" > "$WORK/bad_trunc.h5"
"$TOOL" load "$WORK/bad_trunc.h5" > /dev/null 2>&1 && fail "truncated: a load accepts it"
"$RPUSIM" inspect "$WORK/bad_trunc.h5" --verify > /dev/null 2> "$WORK/v_trunc.err"
[ $? -eq 1 ] && [ "$(wc -l < "$WORK/v_trunc.err")" -eq 1 ] && grep -q "bad_trunc.h5.*truncated" "$WORK/v_trunc.err" \
    || fail "truncated: inspect --verify: $(cat "$WORK/v_trunc.err")"
grep -l "HDF5-DIAG" "$WORK"/v_*.err "$WORK"/load_*.err && fail "HDF5-DIAG output"

# ---- HDF5 tools
h5dump -H "$WORK/a.h5" > "$WORK/dump.txt" || fail "h5dump -H"
grep -q 'ATTRIBUTE "schema_version"' "$WORK/dump.txt" || fail "h5dump -H: no schema_version"
grep -q 'DATASET "weights"' "$WORK/dump.txt" || fail "h5dump -H: no weights dataset"
h5dump -p -d /layers/lin/tiles/0_0/weights "$WORK/a.h5" > "$WORK/dump2.txt" || fail "h5dump -p -d"
grep -q "CHECKSUM FLETCHER32" "$WORK/dump2.txt" || fail "h5dump: no Fletcher32 filter"
h5dump -a /schema_version "$WORK/a.h5" | grep -q "(0): 1" || fail "h5dump -a /schema_version"
h5ls -r "$WORK/a.h5" > "$WORK/ls.txt" || fail "h5ls -r"
grep -q "^/layers/lin/tiles/0_0/weights  *Dataset {3, 5}$" "$WORK/ls.txt" || fail "h5ls -r: weights {3, 5}"
grep -q "^/layers/lin/bias  *Dataset {6}$" "$WORK/ls.txt" || fail "h5ls -r: bias {6}"
h5diff "$WORK/a.h5" "$WORK/b.h5" > "$WORK/diff_ab.txt"
[ $? -eq 0 ] || fail "h5diff: two saves of the same state differ: $(head -5 "$WORK/diff_ab.txt")"
h5diff -r "$WORK/a.h5" "$WORK/c.h5" > "$WORK/diff_ac.txt"
rc=$?
[ $rc -eq 1 ] || fail "h5diff a c: exit $rc, expected 1"
grep -q "/layers/lin/tiles/0_0/weights" "$WORK/diff_ac.txt" || fail "h5diff a c: changed dataset not named"
[ "$(grep -c '^[1-9][0-9]* differences\? found' "$WORK/diff_ac.txt")" = 1 ] \
    && grep -q '^1 differences\? found' "$WORK/diff_ac.txt" && grep -q '^\[ 1 2 \]' "$WORK/diff_ac.txt" \
    || fail "h5diff a c: not exactly one difference, at [1 2]"
grep -A4 "tiles/0_0/weights" "$WORK/diff_ac.txt"
if [ $fails -eq 0 ]; then rm -rf "$WORK"; echo PASS; exit 0; fi
echo "$fails failure(s); files kept in $WORK"
exit 1
