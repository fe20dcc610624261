#!/bin/bash
# `rpusim inspect`, h5dump, h5ls and h5diff on checkpoints with known contents (issue 5).
# Usage: ckpt_tools_test.sh RPUSIM CKPT_TOOL MPIEXEC WORKDIR
#
# `ckpt_tool fixture` (2 ranks) writes a.h5 and b.h5 (the same state saved twice), c.h5 (one
# stored tile weight changed) and expected.txt, the statistics computed from the tiles'
# state items. inspect (run without mpiexec) must print them (numbers within 1e-5
# relative); the HDF5 tools must read the files; h5diff must find a.h5 == b.h5 and report
# the changed dataset of c.h5.
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
