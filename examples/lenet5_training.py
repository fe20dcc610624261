# -*- coding: utf-8 -*-
"""rpusim example: the layout of aihwkit's LeNet-5 training example (aihwkit
examples/04_lenet5_training.py) on Fashion-MNIST, with analog training on constant-step
devices, run over MPI.

Network (LeNet-5 inspired, as aihwkit's): two mapped analog convolutions (1->16, 16->32,
kernel 5) with tanh and max pooling, then two mapped analog linear layers (512->128->10)
and a log-softmax; cross-entropy loss, AnalogSGD with lr 0.01 and mini-batches of 8.

What differs from an aihwkit script is only:
  * the imports (rpusim.nn, rpusim.optim, rpusim.configs instead of aihwkit's);
  * SPMD: every MPI rank runs this whole script; torch uses one thread per rank, the
    analog layers' seed is set with rpusim.manual_seed, the data are shuffled by a seeded
    torch.Generator (the same batches on every rank) and only rank 0 prints and writes;
  * the data come from Debian's dataset-fashion-mnist (fashion_mnist.py beside this
    file) instead of torchvision's download; results go to a CSV instead of plots.

    mpirun -n 2 /usr/bin/python3 examples/lenet5_training.py --epochs 1
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

# Imports from rpusim (aihwkit: aihwkit.nn, aihwkit.optim, aihwkit.simulator.configs).
import rpusim
from rpusim.nn import AnalogConv2dMapped, AnalogLinearMapped, AnalogSequential
from rpusim.optim import AnalogSGD
from rpusim.configs import SingleRPUConfig, ConstantStepDevice

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402  pylint: disable=wrong-import-position

# SPMD: rpusim computes on the CPU; one torch thread per MPI rank.
DEVICE = torch.device("cpu")
RANK = MPI.COMM_WORLD.Get_rank()

# Training parameters (aihwkit's defaults; the command line may change them).
SEED = 1
N_EPOCHS = 30
BATCH_SIZE = 8
LEARNING_RATE = 0.01
N_CLASSES = 10

# Analog training on constant-step devices.
RPU_CONFIG = SingleRPUConfig(device=ConstantStepDevice())


def log(*args):
    """print on rank 0 only (SPMD: every rank computes the same numbers)."""
    if RANK == 0:
        print(*args, flush=True)


def load_images(args):
    """Training and test DataLoaders of Fashion-MNIST (the training set shuffled by a
    generator seeded with SEED, identical on every rank)."""
    return fashion_mnist.loaders(args.batch_size, args.seed, args.data,
                                 args.train_samples, args.test_samples)


def create_analog_network():
    """LeNet-5 inspired analog model out of mapped layers."""
    channel = [16, 32, 512, 128]
    model = AnalogSequential(
        AnalogConv2dMapped(
            in_channels=1, out_channels=channel[0], kernel_size=5, stride=1, rpu_config=RPU_CONFIG
        ),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        AnalogConv2dMapped(
            in_channels=channel[0],
            out_channels=channel[1],
            kernel_size=5,
            stride=1,
            rpu_config=RPU_CONFIG,
        ),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        nn.Tanh(),
        nn.Flatten(),
        AnalogLinearMapped(in_features=channel[2], out_features=channel[3], rpu_config=RPU_CONFIG),
        nn.Tanh(),
        AnalogLinearMapped(in_features=channel[3], out_features=N_CLASSES, rpu_config=RPU_CONFIG),
        nn.LogSoftmax(dim=1),
    )
    return model


def create_sgd_optimizer(model, learning_rate):
    """The analog-aware optimizer, with the analog layers in groups of their own."""
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

        output = model(images)
        loss = criterion(output, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * images.size(0)
    epoch_loss = total_loss / len(train_data.dataset)
    return model, optimizer, epoch_loss


def test_evaluation(validation_data, model, criterion):
    """Evaluation on the test set; returns the model, the mean loss, the error and the
    accuracy (percent)."""
    total_loss = 0
    predicted_ok = 0
    total_images = 0
    model.eval()
    for images, labels in validation_data:
        images = images.to(DEVICE)
        labels = labels.to(DEVICE)
        pred = model(images)
        loss = criterion(pred, labels)
        total_loss += loss.item() * images.size(0)
        _, predicted = torch.max(pred.data, 1)
        total_images += labels.size(0)
        predicted_ok += (predicted == labels).sum().item()
    accuracy = predicted_ok / total_images * 100
    error = (1 - predicted_ok / total_images) * 100
    epoch_loss = total_loss / len(validation_data.dataset)
    return model, epoch_loss, error, accuracy


def training_loop(model, criterion, optimizer, train_data, validation_data, epochs, csv_path,
                  print_every=1):
    """Trains for `epochs` epochs, evaluating after each; rank 0 prints a line per epoch
    and appends it to the metrics CSV (epoch, train_loss, valid_loss, accuracy, seconds:
    the epoch's training and test time, as `rpusim train` counts it). Losses are written with 17 significant digits so that runs
    on different rank counts can be compared bit for bit."""
    train_losses = []
    valid_losses = []
    test_error = []
    csv = open(csv_path, "w", encoding="utf-8") if RANK == 0 else None
    if csv:
        csv.write("epoch,train_loss,valid_loss,accuracy,seconds\n")
    for epoch in range(0, epochs):
        start = time.perf_counter()
        model, optimizer, train_loss = train_step(train_data, model, criterion, optimizer)
        train_losses.append(train_loss)

        with torch.no_grad():
            model, valid_loss, error, accuracy = test_evaluation(validation_data, model, criterion)
            valid_losses.append(valid_loss)
            test_error.append(error)
        seconds = time.perf_counter() - start

        if epoch % print_every == (print_every - 1):
            log(
                f"{datetime.now().time().replace(microsecond=0)} --- "
                f"Epoch: {epoch}\t"
                f"Train loss: {train_loss:.4f}\t"
                f"Valid loss: {valid_loss:.4f}\t"
                f"Test error: {error:.2f}%\t"
                f"Accuracy: {accuracy:.2f}%\t"
                f"Time: {seconds:.1f} s"
            )
        if csv:
            csv.write(f"{epoch},{train_loss:.17g},{valid_loss:.17g},{accuracy:.17g},{seconds:.3f}\n")
            csv.flush()
    if csv:
        csv.close()
    return model, optimizer, (train_losses, valid_losses, test_error)


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
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--data", default=fashion_mnist.DEFAULT_ROOT,
                   help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--out", default="lenet5_metrics.csv", help="metrics CSV (rank 0)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rpusim.manual_seed(args.seed)

    # Load datasets.
    train_data, validation_data = load_images(args)

    # Prepare the model.
    model = create_analog_network()
    log(model)
    log(f"\n{datetime.now().time().replace(microsecond=0)} --- "
        f"Started LeNet5 Example ({MPI.COMM_WORLD.Get_size()} ranks, "
        f"{len(train_data.dataset)} training / {len(validation_data.dataset)} test images)")

    optimizer = create_sgd_optimizer(model, args.lr)
    criterion = nn.CrossEntropyLoss()
    model, optimizer, _ = training_loop(
        model, criterion, optimizer, train_data, validation_data, args.epochs, args.out
    )
    log(f"{datetime.now().time().replace(microsecond=0)} --- Completed LeNet5 Example")
