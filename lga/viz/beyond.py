"""Figures for chapter 10 (beyond LGA): accuracy against a setting, and paired differences.

Both take the objects of :mod:`lga.engine.evaluate`: an :class:`~lga.engine.evaluate.EvalResult`
per point (mean accuracy and its 95% interval) or a :class:`~lga.engine.evaluate.Comparison` per
row (the paired difference of two heads on the same episodes and its 95% interval).
"""

from __future__ import annotations

import numpy as np

from . import PHASE_COLORS

_COLORS = list(PHASE_COLORS) + ["#666666", "#a6761d"]


def accuracy_vs(ax, xs, curves, xlabel: str, chance: float | None = None, title: str | None = None):
    """Accuracy (%) against a setting, one line per method, with its 95% interval as a band.

    Args:
        xs: the settings (e.g. the numbers of phases), shared by every curve.
        curves: ``{label: [EvalResult, ...]}``, one result per entry of ``xs``.
        xlabel: the name of the setting.
        chance: draw this accuracy (0..1) as a dashed line.
    """
    xs = list(xs)
    for k, (label, results) in enumerate(curves.items()):
        if len(results) != len(xs):
            raise ValueError(f"curve {label!r} has {len(results)} points for {len(xs)} settings")
        mean = np.array([100 * r.mean for r in results])
        ci = np.array([100 * r.ci95 for r in results])
        color = _COLORS[k % len(_COLORS)]
        ax.plot(xs, mean, marker="o", color=color, label=label)
        ax.fill_between(xs, mean - ci, mean + ci, color=color, alpha=0.2, lw=0)
    if chance is not None:
        ax.axhline(100 * chance, ls="--", color="grey", lw=1)
    ax.set_xticks(xs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


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
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel(f"difference to {reference}\n(points, paired 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
