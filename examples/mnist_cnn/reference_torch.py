#!/usr/bin/python3
"""The mnist_cnn example in PyTorch, for comparison: the same network, default
initializations, Adam lr 1e-3, batch 64, 5 epochs, on the same 8,000/2,000
split of data/mnist. Prints the test accuracy after each epoch.
Usage: reference_torch.py [DATA_DIR]"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    raw = open(path, "rb").read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw[4 + 4 * rank:], dtype=np.uint8).reshape(dims)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 5), nn.Conv2d(32, 64, 5)
        self.f1, self.f2 = nn.Linear(1024, 128), nn.Linear(128, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.c1(x.view(-1, 1, 28, 28))), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return self.f2(F.relu(self.f1(h.flatten(1))))


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "data/mnist"
    load = lambda name: idx(f"{data}/{name}")
    x = torch.tensor(load("train-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)
    y = torch.tensor(load("train-labels-idx1-ubyte").astype(np.int64))
    xt = torch.tensor(load("t10k-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)
    yt = torch.tensor(load("t10k-labels-idx1-ubyte").astype(np.int64))
    torch.manual_seed(0)
    model = CNN()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(5):
        order = torch.randperm(len(x))
        for i in range(0, len(x) - 63, 64):  # full batches only, as kiln's Batcher
            b = order[i:i + 64]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1} test accuracy {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
