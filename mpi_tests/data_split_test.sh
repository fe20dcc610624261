#!/usr/bin/env bash
# Mismatched data splits through the rpusim command (issue 13, defect 3): an IDX training
# split of 8x8 digits (the shipped data/digits-train-*) with test splits of another
# shape (4x4, 16x16: cut from, and tiled from, the shipped test images) or with a test
# label 12 (sample 5), and a last layer of 8 outputs for labels 0..9. `rpusim train` and
# `rpusim eval` (against a checkpoint of the 8x8 network) stop before any epoch or batch
# (exit status 1; 2 for the layer, a configuration error): no epoch line, no output
# directory, and a message naming both image files and both shapes (or the label file,
# the sample and the value). The shape and label cases on 1 and 2 ranks, the others on
# one (test_data checks all of them through the library on 1-4 ranks).
# usage: data_split_test.sh RPUSIM MPIEXEC SOURCE_DIR WORKDIR
set -u
rpusim=$1
mpiexec=$2
src=$3
work=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# shellcheck source=testlib.sh
source "$here/testlib.sh"

be32() { # big-endian uint32
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
        $(($1 >> 8 & 255)) $(($1 & 255)))"
}
hdr3() { be32 2051 && be32 "$1" && be32 "$2" && be32 "$3"; } # IDX images header (0x803)
train_img=$src/data/digits-train-images-idx3-ubyte
train_lab=$src/data/digits-train-labels-idx1-ubyte
test_img=$src/data/digits-test-images-idx3-ubyte
test_lab=$src/data/digits-test-labels-idx1-ubyte
for d in good d4 d16 dlab; do
    mkdir -p "$d"
    cp "$train_img" "$d/train-images-idx3-ubyte"
    cp "$train_lab" "$d/train-labels-idx1-ubyte"
    cp "$test_lab" "$d/t10k-labels-idx1-ubyte"
done
cp "$test_img" good/t10k-images-idx3-ubyte
cp "$test_img" dlab/t10k-images-idx3-ubyte
# 4x4: the first 16 pixels of each 8x8 image; 16x16: 4 images' bytes per image
{ hdr3 360 4 4; tail -c +17 "$test_img" | head -c $((360 * 16)); } >d4/t10k-images-idx3-ubyte
{ hdr3 360 16 16; for _ in 1 2 3 4; do tail -c +17 "$test_img"; done; } >d16/t10k-images-idx3-ubyte
# label of sample 5 (byte 8 + 5) becomes 12
printf '\x0c' | dd of=dlab/t10k-labels-idx1-ubyte bs=1 seek=13 conv=notrunc status=none
check "4x4 file size" test "$(stat -c %s d4/t10k-images-idx3-ubyte)" -eq $((16 + 360 * 16))
check "16x16 file size" test "$(stat -c %s d16/t10k-images-idx3-ubyte)" -eq $((16 + 360 * 256))
check "label patched" test "$(od -An -tu1 -j13 -N1 dlab/t10k-labels-idx1-ubyte | tr -d ' ')" = 12

cat >exp.ini <<'INI'
[run]
seed = 2
epochs = 1
batch_size = 16
lr = 0.1
[rpu]
kind = floating_point
[data]
dataset = idx
[layer.flatten]
type = flatten
[layer.fc]
type = linear
out = 10
INI

"$rpusim" train exp.ini --set data.path=good --set run.output_dir=out-good \
    --set run.checkpoint=good.h5 >good.log 2>&1
check "the 8x8 network trains" test $? -eq 0
check "its checkpoint is written" test -f good.h5

# expect_stop LABEL NP DIR EXTRA_SET CODE WORD...: train and eval on DIR exit with CODE
# (1: bad data, 2: a configuration that does not fit the data) before any epoch, with
# every WORD in the message
expect_stop() {
    local label=$1 np=$2 dir=$3 extra=$4 code=$5
    shift 5
    "$mpiexec" -n "$np" "$rpusim" train exp.ini --set "data.path=$dir" \
        --set "run.output_dir=out-$dir-$np" --set "$extra" >"train-$dir-$np.log" 2>&1
    check "$label np$np: train exits $code" test $? -eq "$code"
    check "$label np$np: no epoch ran" bash -c "! grep -q '^epoch' train-$dir-$np.log"
    check "$label np$np: no output directory" test ! -e "out-$dir-$np"
    "$mpiexec" -n "$np" "$rpusim" eval exp.ini --set "data.path=$dir" --set "$extra" \
        --checkpoint good.h5 >"eval-$dir-$np.log" 2>&1
    check "$label np$np: eval exits $code" test $? -eq "$code"
    for w in "$@"; do
        check "$label np$np: train names '$w'" grep -qF -- "$w" "train-$dir-$np.log"
        check "$label np$np: eval names '$w'" grep -qF -- "$w" "eval-$dir-$np.log"
    done
}
for np in 1 2; do
    expect_stop "4x4 test images" "$np" d4 run.seed=2 1 d4/train-images-idx3-ubyte \
        d4/t10k-images-idx3-ubyte "1 x 4 x 4" "1 x 8 x 8"
    expect_stop "test label 12" "$np" dlab run.seed=2 1 dlab/t10k-labels-idx1-ubyte \
        "label 12 of sample 5"
done
# the other two on one rank (the same paths through the code)
expect_stop "16x16 test images" 1 d16 run.seed=2 1 d16/train-images-idx3-ubyte \
    d16/t10k-images-idx3-ubyte "1 x 16 x 16" "1 x 8 x 8"
expect_stop "8 outputs" 1 good layer.fc.out=8 2 "exp.ini:12: [layer.fc]" \
    "-labels-idx1-ubyte: label 8 of sample"
finish data_split_test
