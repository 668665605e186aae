"""Figures and a widget for chapter 5 (visual anatomy): merge steps, phase masks, a phase explorer."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np

from . import FONT_SMALL, FONT_TITLE, PHASE_COLORS, linked_pages


def merge_history(ax, steps, title: str | None = None):
    """Draw the clusters of CLUSTER-Segment after each merge, one row per step.

    ``steps``: a list of bounds (each a sequence ``[C+1]`` of cluster starts plus T), from T clusters
    down to L. Each row shows the T frames as cells, coloured by cluster (alternating greys, the
    final L clusters in the phase colours).
    """
    steps = [np.asarray(b) for b in steps]
    T = int(steps[0][-1])
    for r, b in enumerate(steps):
        last = r == len(steps) - 1
        for c in range(len(b) - 1):
            color = PHASE_COLORS[c % len(PHASE_COLORS)] if last else ("#bbbbbb" if c % 2 else "#777777")
            ax.add_patch(plt.Rectangle((b[c] + 0.05, r + 0.1), b[c + 1] - b[c] - 0.1, 0.8, color=color))
    ax.set_xlim(0, T)
    ax.set_ylim(len(steps), 0)
    ax.set_xticks(np.arange(T) + 0.5)
    ax.set_xticklabels(range(T))
    ax.set_yticks(np.arange(len(steps)) + 0.5)
    ax.set_yticklabels([f"{len(b) - 1} clusters" for b in steps], fontsize=FONT_SMALL)
    ax.set_xlabel("frame")
    if title:
        ax.set_title(title, fontsize=FONT_TITLE, loc="left")
    return ax


def mask_image(ax, masks, title: str | None = None):
    """Draw phase masks ``[L, T]`` (bool) as a grid: row i is phase i, filled cells its frames."""
    masks = np.asarray(masks, dtype=bool)
    L, T = masks.shape
    for i in range(L):
        for t in range(T):
            if masks[i, t]:
                ax.add_patch(plt.Rectangle((t + 0.05, i + 0.1), 0.9, 0.8, color=PHASE_COLORS[i % len(PHASE_COLORS)]))
    ax.set_xlim(0, T)
    ax.set_ylim(L, 0)
    ax.set_xticks(np.arange(T) + 0.5)
    ax.set_xticklabels(range(T))
    ax.set_yticks(np.arange(L) + 0.5)
    ax.set_yticklabels([f"phase {i + 1}" for i in range(L)], fontsize=FONT_SMALL)
    ax.set_xlabel("frame")
    if title:
        ax.set_title(title, fontsize=FONT_TITLE, loc="left")
    return ax


def phase_explorer(entries):
    """An interactive explorer: pick a video, see its frames segmented by several methods.

    ``entries``: list of dicts with ``name`` (str, the dropdown label), ``html`` (a caption, as
    HTML: build it from data with :func:`lga.viz.html_format`) and ``rows``, a list of
    ``(label, jpeg_bytes)`` pairs (strips from :func:`lga.viz.strip_image`).
    The dropdown and the pages are linked in the browser (``jslink``), so the explorer works in
    the static HTML book, without a running kernel.
    """
    import ipywidgets as W  # optional: ipywidgets, only in a live notebook

    pages = []
    for e in entries:
        rows = [W.HBox([W.HTML(f"<b>{html.escape(label)}</b>", layout=W.Layout(width="130px")),
                        W.Image(value=img, format="jpeg", layout=W.Layout(max_width="620px"))])
                for label, img in e["rows"]]
        pages.append(W.VBox([W.HTML(e["html"]), *rows]))
    return linked_pages([e["name"] for e in entries], pages, "video")
