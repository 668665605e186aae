"""AtomicActions, the phase durations of every video: v1 phases of at least a share of the video,
v2 phases from equal thirds to strongly unequal (``phase_variability``), drawn first from each
video's own random stream (so :func:`video_phase_bounds` knows them without rendering), and
:func:`phase_frame_accuracy`, the share of a clip's frames a segmentation puts in their true phase.
Part of :mod:`lga.data.atomic_actions`, which offers every name.
"""

from __future__ import annotations

import numpy as np
import torch

from .atomic_design import ActionClass, AtomicActionsConfig, _class_key, _seed_of, design_classes, min_phase_frames
from .phase_metrics import bounds_for_sampled_frames, phase_accuracy, uniform_segment
from .sampling import sample_indices


def phase_bounds(rng: np.random.Generator, num_frames: int, num_phases: int, min_share: float) -> list[int]:
    """v1: random phase boundaries ``[0, b1, ..., T]``, each phase at least ``min_share`` of the video."""
    while True:
        shares = rng.dirichlet(np.full(num_phases, 4.0))
        if shares.min() >= min_share:
            break
    cuts = np.round(np.cumsum(shares)[:-1] * num_frames).astype(int)
    return [0] + cuts.tolist() + [num_frames]


def variable_phase_bounds(rng: np.random.Generator, num_frames: int, num_phases: int, variability: float,
                          min_frames: int) -> list[int]:
    """v2: random phase boundaries ``[0, b1, ..., F]`` with every phase at least ``min_frames`` long.

    Each phase gets ``min_frames`` plus a share ``s_i`` of the remaining ``F - L * min_frames``
    frames, ``s ~ Dirichlet(a, ..., a)`` with ``a = (1 - v) / v`` for ``v = variability``: ``v = 0``
    gives equal phases (``a`` infinite), ``v = 0.5`` shares drawn uniformly, ``v = 1`` all the
    remaining frames to one phase (``a = 0``) and ``min_frames`` to the others. Bounds are rounded
    half up, so no phase drops below ``min_frames``.
    """
    free = num_frames - num_phases * min_frames
    if free < 0:
        raise ValueError(f"{num_phases} phases of at least {min_frames} frames do not fit in {num_frames}")
    if variability <= 0:
        shares = np.full(num_phases, 1.0 / num_phases)
    elif variability >= 1:
        shares = np.eye(num_phases)[rng.integers(num_phases)]
    else:
        shares = rng.dirichlet(np.full(num_phases, (1.0 - variability) / variability))
        if not np.isfinite(shares).all():
            raise FloatingPointError(f"Dirichlet draw failed for phase_variability={variability}")
    lengths = min_frames + free * shares
    cuts = np.floor(np.cumsum(lengths)[:-1] + 0.5).astype(int)
    return [0] + cuts.tolist() + [num_frames]


def phase_frame_accuracy(bounds_true, num_frames: int, bounds_pred=None, clip_frames: int = 8) -> np.ndarray:
    """Per video, the share of the ``clip_frames`` test-time frames that a predicted segmentation
    puts in their ground-truth phase.

    Args:
        bounds_true: int ``[V, L+1]`` ground-truth bounds in video frames (``phase_bounds`` of
            ``anatomy.json``).
        num_frames: frames of each video (``num_frames`` of ``anatomy.json``).
        bounds_pred: int ``[V, L+1]`` or ``[L+1]`` bounds over the ``clip_frames`` sampled frames;
            default: uniform thirds (:func:`lga.data.phase_metrics.uniform_segment`, "HARD").
        clip_frames: T, frames sampled by :func:`lga.data.sampling.sample_indices` in ``test`` mode.

    Returns float ``[V]`` in [0, 1].
    """
    gt_video = torch.as_tensor(np.asarray(bounds_true, dtype=np.int64))
    if gt_video.ndim != 2:
        raise ValueError(f"bounds_true must be [V, L+1], got shape {tuple(gt_video.shape)}")
    V, L = gt_video.shape[0], gt_video.shape[1] - 1
    idx = torch.as_tensor(sample_indices(num_frames, clip_frames, "test"))
    gt = bounds_for_sampled_frames(idx, gt_video)
    if bounds_pred is None:
        pred = uniform_segment(V, clip_frames, L)
    else:
        pred = torch.as_tensor(np.asarray(bounds_pred, dtype=np.int64))
        pred = pred.expand(V, L + 1) if pred.ndim == 1 else pred
    return phase_accuracy(pred, gt, clip_frames, reduction="none").numpy()


def _video_rng(cls: ActionClass, cfg: AtomicActionsConfig, video_index: int) -> np.random.Generator:
    if cfg.version == "1.0":
        return np.random.default_rng([cfg.seed, 2, _stable_hash(cls.name), video_index])
    return np.random.default_rng([cfg.seed, 2, _seed_of(_class_key(cls)), video_index])


def _stable_hash(text: str) -> int:
    """v1: a hash of ``text`` that, unlike ``hash()``, is the same in every process (first 16 bytes)."""
    return int.from_bytes(text.encode("utf-8")[:16].ljust(16, b"\0"), "little") % (2**63)


def _draw_bounds(rng: np.random.Generator, cfg: AtomicActionsConfig) -> list[int]:
    if cfg.version == "1.0":
        return phase_bounds(rng, cfg.frames_per_video, cfg.num_phases, cfg.min_phase_share)
    return variable_phase_bounds(rng, cfg.frames_per_video, cfg.num_phases, cfg.phase_variability,
                                 min_phase_frames(cfg))


def video_phase_bounds(cfg: AtomicActionsConfig, classes: list[ActionClass] | None = None) -> dict:
    """The phase bounds of every video of the dataset ``cfg`` makes, without rendering anything
    (they are the first draw of each video's random stream): ``{"class_dir/video_id": [0, ..., F]}``.
    Cheap enough to sweep a knob: e.g. ``phase_frame_accuracy`` against ``phase_variability``."""
    classes = design_classes(cfg) if classes is None else classes
    return {f"{c.class_dir}/{c.class_dir}_{v:03d}": _draw_bounds(_video_rng(c, cfg, v), cfg)
            for c in classes if cfg.renders(c.split) for v in range(cfg.videos_per_class)}
