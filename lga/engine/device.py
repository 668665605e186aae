"""Where tensors live: the one placement rule of training, validation and evaluation.

**Everything a model computes on is moved to the model's device, at the moment the model is
called.** Features may be cached anywhere (CPU memory, a file, another GPU), episode indices are made
on the CPU, text banks are built wherever their encoder ran; the functions that call a model (the
engine's training step :func:`lga.engine.train.episode_loss`, on clips or on cached features, and
:func:`lga.engine.evaluate.score_episodes`) pass their inputs through :func:`to_device` with
:func:`model_device` first, and nothing else moves tensors. A model without parameters or buffers
(ProtoNet, OTAM) runs where its inputs are.

This rule is tested on a CPU-only machine by running the scoring and training functions under
PyTorch's fake-tensor mode with a model on a (fake) CUDA device: any tensor left on the CPU raises
the same "Expected all tensors to be on the same device" error that a real GPU would
(``tests/engine/test_device_rule.py``).

The module also says which device a run uses (:func:`resolve_device`), which processes take part
in it (:class:`Dist`, :func:`init_distributed`: one process, or the group torchrun describes), and
makes data-loading workers end with their parent (:func:`worker_init`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from ..util.processes import die_with_parent

__all__ = ["model_device", "to_device", "Dist", "init_distributed", "resolve_device", "device_kind",
           "worker_init"]


def model_device(module: nn.Module, default: torch.device | str | None = None) -> torch.device | None:
    """The device of ``module``'s first parameter (or buffer); ``default`` when it has neither."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device(default) if default is not None else None


def to_device(obj: Any, device: torch.device | str | None, non_blocking: bool = False) -> Any:
    """``obj`` with every tensor moved to ``device`` (no copy when already there).

    Recurses into dicts, lists and tuples, and calls ``obj.to(device)`` on anything else that has
    one (e.g. :class:`lga.models.text_bank.TextBank`). ``device=None`` returns ``obj`` unchanged.
    """
    if device is None or obj is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    if hasattr(obj, "to") and not isinstance(obj, nn.Module):
        return obj.to(device)
    return obj


# ----------------------------------------------------------------------------- processes
@dataclass
class Dist:
    """The processes of a run: rank, world size, local rank; ``grouped`` when in a torch.distributed
    process group (torchrun), even of one process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False
    grouped: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group that torchrun describes in the environment.

    A plain ``python -m lga train`` is one process with no group. Under ``torchrun`` (``LOCAL_RANK``
    set) the group is always created, also for ``--nproc_per_node 1``, so a one-GPU torchrun runs
    the very NCCL + DDP path of a multi-GPU run (``make gpu-check`` does).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "LOCAL_RANK" not in os.environ:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not tdist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local)
        tdist.init_process_group(backend=backend)
        created = True
    return Dist(rank, world, local, created, True)


def resolve_device(name: str, dist: Dist | None = None) -> torch.device:
    """``train.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) as a device; under torchrun,
    ``cuda`` means this process's GPU (its local rank)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist is not None and dist.grouped:
        return torch.device("cuda", dist.local_rank)
    return torch.device(name)


def device_kind(name: str) -> str:
    """``"cuda"`` or ``"cpu"``: the kind of device ``train.device`` asks for (before any process group)."""
    return "cuda" if (name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())) else "cpu"


def _die_with_parent(parent: int, worker_id: int) -> None:
    die_with_parent(parent)


def worker_init():
    """``worker_init_fn`` for the engine's DataLoaders: a worker process ends when the process that
    started it ends, even by SIGKILL (:func:`lga.util.processes.die_with_parent`), so a killed run
    leaves no worker reading videos behind."""
    return functools.partial(_die_with_parent, os.getpid())
