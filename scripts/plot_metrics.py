#!/usr/bin/python3
"""Plots a kiln metrics CSV: every column against the first one, one panel
per column, into a PNG. Usage: plot_metrics.py METRICS.csv OUT.png [TITLE]"""
import csv
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot_metrics.py METRICS.csv OUT.png [TITLE]")
    src, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else src
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_metrics.py: matplotlib is not installed (apt-get install python3-matplotlib)")
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        sys.exit(f"plot_metrics.py: {src} has no data rows")
    header, data = rows[0], [[float(v) for v in r] for r in rows[1:]]
    x = [r[0] for r in data]
    cols = header[1:]
    fig, axes = plt.subplots(len(cols), 1, figsize=(6, 2.2 * len(cols)), sharex=True, squeeze=False)
    for i, name in enumerate(cols):
        ax = axes[i][0]
        ax.plot(x, [r[i + 1] for r in data], marker="o", markersize=3)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    axes[-1][0].set_xlabel(header[0])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
