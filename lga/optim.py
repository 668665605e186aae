"""The optimizer factory, the learning-rate schedule and the optimizer step every training in lga uses.

- :func:`build_optimizer` (:func:`make_optimizer` from a ``train`` config): Adam, AdamW or SGD over
  parameters or parameter groups, each group remembering its ``initial_lr``.
- :class:`LRSchedule`: the learning rate as a pure function of the optimizer step (warm-up, then
  step decay, half cosine or constant), so resuming a run restores it from the step alone.
- :func:`optimizer_step`: one step: the step's learning rate, the gradients of the mean loss over
  some items (accumulated one item at a time), clipping, the update.

The episodic meta-training (:func:`lga.engine.train.train_step`, :func:`lga.engine.train.train`)
and the tiny CLIP's contrastive training (:func:`lga.models.tiny_clip.train_tiny_clip`) are built
on these three. This module imports nothing else of lga; it sits below the models (layer order: lga/__init__.py).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

__all__ = ["build_optimizer", "make_optimizer", "LRSchedule", "optimizer_step", "OptimizerStep",
           "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient); the message says where and what to try."""


def build_optimizer(params: Iterable, kind: str, lr: float, weight_decay: float = 0.0, *,
                    momentum: float = 0.9, betas: Sequence[float] | None = None,
                    eps: float | None = None) -> torch.optim.Optimizer:
    """An optimizer over ``params`` (tensors, or parameter-group dicts that may set their own
    ``weight_decay``): ``kind`` ``"adam"``, ``"adamw"`` or ``"sgd"`` (with ``momentum``); ``betas``
    and ``eps`` default to torch's. Every group records its ``initial_lr``, the rate
    :meth:`LRSchedule.apply` scales."""
    extra = {k: v for k, v in (("betas", tuple(betas) if betas is not None else None), ("eps", eps))
             if v is not None}
    if kind == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **extra)
    elif kind == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **extra)
    elif kind == "sgd":
        if extra:
            raise ValueError(f"betas and eps are Adam's, not SGD's (got {sorted(extra)})")
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {kind!r}: adam, adamw or sgd")
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])
    return opt


def make_optimizer(params, t) -> torch.optim.Optimizer:
    """The optimizer of a ``train`` config section (``optimizer``, ``lr``, ``weight_decay``,
    ``momentum``) over ``params`` (:func:`build_optimizer`)."""
    return build_optimizer(params, t.optimizer, t.lr, t.weight_decay, momentum=t.momentum)


class LRSchedule:
    """LR multiplier as a pure function of the optimizer step: linear warm-up, then step / cosine / constant.

    ``factor(s)`` for step s (0-based): ``warmup_factor -> 1`` linearly over the warm-up steps, then
    ``gamma ** (number of milestones reached)`` (``step``), a half cosine to 0 (``cosine``), or 1.
    Being a function of the step, its whole state is the step: resuming restores it exactly.

    ``LRSchedule(train_cfg)`` reads a ``train`` config section (steps counted in epochs of
    ``steps_per_epoch``); :meth:`in_steps` takes the same settings counted in steps. With
    ``warmup="open_clip"`` the warm-up is open_clip's instead: the rate of step s < W is
    ``lr * (s + 1) / W`` (it reaches the full rate at step W - 1), the tiny CLIP's recipe.
    """

    WARMUPS = ("linear", "open_clip")

    def __init__(self, train_cfg=None, **in_steps):
        if train_cfg is not None:
            t = train_cfg
            spe = t.steps_per_epoch
            in_steps = dict(kind=t.schedule, total_steps=t.epochs * spe, warmup_steps=int(round(t.warmup_epochs * spe)),
                            warmup_factor=t.warmup_factor, gamma=t.gamma,
                            milestones=[int(round(m * spe)) for m in t.milestones], steps_per_epoch=spe)
        self._setup(**in_steps)

    @classmethod
    def in_steps(cls, kind: str, total_steps: int, warmup_steps: int = 0, *, warmup: str = "linear",
                 warmup_factor: float = 0.0, gamma: float = 0.1, milestones: Sequence[int] = ()) -> "LRSchedule":
        """A schedule given in optimizer steps: ``kind`` ``"step"`` (``gamma`` at each of ``milestones``),
        ``"cosine"`` (a half cosine from the end of the warm-up to ``total_steps``) or ``"constant"``."""
        return cls(kind=kind, total_steps=total_steps, warmup_steps=warmup_steps, warmup=warmup,
                   warmup_factor=warmup_factor, gamma=gamma, milestones=list(milestones))

    def _setup(self, kind, total_steps, warmup_steps=0, warmup="linear", warmup_factor=0.0, gamma=0.1,
               milestones=(), steps_per_epoch=None):
        if warmup not in self.WARMUPS:
            raise ValueError(f"unknown warm-up {warmup!r}: one of {self.WARMUPS}")
        self.kind, self.gamma, self.total, self.warmup = kind, gamma, total_steps, warmup_steps
        self.warmup_kind, self.warmup_factor = warmup, warmup_factor
        self.milestones = list(milestones)
        self.steps_per_epoch = steps_per_epoch
        self.step_count = 0

    def factor(self, step: int) -> float:
        if step < self.warmup:
            if self.warmup_kind == "open_clip":
                return (step + 1) / self.warmup
            return self.warmup_factor + (1 - self.warmup_factor) * step / self.warmup
        if self.kind == "step":
            return self.gamma ** sum(step >= m for m in self.milestones)
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))
        return 1.0

    def lr(self, step: int, base_lr: float) -> float:
        """The learning rate of ``step`` for a group whose full rate is ``base_lr``: ``base_lr * factor(step)``
        (open_clip's warm-up computes ``base_lr * (step + 1) / W`` in that order, as open_clip does)."""
        if step < self.warmup and self.warmup_kind == "open_clip":
            return base_lr * (step + 1) / self.warmup
        return base_lr * self.factor(step)

    def apply(self, optimizer, step: int) -> float:
        """Set every group's rate for ``step`` (from its ``initial_lr``); return the first group's."""
        for g in optimizer.param_groups:
            g["lr"] = self.lr(step, g["initial_lr"])
        self.step_count = step
        return optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step_count, "warmup": self.warmup, "milestones": self.milestones}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])


@dataclass
class OptimizerStep:
    """What :func:`optimizer_step` did: the learning rate it used, the gradient norm before clipping,
    and what ``loss_of`` returned for each item (its loss first)."""

    lr: float
    grad_norm: torch.Tensor
    outputs: list


def optimizer_step(optimizer: torch.optim.Optimizer, schedule: LRSchedule | None, step: int, items: Sequence,
                   loss_of: Callable, *, params: Sequence | None = None, grad_clip: float | None = None,
                   scaler=None, no_sync=None, check=None) -> OptimizerStep:
    """One optimizer step over ``items``.

    1. The learning rate of ``step`` (``schedule.apply``; None: left as it is).
    2. Gradients: for each item, ``loss, *rest = loss_of(item)`` and the backward pass of
       ``loss / len(items)`` (through ``scaler`` when given: AMP), so the gradient is the mean
       over the items' losses, computed one item at a time (gradient accumulation). ``check(loss, item)``,
       when given, may raise before that backward pass (a non-finite loss). ``no_sync``: a context
       manager for every item but the last (DDP's ``no_sync``: one all-reduce per step).
    3. The gradient norm of ``params`` (default: the optimizer's) clipped to ``grad_clip`` (None or
       0: measured, not clipped); a non-finite norm without a scaler raises :class:`NonFiniteLossError`.
    4. The update (``scaler.step`` and ``scaler.update`` under AMP).
    """
    lr = schedule.apply(optimizer, step) if schedule is not None else optimizer.param_groups[0]["lr"]
    optimizer.zero_grad(set_to_none=True)
    outputs = []
    for m, item in enumerate(items):
        last = m == len(items) - 1
        with (no_sync() if no_sync is not None and not last else contextlib.nullcontext()):
            out = loss_of(item)
            loss = out[0]
            if check is not None:
                check(loss, item)
            part = loss / len(items)
            (scaler.scale(part) if scaler is not None else part).backward()
        outputs.append(out)
    if params is None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    if scaler is not None:
        scaler.unscale_(optimizer)
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
    if (scaler is None or not scaler.is_enabled()) and not torch.isfinite(gnorm):
        raise NonFiniteLossError(f"non-finite gradient norm at step {step}; lower train.lr or set train.grad_clip")
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return OptimizerStep(lr, gnorm, outputs)
