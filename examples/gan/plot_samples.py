#!/usr/bin/python3
"""Draws grids of generated MNIST digits into PNGs with matplotlib.

plot_samples.py SAMPLES.raw OUT.png ROWS COLS [TITLE]
    one grid from a raw dump: ROWS*COLS images of 28x28 little-endian
    float32 pixels in [0, 1], row-major, nothing else.
plot_samples.py --stream ROWS COLS
    many grids, one per record on stdin, so matplotlib is imported once per
    run rather than once per grid: each record is a line "OUT.png<TAB>TITLE"
    followed by ROWS*COLS*28*28 float32 pixels as above. The gan example
    keeps one such process open and sends it a grid every epoch."""
import sys


def load_matplotlib():
    try:
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_samples.py: needs numpy and matplotlib (apt-get install python3-matplotlib)")
    return np, plt


def draw(np, plt, pixels, rows, cols, out, title):
    # (rows, cols, 28, 28) -> one (rows*28, cols*28) mosaic with 2-pixel gaps
    images = pixels.reshape(rows, cols, 28, 28)
    gap = 2
    grid = 0.5 * np.ones((rows * (28 + gap) - gap, cols * (28 + gap) - gap), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            y, x = r * (28 + gap), c * (28 + gap)
            grid[y:y + 28, x:x + 28] = images[r, c]
    fig, ax = plt.subplots(figsize=(cols * 0.5 + 0.4, rows * 0.5 + 0.7))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def stream(rows, cols):
    np, plt = load_matplotlib()
    size = rows * cols * 28 * 28 * 4
    src = sys.stdin.buffer
    record = 0
    while True:
        header = src.readline()
        if not header:
            return
        record += 1
        out, _, title = header.decode("utf-8").rstrip("\n").partition("\t")
        data = src.read(size)
        if len(data) != size:
            sys.exit(f"plot_samples.py: stdin record {record} ({out}): {len(data)} bytes of pixels, expected {size}")
        draw(np, plt, np.frombuffer(data, dtype="<f4"), rows, cols, out, title)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--stream":
        stream(int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) < 5:
        sys.exit("usage: plot_samples.py SAMPLES.raw OUT.png ROWS COLS [TITLE]\n"
                 "       plot_samples.py --stream ROWS COLS")
    src, out, rows, cols = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    title = sys.argv[5] if len(sys.argv) > 5 else ""
    np, plt = load_matplotlib()
    pixels = np.fromfile(src, dtype="<f4")
    if pixels.size != rows * cols * 28 * 28:
        sys.exit(f"plot_samples.py: {src} holds {pixels.size} floats, expected {rows}x{cols} images of 28x28")
    draw(np, plt, pixels, rows, cols, out, title)


if __name__ == "__main__":
    main()
