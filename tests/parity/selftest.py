#!/usr/bin/python3
"""Tests of the parity harness itself (CTest parity.selftest):

- every op of compiler/ir/Ops.def has a torch rule in kir_torch.OPS and is
  used by some case in cases.cpp (kiln_parity_dump --coverage);
- check.py fails, naming the case, tensor, element and both values, when a
  kiln output or gradient is off by a little (a harness that cannot fail
  proves nothing);
- a graph with an op kir_torch does not know is an error naming the op and
  its line;
- kir_torch's parser reads every .kir under tests/lit/roundtrip.

    selftest.py --driver kiln_parity_dump --work DIR
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import check  # noqa: E402
import kir_torch  # noqa: E402

failures = []


def expect(cond, msg):
    print(f"  {'ok  ' if cond else 'FAIL'} {msg}")
    if not cond:
        failures.append(msg)


def op_names():
    with open(os.path.join(ROOT, "compiler", "ir", "Ops.def")) as f:
        return re.findall(r'^KILN_OP\(\s*\w+\s*,\s*"([^"]+)"', f.read(), re.M)


def test_rules(driver):
    print("op coverage")
    ops = op_names()
    expect(len(ops) >= 64, f"Ops.def lists {len(ops)} ops")
    missing = [op for op in ops if not kir_torch.has_rule(op)]
    expect(not missing, "every op has a torch rule in kir_torch.OPS"
           + (f" (missing: {', '.join(missing)})" if missing else ""))
    p = subprocess.run([driver, "--coverage"], capture_output=True, text=True)
    expect(p.returncode == 0, f"every op is used by a parity case: {p.stdout.strip()}{p.stderr.strip()}")


def dump(driver, case, work):
    d = os.path.join(work, case)
    if os.path.isdir(d):
        shutil.rmtree(d)
    subprocess.run([driver, "--case", case, "--out", d], check=True)
    return d


def perturb(path, rel):
    """Scales the element of largest magnitude by (1 + rel); returns its index as check.py prints it."""
    a = np.load(path)
    idx = np.unravel_index(int(np.argmax(np.abs(a))), a.shape)
    a[idx] = a[idx] * (1 + rel)
    np.save(path, a)
    return check.fmt_idx(idx)


def test_detects_mismatch(driver, work):
    print("a small error in kiln's results fails the check")
    d = dump(driver, "matmul_tb", work)
    expect(check.check_dir(d, "float32", None, None) == [], "matmul_tb passes as dumped")

    idx = perturb(os.path.join(d, "out0.jit.npy"), 1e-4)
    fails = check.check_dir(d, "float32", None, None)
    expect(len(fails) == 1 and "matmul_tb" in fails[0] and "out y (jit)" in fails[0] and idx in fails[0],
           f"a 1e-4 relative error in one JIT output element is reported: {fails}")

    d = dump(driver, "logsoftmax_axis0", work)
    idx = perturb(os.path.join(d, "grad0.interp.npy"), -1e-4)
    fails = check.check_dir(d, "float32", None, None)
    expect(len(fails) == 1 and "grad in0 (interp)" in fails[0] and idx in fails[0],
           f"a 1e-4 relative error in one interpreter gradient element is reported: {fails}")

    d = dump(driver, "argmax_axis1", work)
    a = np.load(os.path.join(d, "out0.interp.npy"))
    a[0] = (a[0] + 1) % 6
    np.save(os.path.join(d, "out0.interp.npy"), a)
    fails = check.check_dir(d, "float32", None, None)
    expect(len(fails) == 1 and "out y (interp)" in fails[0], f"a wrong argmax index is reported: {fails}")


def test_unknown_op(work):
    print("an op without a torch rule is a clear error")
    path = os.path.join(work, "unknown.kir")
    with open(path, "w") as f:
        f.write('%0 = input "x" : f32[2]\n%1 = frobnicate %0 {k = 3} : f32[2] loc("m.cpp:7")\n'
                'func @f(%0) -> (y = %1)\n')
    g = kir_torch.parse_file(path)
    try:
        kir_torch.evaluate(g, "f", {"x": kir_torch.torch.zeros(2)})
        expect(False, "evaluating an unknown op raises")
    except kir_torch.KirError as e:
        msg = str(e)
        expect("frobnicate" in msg and "unknown.kir:2" in msg and "m.cpp:7" in msg,
               f"the error names the op, the .kir line and the model line: {msg!r}")


def test_parser():
    print("the parser reads the round-trip lit files")
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "lit", "roundtrip", "*.kir")))
    expect(len(files) > 0, f"{len(files)} files found")
    for path in files:
        try:
            g = kir_torch.parse_file(path)
            expect(len(g.nodes) > 0 and len(g.functions) > 0, f"{os.path.basename(path)}: "
                   f"{len(g.nodes)} nodes, {len(g.functions)} functions")
        except kir_torch.KirError as e:
            expect(False, f"{os.path.basename(path)}: {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    test_rules(a.driver)
    test_detects_mismatch(a.driver, a.work)
    test_unknown_op(a.work)
    test_parser()
    if failures:
        print(f"\n{len(failures)} selftest failure(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
