# -*- coding: utf-8 -*-
"""rpusim example: hardware-aware training of a small ResNet on Fashion-MNIST, then a
drift study of its accuracy after programming the weights into PCM-like devices.

Network: a ResNet-style model written in plain torch (a 3x3 stem convolution and three
residual blocks with batch norm, the last two with a 1x1 projection shortcut, global
average pooling, a linear classifier) turned into analog mapped layers by
convert_to_analog_mapped: 9 analog convolutions and 1 analog linear layer, every tile at
most 256 x 256 (mapping.max_input_size = max_output_size = 256), so the 3x3 convolutions
over 32 and 64 channels are split over several tiles. Batch norm, the residual adds,
pooling and activations stay in torch.

Training: InferenceRPUConfig (hardware-aware training: noisy forward pass, additive
Gaussian weight noise during training, weights clipped to [-1, 1]), AnalogSGD.

Drift study: model.eval(); for each repeat, program_analog_weights() (a new programming
noise realisation) and then drift_analog_weights(t) for t = 1 s, 1 day, 1 year after
programming (PCM drift, read noise, global drift compensation), with the test accuracy
at each time.

SPMD: every MPI rank runs this whole script (one torch thread each, the same seeds and the
same data batches); only rank 0 prints and writes the two CSVs:
    --out             epoch, train_loss, valid_loss, accuracy, seconds
    --drift-out       t_inference, repeat, accuracy

    mpirun -n 2 /usr/bin/python3 examples/resnet_drift.py --epochs 1
    (PYTHONPATH=python RPUSIM_LIBRARY=build/src/librpusim.so when not installed)
"""
# pylint: disable=invalid-name, redefined-outer-name

import argparse
import os
import sys
import time
from datetime import datetime

# Imports from PyTorch.
import torch
from torch import nn
from mpi4py import MPI

# Imports from rpusim (aihwkit: aihwkit.nn.conversion, aihwkit.optim,
# aihwkit.simulator.configs, aihwkit.inference).
import rpusim
from rpusim.nn import convert_to_analog_mapped
from rpusim.optim import AnalogSGD
from rpusim.configs import (InferenceRPUConfig, WeightClipType, WeightModifierType,
                            PCMLikeNoiseModel, GlobalDriftCompensation)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402  pylint: disable=wrong-import-position

DEVICE = torch.device("cpu")
RANK = MPI.COMM_WORLD.Get_rank()

SEED = 1
N_EPOCHS = 3
BATCH_SIZE = 16
LEARNING_RATE = 0.1
N_CLASSES = 10
# Inference times after programming: 1 s, 1 day, 1 year.
T_INFERENCE = [1.0, 86400.0, 365 * 86400.0]
N_REPEATS = 3


def log(*args):
    """print on rank 0 only."""
    if RANK == 0:
        print(*args, flush=True)


def create_rpu_config():
    """Hardware-aware training config with tiles of at most 256 x 256."""
    rpu_config = InferenceRPUConfig()
    rpu_config.mapping.max_input_size = 256
    rpu_config.mapping.max_output_size = 256
    # Each tile's weights are scaled to max |w| = 1 (aihwkit's StandardHWATrainingPreset):
    # with the default omega = 0 the trained weights (|w| ~ 0.05) use a few percent of the
    # conductance range, the output noise dominates the all-ones read-out of the global
    # drift compensation, and the compensation restores only a fraction of the drift
    # (output scale 0.72 instead of 0.99 after a day; BatchNorm's running statistics then
    # no longer fit and the accuracy collapses).
    rpu_config.mapping.weight_scaling_omega = 1.0
    rpu_config.forward.out_noise = 0.04
    rpu_config.modifier.type = WeightModifierType.ADD_NORMAL
    rpu_config.modifier.std_dev = 0.05
    rpu_config.clip.type = WeightClipType.FIXED_VALUE
    rpu_config.clip.fixed_value = 1.0
    rpu_config.noise_model = PCMLikeNoiseModel(g_max=25.0)
    rpu_config.drift_compensation = GlobalDriftCompensation()
    return rpu_config


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (a 1x1
    convolution with batch norm when the shape changes)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):  # pylint: disable=arguments-differ
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, three residual stages (16, 32, 64 channels at 28, 14, 7 pixels), global
    average pooling and a linear classifier."""

    def __init__(self, channels=(16, 32, 64), n_classes=N_CLASSES):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU())
        self.layer1 = ResidualBlock(channels[0], channels[0])
        self.layer2 = ResidualBlock(channels[0], channels[1], stride=2)
        self.layer3 = ResidualBlock(channels[1], channels[2], stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels[2], n_classes)

    def forward(self, x):  # pylint: disable=arguments-differ
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


def create_analog_network(rpu_config):
    """The ResNet with every Conv2d and Linear replaced by a mapped analog layer."""
    return convert_to_analog_mapped(ResNet(), rpu_config)


def create_sgd_optimizer(model, learning_rate):
    """The analog-aware optimizer (no momentum: rpusim's inference tiles have none)."""
    optimizer = AnalogSGD(model.parameters(), lr=learning_rate)
    optimizer.regroup_param_groups(model)
    return optimizer


def train_step(train_data, model, criterion, optimizer):
    """One epoch of training; returns the model, the optimizer and the mean loss."""
    total_loss = 0
    model.train()
    for images, labels in train_data:
        images = images.to(DEVICE)
        labels = labels.to(DEVICE)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * images.size(0)
    return model, optimizer, total_loss / len(train_data.dataset)


@torch.no_grad()
def test_evaluation(validation_data, model, criterion):
    """The mean loss and the accuracy (percent) on the test set, in eval mode."""
    total_loss = 0
    predicted_ok = 0
    total_images = 0
    model.eval()
    for images, labels in validation_data:
        pred = model(images.to(DEVICE))
        labels = labels.to(DEVICE)
        total_loss += criterion(pred, labels).item() * images.size(0)
        _, predicted = torch.max(pred.data, 1)
        total_images += labels.size(0)
        predicted_ok += (predicted == labels).sum().item()
    return total_loss / total_images, predicted_ok / total_images * 100


def training_loop(model, criterion, optimizer, train_data, validation_data, epochs, csv_path):
    """Trains and evaluates every epoch; rank 0 prints and writes the metrics CSV (losses
    with 17 significant digits, for bitwise comparisons across rank counts)."""
    csv = open(csv_path, "w", encoding="utf-8") if RANK == 0 else None
    if csv:
        csv.write("epoch,train_loss,valid_loss,accuracy,seconds\n")
    for epoch in range(epochs):
        start = time.perf_counter()
        model, optimizer, train_loss = train_step(train_data, model, criterion, optimizer)
        valid_loss, accuracy = test_evaluation(validation_data, model, criterion)
        seconds = time.perf_counter() - start  # training and test, as `rpusim train`
        log(f"{datetime.now().time().replace(microsecond=0)} --- "
            f"Epoch: {epoch}\tTrain loss: {train_loss:.4f}\tValid loss: {valid_loss:.4f}\t"
            f"Accuracy: {accuracy:.2f}%\tTime: {seconds:.1f} s")
        if csv:
            csv.write(f"{epoch},{train_loss:.17g},{valid_loss:.17g},{accuracy:.17g},{seconds:.3f}\n")
            csv.flush()
    if csv:
        csv.close()
    return model, optimizer


def drift_study(model, criterion, validation_data, t_inference_list, repeats, csv_path):
    """For each repeat: program the weights (new programming noise), then drift them to
    each time and evaluate. Rank 0 prints and writes t_inference, repeat, accuracy."""
    model.eval()
    csv = open(csv_path, "w", encoding="utf-8") if RANK == 0 else None
    if csv:
        csv.write("t_inference,repeat,accuracy\n")
    results = {t: [] for t in t_inference_list}
    for repeat in range(repeats):
        model.program_analog_weights()
        for t_inference in t_inference_list:
            model.drift_analog_weights(t_inference)
            _, accuracy = test_evaluation(validation_data, model, criterion)
            results[t_inference].append(accuracy)
            log(f"{datetime.now().time().replace(microsecond=0)} --- "
                f"Repeat {repeat}\tt = {t_inference:.0f} s\tAccuracy: {accuracy:.2f}%")
            if csv:
                csv.write(f"{t_inference:.17g},{repeat},{accuracy:.17g}\n")
                csv.flush()
    if csv:
        csv.close()
    for t_inference, accs in results.items():
        mean = sum(accs) / len(accs)
        log(f"t = {t_inference:>10.0f} s: accuracy {mean:.2f}% "
            f"(min {min(accs):.2f}%, max {max(accs):.2f}%, {len(accs)} repeats)")
    return results


def parse_args():
    """The example's options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=N_EPOCHS)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--lr", type=float, default=LEARNING_RATE)
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on the first N training images (default: all 60000)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on the first N test images (default: all 10000)")
    p.add_argument("--repeats", type=int, default=N_REPEATS,
                   help="programming repeats of the drift study")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--data", default=fashion_mnist.DEFAULT_ROOT,
                   help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--out", default="resnet_metrics.csv", help="training metrics CSV (rank 0)")
    p.add_argument("--drift-out", default=None,
                   help="drift study CSV (rank 0; default: --out with _drift before .csv)")
    args = p.parse_args()
    if args.drift_out is None:
        stem, ext = os.path.splitext(args.out)
        args.drift_out = stem + "_drift" + (ext or ".csv")
    return args


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rpusim.manual_seed(args.seed)

    train_data, validation_data = fashion_mnist.loaders(
        args.batch_size, args.seed, args.data, args.train_samples, args.test_samples)
    model = create_analog_network(create_rpu_config())
    log(model)
    log(f"\n{datetime.now().time().replace(microsecond=0)} --- "
        f"Started ResNet hardware-aware training ({MPI.COMM_WORLD.Get_size()} ranks, "
        f"{len(train_data.dataset)} training / {len(validation_data.dataset)} test images)")

    optimizer = create_sgd_optimizer(model, args.lr)
    criterion = nn.CrossEntropyLoss()
    model, optimizer = training_loop(model, criterion, optimizer, train_data,
                                     validation_data, args.epochs, args.out)

    log(f"{datetime.now().time().replace(microsecond=0)} --- Drift study")
    drift_study(model, criterion, validation_data, T_INFERENCE, args.repeats, args.drift_out)
    log(f"{datetime.now().time().replace(microsecond=0)} --- Completed ResNet example")
