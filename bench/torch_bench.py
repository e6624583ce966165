#!/usr/bin/python3
"""The PyTorch side of `make bench`: the six training workloads, eager on the
CPU, each one training step (forward, backward, optimizer update) exactly as
the kiln models in bench/Workloads.h define them.

Timing (the same as the kiln runner's): `warm` steps, then `reps` repeats of
`iters` steps each; a repeat's figure is its mean ms per step, and the result
is the median of the repeats.

  torch_bench.py [--threads 2] NAME [NAME...]     time workloads, one JSON line each
  torch_bench.py [--threads 2] --serve            read "NAME WARM ITERS REPS [THREADS]" lines on
                                                  stdin, answer one JSON line each (bench/run.py uses
                                                  this so torch is imported once and runs interleave)
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# (warm, iters, reps) when run from the command line; bench/run.py passes its own.
DEFAULTS = {
    'mlp_b64': (5, 50, 5),
    'mlp_b256': (5, 20, 5),
    'cnn': (2, 5, 5),
    'collab': (5, 50, 5),
    'char_rnn': (2, 5, 5),
    'seq2seq': (2, 5, 5),
}


def timeit(step, warm, iters, reps):
    for _ in range(warm):
        step()
    per_rep = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(iters):
            step()
        per_rep.append((time.perf_counter() - t) / iters * 1e3)
    return statistics.median(per_rep), per_rep


def train_step(opt, lossf, after_backward=None):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf()
        loss.backward()
        if after_backward:
            after_backward()
        opt.step()
    return step


# 1. MLP 784-128-10, batch 64, cross-entropy, Adam lr 1e-3
def mlp_b64():
    B = 64
    mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.rand(B, 784)
    y = torch.randint(0, 10, (B,))
    opt = torch.optim.Adam(mlp.parameters(), 1e-3)
    return train_step(opt, lambda: F.cross_entropy(mlp(x), y))


# 2. MLP 784-512-512-10, batch 256, cross-entropy, SGD lr 0.01 momentum 0.9
def mlp_b256():
    B = 256
    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x = torch.rand(B, 784)
    y = torch.randint(0, 10, (B,))
    opt = torch.optim.SGD(mlp.parameters(), 0.01, momentum=0.9)
    return train_step(opt, lambda: F.cross_entropy(mlp(x), y))


# 3. LeNet-style CNN, batch 64: conv5x5x32 pad 2, relu, maxpool 2, conv5x5x64 pad 2,
#    relu, maxpool 2, fc 3136->128, relu, fc 128->10; cross-entropy, Adam lr 1e-3
def cnn():
    B = 64
    net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.rand(B, 1, 28, 28)
    y = torch.randint(0, 10, (B,))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    return train_step(opt, lambda: F.cross_entropy(net(x), y))


# 4. collaborative filtering: 943 users x 1682 items, 50 factors, a bias per user and
#    per item (embeddings of width 1), prediction sigmoid(u.v + bu + bi) * 5.5, MSE,
#    Adam lr 1e-2 with weight decay 0.1 (on every table, dense gradients), batch 1024
def collab():
    nu, ni, d, B = 943, 1682, 50, 1024
    U, I = nn.Embedding(nu, d), nn.Embedding(ni, d)
    ub, ib = nn.Embedding(nu, 1), nn.Embedding(ni, 1)
    u = torch.randint(0, nu, (B,))
    it = torch.randint(0, ni, (B,))
    r = torch.rand(B) * 5
    params = [*U.parameters(), *I.parameters(), *ub.parameters(), *ib.parameters()]
    opt = torch.optim.Adam(params, 1e-2, weight_decay=0.1)

    def loss():
        p = (U(u) * I(it)).sum(1) + ub(u)[:, 0] + ib(it)[:, 0]
        return F.mse_loss(torch.sigmoid(p) * 5.5, r)
    return train_step(opt, loss)


# 5. char-RNN: vocab 65, hidden 256, T = 64, batch 32, unrolled by hand:
#    h = tanh(Wxh[x_t] + h Whh + bh) (embedding-style input: rows of Wxh), logits h Why + by,
#    loss = mean over t of cross-entropy; gradients clipped by value to [-1, 1]; Adam lr 1e-3.
#    Init: Wxh, Why ~ N(0, 0.01^2), Whh = I, biases 0; h starts at 0.
def char_rnn():
    V, H, T, B = 65, 256, 64, 32
    Wxh = nn.Parameter(torch.randn(V, H) * 0.01)
    Whh = nn.Parameter(torch.eye(H))
    bh = nn.Parameter(torch.zeros(H))
    Why = nn.Parameter(torch.randn(H, V) * 0.01)
    by = nn.Parameter(torch.zeros(V))
    params = [Wxh, Whh, bh, Why, by]
    xs = torch.randint(0, V, (B, T))
    ys = torch.randint(0, V, (B, T))
    opt = torch.optim.Adam(params, 1e-3)

    def loss():
        h = torch.zeros(B, H)
        total = 0
        for t in range(T):
            h = torch.tanh(Wxh[xs[:, t]] + h @ Whh + bh)
            total = total + F.cross_entropy(h @ Why + by, ys[:, t])
        return total / T
    return train_step(opt, loss, lambda: torch.nn.utils.clip_grad_value_(params, 1.0))


# 6. seq2seq: embedding 65x64; encoder h = tanh(We [emb(src_t), h]) for 20 steps from h = 0;
#    its final state ctx is fed into every one of 20 decoder steps
#    s = tanh(Wd [emb(tgt_t), s, ctx]) from s = 0; logits out(s); loss = mean over t of
#    cross-entropy against tgt_t; hidden 256, batch 32, Adam lr 1e-3 (no clipping).
def seq2seq():
    V, E, H, B, Te, Td = 65, 64, 256, 32, 20, 20
    emb = nn.Embedding(V, E)
    We, Wd, out = nn.Linear(E + H, H), nn.Linear(E + H + H, H), nn.Linear(H, V)
    src = torch.randint(0, V, (B, Te))
    tgt = torch.randint(0, V, (B, Td))
    opt = torch.optim.Adam([*emb.parameters(), *We.parameters(), *Wd.parameters(), *out.parameters()], 1e-3)

    def loss():
        h = torch.zeros(B, H)
        for t in range(Te):
            h = torch.tanh(We(torch.cat([emb(src[:, t]), h], 1)))
        ctx, s, total = h, torch.zeros(B, H), 0
        for t in range(Td):
            s = torch.tanh(Wd(torch.cat([emb(tgt[:, t]), s, ctx], 1)))
            total = total + F.cross_entropy(out(s), tgt[:, t])
        return total / Td
    return train_step(opt, loss)


WORKLOADS = {'mlp_b64': mlp_b64, 'mlp_b256': mlp_b256, 'cnn': cnn, 'collab': collab,
             'char_rnn': char_rnn, 'seq2seq': seq2seq}


def run(name, warm, iters, reps):
    if name not in WORKLOADS:
        raise SystemExit(f"torch_bench: unknown workload '{name}' (have {', '.join(WORKLOADS)})")
    torch.manual_seed(0)
    ms, per_rep = timeit(WORKLOADS[name](), warm, iters, reps)
    return {'name': name, 'ms': ms, 'reps': per_rep, 'warm': warm, 'iters': iters,
            'threads': torch.get_num_threads()}


def main(argv):
    threads = 2
    if len(argv) >= 2 and argv[0] == '--threads':
        threads, argv = int(argv[1]), argv[2:]
    torch.set_num_threads(threads)
    if argv == ['--serve']:
        print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads()}),
              flush=True)
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            name, warm, iters, reps = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
            torch.set_num_threads(int(parts[4]) if len(parts) > 4 else threads)
            print(json.dumps(run(name, warm, iters, reps)), flush=True)
        return
    if not argv or argv[0].startswith('-'):
        raise SystemExit(__doc__)
    for name in argv:
        print(json.dumps(run(name, *DEFAULTS.get(name, (2, 5, 5)))), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
