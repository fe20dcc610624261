# -*- coding: utf-8 -*-
"""The LeNet-5 of aihwkit's example layout in plain (digital) PyTorch: the baseline that
`rpusim train data/fashion-lenet5-aihwkit.ini --set rpu.kind=floating_point` is timed
against (issue 15).

The same network as data/fashion-lenet5-aihwkit.ini and examples/lenet5_training.py:
conv 1->16 and 16->32 (kernel 5), tanh, max-pool 2, tanh, linear 512->128->10, tanh
between them, cross-entropy of the logits; SGD with lr 0.01, mini-batches of 64 by default,
one torch thread. No rpusim, no MPI: one process.

Per epoch it writes a CSV row as examples/lenet5_training.py does (epoch, train_loss,
valid_loss, accuracy, seconds: the epoch's training and test evaluation, the span
`rpusim train` reports as "seconds").

    /usr/bin/python3 examples/torch_lenet5.py --epochs 1 --out torch_lenet5.csv
"""
import argparse
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402  pylint: disable=wrong-import-position


def create_network():
    """The digital LeNet-5 of aihwkit's example layout."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=5),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        nn.Conv2d(16, 32, kernel_size=5),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(512, 128),
        nn.Tanh(),
        nn.Linear(128, 10),
    )


def epoch(model, criterion, optimizer, train_data, test_data):
    """One epoch of training and the test evaluation: (train loss, test loss, accuracy %)."""
    model.train()
    total = 0.0
    for images, labels in train_data:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * images.size(0)
    train_loss = total / len(train_data.dataset)
    model.eval()
    total, ok = 0.0, 0
    with torch.no_grad():
        for images, labels in test_data:
            out = model(images)
            total += criterion(out, labels).item() * images.size(0)
            ok += (out.argmax(1) == labels).sum().item()
    n = len(test_data.dataset)
    return train_loss, total / n, 100.0 * ok / n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--data", default=fashion_mnist.DEFAULT_ROOT)
    p.add_argument("--out", default="torch_lenet5.csv", help="metrics CSV")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_data, test_data = fashion_mnist.loaders(args.batch_size, args.seed, args.data,
                                                  args.train_samples, args.test_samples)
    model = create_network()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    with open(args.out, "w", encoding="utf-8") as csv:
        csv.write("epoch,train_loss,valid_loss,accuracy,seconds\n")
        for e in range(args.epochs):
            start = time.perf_counter()
            train_loss, valid_loss, accuracy = epoch(model, criterion, optimizer, train_data,
                                                     test_data)
            seconds = time.perf_counter() - start
            print(f"epoch {e + 1}: train loss {train_loss:.4f} test loss {valid_loss:.4f} "
                  f"accuracy {accuracy:.2f}% {seconds:.2f} s", flush=True)
            csv.write(f"{e},{train_loss:.17g},{valid_loss:.17g},{accuracy:.17g},{seconds:.3f}\n")
            csv.flush()


if __name__ == "__main__":
    main()
