#!/bin/bash
# A checkpoint writer killed with SIGKILL in the middle of a save leaves the previous
# checkpoint loadable (issue 5). Usage: ckpt_kill_test.sh CKPT_TOOL MPIEXEC WORKDIR
#
# 1. `ckpt_tool write` (2 ranks) saves a first checkpoint (step 1).
# 2. ROUNDS times: `ckpt_tool write --loop` saves steps N, N+1, ... continuously; while
#    <path>.tmp exists (a save is in progress: the first one of the loop in odd rounds, a
#    later one in even rounds), after a varying short delay, both ranks get SIGKILL. Then `ckpt_tool verify` (on 1, 2 or 3 ranks) must load <path> and find exactly
#    the weights of the step it holds (>= 1), while the stale .tmp is still there.
# 3. At least one kill must have left a .tmp behind (proof that it hit a save), and a new
#    save over the stale .tmp must succeed and remove it.
set -u
TOOL=$1 MPIEXEC=$2 WORK=$3
ROUNDS=${ROUNDS:-6}
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
CK=$WORK/k.h5
fail() { echo "FAIL: $*"; exit 1; }

"$MPIEXEC" -n 2 "$TOOL" write "$CK" 1 || fail "first save"
"$TOOL" verify "$CK" 1 || fail "first checkpoint does not verify"

mid_write=0
for r in $(seq 1 "$ROUNDS"); do
    rm -f "$CK".pid0 "$CK".pid1
    "$MPIEXEC" -n 2 "$TOOL" write "$CK" $((100 * r)) --loop > "$WORK/writer$r.log" 2>&1 &
    launcher=$!
    # wait for both pid files (at most ~60 s), then for a save in progress (a .tmp; if none
    # shows up within ~5 s, kill anyway: the final check counts the kills that hit a save)
    for _ in $(seq 1 6000); do
        [ -s "$CK".pid0 ] && [ -s "$CK".pid1 ] && break
        sleep 0.01
    done
    [ -s "$CK".pid0 ] && [ -s "$CK".pid1 ] || { kill -9 $launcher; fail "round $r: writer did not start"; }
    for _ in $(seq 1 500); do [ -e "$CK".tmp ] && break; sleep 0.01; done
    # odd rounds kill the first save of the loop; even rounds let saves complete for a
    # while and then kill one in progress
    if [ $((r % 2)) -eq 0 ]; then
        sleep 0.5
        for _ in $(seq 1 3000); do [ -e "$CK".tmp ] && break; sleep 0.002; done
    fi
    sleep "0.0$((r % 4))"
    kill -9 "$(cat "$CK".pid0)" "$(cat "$CK".pid1)" 2>/dev/null
    tmp_left=0
    [ -e "$CK".tmp ] && tmp_left=1
    # the launcher notices its dead ranks and exits
    for _ in $(seq 1 3000); do kill -0 $launcher 2>/dev/null || break; sleep 0.01; done
    kill -9 $launcher 2>/dev/null
    wait $launcher 2>/dev/null
    mid_write=$((mid_write + tmp_left))
    np=$(( (r % 3) + 1 ))
    out=$("$MPIEXEC" -n $np "$TOOL" verify "$CK" 1 2>&1) || fail "round $r: checkpoint not loadable after SIGKILL: $out"
    echo "round $r: killed (stale .tmp: $tmp_left), $out on $np rank(s)"
done
[ "$mid_write" -ge 1 ] || fail "no kill happened during a save (no stale .tmp in $ROUNDS rounds)"

# a save over a stale .tmp works and removes it; load never looked at it
if [ ! -e "$CK".tmp ]; then : > "$CK".tmp; fi
"$MPIEXEC" -n 2 "$TOOL" write "$CK" 999 || fail "save over a stale .tmp"
[ -e "$CK".tmp ] && fail "the .tmp is still there after a successful save"
out=$("$TOOL" verify "$CK" 999) || fail "final checkpoint: $out"
echo "$out"
echo "kills during a save: $mid_write of $ROUNDS"
rm -rf "$WORK"
echo PASS
