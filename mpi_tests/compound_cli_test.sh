#!/usr/bin/env bash
# Compound devices through the rpusim command (issue 16): a transfer compound configured in
# an experiment file and by --set overrides (device.unit_cell_devices.N.* keys) trains on 2
# ranks and checkpoints; `rpusim inspect` names the compound and its sub-devices and lists
# their hidden arrays (hidden_weights_k, max_bound_k, ...); the stored experiment prints the
# sub-device keys back; a --set of a sub-device that does not exist yet, and a single-device
# key at the top level of a compound, exit 2 before any epoch naming the override and key.
# Unit cells inside compounds: preset mixed_precision_pcm and a transfer of reference cells
# by --set train, inspect names the cells' devices and lists their arrays (<name>_l_k) and
# counters (unit_cell_devices.k.*); a cell key on a single sub-device exits 2 naming it.
# usage: compound_cli_test.sh RPUSIM MPIEXEC WORKDIR
set -u
rpusim=$1
mpiexec=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
# shellcheck source=testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

exp=$work/exp.ini
cat >"$exp" <<EOF
[run]
epochs = 1
batch_size = 8
output_dir = $work/out
checkpoint = $work/out/ck.h5
[rpu]
kind = single
mapping.max_input_size = 8
device.type = transfer
device.gamma = 0.1
device.unit_cell_devices.0.type = soft_bounds
[data]
dataset = synthetic
synthetic_n = 16
synthetic_classes = 3
synthetic_size = 4
[layer.flat]
type = flatten
[layer.fc]
type = linear
out = 3
EOF

train() { # train LOG [ARGS...]: 2 ranks; $rc the status
    local log=$1
    shift
    "$mpiexec" -n 2 "$rpusim" train "$@" >"$log" 2>&1
    rc=$?
}
says() { grep -qF -- "$2" "$1" || { echo "  $1 lacks: $2" >&2; cat "$1" >&2; return 1; }; }
no_epoch() { ! grep -Eq '^epoch +[0-9]' "$1"; }

train "$work/ok.log" "$exp" --set "rpu.device.unit_cell_devices.1.type=constant_step" \
    --set "rpu.device.unit_cell_devices.1.dw_min=0.002"
check "transfer: exit 0" test "$rc" -eq 0
check "transfer: one epoch" says "$work/ok.log" "epoch   1"
check "transfer: checkpoint written" test -f "$work/out/ck.h5"
check "transfer: stored experiment keeps the sub-device override" \
    grep -qxF "device.unit_cell_devices.1.dw_min = 0.002" "$work/out/experiment.ini"
"$rpusim" inspect "$work/out/ck.h5" >"$work/inspect.txt" 2>&1
check "inspect: exit 0" test $? -eq 0
check "inspect: the compound and its sub-devices" says "$work/inspect.txt" \
    "device: transfer, 2 sub-devices: 0 soft_bounds, 1 constant_step"
for a in hidden_weights_0 hidden_weights_1 max_bound_0 slope_up_0 dwmin_up_1; do
    check "inspect: array $a" says "$work/inspect.txt" "device $a (all tiles)"
done
"$rpusim" inspect "$work/out/ck.h5" --layer fc --tile 0_0 >"$work/tile.txt" 2>&1
check "inspect --tile: counters" says "$work/tile.txt" "current_slice_indices uint64 2x1"

rm -rf "$work/out"
train "$work/bad1.log" "$exp" --set "rpu.device.unit_cell_devices.2.dw_min=0.1"
check "missing sub-device: exit 2" test "$rc" -eq 2
check "missing sub-device: names the key" says "$work/bad1.log" "device.unit_cell_devices.2.dw_min"
check "missing sub-device: says what to do" says "$work/bad1.log" "device.unit_cell_devices.1.type"
check "missing sub-device: nothing trained" no_epoch "$work/bad1.log"
train "$work/bad2.log" "$exp" --set "rpu.device.dw_min=0.1"
check "top-level device key: exit 2" test "$rc" -eq 2
check "top-level device key: names the sub-device key" says "$work/bad2.log" \
    "device.unit_cell_devices.N.dw_min"
train "$work/bad3.log" "$exp" --set "rpu.device.unit_cell_devices.1.type=constant_step" \
    --set "rpu.device.n_reads_per_transfer=99"
check "n_reads above the columns: exit 2" test "$rc" -ne 0
check "n_reads above the columns: names the key" says "$work/bad3.log" \
    "device.n_reads_per_transfer = 99"
check "n_reads above the columns: nothing trained" no_epoch "$work/bad3.log"

# the chopped TTv2 example of the README (chopped_transfer over two reram_sb presets)
rm -rf "$work/out"
sed -e '/^device\./d' -e '/^kind/a\
device.type = chopped_transfer\
device.in_chop_prob = 0.01\
device.fast_lr = 0.5\
device.auto_scale = true\
device.auto_granularity = 1000\
device.transfer_forward.noise_management = none\
device.transfer_forward.bound_management = none\
device.unit_cell_devices.0.preset = reram_sb\
device.unit_cell_devices.1.preset = reram_sb\
device.unit_cell_devices.0.subtract_symmetry_point = true\
device.unit_cell_devices.1.subtract_symmetry_point = true\
update.desired_bl = 31' "$exp" >"$work/chopped.ini"
train "$work/chopped.log" "$work/chopped.ini"
check "chopped_transfer: exit 0" test "$rc" -eq 0
check "chopped_transfer: one epoch" says "$work/chopped.log" "epoch   1"
"$rpusim" inspect "$work/out/ck.h5" >"$work/inspect2.txt" 2>&1
check "inspect chopped: the compound" says "$work/inspect2.txt" \
    "device: chopped_transfer, 2 sub-devices: 0 soft_bounds_reference, 1 soft_bounds_reference"
check "inspect chopped: the buffer" says "$work/inspect2.txt" "device buffered_FP_weight_0 (all tiles)"
"$rpusim" inspect "$work/out/ck.h5" --layer fc --tile 0_0 >"$work/tile2.txt" 2>&1
check "inspect chopped --tile: choppers" says "$work/tile2.txt" "in_chopper uint64 8x1"
check "inspect chopped --tile: sweep counter" says "$work/tile2.txt" "transfer_counter"
# and the preset by name, a key after it overriding
rm -rf "$work/out"
sed -e '/^device\./d' -e 's/^kind = single/preset = agad_reram_sb\ndevice.fast_lr = 0.25/' \
    "$exp" >"$work/agad.ini"
train "$work/agad.log" "$work/agad.ini"
check "agad preset: exit 0" test "$rc" -eq 0
check "agad preset: stored experiment keeps the override" \
    grep -qxF "device.fast_lr = 0.25" "$work/out/experiment.ini"

# mixed_precision from --set overrides over the file without its transfer keys (its analog
# device is device.unit_cell_devices.0, here a device preset)
rm -rf "$work/out"
grep -v -e '^device.gamma' -e '^device.unit_cell_devices' "$exp" >"$work/mp.ini"
exp=$work/mp.ini
train "$work/mp.log" "$exp" --set "rpu.device.type=mixed_precision" \
    --set "rpu.device.unit_cell_devices.0.preset=reram_sb" --set "rpu.device.n_x_bins=8"
check "mixed_precision: exit 0" test "$rc" -eq 0
check "mixed_precision: one epoch" says "$work/mp.log" "epoch   1"
"$rpusim" inspect "$work/out/ck.h5" >"$work/mp_inspect.txt" 2>&1
check "mixed_precision inspect: the device" says "$work/mp_inspect.txt" \
    "device: mixed_precision, 1 sub-device: 0 soft_bounds_reference ("
for a in hidden_weights_chi max_bound reference; do
    check "mixed_precision inspect: array $a" says "$work/mp_inspect.txt" "device $a (all tiles)"
done
"$rpusim" inspect "$work/out/ck.h5" --layer fc --tile 0_0 >"$work/mp_tile.txt" 2>&1
check "mixed_precision inspect --tile: row pointer" says "$work/mp_tile.txt" "current_row_index"
train "$work/bad4.log" "$exp" --set "rpu.device.type=mixed_precision" \
    --set "rpu.device.unit_cell_devices.0.type=constant_step" --set "rpu.device.n_d_bins=1"
check "n_d_bins 1: exit 2" test "$rc" -eq 2
check "n_d_bins 1: names the key" says "$work/bad4.log" "device.n_d_bins"
check "n_d_bins 1: nothing trained" no_epoch "$work/bad4.log"

# MixedPrecisionPCMPreset by name: a one_sided cell inside the mixed-precision compound
rm -rf "$work/out"
sed -e '/^device\./d' -e 's/^kind = single/preset = mixed_precision_pcm/' "$exp" >"$work/mp_pcm.ini"
train "$work/mp_pcm.log" "$work/mp_pcm.ini"
check "mixed_precision_pcm: exit 0" test "$rc" -eq 0
"$rpusim" inspect "$work/out/ck.h5" >"$work/pcm_inspect.txt" 2>&1
check "mixed_precision_pcm inspect: the cell and its devices" says "$work/pcm_inspect.txt" \
    "device: mixed_precision, 1 sub-device: 0 one_sided of exp_step + exp_step"
for a in hidden_weights_0 hidden_weights_1 max_bound_1 hidden_weights_chi; do
    check "mixed_precision_pcm inspect: array $a" says "$work/pcm_inspect.txt" "device $a (all tiles)"
done
"$rpusim" inspect "$work/out/ck.h5" --layer fc --tile 0_0 >"$work/pcm_tile.txt" 2>&1
check "mixed_precision_pcm inspect --tile: the cell's counters" says "$work/pcm_tile.txt" \
    "unit_cell_devices.0.current_update_idx"
# a transfer of reference cells by --set; a cell key on a single sub-device exits 2
rm -rf "$work/out"
train "$work/ref.log" "$exp" --set "rpu.device.type=transfer" \
    --set "rpu.device.unit_cell_devices.0.type=reference" \
    --set "rpu.device.unit_cell_devices.0.unit_cell_devices.0.type=soft_bounds" \
    --set "rpu.device.unit_cell_devices.1.type=reference" \
    --set "rpu.device.unit_cell_devices.1.unit_cell_devices.0.type=constant_step"
check "transfer of reference cells: exit 0" test "$rc" -eq 0
"$rpusim" inspect "$work/out/ck.h5" >"$work/ref_inspect.txt" 2>&1
check "transfer of reference cells inspect" says "$work/ref_inspect.txt" \
    "device: transfer, 2 sub-devices: 0 reference of soft_bounds, 1 reference of constant_step"
check "transfer of reference cells: device 0 of cell 1" says "$work/ref_inspect.txt" \
    "device hidden_weights_0_1 (all tiles)"
check "transfer of reference cells: stored experiment" \
    grep -qxF "device.unit_cell_devices.1.unit_cell_devices.0.type = constant_step" \
    "$work/out/experiment.ini"
train "$work/bad5.log" "$exp" --set "rpu.device.type=transfer" \
    --set "rpu.device.unit_cell_devices.0.type=constant_step" \
    --set "rpu.device.unit_cell_devices.1.type=constant_step" \
    --set "rpu.device.unit_cell_devices.1.update_policy=all"
check "cell key on a single device: exit 2" test "$rc" -eq 2
check "cell key on a single device: names the key" says "$work/bad5.log" \
    "device.unit_cell_devices.1.update_policy"
check "cell key on a single device: nothing trained" no_epoch "$work/bad5.log"

finish compound_cli
