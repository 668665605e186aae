"""Figures for chapter 6 (fine-grained fusion): phase-to-phase attention maps and learning curves."""

from __future__ import annotations

import numpy as np

from . import FONT_SMALL, FONT_TITLE


def attention_map(ax, att, title: str | None = None, row_labels=None, annotate: bool = True):
    """Draw one ``[L, L]`` attention matrix (row i: query phase i, column j: key phase j; rows sum to 1).

    ``att`` may also be ``[H, L, L]`` (one map per head); the heads are then averaged. Dark cells are
    small weights, bright cells large; ``annotate`` writes each weight in its cell. Returns the image.
    """
    att = np.asarray(att, dtype=float)
    if att.ndim == 3:
        att = att.mean(0)
    L = att.shape[0]
    im = ax.imshow(att, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(L))
    ax.set_xticklabels([f"f{j + 1}" for j in range(L)], fontsize=FONT_SMALL)
    ax.set_yticks(range(L))
    ax.set_yticklabels(row_labels if row_labels is not None else [f"Q{i + 1}" for i in range(L)], fontsize=FONT_SMALL)
    if annotate:
        for i in range(L):
            for j in range(L):
                ax.text(j, i, f"{att[i, j]:.2f}", ha="center", va="center", fontsize=FONT_SMALL,
                        color="black" if att[i, j] > 0.6 else "white")
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    return im


def learning_curve(ax, values, window: int = 20, label: str | None = None, ylabel: str | None = None):
    """Plot per-step ``values`` (faint) and their running mean over ``window`` steps (solid)."""
    v = np.asarray(values, dtype=float)
    steps = np.arange(1, len(v) + 1)
    line, = ax.plot(steps, v, alpha=0.25, lw=0.8)
    if len(v) >= window:
        smooth = np.convolve(v, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color=line.get_color(), lw=2, label=label)
    ax.set_xlabel("training step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax
