"""Figures and widgets of chapter 4 (text anatomy): similarity heatmaps and an anatomy browser.

Usage::

    from lga.viz.anatomy import similarity_heatmap, anatomy_browser
    similarity_heatmap(ax, sim, names, pairs=[(0, 1), (4, 7)], title="labels")
    anatomy_browser({"hmdb51": [("brush_hair", steps, "")], ...})
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from . import FONT_SMALL, FONT_TITLE, anatomy_html, linked_pages

__all__ = ["similarity_heatmap", "anatomy_browser"]


def similarity_heatmap(ax, sim, names, pairs=(), title: str | None = None, vmin: float = -1.0,
                       vmax: float = 1.0, cmap: str = "viridis", show_names: bool = True):
    """Draw a class-by-class cosine similarity matrix ``sim [C, C]`` on ``ax``.

    Args:
        ax: a matplotlib axes.
        sim: the similarity matrix (array-like, ``[C, C]``).
        names: the ``C`` class names: the row labels, each followed by its number (1..C), which
            labels the columns (long names written once, at a legible size).
        pairs: index pairs ``(i, j)`` to outline in red (both ``(i, j)`` and ``(j, i)``), e.g. the
            hard pairs.
        title: axes title.
        vmin, vmax, cmap: colour scale.
        show_names: write the names and numbers as tick labels (off for panels beside the first).

    Returns the image (for a colour bar).
    """
    sim = np.asarray(sim, dtype=float)
    im = ax.imshow(sim, vmin=vmin, vmax=vmax, cmap=cmap)
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            ax.add_patch(Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
    if show_names:   # names once, on the rows, each with its number; the columns carry the numbers
        numbers = [str(i + 1) for i in range(len(names))]
        every = 1 if len(names) <= 12 else 2          # two-digit numbers need two cells apart
        ax.set_xticks(range(0, len(names), every), numbers[::every], fontsize=FONT_SMALL)
        ax.set_yticks(range(len(names)), [f"{n}  {k}" for n, k in zip(names, numbers)], fontsize=FONT_SMALL)
        ax.set_xlabel("class (number of its row)", fontsize=FONT_SMALL)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    return im


def anatomy_browser(datasets):
    """A kernel-free browser of anatomy files: one tab per dataset, a class picker in each.

    Args:
        datasets: ``{tab title: [(class name, steps, extra_html), ...]}`` where ``steps`` are
            dicts with ``subject``, ``motion``, ``object``, ``description`` (as in an
            ``lga-anatomy/1`` file) and ``extra_html`` is HTML shown after the name (may be
            ``""``; build it from data with :func:`lga.viz.html_format`).

    Each tab holds a ``Dropdown`` linked to a ``Stack`` of HTML pages with ``ipywidgets.jslink``
    (no Python callbacks), so the browser also works in the static HTML book.
    """
    import ipywidgets as W  # optional: ipywidgets, only in a live notebook

    tabs = []
    for entries in datasets.values():
        pages = [W.HTML(anatomy_html(name, steps, extra)) for name, steps, extra in entries]
        tabs.append(linked_pages([name for name, _, _ in entries], pages, "class", width="480px"))
    return W.Tab(children=tabs, titles=list(datasets))
