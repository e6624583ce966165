#!/usr/bin/python3
# The torch.optim side of the optimizer parity tests: runs optim_driver for a
# case (kiln's training run, written as JSON), replays the same run with
# torch.optim from the same initial params and data, and compares the final
# params.
#
# Tolerance rule, per element of every param: |kiln - torch| <= RTOL*|torch|
# + ATOL with RTOL = 1e-5 and ATOL = 1e-6 (the absolute floor only matters
# for elements within 0.1 of zero). Per-call losses are compared the same
# way.
#
#   optim_parity.py DRIVER CASE [WORKDIR]
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

RTOL = 1e-5
ATOL = 1e-6
NAMES = ["l1.w", "l1.b", "l2.w", "l2.b"]


def make_optimizer(case, P):
    """The torch.optim configuration of each case in optim_driver.cpp."""
    o = torch.optim
    allp = [P[n] for n in NAMES]
    sched = None
    if case == "sgd":
        opt = o.SGD(allp, lr=0.1)
    elif case == "sgd_momentum":
        opt = o.SGD(allp, lr=0.1, momentum=0.9)
    elif case == "sgd_nesterov":
        opt = o.SGD(allp, lr=0.1, momentum=0.9, nesterov=True)
    elif case == "sgd_dampening_wd":
        opt = o.SGD(allp, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)
    elif case == "adagrad":
        opt = o.Adagrad(allp, lr=0.1)
    elif case == "adagrad_decay_wd":
        opt = o.Adagrad(allp, lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1)
    elif case == "rmsprop":
        opt = o.RMSprop(allp, lr=0.01)
    elif case == "rmsprop_momentum":
        opt = o.RMSprop(allp, lr=0.01, weight_decay=0.01, momentum=0.9)
    elif case == "rmsprop_centered":
        opt = o.RMSprop(allp, lr=0.01, momentum=0.5, centered=True)
    elif case == "adam":
        opt = o.Adam(allp, lr=0.01)
    elif case == "adam_wd_amsgrad":
        opt = o.Adam(allp, lr=0.01, weight_decay=0.01, amsgrad=True)
    elif case == "adamw":
        opt = o.AdamW(allp, lr=0.01)
    elif case == "adamw_amsgrad":
        opt = o.AdamW(allp, lr=0.01, weight_decay=0.1, amsgrad=True)
    elif case == "adam_clip_norm":
        opt = o.Adam(allp, lr=0.01)
    elif case == "sgd_clip_value":
        opt = o.SGD(allp, lr=0.1, momentum=0.9)
    elif case == "sgd_step_lr":
        opt = o.SGD(allp, lr=0.2, momentum=0.5)
        sched = o.lr_scheduler.StepLR(opt, step_size=6, gamma=0.5)
    elif case == "adam_warmup_exponential":
        opt = o.Adam(allp, lr=0.02)
        sched = o.lr_scheduler.ChainedScheduler([
            o.lr_scheduler.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=5),
            o.lr_scheduler.ExponentialLR(opt, gamma=0.9)])
    elif case == "sgd_cosine":
        opt = o.SGD(allp, lr=0.2, momentum=0.5)
        sched = o.lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    elif case == "adam_warmup_cosine":
        opt = o.Adam(allp, lr=0.02)
        sched = o.lr_scheduler.ChainedScheduler([
            o.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=4),
            o.lr_scheduler.CosineAnnealingLR(opt, T_max=8)])
    elif case == "sgd_groups":
        opt = o.SGD([{"params": [P["l1.b"], P["l2.b"]], "weight_decay": 0.0},
                     {"params": [P["l2.w"]], "lr": 0.3},
                     {"params": [P["l1.w"]]}], lr=0.1, momentum=0.9, weight_decay=0.05)
    elif case == "adam_frozen":
        P["l1.w"].requires_grad_(False)
        opt = o.Adam([P[n] for n in NAMES if n != "l1.w"], lr=0.01)
    elif case == "sgd_accumulate":
        opt = o.SGD(allp, lr=0.1, momentum=0.9)
    else:
        raise SystemExit(f"optim_parity.py: no torch configuration for case '{case}'")
    return opt, sched


def clip(case, P):
    trained = [P[n] for n in NAMES if P[n].requires_grad]
    if case == "adam_clip_norm":
        torch.nn.utils.clip_grad_norm_(trained, 0.1)
    elif case == "sgd_clip_value":
        torch.nn.utils.clip_grad_value_(trained, 0.02)


def tensor(entry):
    return torch.tensor(entry["data"], dtype=torch.float32).reshape(entry["shape"])


def close(got, want):
    """(ok, max abs diff, max rel diff) under the tolerance rule."""
    diff = (got - want).abs()
    ok = bool((diff <= RTOL * want.abs() + ATOL).all())
    rel = (diff / want.abs().clamp_min(1e-30)).max().item()
    return ok, diff.max().item(), rel


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: optim_parity.py DRIVER CASE [WORKDIR]")
    driver, case = sys.argv[1], sys.argv[2]
    workdir = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="kiln-optim-")
    os.makedirs(workdir, exist_ok=True)
    out = os.path.join(workdir, case + ".json")
    subprocess.run([driver, case, out], check=True)
    with open(out) as f:
        run = json.load(f)

    torch.manual_seed(0)
    P = {n: tensor(run["init"][n]).requires_grad_(True) for n in NAMES}
    opt, sched = make_optimizer(case, P)
    k = run["accumulate"]
    losses = []
    call = 0
    for _ in range(run["updates"]):
        opt.zero_grad()
        for _ in range(k):
            x = torch.tensor(run["x"][call], dtype=torch.float32).reshape(8, 4)
            y = torch.tensor(run["y"][call], dtype=torch.int64)
            h = torch.tanh(x @ P["l1.w"] + P["l1.b"])
            loss = F.cross_entropy(h @ P["l2.w"] + P["l2.b"], y)
            losses.append(loss.item())
            (loss / k if k > 1 else loss).backward()
            call += 1
        clip(case, P)
        opt.step()
        if sched is not None:
            sched.step()

    failed = False
    ok, dabs, drel = close(torch.tensor(run["loss"]), torch.tensor(losses, dtype=torch.float32))
    print(f"{case}: losses over {call} calls: max abs diff {dabs:.3g}, max rel diff {drel:.3g} {'ok' if ok else 'FAIL'}")
    failed |= not ok
    for n in NAMES:
        got, want = tensor(run["final"][n]), P[n].detach()
        moved = (want - tensor(run["init"][n])).abs().max().item()
        ok, dabs, drel = close(got, want)
        print(f"{case}: {n}: moved up to {moved:.3g}; max abs diff {dabs:.3g}, max rel diff {drel:.3g} "
              f"{'ok' if ok else 'FAIL'}")
        failed |= not ok
    if case == "adam_frozen":
        # the frozen weight must not move at all
        if not torch.equal(tensor(run["final"]["l1.w"]), tensor(run["init"]["l1.w"])):
            print(f"{case}: frozen l1.w moved FAIL")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
