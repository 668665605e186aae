"""Figures for chapters 9 and 10: accuracy bars with intervals, accuracy against a setting, gains over a base row."""

from __future__ import annotations

import numpy as np

from . import FONT_SMALL, FONT_TITLE, PHASE_COLORS

PALETTE = ("#7f7f7f", "#1b9e77", "#7570b3", "#d95f02")
_COLORS = list(PHASE_COLORS) + ["#666666", "#a6761d"]


def accuracy_table_bars(ax, names, results, groups=None, title: str | None = None,
                        chance: float | None = None):
    """Horizontal bars of ``results`` (:class:`lga.engine.evaluate.EvalResult`, one per name) in %.

    Each bar carries its 95% interval; ``groups`` (lists of names) get one colour each (e.g.
    baselines / ablation rows); ``chance`` (in %) is drawn as a dashed line. Names read top to bottom.
    """
    means = np.array([100 * r.mean for r in results])
    cis = np.array([100 * r.ci95 for r in results])
    colour = {}
    for g, members in enumerate(groups or [names]):
        for n in members:
            colour[n] = PALETTE[g % len(PALETTE)]
    y = np.arange(len(names))
    ax.barh(y, means, xerr=cis, capsize=3, color=[colour.get(n, PALETTE[0]) for n in names])
    for yi, m in zip(y, means):
        ax.text(m + 1, yi, f"{m:.1f}", va="center", fontsize=FONT_SMALL)
    ax.set_yticks(y, list(names), fontsize=FONT_SMALL)
    if not ax.yaxis_inverted():          # axes sharing y are inverted once, not twice
        ax.invert_yaxis()
    if chance is not None:
        ax.axvline(chance, ls="--", color="grey", lw=1)
    ax.set_xlim(0, min(100, max(means + cis) + 10))
    ax.set_xlabel("accuracy (%), 95% interval")
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)


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
    ax.legend(fontsize=FONT_SMALL)
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
    return ax


def gain_bars(ax, rows, reported, ours, title: str | None = None):
    """Side-by-side gains (percentage points) of each row over the first: reported vs ours.

    ``reported``: the paper's numbers on HMDB51 (:mod:`lga.reported`; the caller names their source);
    ``ours``: :class:`lga.engine.evaluate.Comparison` objects (paired differences, drawn with their
    95% interval).
    """
    y = np.arange(len(rows))
    ax.barh(y - 0.2, reported, height=0.4, color=PALETTE[0], label="reported (HMDB51)")
    ax.barh(y + 0.2, [100 * c.diff for c in ours], height=0.4, xerr=[100 * c.ci95 for c in ours],
            capsize=2, color=PALETTE[1], label="ours (AtomicActions, paired 95% CI)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, list(rows), fontsize=FONT_SMALL)
    if not ax.yaxis_inverted():          # axes sharing y are inverted once, not twice
        ax.invert_yaxis()
    ax.set_xlabel("accuracy gain over the first row (points)")
    ax.legend(fontsize=FONT_SMALL)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=FONT_TITLE)
