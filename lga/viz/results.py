"""Figures for chapter 9 (results): accuracy bars with intervals, noise curves, gains over a base row."""

from __future__ import annotations

import numpy as np

PALETTE = ("#7f7f7f", "#1b9e77", "#7570b3", "#d95f02")


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
        ax.text(m + 1, yi, f"{m:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, list(names), fontsize=8)
    if not ax.yaxis_inverted():          # axes sharing y are inverted once, not twice
        ax.invert_yaxis()
    if chance is not None:
        ax.axvline(chance, ls="--", color="grey", lw=1)
    ax.set_xlim(0, min(100, max(means + cis) + 10))
    ax.set_xlabel("accuracy (%), 95% interval")
    if title:
        ax.set_title(title, fontsize=9)


def noise_curves(ax, rates, curves: dict, chance: float | None = None):
    """Accuracy (%) against the anatomy noise rate: ``curves`` maps a name to one EvalResult per rate.

    The band around each line is the 95% interval. Flat lines are methods that do not read the anatomy.
    """
    x = np.asarray(rates, dtype=float)
    for name, rs in curves.items():
        m = np.array([100 * r.mean for r in rs])
        c = np.array([100 * r.ci95 for r in rs])
        line, = ax.plot(x, m, marker="o", ms=4, label=name)
        ax.fill_between(x, m - c, m + c, color=line.get_color(), alpha=0.15)
    if chance is not None:
        ax.axhline(chance, ls="--", color="grey", lw=1)
    ax.set_xlabel("share of test classes with a corrupted anatomy")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)


def gain_bars(ax, rows, reported, ours, title: str | None = None):
    """Side-by-side gains (percentage points) of each row over the first: reported vs ours.

    ``reported``: numbers (reported by the paper); ``ours``: :class:`lga.engine.evaluate.Comparison`
    objects (paired differences, drawn with their 95% interval).
    """
    y = np.arange(len(rows))
    ax.barh(y - 0.2, reported, height=0.4, color=PALETTE[0], label="reported by the paper (HMDB51)")
    ax.barh(y + 0.2, [100 * c.diff for c in ours], height=0.4, xerr=[100 * c.ci95 for c in ours],
            capsize=2, color=PALETTE[1], label="ours (AtomicActions, paired 95% CI)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, list(rows), fontsize=8)
    if not ax.yaxis_inverted():          # axes sharing y are inverted once, not twice
        ax.invert_yaxis()
    ax.set_xlabel("accuracy gain over the first row (points)")
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
