"""Matching: distances between query and support videos, and video-text similarity.

Every function is batched over a leading *episode* dimension E, so thousands of test episodes are
scored in a handful of tensor operations. Shapes:

    E episodes, Nq queries and Ns supports (or N classes) per episode,
    T (U) frames per query (support) video, L phases, D feature size.

Video-video distances return ``[E, Nq, Ns]`` (smaller = closer); turn them into logits with
:func:`logits_from_distance`. All frame distances are cosine distances ``1 - cos(q_t, s_u)`` in
[0, 2]. Everything is differentiable.

- :func:`prototype_mean_distance`  ProtoNet: mean-pool the frames, then one distance. Order-blind.
- :func:`otam_distance`            OTAM (Cao et al., CVPR 2020): soft-DTW alignment. Order-aware.
- :func:`bi_mhm_distance`          HyRSM's Bi-MHM (CVPR 2022): frame sets, no order.
- :func:`ab_mhm_distance`          LGA's AB-MHM: Bi-MHM inside each aligned phase pair, summed
                                   (per-phase offsets: the LGA head's fused residual).
- :func:`video_text_similarity`    LGA: query phases against each class's phase texts.
- :func:`fuse_probabilities`       LGA: p = p_vv^alpha * p_vt^(1-alpha), renormalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-8  # smallest norm used when dividing (a zero vector then has cosine 0 with everything)


def cosine_distance_matrix(q: Tensor, s: Tensor) -> Tensor:
    """Frame-to-frame cosine distances of every query-support pair of each episode.

    q: [E, Nq, T, D], s: [E, Ns, U, D] -> [E, Nq, Ns, T, U], entry (t, u) = 1 - cos(q_t, s_u).
    Dot products first, then divide by the norms: dividing the small [T, U] tables is much
    cheaper than normalising every D-dimensional frame.

    Book: chapter 7, section 7.1 (Why order matters).
    """
    dot = torch.einsum("eqtd,esud->eqstu", q, s)                       # one batched matmul per episode
    nq = q.norm(dim=-1).clamp_min(EPS)[:, :, None, :, None]            # [E, Nq, 1, T, 1]
    ns = s.norm(dim=-1).clamp_min(EPS)[:, None, :, None, :]            # [E, 1, Ns, 1, U]
    return 1 - dot / (nq * ns)


def prototype_mean_distance(q: Tensor, s: Tensor, metric: str = "sqeuclidean") -> Tensor:
    """ProtoNet distance between mean-pooled videos.

    q: [E, Nq, T, D], s: [E, Ns, U, D] (frames are averaged, so any order gives the same result).
    metric: "sqeuclidean" (Snell et al.'s choice), "euclidean" or "cosine" (1 - cos).
    Returns [E, Nq, Ns].

    Book: chapter 1, section 1.3 (Prototypical networks); chapter 7, section 7.1.
    """
    qm, sm = q.mean(dim=-2), s.mean(dim=-2)                          # [E, Nq, D], [E, Ns, D]
    if metric == "cosine":
        return 1 - F.normalize(qm, dim=-1) @ F.normalize(sm, dim=-1).transpose(-1, -2)
    # one support at a time: the temporary stays [E, Nq, D] instead of [E, Nq, Ns, D] (3x faster)
    sq = torch.stack([(qm - sm[:, j, None]).pow(2).sum(dim=-1) for j in range(sm.shape[1])], dim=-1)
    if metric == "sqeuclidean":
        return sq
    if metric == "euclidean":
        return sq.clamp_min(1e-12).sqrt()                            # clamp: finite gradient at 0
    raise ValueError(f"unknown metric {metric!r}; choose sqeuclidean, euclidean or cosine")


# ----------------------------------------------------------------------------------------------
# OTAM


def _otam_one_way(dist: Tensor, lbda: float) -> Tensor:
    """OTAM cumulative distance for rows = the video being aligned, columns = the other video.

    dist: [..., T, U] frame distances -> [...].

    The columns are padded with a zero column on each side (M = U + 2 columns), so the path may
    start late and end early in the row video for free. The cumulative cost C over the grid is

        C[0, m] = d[0, m] + C[0, m-1]                                     (first row: go right)
        C[l, m] = d[l, m] + softmin(C[l-1, m-1], C[l, m-1])               (inner columns)
        C[l, m] = d[l, m] + softmin(C[l-1, m-1], C[l, m-1], C[l-1, m])    (m = 1 and m = M-1)
        C[l, 0] = 0                                                       (padding column: go down)

    with softmin(x) = -lbda * log(sum(exp(-x / lbda))). The answer is C[T-1, M-1].

    How it is computed: cell (l, m) depends only on cells of the two previous anti-diagonals
    (l + m = k-1 and k-2), so we sweep the K = T + M - 1 anti-diagonals, each one vectorised over
    its cells and over all pairs P (every leading dimension, flattened and put *last* so the
    inner loops run over contiguous memory). We carry y = -C / lbda, in which the soft-min is a
    log-add-exp, which never underflows however far apart the videos are.
    (Masked moves are -inf; masked_fill also stops the gradient there, so no NaN flows back.)
    """
    *lead, T, U = dist.shape
    M, dev = U + 2, dist.device
    K = T + M - 1                                                    # number of anti-diagonals
    w = F.pad(dist, (1, 1)) * (-1 / lbda)                            # [..., T, M] zero padded columns
    w = w.reshape(-1, T, M).permute(2, 1, 0).contiguous()            # [M, T, P] pairs last

    # "Skewed" layout: diagonal k, row l holds cell (l, m = k - l).
    k = torch.arange(K, device=dev).view(K, 1)
    l = torch.arange(T, device=dev).view(1, T)
    m = k - l                                                        # [K, T]
    valid = (m >= 0) & (m < M)
    w = w.gather(0, m.clamp(0, M - 1).unsqueeze(-1).expand(K, T, w.shape[-1]))  # [K, T, P]

    # Which moves into (l, m) are allowed: diagonal, left (same row), up (same column).
    can_diag = valid & (l >= 1) & (m >= 1)
    can_left = valid & (m >= 1)
    can_up = valid & (l >= 1) & ((m == 0) | (m == 1) | (m == M - 1))
    has_move = can_diag | can_left | can_up                           # False at (0, 0) and off-grid
    can_left = can_left | ~has_move                                  # a harmless finite dummy there
    no_diag, no_left, no_up, has_move = (x.unsqueeze(-1) for x in (~can_diag, ~can_left, ~can_up, has_move))
    neg_inf = float("-inf")                                          # log(0): a forbidden move

    def down(x: Tensor) -> Tensor:                                   # [T, P]: row l gets row l-1's value
        return F.pad(x[:-1], (0, 0, 1, 0))

    prev2 = prev1 = torch.zeros_like(w[0])                           # diagonals k-2, k-1: [T, P]
    for kk in range(K):
        diag = down(prev2).masked_fill(no_diag[kk], neg_inf)         # from (l-1, m-1)
        left = prev1.masked_fill(no_left[kk], neg_inf)               # from (l, m-1)
        up = down(prev1).masked_fill(no_up[kk], neg_inf)             # from (l-1, m)
        cur = w[kk] + torch.logaddexp(torch.logaddexp(diag, left), up)  # soft-min of the allowed moves
        cur = torch.where(has_move[kk], cur, w[kk])                  # start cell (0,0): C = d = 0
        prev2, prev1 = prev1, cur
    return (-lbda * prev1[T - 1]).reshape(lead)                      # cell (T-1, M-1)


def otam_distance(q: Tensor, s: Tensor, lbda: float = 0.1, bidirectional: bool = True) -> Tensor:
    """OTAM distance (Cao et al., CVPR 2020), batched over episodes and pairs.

    q: [E, Nq, T, D], s: [E, Ns, U, D] -> [E, Nq, Ns].
    One way aligns the query's frames (rows) to the support's padded frames (columns); with
    ``bidirectional`` the support-to-query alignment is added and the two are averaged.
    ``lbda`` is the soft-min temperature (smaller: closer to a hard DTW minimum).

    Book: chapter 7, section 7.2 (OTAM: ordered temporal alignment).
    """
    dist = cosine_distance_matrix(q, s)                                # [E, Nq, Ns, T, U]
    if bidirectional and dist.shape[-1] == dist.shape[-2]:             # both ways in one sweep
        both = _otam_one_way(torch.stack([dist, dist.transpose(-1, -2)]), lbda)
        return 0.5 * (both[0] + both[1])
    d = _otam_one_way(dist, lbda)
    if bidirectional:
        d = 0.5 * (d + _otam_one_way(dist.transpose(-1, -2), lbda))
    return d


# ----------------------------------------------------------------------------------------------
# Bi-MHM and AB-MHM


def _mhm_from_dist(dist: Tensor, q_mask: Tensor | None, s_mask: Tensor | None) -> Tensor:
    """Bidirectional mean Hausdorff distance between two frame sets, from their distance matrix.

    dist: [E, Nq, Ns, T, U]; q_mask: [E, Nq, T] or None; s_mask: [E, Ns, U] or None
    (True = the frame is in the set; every set must hold at least one frame). Returns [E, Nq, Ns]:

        mean_{t in q} min_{u in s} d(t, u)  +  mean_{u in s} min_{t in q} d(t, u)
    """
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    if q_mask is None and s_mask is None:
        return dist.amin(dim=-1).mean(dim=-1) + dist.amin(dim=-2).mean(dim=-1)
    E, Nq, Ns, T, U = dist.shape
    qm = (torch.ones(E, Nq, T, dtype=torch.bool, device=dist.device) if q_mask is None else q_mask)
    sm = (torch.ones(E, Ns, U, dtype=torch.bool, device=dist.device) if s_mask is None else s_mask)
    qm, sm = qm[:, :, None, :], sm[:, None, :, :]                    # [E, Nq, 1, T], [E, 1, Ns, U]
    q_to_s = torch.where(sm.unsqueeze(-2), dist, inf).amin(dim=-1)   # [E, Nq, Ns, T] nearest s frame
    s_to_q = torch.where(qm.unsqueeze(-1), dist, inf).amin(dim=-2)   # [E, Nq, Ns, U] nearest q frame

    def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
        x = torch.where(mask, x, torch.zeros_like(x))
        return x.sum(dim=-1) / mask.sum(dim=-1).clamp_min(1)

    return masked_mean(q_to_s, qm) + masked_mean(s_to_q, sm)


def bi_mhm_distance(q: Tensor, s: Tensor, q_mask: Tensor | None = None,
                    s_mask: Tensor | None = None) -> Tensor:
    """Bi-MHM (HyRSM, CVPR 2022): videos as frame *sets*, compared by mean Hausdorff both ways.

    q: [E, Nq, T, D], s: [E, Ns, U, D]; optional bool masks q_mask [E, Nq, T], s_mask [E, Ns, U]
    select which frames belong to each set. Returns [E, Nq, Ns]. Frame order is ignored.

    Book: chapter 7, section 7.3 (Bi-MHM and AB-MHM).
    """
    return _mhm_from_dist(cosine_distance_matrix(q, s), q_mask, s_mask)


def phase_distance_matrices(q: Tensor, s: Tensor, num_phases: int, q_offsets: Tensor | None = None,
                            s_offsets: Tensor | None = None):
    """The frame distance matrix each phase comparison of :func:`ab_mhm_distance` reads, phase by phase.

    q: [E, Nq, T, D], s: [E, Ns, U, D]; q_offsets [E, Nq, L, D] / s_offsets [E, Ns, L, D] or None.
    Yields L tensors [E, Nq, Ns, T, U]: for phase i, :func:`cosine_distance_matrix` of the frames with
    offset i added to every frame of each video. Without offsets every phase reads the same matrix,
    computed once (the same tensor is yielded L times).

    Book: chapter 7, section 7.3 (Bi-MHM and AB-MHM).
    """
    if q_offsets is None and s_offsets is None:
        dist = cosine_distance_matrix(q, s)                            # [E, Nq, Ns, T, U] once
        for _ in range(num_phases):
            yield dist
        return
    for i in range(num_phases):
        qi = q if q_offsets is None else q + q_offsets[:, :, i, None]   # [E, Nq, T, D]
        si = s if s_offsets is None else s + s_offsets[:, :, i, None]   # [E, Ns, U, D]
        yield cosine_distance_matrix(qi, si)


def ab_mhm_distance(q: Tensor, q_masks: Tensor, s: Tensor, s_masks: Tensor, q_offsets: Tensor | None = None,
                    s_offsets: Tensor | None = None, per_phase: bool = False) -> Tensor:
    """AB-MHM (LGA): Bi-MHM between phase i of the query and phase i of the support, summed over i.

    q: [E, Nq, T, D], q_masks: [E, Nq, L, T]; s: [E, Ns, U, D], s_masks: [E, Ns, L, U]
    (phase masks from :func:`lga.anatomy.visual.phase_masks`). Returns [E, Nq, Ns], or with
    ``per_phase`` the L terms [E, Nq, Ns, L] (their sum is the distance).
    Within a phase frames form a set; across phases order matters, since phase i only meets
    phase i.

    ``q_offsets`` [E, Nq, L, D] and ``s_offsets`` [E, Ns, L, D] (optional): a vector added to every
    frame of a video while its phase i is compared. The LGA head passes the fused-phase residual
    ``f~_i - f_{S_i}`` (:class:`lga.models.lga.LGA`, ``vv_metric="frames"``), which swaps each phase's
    mean for its fused feature and keeps each frame's own deviation; a frame in the overlap of two
    phases carries each phase's offset in that phase's comparison. Without offsets (no fusion) the
    frame distances are computed once for all phases.

    Book: chapter 7, section 7.3 (Bi-MHM and AB-MHM); the fused phases ``f~_i``: chapter 6, section
    6.2 (the idea as mathematics).
    """
    L = q_masks.shape[-2]
    dists = phase_distance_matrices(q, s, L, q_offsets, s_offsets)
    terms = (_mhm_from_dist(dist, q_masks[:, :, i], s_masks[:, :, i]) for i, dist in enumerate(dists))
    if per_phase:
        return torch.stack(list(terms), dim=-1)                        # [E, Nq, Ns, L]
    return sum(terms)


# ----------------------------------------------------------------------------------------------
# video-text and the final probabilities


def video_text_similarity(q_phases: Tensor, class_text: Tensor) -> Tensor:
    """Cosine of each query phase with the same phase of each class's text, *averaged* over phases.

    q_phases: [E, Nq, L, D] (mean-pooled query phases), class_text: [E, N, L, D] -> [E, Nq, N],
    in [-1, 1] like a single cosine, so a temperature means the same for any L.

    Book: chapter 7, section 7.4 (Video-text matching and the fusion).
    """
    dot = torch.einsum("eqld,enld->eqnl", q_phases, class_text)         # [E, Nq, N, L]
    nq = q_phases.norm(dim=-1).clamp_min(EPS).unsqueeze(2)             # [E, Nq, 1, L]
    nt = class_text.norm(dim=-1).clamp_min(EPS).unsqueeze(1)           # [E, 1, N, L]
    return (dot / (nq * nt)).mean(dim=-1)


def logits_from_distance(d: Tensor, temperature: float = 1.0) -> Tensor:
    """Logits -d / temperature (a softmax over classes then gives p(y | q)).

    Book: chapter 7, section 7.4 (Video-text matching and the fusion).
    """
    return -d / temperature


def fuse_log_probabilities(logp_vv: Tensor, logp_vt: Tensor, alpha: float) -> Tensor:
    """log of p_vv^alpha * p_vt^(1-alpha), renormalised over the last dim (classes).

    logp_vv, logp_vt: [..., N] log-probabilities -> [..., N]. The LGA head combines its two branches
    with it (:meth:`lga.models.lga.LGA.combine`).

    Book: chapter 7, sections 7.4 and 7.5.
    """
    return torch.log_softmax(alpha * logp_vv + (1 - alpha) * logp_vt, dim=-1)


def fuse_probabilities(p_vv: Tensor, p_vt: Tensor, alpha: float) -> Tensor:
    """LGA's fusion p(y|q) proportional to p_vv^alpha * p_vt^(1-alpha), computed in log space.

    p_vv, p_vt: [..., N] probabilities over the N classes -> [..., N], summing to 1.
    alpha = 1 uses video-video matching only, alpha = 0 video-text only. Zeros are clamped to
    the smallest positive float before the log.

    Book: chapter 7, section 7.4 (Video-text matching and the fusion).
    """
    tiny = torch.finfo(p_vv.dtype).tiny
    return fuse_log_probabilities(p_vv.clamp_min(tiny).log(), p_vt.clamp_min(tiny).log(), alpha).exp()
