"""The optimizer factory, the learning-rate schedule and the optimizer step, as the engine imports them.

They live in :mod:`lga.optim` (below the models, whose tiny CLIP trains with them too); every name is
importable from here as before.
"""

from ..optim import LRSchedule, NonFiniteLossError, OptimizerStep, build_optimizer, make_optimizer, optimizer_step

__all__ = ["build_optimizer", "make_optimizer", "LRSchedule", "optimizer_step", "OptimizerStep",
           "NonFiniteLossError"]
