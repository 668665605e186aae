"""Figures for chapter 8 (training): a run's curves from its ``log.csv`` and learning-rate schedules."""

from __future__ import annotations

import numpy as np

from . import FONT_SMALL, FONT_TITLE


def run_curves(axes, rows, title: str | None = None):
    """Three panels from :func:`lga.engine.train.read_log` rows: loss, accuracy, learning rate.

    ``axes``: three matplotlib axes. Training rows (``loss`` set; each the mean of the last
    ``log_interval`` steps) are drawn as lines; validation rows (``val_accuracy`` set) as points with
    their 95% interval, the best one ringed. x is the optimizer step.
    """
    train = [r for r in rows if r.get("loss") is not None]
    val = [r for r in rows if r.get("val_accuracy") is not None]
    steps = np.array([r["step"] for r in train])
    axes[0].plot(steps, [r["loss"] for r in train], lw=1.5)
    axes[0].set_ylabel("training loss")
    axes[1].plot(steps, [100 * r["accuracy"] for r in train], lw=1.5, label="training episodes")
    if val:
        vs = np.array([r["step"] for r in val])
        va = np.array([100 * r["val_accuracy"] for r in val])
        axes[1].errorbar(vs, va, yerr=[100 * r["val_ci95"] for r in val], fmt="o", capsize=3,
                         label="validation classes (95% CI)")
        best = int(np.argmax(va))
        axes[1].plot(vs[best], va[best], "o", ms=12, mfc="none", mec="k", label="selected")
        axes[1].legend(fontsize=FONT_SMALL, loc="lower right")
    axes[1].set_ylabel("accuracy (%)")
    axes[2].plot(steps, [r["lr"] for r in train], lw=1.5)
    axes[2].set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    if title:
        axes[1].set_title(title, fontsize=FONT_TITLE)


def schedule_curves(ax, schedules: dict):
    """Plot LR multipliers of :class:`lga.engine.optim.LRSchedule` objects against the fraction of training."""
    for name, s in schedules.items():
        steps = np.arange(s.total)
        ax.plot(steps / max(1, s.total), [s.factor(int(i)) for i in steps], lw=1.5, label=name)
    ax.set_xlabel("fraction of training")
    ax.set_ylabel("LR multiplier")
    ax.set_yscale("log")
    ax.legend(fontsize=FONT_SMALL)
    ax.grid(alpha=0.3)
