#!/usr/bin/python3
"""Projects collab_filter's item embeddings on their first two principal
components and plots them, coloured by the learned item bias, labelling the
most-rated items. Usage: plot_embeddings.py item_embeddings.tsv OUT.png
(the TSV rows are: item id, title, training ratings, bias, factors...)."""
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_embeddings.py item_embeddings.tsv OUT.png")
    src, out = sys.argv[1], sys.argv[2]
    try:
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_embeddings.py: needs numpy and matplotlib (apt-get install python3-matplotlib)")
    titles, counts, biases, rows = [], [], [], []
    with open(src, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 6:
                sys.exit(f"{src}:{n}: expected id, title, count, bias and at least 2 factors")
            titles.append(parts[1])
            counts.append(int(parts[2]))
            biases.append(float(parts[3]))
            rows.append([float(v) for v in parts[4:]])
    if len(rows) < 3:
        sys.exit(f"plot_embeddings.py: {src} has fewer than 3 items")
    x = np.array(rows)
    x -= x.mean(axis=0)
    # principal axes are the right singular vectors of the centred data
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    pc = x @ vt[:2].T
    explained = s[:2] ** 2 / (s ** 2).sum()
    fig, ax = plt.subplots(figsize=(8, 7))
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=biases, cmap="coolwarm", s=12)
    fig.colorbar(sc, ax=ax, label="item bias")
    for i in np.argsort(counts)[::-1][:25]:
        ax.annotate(titles[i][:28], (pc[i, 0], pc[i, 1]), fontsize=7, alpha=0.8)
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    ax.set_title(f"collab_filter item embeddings ({len(rows)} items)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
