#!/usr/bin/python3
"""Draws a grid of generated MNIST digits into a PNG with matplotlib.
The input is a raw dump written by the gan example: ROWS*COLS images of
28x28 little-endian float32 pixels in [0, 1], row-major, nothing else.
Usage: plot_samples.py SAMPLES.raw OUT.png ROWS COLS [TITLE]"""
import sys


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: plot_samples.py SAMPLES.raw OUT.png ROWS COLS [TITLE]")
    src, out, rows, cols = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    title = sys.argv[5] if len(sys.argv) > 5 else ""
    try:
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_samples.py: needs numpy and matplotlib (apt-get install python3-matplotlib)")
    pixels = np.fromfile(src, dtype="<f4")
    if pixels.size != rows * cols * 28 * 28:
        sys.exit(f"plot_samples.py: {src} holds {pixels.size} floats, expected {rows}x{cols} images of 28x28")
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


if __name__ == "__main__":
    main()
