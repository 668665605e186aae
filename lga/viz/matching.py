"""Figures for chapter 7 (multimodal matching): distance matrices with alignment paths, grouped bars."""

from __future__ import annotations

import numpy as np

from . import FONT_SMALL, FONT_TITLE, PHASE_COLORS


def distance_matrix(ax, dist, path=None, title: str | None = None, vmax: float | None = None):
    """Draw a frame-to-frame distance matrix ``[T, U]`` (rows: one video, columns: the other).

    ``path``: optional list of ``(row, column)`` cells, drawn as a line with dots (an alignment path).
    Dark cells are small distances. Returns the image.
    """
    dist = np.asarray(dist, dtype=float)
    im = ax.imshow(dist, cmap="magma", vmin=0, vmax=vmax if vmax is not None else max(dist.max(), 1e-6))
    if path:
        rows, cols = zip(*path)
        ax.plot(cols, rows, color="#1b9e77", lw=2, marker="o", ms=4)
    ax.set_xlabel("frame of the other video")
    ax.set_ylabel("frame")
    ax.set_xticks(range(dist.shape[1]))
    ax.set_yticks(range(dist.shape[0]))
    ax.tick_params(labelsize=FONT_SMALL)
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def grouped_accuracy_bars(ax, results, chance: float | None = None, title: str | None = None):
    """Accuracies of several methods on several groups, with 95% intervals.

    ``results``: ``{method: {group: EvalResult}}`` (every method the same groups, in order); bars are
    grouped by group, one colour per method.
    """
    methods = list(results)
    groups = list(results[methods[0]])
    width = 0.8 / len(methods)
    x = np.arange(len(groups))
    colors = list(PHASE_COLORS) + ["#666666", "#a6761d"]
    for k, m in enumerate(methods):
        means = [100 * results[m][g].mean for g in groups]
        cis = [100 * results[m][g].ci95 for g in groups]
        ax.bar(x + (k - (len(methods) - 1) / 2) * width, means, width, yerr=cis, capsize=2,
               label=m, color=colors[k % len(colors)])
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    if chance is not None:
        ax.axhline(100 * chance, ls="--", color="grey", lw=1)
    ax.legend(fontsize=FONT_SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    ax.grid(axis="y", alpha=0.3)
    return ax
