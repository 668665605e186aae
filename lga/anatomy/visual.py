"""Visual anatomy: split a video's frame features into L temporal phases.

A video is T frame features ``f_1..f_T`` (T = 8 in the paper). We cut it into L contiguous phases
(L = 3: onset, progression, completion) and describe a cut by its *bounds*, a LongTensor
``[B, L+1]`` with ``bounds[:, 0] = 0``, ``bounds[:, -1] = T``, strictly increasing: phase i holds
frames ``bounds[:, i] <= r < bounds[:, i+1]`` (r a frame index).

Segmenters (all batched over B videos, all deterministic):

- :func:`cluster_segment`     CLUSTER-Segment (the paper's, parameter-free): bottom-up merging of the
                              most cosine-similar *adjacent* pair of clusters until L remain.
- :func:`uniform_segment`     "HARD" in the paper: equal thirds, ignoring the content.
- :func:`changepoint_segment` a simple content-aware baseline: cut at the L-1 adjacent frame pairs
                              that differ most (largest cosine dissimilarity).

Then :func:`phase_masks` turns bounds into frame masks (with ``overlap`` boundary frames borrowed from
each neighbouring phase), and :func:`phase_pool` mean-pools the frames of each phase.
Metrics against ground-truth bounds: :func:`phase_accuracy`, :func:`boundary_error`;
:func:`bounds_for_sampled_frames` maps ground-truth bounds (original video frame indices) to the
T sampled frames. These three, :func:`uniform_segment` and :func:`frame_phase_labels` are defined in
:mod:`lga.data.phase_metrics` (the data layer scores its phases with them) and importable from here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# the reference cut and the metrics against ground truth live with the data (lga.data.phase_metrics)
from ..data.phase_metrics import (boundary_error, bounds_for_sampled_frames, frame_phase_labels, phase_accuracy,
                                  uniform_segment)

SEGMENTERS = ("cluster", "uniform", "changepoint")

__all__ = ["SEGMENTERS", "cluster_segment", "uniform_segment", "changepoint_segment", "segment", "phase_masks",
           "phase_pool", "frame_phase_labels", "phase_accuracy", "boundary_error", "bounds_for_sampled_frames"]


# ----------------------------------------------------------------------------------------------
# segmenters


@torch.no_grad()
def cluster_segment(features: Tensor, num_phases: int = 3) -> Tensor:
    """CLUSTER-Segment: merge the most similar adjacent clusters until ``num_phases`` remain.

    Start with every frame as its own cluster. At each of the T-L steps, compute the cosine
    similarity of every adjacent pair of clusters (a cluster's feature is the mean of its frames)
    and merge the most similar pair; ties go to the lowest index. Only adjacent clusters merge,
    so every cluster stays a contiguous run of frames.

    features: [B, T, D] frame features.  Returns bounds: LongTensor [B, L+1].

    Cosine is scale-free, so cluster *sums* do as well as means, and the dot product of two
    cluster sums is the sum of the frames' Gram matrix G over the two clusters' block:
    <S_a, S_b> = (A G A^T)_ab with A the [C, T] cluster-membership matrix. So D is touched once,
    for G, and each merge step works on small [C, T] matrices (in float64, so sums of many frames
    do not add rounding of their own).
    """
    B, T, D = features.shape
    L = num_phases
    if not 1 <= L <= T:
        raise ValueError(f"need 1 <= num_phases <= T, got num_phases={L}, T={T}")
    dev = features.device
    G = features @ features.transpose(1, 2)                           # [B, T, T] frame dot products
    G = G.double() if dev.type != "mps" else G.float()                # merges in float64 (MPS: none)
    A = torch.eye(T, dtype=G.dtype, device=dev).expand(B, T, T)       # [B, C, T] membership, C = T
    starts = torch.arange(T, device=dev).expand(B, T)                 # [B, C] first frame of cluster
    for C in range(T, L, -1):                                         # one merge per step, same C for all B
        S = A @ G @ A.transpose(1, 2)                                 # [B, C, C] dots of cluster sums
        norm = S.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt().clamp_min(1e-12)  # [B, C]
        sim = S.diagonal(offset=1, dim1=1, dim2=2) / (norm[:, :-1] * norm[:, 1:])  # [B, C-1] (c, c+1)
        m = sim.argmax(dim=1, keepdim=True)                           # [B, 1] first maximum = lowest index
        # new cluster j is old cluster j (j <= m) or old j+1 (j > m); cluster m absorbs m+1
        j = torch.arange(C - 1, device=dev).expand(B, C - 1)
        src = j + (j > m).long()                                      # [B, C-1]
        absorbed = A.gather(1, (m + 1).unsqueeze(-1).expand(B, 1, T))  # [B, 1, T]
        A = A.gather(1, src.unsqueeze(-1).expand(B, C - 1, T)) + (j == m).unsqueeze(-1) * absorbed
        starts = starts.gather(1, src)
    end = torch.full((B, 1), T, dtype=torch.long, device=dev)
    return torch.cat([starts, end], dim=1)                            # [B, L+1]


@torch.no_grad()
def changepoint_segment(features: Tensor, num_phases: int = 3) -> Tensor:
    """Change-point baseline: cut between the L-1 most dissimilar adjacent frame pairs.

    Dissimilarity of frames r and r+1 is ``1 - cos(f_r, f_{r+1})``; a cut there puts a bound at r+1.
    Ties go to the earliest pair (a stable sort). Unlike CLUSTER-Segment this looks at single frame
    pairs only, so one noisy frame can steal a cut.

    features: [B, T, D].  Returns bounds: LongTensor [B, L+1].
    """
    B, T, _ = features.shape
    L = num_phases
    if not 1 <= L <= T:
        raise ValueError(f"need 1 <= num_phases <= T, got num_phases={L}, T={T}")
    dis = 1 - F.cosine_similarity(features[:, :-1].float(), features[:, 1:].float(), dim=-1)  # [B, T-1]
    order = torch.sort(dis, dim=1, descending=True, stable=True).indices  # [B, T-1]
    cuts = torch.sort(order[:, : L - 1] + 1, dim=1).values               # [B, L-1] interior bounds
    zero = torch.zeros(B, 1, dtype=torch.long, device=features.device)
    return torch.cat([zero, cuts, zero + T], dim=1)


def segment(features: Tensor, method: str = "cluster", num_phases: int = 3) -> Tensor:
    """Dispatch to a segmenter by name: "cluster", "uniform" or "changepoint".

    features: [B, T, D].  Returns bounds: LongTensor [B, L+1].
    """
    if method == "cluster":
        return cluster_segment(features, num_phases)
    if method == "uniform":
        B, T, _ = features.shape
        return uniform_segment(B, T, num_phases, device=features.device)
    if method == "changepoint":
        return changepoint_segment(features, num_phases)
    raise ValueError(f"unknown segmenter {method!r}; choose one of {SEGMENTERS}")


# ----------------------------------------------------------------------------------------------
# masks and pooling


def phase_masks(bounds: Tensor, T: int, overlap: int = 1) -> Tensor:
    """Frame masks of the phases, each widened by ``overlap`` frames into each neighbour.

    Phase i covers ``[b_i, b_{i+1})`` plus the last ``overlap`` frames of phase i-1 and the first
    ``overlap`` frames of phase i+1 (never more than the neighbour has, never beyond the
    neighbour). ``overlap=0`` gives a partition of the frames.

    bounds: [B, L+1].  Returns masks: BoolTensor [B, L, T].
    """
    if overlap < 0:
        raise ValueError("overlap must be >= 0")
    lo, hi = bounds[:, :-1], bounds[:, 1:]                          # [B, L] phase i is [lo, hi)
    prev_lo = torch.cat([lo[:, :1], lo[:, :-1]], dim=1)             # start of phase i-1 (self for i=0)
    next_hi = torch.cat([hi[:, 1:], hi[:, -1:]], dim=1)             # end of phase i+1 (self for i=L-1)
    lo = torch.maximum(lo - overlap, prev_lo)
    hi = torch.minimum(hi + overlap, next_hi)
    t = torch.arange(T, device=bounds.device)                       # [T]
    return (t >= lo.unsqueeze(-1)) & (t < hi.unsqueeze(-1))         # [B, L, T]


def phase_pool(features: Tensor, masks: Tensor) -> Tensor:
    """Mean of the frames of each phase.  features: [B, T, D], masks: [B, L, T] -> [B, L, D].

    An empty phase (possible only with hand-made bounds) pools to zeros.
    """
    w = masks.to(features.dtype)                                    # [B, L, T]
    count = w.sum(dim=-1, keepdim=True).clamp_min(1)                # [B, L, 1]
    return (w @ features) / count                                   # [B, L, D]
