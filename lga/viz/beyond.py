"""Figures for chapter 10 (beyond LGA): paired differences, and accuracy against a setting.

:func:`paired_differences` takes :class:`~lga.engine.evaluate.Comparison` objects (the paired
difference of two heads on the same episodes and its 95% interval); :func:`accuracy_vs` (one line
per method against a setting, shared with chapter 9) lives in :mod:`lga.viz.results`.
"""

from __future__ import annotations

import numpy as np

from . import FONT_SMALL, FONT_TITLE
from .results import accuracy_vs  # noqa: F401  (chapter 10 calls it as beyond.accuracy_vs)


def paired_differences(ax, comparisons, reference: str, title: str | None = None):
    """One row per comparison: the paired difference ``a - b`` in points with its 95% interval.

    Args:
        comparisons: ``{label: Comparison}`` (from :func:`lga.engine.evaluate.compare`); rows are
            drawn top to bottom in this order.
        reference: what ``b`` is, written in the axis label ("difference to <reference>").

    Rows whose interval excludes zero (``Comparison.significant``) are drawn filled, the others
    hollow; the dashed line marks no difference.
    """
    labels = list(comparisons)
    y = np.arange(len(labels))
    for i, label in enumerate(labels):
        c = comparisons[label]
        color = "#1b9e77" if c.diff >= 0 else "#d95f02"
        ax.errorbar(100 * c.diff, i, xerr=100 * c.ci95, fmt="o", color=color, capsize=3,
                    mfc=color if c.significant else "white")
    ax.axvline(0, ls="--", color="grey", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=FONT_SMALL)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel(f"difference to {reference}\n(points, paired 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    return ax
