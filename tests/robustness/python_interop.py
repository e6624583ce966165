#!/usr/bin/python3
"""Other tools read kiln's checkpoints, and kiln reads theirs.

A safetensors reader written from the format description with json, struct
and numpy only reads a file `robust_ckpt write` made (version 3), checks the
header, the FNV-1a checksum and every value; then it writes version 5 itself
in another layout (reversed tensor order, no padding) and `robust_ckpt check`
must read it as version 5.
Usage: python_interop.py ROBUST_CKPT WORKDIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np


def fnv1a64(data: bytes) -> int:
    # vectorised over 8 lanes is not FNV; do it plainly, files here are small
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def pattern(k, t, n, dtype):
    i = np.arange(n, dtype=np.int64)
    if dtype == "F32":
        return (np.float32(k) + ((t * 7 + i) % 1024).astype(np.float32) / np.float32(1024)).astype("<f4")
    return (k * 1000 + (t * 7 + i) % 1000).astype("<i4")


def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    return header, raw[8 + n:]


def main():
    exe, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = os.path.join(work, "v3.safetensors")
    subprocess.run([exe, "write", path, "3"], check=True)
    header, data = read(path)
    meta = header.pop("__metadata__")
    assert meta["kiln.model"] == "robust", meta
    assert meta["kiln.checksum"] == "fnv1a64:%016x" % fnv1a64(data), "checksum differs"
    names = list(header)
    assert names[0] == "l1.w" and "trainStep.t" in names, names
    assert header["l1.w"]["shape"] == [32, 256] and header["trainStep.t"]["shape"] == [], header
    end = 0
    for t, name in enumerate(names):
        e = header[name]
        b, f = e["data_offsets"]
        assert b == end, f"{name}: data is not contiguous"
        end = f
        n = int(np.prod(e["shape"], dtype=np.int64))
        arr = np.frombuffer(data[b:f], dtype="<f4" if e["dtype"] == "F32" else "<i4")
        assert arr.size == n, f"{name}: {arr.size} elements, shape {e['shape']}"
        want = pattern(3, t, n, e["dtype"])
        assert np.array_equal(arr.view(np.uint32), want.view(np.uint32)), f"{name}: values differ"
    assert end == len(data), "trailing bytes"
    print(f"python read {len(names)} tensors ({len(data)} bytes) from kiln's file")

    # Now write version 5 with our own layout: reversed order, compact JSON.
    blobs, entries, off = [], {}, 0
    for t in reversed(range(len(names))):
        e = header[names[t]]
        n = int(np.prod(e["shape"], dtype=np.int64))
        blob = pattern(5, t, n, e["dtype"]).tobytes()
        entries[names[t]] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [off, off + len(blob)]}
        off += len(blob)
        blobs.append(blob)
    data5 = b"".join(blobs)
    entries["__metadata__"] = {"kiln.checksum": "fnv1a64:%016x" % fnv1a64(data5), "written.by": "python"}
    text = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    out = os.path.join(work, "v5.safetensors")
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data5)
    check = subprocess.run([exe, "check", out], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "5", check.stdout
    print("kiln read python's file as version 5")


if __name__ == "__main__":
    main()
