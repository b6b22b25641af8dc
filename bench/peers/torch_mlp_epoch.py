#!/usr/bin/python3
"""One training epoch of the seed 003 "Approach One" model in PyTorch (scripts/bench_peers.sh).

The same model, data and settings as bnlab's bench_training: Flatten, BatchNorm1d(784),
Linear(784, 300), ReLU, BatchNorm1d(300), Linear(300, 100), ReLU, BatchNorm1d(100),
Linear(100, 10), softmax cross-entropy; Keras's BN settings (eps 1e-3, momentum 0.99, i.e.
PyTorch momentum 0.01); SGD lr 1e-3; batch 32 over the 55,000 training images (the first 5,000
of the training file are held out), shuffled, 1,719 steps. Prints
    epoch pytorch <seconds> <steps> <final training loss>
Run with /usr/bin/python3 (Debian's python3-torch 1.13).
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"torch_mlp_epoch: {name}(.gz) not found in {directory}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)

    images = read_idx(find(args.data_dir, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    labels = read_idx(find(args.data_dir, "train-labels-idx1-ubyte")).astype(np.int64)
    x = torch.from_numpy(images[5000:].copy())
    y = torch.from_numpy(labels[5000:].copy())

    def bn(features):
        return torch.nn.BatchNorm1d(features, eps=1e-3, momentum=0.01)

    model = torch.nn.Sequential(
        torch.nn.Flatten(), bn(784), torch.nn.Linear(784, 300), torch.nn.ReLU(), bn(300),
        torch.nn.Linear(300, 100), torch.nn.ReLU(), bn(100), torch.nn.Linear(100, 10))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    batch = 32
    steps = (len(x) + batch - 1) // batch

    def epoch():
        order = torch.randperm(len(x))
        total = 0.0
        for s in range(steps):
            index = order[s * batch:(s + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total / steps

    model.train()
    for e in range(args.epochs):
        start = time.perf_counter()
        loss = epoch()
        seconds = time.perf_counter() - start
        print(f"epoch pytorch {seconds:.4f} {steps} {loss:.4f}", flush=True)


main()
