#!/usr/bin/python3
"""Writes sample.u.data, the small u.data file the collab_filter tests use:
500 integer ratings by 40 users of 60 items (ids 1..40 and 1..60), from item
and user biases plus a rank-2 taste term and noise, rounded and clipped to
1..5, with made-up timestamps. Deterministic; run it to regenerate."""
import random

rng = random.Random(6)
users, items, count = 40, 60, 500
ub = [rng.gauss(0, 0.4) for _ in range(users)]
ib = [rng.gauss(0, 0.8) for _ in range(items)]
uf = [[rng.gauss(0, 0.7) for _ in range(2)] for _ in range(users)]
vf = [[rng.gauss(0, 0.7) for _ in range(2)] for _ in range(items)]
pairs = rng.sample([(u, i) for u in range(users) for i in range(items)], count)
with open("sample.u.data", "w") as f:
    for n, (u, i) in enumerate(pairs):
        r = 3.4 + ub[u] + ib[i] + sum(a * b for a, b in zip(uf[u], vf[i])) + rng.gauss(0, 0.4)
        r = min(5, max(1, round(r)))
        f.write(f"{u + 1}\t{i + 1}\t{r}\t{881250949 + 37 * n}\n")
