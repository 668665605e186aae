"""Phase bounds and how well a segmentation finds the ground-truth phases.

A video of T frames cut into L contiguous phases is described by its *bounds*, a LongTensor
``[B, L+1]`` with ``bounds[:, 0] = 0``, ``bounds[:, -1] = T``, increasing: phase i holds frames
``bounds[:, i] <= t < bounds[:, i+1]``. Here: the reference cut (:func:`uniform_segment`, equal
thirds), the phase of every frame, the two metrics against ground-truth bounds (:func:`phase_accuracy`,
:func:`boundary_error`) and :func:`bounds_for_sampled_frames`, which maps ground-truth bounds in
original video frames to the T sampled frames. The segmenters that look at the frames are in
:mod:`lga.anatomy.visual` (which also offers every name of this module).
"""

from __future__ import annotations

import torch
from torch import Tensor


def uniform_segment(B: int, T: int, num_phases: int = 3, device=None) -> Tensor:
    """"HARD" segmentation: bounds ``floor(i * T / L)``, the same for every video.

    For T = 8, L = 3 this gives phases of 2, 3, 3 frames (bounds 0, 2, 5, 8).
    Returns bounds: LongTensor [B, L+1].
    """
    if not 1 <= num_phases <= T:
        raise ValueError(f"need 1 <= num_phases <= T, got num_phases={num_phases}, T={T}")
    i = torch.arange(num_phases + 1, device=device)
    return (i * T // num_phases).expand(B, num_phases + 1).clone()


def frame_phase_labels(bounds: Tensor, T: int) -> Tensor:
    """Phase index of every frame.  bounds: [B, L+1] -> labels: LongTensor [B, T].

    Frame t gets the number of interior bounds ``b_1..b_{L-1}`` that are <= t.
    """
    t = torch.arange(T, device=bounds.device)
    return (t.view(1, T, 1) >= bounds[:, 1:-1].unsqueeze(1)).sum(dim=-1)


def phase_accuracy(pred_bounds: Tensor, gt_bounds: Tensor, T: int, reduction: str = "mean") -> Tensor:
    """Fraction of frames put in the right phase.  [B, L+1] x 2 -> scalar (or [B] with "none")."""
    acc = (frame_phase_labels(pred_bounds, T) == frame_phase_labels(gt_bounds, T)).float().mean(dim=1)
    return acc.mean() if reduction == "mean" else acc


def boundary_error(pred_bounds: Tensor, gt_bounds: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute offset, in frames, of the L-1 interior bounds (the ends 0 and T are fixed).

    [B, L+1] x 2 -> scalar (or [B] with "none"). With L = 1 there is nothing to miss: 0.
    """
    diff = (pred_bounds[:, 1:-1] - gt_bounds[:, 1:-1]).abs().float()  # [B, L-1]
    err = diff.mean(dim=1) if diff.shape[1] else diff.sum(dim=1)
    return err.mean() if reduction == "mean" else err


def bounds_for_sampled_frames(frame_indices: Tensor, phase_bounds: Tensor) -> Tensor:
    """Map ground-truth bounds in original video frames to bounds over the T sampled frames.

    A sampled frame belongs to the phase whose original range ``[p_i, p_{i+1})`` contains its
    original index (indices before ``p_0`` count as phase 0, at or after ``p_L`` as phase L-1).
    The sampled bound i is the number of sampled frames in phases before i.

    frame_indices: [B, T] or [T] original indices, increasing along T.
    phase_bounds:  [B, L+1] original-frame bounds.
    Returns: LongTensor [B, L+1]. A phase shorter than the sampling stride can receive no sampled
    frame; its bounds are then equal (an empty phase), which the metrics above handle.
    """
    B = phase_bounds.shape[0]
    idx = frame_indices.expand(B, -1) if frame_indices.dim() == 1 else frame_indices  # [B, T]
    L = phase_bounds.shape[1] - 1
    labels = (idx.unsqueeze(-1) >= phase_bounds[:, 1:-1].unsqueeze(1)).sum(-1)      # [B, T] in [0, L)
    i = torch.arange(L + 1, device=phase_bounds.device)                              # [L+1]
    return (labels.unsqueeze(1) < i.view(1, L + 1, 1)).sum(-1)                       # [B, L+1]
