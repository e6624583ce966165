#!/usr/bin/python3
"""PyTorch parity check: recomputes what kiln_parity_dump wrote (forward
outputs, update values, gradients of sum(out * cotangent)) with torch and
compares, for both kiln's interpreter and its JIT.

    check.py --driver kiln_parity_dump --case add --work DIR     # one case
    check.py --driver kiln_parity_dump --kir FILE.kir --work DIR # every function of a .kir
             [--function F] [--grad]                             # one function; gradients too
    check.py DIR...                                              # already dumped directories

The reference is torch in float32 (--ref float64 to change it); the same
graph is also evaluated in float64, and the table shows how far kiln and
torch-float32 each are from it. An element passes when
|kiln - ref| <= (atol + rtol * |ref|) * (1 + 2 * w32), where w32 is the
worst ratio |torch32 - torch64| / (atol + rtol * |torch64|) on that tensor:
torch float32's own error in units of the tolerance (w32 << 1 unless the
tensor is ill-conditioned). i32 tensors must be equal. The table's
worst/tol column is kiln's worst ratio, scaled tolerance included. Exit status
1 names the case, the tensor, the worst element and both values.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kir_torch  # noqa: E402

# Default tolerance against torch float32. See README.md: both sides round
# every op to float32 but sum in different orders and use different libm
# routines, so they differ by a few ulps per op, more after sums.
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6
# Where a tensor is ill-conditioned, torch's own float32 result misses too.
# w32 is the worst error/tolerance ratio torch float32 reaches against
# float64 on the tensor; the tensor's tolerance is multiplied by
# 1 + SLACK * w32 (two results each w32 tolerances from the exact one are at
# most 2 * w32 apart). Well-conditioned tensors have w32 << 1.
SLACK = 2.0


def torch_run(g, manifest, dir, dtype):
    """Evaluates the manifest's function in torch with float dtype `dtype`.
    Returns ({output name: ndarray}, {grad source: ndarray})."""
    grad_names = [gr["source"] for gr in manifest["grads"]]
    sources = {}
    for s in manifest["sources"]:
        a = np.load(os.path.join(dir, s["file"]))
        t = torch.from_numpy(a)
        if t.is_floating_point():
            t = t.to(dtype)
            if s["name"] in grad_names:
                t.requires_grad_(True)
        sources[s["name"]] = t
    outputs, updates = kir_torch.evaluate(g, manifest["function"], sources, dtype)

    results = {}
    loss = None
    for o in manifest["outputs"]:
        val = outputs[o["name"]] if o["kind"] == "output" else updates[o["name"]]
        results[(o["kind"], o["name"])] = val.detach().numpy()
        if o["cotangent"]:
            cot = torch.from_numpy(np.load(os.path.join(dir, o["cotangent"]))).to(dtype)
            term = (val * cot).sum()
            loss = term if loss is None else loss + term
    grads = {}
    if grad_names:
        leaves = [sources[n] for n in grad_names]
        if loss is not None and loss.requires_grad:
            gs = torch.autograd.grad(loss, leaves, allow_unused=True)
        else:  # nothing differentiable reaches the outputs (e.g. step)
            gs = [None] * len(leaves)
        for n, leaf, gv in zip(grad_names, leaves, gs):
            grads[n] = (torch.zeros_like(leaf) if gv is None else gv).detach().numpy()
    return results, grads


def compare(kiln, ref, rtol, atol, scale=1.0):
    """Returns (ok, worst index, excess ratio) for |kiln - ref| <= scale * (atol + rtol*|ref|)."""
    if kiln.shape != ref.shape:
        return False, None, float("inf")
    if kiln.size == 0:
        return True, None, 0.0
    if not np.issubdtype(ref.dtype, np.floating):
        bad = kiln != ref
        if bad.any():
            idx = np.unravel_index(np.argmax(bad), ref.shape)
            return False, idx, float("inf")
        return True, None, 0.0
    k = kiln.astype(np.float64)
    r = ref.astype(np.float64)
    both_nan = np.isnan(k) & np.isnan(r)
    err = np.where(both_nan, 0.0, np.abs(k - r))
    err = np.where(np.isnan(err), np.inf, err)  # one NaN, or inf - inf
    same_inf = np.isinf(k) & (k == r)
    err = np.where(same_inf, 0.0, err)
    ratio = err / (scale * (atol + rtol * np.abs(np.where(np.isfinite(r), r, 0.0))))
    flat = int(np.argmax(ratio))
    worst = float(ratio.flat[flat])
    return worst <= 1.0, np.unravel_index(flat, ref.shape), worst


def max_abs(a, b):
    if a.size == 0 or not np.issubdtype(b.dtype, np.floating):
        return 0.0 if np.array_equal(a, b) else float("inf")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    d = d[~(np.isnan(a) & np.isnan(b))]
    return float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0


def fmt_idx(idx):
    return "[" + ",".join(str(int(i)) for i in idx) + "]" if idx is not None else "[]"


def check_dir(dir, ref_name, rtol_arg, atol_arg):
    """Checks one dumped directory; prints a table; returns a list of failure messages."""
    with open(os.path.join(dir, "manifest.json")) as f:
        manifest = json.load(f)
    case = manifest["case"]
    tol = manifest.get("tolerance", {})
    rtol = rtol_arg if rtol_arg is not None else (tol.get("rtol") or DEFAULT_RTOL)
    atol = atol_arg if atol_arg is not None else (tol.get("atol") or DEFAULT_ATOL)
    g = kir_torch.parse_file(os.path.join(dir, manifest["kir"]))

    t32 = torch_run(g, manifest, dir, torch.float32)
    t64 = torch_run(g, manifest, dir, torch.float64)
    ref = t32 if ref_name == "float32" else t64

    rows = []  # (label, kiln interp, kiln jit, ref, t32, t64)
    for i, o in enumerate(manifest["outputs"]):
        key = (o["kind"], o["name"])
        label = f"{'out' if o['kind'] == 'output' else 'update'} {o['name']}"
        rows.append((label, np.load(os.path.join(dir, o["interp"])), np.load(os.path.join(dir, o["jit"])),
                     ref[0][key], t32[0][key], t64[0][key]))
    for gr in manifest["grads"]:
        n = gr["source"]
        rows.append((f"grad {n}", np.load(os.path.join(dir, gr["interp"])), np.load(os.path.join(dir, gr["jit"])),
                     ref[1][n], t32[1][n], t64[1][n]))

    print(f"parity {case}: reference torch {ref_name}, pass if |kiln - ref| <= {atol:g} + {rtol:g}*|ref|"
          f", times 1 + {SLACK:g}*w32 (i32: equal)")
    print(f"  {'tensor':<28} {'shape':<14} {'interp-ref':>10} {'jit-ref':>10} {'kiln-f64':>10} "
          f"{'torch32-f64':>11} {'w32':>9} {'worst/tol':>9}  ok")
    failures = []
    notes = []
    for label, ki, kj, r, r32, r64 in rows:
        worst_ratio = 0.0
        ok_all = True
        w32 = compare(r32, r64, rtol, atol)[2] if np.issubdtype(r.dtype, np.floating) else 0.0
        scale = 1.0 + SLACK * w32
        if w32 > 1:
            notes.append(f"  note: {label}: torch float32 itself is {w32:.3g} tolerances off float64 "
                         f"(ill-conditioned), so its tolerance is scaled by {scale:.3g}")
        for which, k in (("interp", ki), ("jit", kj)):
            ok, idx, ratio = compare(k, r, rtol, atol, scale)
            worst_ratio = max(worst_ratio, ratio)
            if not ok:
                ok_all = False
                if idx is None:
                    failures.append(f"{case}: {label}: kiln {which} shape {list(k.shape)}, torch {list(r.shape)}")
                else:
                    failures.append(f"{case}: {label} ({which}): element {fmt_idx(idx)}: kiln {k[idx]!r} vs "
                                    f"torch {ref_name} {r[idx]!r} (|diff| {abs(float(k[idx]) - float(r[idx])):.3g}, "
                                    f"allowed {scale * (atol + rtol * abs(float(r[idx]))):.3g})")
        print(f"  {label:<28} {str(list(r.shape)):<14} {max_abs(ki, r):>10.3g} {max_abs(kj, r):>10.3g} "
              f"{max(max_abs(ki, r64), max_abs(kj, r64)):>10.3g} {max_abs(r32, r64):>11.3g} "
              f"{w32:>9.3g} {worst_ratio:>9.3g}  {'ok' if ok_all else 'FAIL'}")
    for n in notes:
        print(n)
    return failures


def run_driver(driver, args, work):
    if os.path.isdir(work):
        shutil.rmtree(work)
    cmd = [driver] + args + ["--out", work]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return work


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", help="directories written by kiln_parity_dump")
    ap.add_argument("--driver", help="the kiln_parity_dump executable")
    ap.add_argument("--case", help="a case name (kiln_parity_dump --list)")
    ap.add_argument("--kir", help="a .kir file: checks the forward outputs of its functions on random inputs")
    ap.add_argument("--function", help="with --kir: only this function (default: every one)")
    ap.add_argument("--grad", action="store_true",
                    help="with --kir: also the gradients of the outputs wrt every f32 input and param")
    ap.add_argument("--work", help="where the driver writes (default: ./parity-work)", default="parity-work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ref", choices=["float32", "float64"], default="float32")
    ap.add_argument("--rtol", type=float, help="override the case's relative tolerance")
    ap.add_argument("--atol", type=float, help="override the case's absolute tolerance")
    a = ap.parse_args()

    dirs = list(a.dirs)
    seed = ["--seed", str(a.seed)]
    if a.case or a.kir:
        if not a.driver:
            ap.error("--case and --kir need --driver")
        if a.case:
            dirs.append(run_driver(a.driver, ["--case", a.case] + seed, a.work))
        else:
            if not os.path.exists(a.kir):
                raise SystemExit(f"error: {a.kir} does not exist (build the model that dumps it first)")
            fns = [a.function] if a.function else subprocess.run(
                [a.driver, "--kir", a.kir, "--list-functions"], check=True, capture_output=True,
                text=True).stdout.split()
            for fn in fns:
                dirs.append(run_driver(a.driver, ["--kir", a.kir, "--function", fn] + seed + (["--grad"] if a.grad else []),
                                       os.path.join(a.work, fn)))
    if not dirs:
        ap.error("nothing to check: give --case, --kir or directories")

    failures = []
    for d in dirs:
        try:
            failures += check_dir(d, a.ref, a.rtol, a.atol)
        except kir_torch.KirError as e:
            failures.append(str(e))
    if failures:
        print("\nFAILED:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
