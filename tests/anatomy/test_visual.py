"""Tests for lga.anatomy.visual: segmenters, phase masks, pooling, ground-truth metrics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lga.anatomy.visual import (
    boundary_error, bounds_for_sampled_frames, changepoint_segment, cluster_segment,
    frame_phase_labels, phase_accuracy, phase_masks, phase_pool, segment, uniform_segment,
)


def planted(B=32, T=8, L=3, D=32, noise=0.05, seed=0):
    """Piecewise-constant videos: L random phase vectors, random phase lengths (>= 1 frame)."""
    g = torch.Generator().manual_seed(seed)
    bounds = torch.zeros(B, L + 1, dtype=torch.long)
    for b in range(B):
        cuts = torch.randperm(T - 1, generator=g)[: L - 1].sort().values + 1
        bounds[b, 1:-1], bounds[b, -1] = cuts, T
    labels = frame_phase_labels(bounds, T)                                    # [B, T]
    centres = torch.randn(B, L, D, generator=g)
    feats = centres.gather(1, labels.unsqueeze(-1).expand(B, T, D))
    return feats + noise * torch.randn(B, T, D, generator=g), bounds


def naive_cluster_segment(frames: torch.Tensor, L: int) -> list[int]:
    """One video, python lists: merge the most cosine-similar adjacent pair (first on ties)."""
    clusters = [[t] for t in range(frames.shape[0])]
    while len(clusters) > L:
        means = [frames[c].mean(0) for c in clusters]
        sims = [F.cosine_similarity(means[i], means[i + 1], dim=0).item() for i in range(len(means) - 1)]
        i = max(range(len(sims)), key=lambda j: (sims[j], -j))
        clusters[i: i + 2] = [clusters[i] + clusters[i + 1]]
    return [c[0] for c in clusters] + [frames.shape[0]]


def assert_valid_bounds(bounds, B, T, L):
    assert bounds.shape == (B, L + 1) and bounds.dtype == torch.long
    assert (bounds[:, 0] == 0).all() and (bounds[:, -1] == T).all()
    assert (bounds[:, 1:] > bounds[:, :-1]).all()                             # strictly increasing


@pytest.mark.parametrize("method", ["cluster", "uniform", "changepoint"])
@pytest.mark.parametrize("T,L", [(8, 3), (8, 1), (8, 8), (16, 4), (5, 2)])
def test_segmenters_give_L_contiguous_phases_covering_every_frame(method, T, L):
    feats = torch.randn(6, T, 12, generator=torch.Generator().manual_seed(T * 10 + L))
    bounds = segment(feats, method, num_phases=L)
    assert_valid_bounds(bounds, 6, T, L)
    masks = phase_masks(bounds, T, overlap=0)                                 # [B, L, T]
    assert (masks.sum(1) == 1).all()                                          # every frame, one phase
    assert (masks.sum(2) >= 1).all()                                          # no empty phase
    assert (masks.int().diff(dim=2).abs().sum(2) <= 2).all()                  # one run per phase


def test_cluster_segment_matches_naive_reference():
    feats = torch.randn(20, 8, 16, generator=torch.Generator().manual_seed(1))
    got = cluster_segment(feats, 3)
    for b in range(20):
        assert got[b].tolist() == naive_cluster_segment(feats[b], 3)


def test_cluster_segment_recovers_planted_segments():
    feats, gt = planted(B=64)
    pred = cluster_segment(feats, 3)
    assert torch.equal(pred, gt)
    assert phase_accuracy(pred, gt, 8) == 1 and boundary_error(pred, gt) == 0
    # the content-blind uniform split misses most of them
    assert phase_accuracy(segment(feats, "uniform"), gt, 8) < 1


def test_changepoint_recovers_planted_segments():
    feats, gt = planted(B=32, seed=3)
    assert torch.equal(changepoint_segment(feats, 3), gt)


def test_cluster_ties_go_to_lowest_index():
    feats = torch.ones(2, 8, 4)                                               # every pair ties
    assert cluster_segment(feats, 3).tolist() == [[0, 6, 7, 8]] * 2
    assert changepoint_segment(feats, 3).tolist() == [[0, 1, 2, 8]] * 2


def test_uniform_segment_and_errors():
    assert uniform_segment(2, 8, 3).tolist() == [[0, 2, 5, 8]] * 2
    assert uniform_segment(1, 9, 3).tolist() == [[0, 3, 6, 9]]
    with pytest.raises(ValueError):
        segment(torch.randn(1, 8, 4), "tw-finch")
    with pytest.raises(ValueError):
        cluster_segment(torch.randn(1, 2, 4), 3)


def test_phase_masks_overlap_borrows_boundary_frames():
    bounds = torch.tensor([[0, 3, 5, 8]])
    m1 = phase_masks(bounds, 8, overlap=1)[0].int().tolist()
    assert m1 == [[1, 1, 1, 1, 0, 0, 0, 0],                                   # + frame 3
                  [0, 0, 1, 1, 1, 1, 0, 0],                                   # + frames 2 and 5
                  [0, 0, 0, 0, 1, 1, 1, 1]]                                   # + frame 4
    m0 = phase_masks(bounds, 8, overlap=0)[0].int().tolist()
    assert m0 == [[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]]
    # a wide overlap never reaches past the neighbouring phase
    m2 = phase_masks(torch.tensor([[0, 1, 2, 8]]), 8, overlap=2)[0].int().tolist()
    assert m2 == [[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1, 1, 1]]


def test_phase_pool_is_masked_mean_and_differentiable():
    feats = torch.randn(3, 8, 5, requires_grad=True)
    bounds = cluster_segment(feats, 3)
    masks = phase_masks(bounds, 8)
    pooled = phase_pool(feats, masks)
    assert pooled.shape == (3, 3, 5)
    for b in range(3):
        for i in range(3):
            assert torch.allclose(pooled[b, i], feats[b][masks[b, i]].mean(0), atol=1e-6)
    pooled.sum().backward()
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0


def test_labels_and_metrics():
    gt = torch.tensor([[0, 3, 5, 8]])
    pred = torch.tensor([[0, 2, 6, 8]])
    assert frame_phase_labels(gt, 8).tolist() == [[0, 0, 0, 1, 1, 2, 2, 2]]
    assert frame_phase_labels(pred, 8).tolist() == [[0, 0, 1, 1, 1, 1, 2, 2]]
    assert phase_accuracy(pred, gt, 8).item() == pytest.approx(6 / 8)
    assert boundary_error(pred, gt).item() == pytest.approx(1.0)
    assert phase_accuracy(pred, gt, 8, reduction="none").shape == (1,)


def test_bounds_for_sampled_frames():
    idx = torch.tensor([0, 10, 20, 30, 40, 50, 60, 70])                        # [T] shared by all
    gt = torch.tensor([[0, 25, 45, 80], [0, 1, 2, 80], [5, 40, 41, 80]])
    got = bounds_for_sampled_frames(idx, gt)
    assert got.tolist() == [[0, 3, 5, 8],
                            [0, 1, 1, 8],                                     # phase 1 too short: empty
                            [0, 4, 5, 8]]                                     # frame 0 < 5: phase 0
    # per-video indices [B, T] and the frame-label view agree with a direct lookup
    idx_b = torch.sort(torch.randint(0, 100, (4, 8), generator=torch.Generator().manual_seed(0)), 1).values
    gt_b = torch.tensor([[0, 30, 60, 100]] * 4)
    got_b = bounds_for_sampled_frames(idx_b, gt_b)
    direct = (idx_b >= 30).long() + (idx_b >= 60).long()
    assert torch.equal(frame_phase_labels(got_b, 8), direct)
