#!/usr/bin/env bash
# rpusim import (issue 7), checked from outside with numpy + h5py (import_helper.py):
#  (a) random weights for data/digits-cnn.ini's layers, written by export_torch.py (its
#      core function and its command line), imported on 1-4 ranks: the checkpoints are
#      identical (h5diff of /layers and /train) and their tiles, reassembled in Python from
#      the split sizes and mapping scales, give back the input weights; with pulsed devices
#      (whose bounds clip) the import warns;
#      with --program (closed-loop pulsed programming) the result is the same on 1 and 3
#      ranks;
#  (b) a floating-point model trained by rpusim train, exported to the PyTorch layout from
#      its tiles and imported again: rpusim eval gives the original checkpoint's accuracy
#      and confusion matrix exactly, and a numpy forward of the weights file agrees within
#      one test sample; the imported checkpoint resumes training;
#  (c) errors: missing dataset, wrong shape, integer and float16 types, unknown dataset,
#      NaN, bias for a layer without one, not HDF5, missing file, existing output without
#      --force (left unchanged): nonzero exit, no output file, a message naming the file
#      and the dataset.
# usage: import_test.sh RPUSIM MPIEXEC SOURCE_DIR WORKDIR
set -u
rpusim=$1
mpiexec=$2
src=$3
work=$4
py=/usr/bin/python3
helper=$src/mpi_tests/import_helper.py
exp=$src/data/digits-cnn.ini
# a floating-point network: kind and device type (the file's device.type would stay)
fp=(--set rpu.kind=floating_point --set rpu.device.type=floating_point --set "data.path=$src/data")
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# shellcheck source=testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"
expect_rc() { # expect_rc WANT OUTFILE CMD...  (WANT "nonzero": any failure)
    local want=$1 out=$2
    shift 2
    "$@" >"$out" 2>&1
    local rc=$?
    if [ "$want" = nonzero ]; then
        [ "$rc" -ne 0 ] && return 0
    elif [ "$rc" -eq "$want" ]; then
        return 0
    fi
    echo "  exit $rc, want $want: $*" >&2
    cat "$out" >&2
    return 1
}
has() { # has FILE TEXT...: every TEXT occurs in FILE (fixed strings)
    local f=$1
    shift
    local t
    for t in "$@"; do
        grep -qF -- "$t" "$f" || { echo "  '$t' not in $f:" >&2; cat "$f" >&2; return 1; }
    done
}

if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
    echo "FAIL: $py cannot import h5py and numpy (Debian: python3-h5py python3-numpy;" \
        "bash scripts/setup.sh installs them)" >&2
    exit 1
fi

# ---------------------------------------------------------------- (a) rank invariance
check "random weights file" expect_rc 0 random.log "$py" "$helper" random w.h5 7
check "export skips running stats with a notice" has random.log \
    "skipping features.1.running_mean" "skipping features.1.num_batches_tracked"
for p in 1 2 3 4; do
    check "import on $p rank(s)" expect_rc 0 "imp$p.log" "$mpiexec" -n "$p" "$rpusim" import \
        w.h5 --experiment "$exp" "${fp[@]}" -o "c$p.h5"
done
check "import prints one summary line" \
    bash -c "[ \$(grep -c '^rpusim import: w.h5 -> c4.h5' imp4.log) -eq 1 ]"
check "floating point: read back unchanged, no warning" bash -c \
    "[ \$(grep -cE '^  layer (conv1|conv2|fc) .* max change 0 ' imp4.log) -eq 3 ] && ! grep -q warning imp4.log"
check "pulsed devices (the file's config): import works and warns about clipping" bash -c "
    '$mpiexec' -n 2 '$rpusim' import w.h5 --experiment '$exp' --set data.path='$src/data' \
        -o c_pulsed.h5 >pulsed.log 2>&1 &&
    grep -qE 'warning: layer (conv2|fc): the tiles changed the weights' pulsed.log ||
    { cat pulsed.log >&2; exit 1; }"
# --program: pulsed devices written by closed-loop programming (200 rounds), on 1 and 3
# ranks: the same checkpoint, no clipping warning, a read-back report for every layer
for p in 1 3; do
    check "import --program on $p rank(s)" expect_rc 0 "prog$p.log" "$mpiexec" -n "$p" \
        "$rpusim" import w.h5 --experiment "$exp" --set "data.path=$src/data" -o "cp$p.h5" \
        --program --program-max-iter 200
done
check "import --program: identical on 1 and 3 ranks" expect_rc 0 progdiff.log \
    h5diff cp1.h5 cp3.h5 /layers /layers
check "import --program: report per layer, no clipping warning" bash -c \
    "[ \$(grep -cE '^  layer (conv1|conv2|fc) .* read back' prog3.log) -eq 3 ] && ! grep -q warning prog3.log"
check "import --program-max-iter x: bad value exits 2" expect_rc 2 progbad.log \
    "$rpusim" import w.h5 --experiment "$exp" -o cpx.h5 --program-max-iter x
for p in 2 3 4; do
    check "np$p checkpoint: /layers identical to np1" expect_rc 0 "diff$p.log" \
        h5diff c1.h5 "c$p.h5" /layers /layers
    check "np$p checkpoint: /train identical to np1" expect_rc 0 "difft$p.log" \
        h5diff c1.h5 "c$p.h5" /train /train
done
check "control: h5diff sees a different weights file" bash -c \
    "'$py' '$helper' random w9.h5 9 2>/dev/null && '$rpusim' import w9.h5 --experiment '$exp' \
     ${fp[*]} -o c9.h5 >/dev/null && ! h5diff -q c1.h5 c9.h5 /layers /layers"
for p in 1 4; do
    check "np$p tiles reassemble to the input weights" expect_rc 0 "rb$p.log" \
        bash -c "'$py' '$helper' readback c$p.h5 rb$p.h5 && '$py' '$helper' compare w.h5 rb$p.h5 1e-6"
done
check "imported checkpoint: step 0, epoch 0, inspect reads it" expect_rc 0 inspect.log \
    "$rpusim" inspect c1.h5
check "inspect shows step and epoch 0" has inspect.log "step: 0" "epoch: 0"
# the script's command line: .npz input, --map renaming, the same datasets as the core
check "export_torch.py command line" expect_rc 0 cli_export.log "$py" -c "
import numpy as np, h5py
with h5py.File('w.h5') as f:
    d = {k: f[k][()] for k in f}
ren = {'conv1': 'module.features.0', 'conv2': 'module.features.3', 'fc': 'module.classifier'}
sd = {ren[k.split('.')[0]] + '.' + k.split('.')[1]: v for k, v in d.items()}
sd['module.features.1.running_var'] = np.ones(16, np.float32)
np.savez('sd.npz', **sd)
" && expect_rc 0 cli_export.log "$py" "$src/scripts/export_torch.py" sd.npz w_cli.h5 \
    --map module.features.0=conv1 --map module.features.3=conv2 --map module.classifier=fc \
    --map module.features=wrong
check "export_torch.py: notice for skipped key" has cli_export.log \
    "skipping module.features.1.running_var"
check "export_torch.py: file equals the core function's" expect_rc 0 cmp_cli.log h5diff w.h5 w_cli.h5
check "export_torch.py: bad --map exits 1" expect_rc 1 badmap.log \
    "$py" "$src/scripts/export_torch.py" sd.npz x.h5 --map nolayer
check "export_torch.py: bad --map is named" has badmap.log "nolayer"

# ---------------------------------------------------------------- (b) eval against references
check "train a floating-point model" expect_rc 0 train.log "$mpiexec" -n 2 "$rpusim" train \
    "$exp" "${fp[@]}" --set run.epochs=4 --set run.output_dir=tr \
    --set run.checkpoint=tr/ck.h5 --set run.progress_every=1000
check "its weights in PyTorch layout" expect_rc 0 export.log "$py" "$helper" readback tr/ck.h5 tw.h5
check "import them on 3 ranks" expect_rc 0 imp_tr.log "$mpiexec" -n 3 "$rpusim" import tw.h5 \
    --experiment "$exp" "${fp[@]}" -o ti.h5
check "eval of the trained checkpoint" expect_rc 0 eval_tr.log "$rpusim" eval "$exp" "${fp[@]}" \
    --checkpoint tr/ck.h5
check "eval of the imported checkpoint (2 ranks)" expect_rc 0 eval_ti.log "$mpiexec" -n 2 \
    "$rpusim" eval "$exp" "${fp[@]}" --checkpoint ti.h5
check "same accuracy and confusion matrix" bash -c \
    "diff <(sed 's/^test loss [0-9.]* //' eval_tr.log) <(sed 's/^test loss [0-9.]* //' eval_ti.log)"
check "same loss within 1e-3" bash -c "
    a=\$(awk '/^test loss/ {print \$3}' eval_tr.log); b=\$(awk '/^test loss/ {print \$3}' eval_ti.log)
    awk -v a=\"\$a\" -v b=\"\$b\" 'BEGIN {d = a - b; exit !(a != \"\" && d < 1e-3 && d > -1e-3)}'"
check "numpy reference forward" expect_rc 0 ref.log "$py" "$helper" reference tw.h5 "$src/data"
check "accuracy within one sample of the numpy reference" bash -c "
    acc=\$(awk '/^test loss/ {print \$5}' eval_ti.log); n=\$(awk '{print \$5}' ref.log)
    echo \"  rpusim \$acc numpy \$n/360\" >&2
    awk -v a=\"\$acc\" -v n=\"\$n\" 'BEGIN {d = a * 360 - n; exit !(a > 0.5 && d < 1.5 && d > -1.5)}'"
check "the imported checkpoint resumes training" expect_rc 0 resume.log "$mpiexec" -n 2 \
    "$rpusim" train "$exp" "${fp[@]}" --set run.epochs=1 --set run.output_dir=rs \
    --set run.checkpoint=rs/ck.h5 --set run.progress_every=1000 --resume ti.h5
check "resumed run trained one epoch" has resume.log "epoch   1 "

# ---------------------------------------------------------------- (c) errors
bad() { # bad KIND NP TEXT...: a broken weights file is refused with a message naming it
    local kind=$1 np=$2
    shift 2
    "$py" "$helper" bad "$kind" w.h5 "bad_$kind.h5" || { echo "  cannot write bad_$kind.h5" >&2; return 1; }
    expect_rc nonzero "bad_$kind.log" "$mpiexec" -n "$np" "$rpusim" import "bad_$kind.h5" \
        --experiment "$exp" "${fp[@]}" -o "out_$kind.h5" || return 1
    has "bad_$kind.log" "bad_$kind.h5" "$@" || return 1
    [ ! -e "out_$kind.h5" ] && [ ! -e "out_$kind.h5.tmp" ] || { echo "  output written" >&2; return 1; }
    # the message comes once (rank 0), not once per rank
    [ "$(grep -c '^rpusim import:' "bad_$kind.log")" -eq 1 ] || { echo "  not one message" >&2; return 1; }
}
check "missing bias dataset" bad missing 2 "missing dataset /conv2.bias"
check "wrong shape" bad shape 3 "/conv2.weight: expected shape [32, 16, 3, 3]" "found [32, 16, 9]"
check "integer dataset" bad int 1 "/fc.weight: type int32" "expected float32 or float64"
check "float16 dataset" bad float16 2 "/fc.bias: type float16"
check "unknown dataset" bad extra 2 "unknown dataset /conv3.weight" "analog layers: conv1, conv2, fc"
check "NaN" bad nan 2 "/fc.weight: non-finite value nan at index [3, 7]"
check "bias for a layer without bias" bash -c "
    '$mpiexec' -n 2 '$rpusim' import w.h5 --experiment '$exp' ${fp[*]} --set layer.fc.bias=false \
        -o out_nobias.h5 >nobias.log 2>&1; rc=\$?
    [ \$rc -ne 0 ] && grep -qF '/fc.bias: layer fc has no bias' nobias.log && [ ! -e out_nobias.h5 ]"
check "not an HDF5 file" bash -c "
    echo 'not hdf5' > text.h5
    '$rpusim' import text.h5 --experiment '$exp' ${fp[*]} -o out_text.h5 >text.log 2>&1
    [ \$? -ne 0 ] && grep -qF 'weights text.h5: not an HDF5 file' text.log && [ ! -e out_text.h5 ]"
check "nonexistent weights file" expect_rc nonzero nofile.log "$mpiexec" -n 2 "$rpusim" import \
    nosuch.h5 --experiment "$exp" "${fp[@]}" -o out_nofile.h5
check "nonexistent weights file is named" has nofile.log "weights nosuch.h5" "No such file"
echo "an existing file" > exists.h5
sum_before=$(sha256sum exists.h5)
check "existing output without --force" expect_rc nonzero exists.log "$mpiexec" -n 2 "$rpusim" \
    import w.h5 --experiment "$exp" "${fp[@]}" -o exists.h5
check "existing output is named, --force suggested" has exists.log "exists.h5" "--force"
check "existing output unchanged" bash -c "[ \"\$(sha256sum exists.h5)\" = '$sum_before' ]"
check "--force replaces it" expect_rc 0 force.log "$mpiexec" -n 2 "$rpusim" import w.h5 \
    --experiment "$exp" "${fp[@]}" -o exists.h5 --force
check "the replaced file equals the np1 import" expect_rc 0 force_diff.log \
    h5diff c1.h5 exists.h5 /layers /layers
check "missing -o: exit 2" expect_rc 2 noout.log "$rpusim" import w.h5 --experiment "$exp"
check "unknown option: exit 2 and named" bash -c \
    "'$rpusim' import w.h5 --experiment '$exp' -o x.h5 --frob >opt.log 2>&1; [ \$? -eq 2 ] && grep -q -- --frob opt.log"
check "help lists import" bash -c "'$rpusim' help | grep -q 'import WEIGHTS.h5'"

finish import_test
