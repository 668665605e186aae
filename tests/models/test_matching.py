"""Tests for lga.models.matching: every batched function against a plain python-loop reference."""

from __future__ import annotations

import math

import pytest
import torch

from lga.anatomy.visual import cluster_segment, phase_masks
from lga.models.matching import (
    ab_mhm_distance, bi_mhm_distance, cosine_distance_matrix, fuse_log_probabilities,
    fuse_probabilities, logits_from_distance, otam_distance, prototype_mean_distance,
    video_text_similarity,
)

# ----------------------------------------------------------------------------------------------
# naive references: one video pair at a time, python lists and floats


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def frame_dists(qv, sv):
    """qv: [T][D], sv: [U][D] lists -> [T][U] cosine distances."""
    return [[1 - cos(a, b) for b in sv] for a in qv]


def otam_one_way(d, lbda):
    """The OTAM recurrence cell by cell (zero column padded on each side of the support)."""
    T, U = len(d), len(d[0])
    d = [[0.0] + row + [0.0] for row in d]
    M = U + 2

    def softmin(*xs):
        lo = min(xs)
        return lo - lbda * math.log(sum(math.exp(-(x - lo) / lbda) for x in xs))

    C = [[0.0] * M for _ in range(T)]
    for m in range(1, M):
        C[0][m] = d[0][m] + C[0][m - 1]
    for l in range(1, T):
        C[l][1] = d[l][1] + softmin(C[l - 1][0], C[l - 1][1], C[l][0])
        for m in range(2, M - 1):
            C[l][m] = d[l][m] + softmin(C[l - 1][m - 1], C[l][m - 1])
        C[l][M - 1] = d[l][M - 1] + softmin(C[l - 1][M - 2], C[l - 1][M - 1], C[l][M - 2])
    return C[T - 1][M - 1]


def mhm(d, qset, sset):
    """Bi-MHM of frame index sets qset, sset under the distance table d."""
    a = sum(min(d[t][u] for u in sset) for t in qset) / len(qset)
    b = sum(min(d[t][u] for t in qset) for u in sset) / len(sset)
    return a + b


def per_pair(q, s, fn):
    """Apply fn(query video, support video, e, i, j) to every pair of every episode -> [E, Nq, Ns]."""
    E, Nq, Ns = q.shape[0], q.shape[1], s.shape[1]
    return torch.tensor([[[fn(q[e, i].tolist(), s[e, j].tolist(), e, i, j) for j in range(Ns)]
                          for i in range(Nq)] for e in range(E)], dtype=torch.float64)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# equality with the references


def test_cosine_distance_matrix():
    q, s = rand(2, 2, 4, 6), rand(2, 3, 5, 6, seed=1)
    got = cosine_distance_matrix(q, s)
    assert got.shape == (2, 2, 3, 4, 5)
    for e, i, j in [(0, 0, 0), (1, 1, 2)]:
        assert torch.allclose(got[e, i, j], torch.tensor(frame_dists(q[e, i].tolist(), s[e, j].tolist()),
                                                         dtype=torch.float64))


@pytest.mark.parametrize("lbda", [0.1, 0.5])
@pytest.mark.parametrize("T,U", [(8, 8), (4, 6), (1, 3)])
def test_otam_matches_reference(lbda, T, U):
    q, s = rand(2, 3, T, 8), rand(2, 2, U, 8, seed=1)
    one = per_pair(q, s, lambda a, b, *_: otam_one_way(frame_dists(a, b), lbda))
    two = per_pair(q, s, lambda a, b, *_: 0.5 * (otam_one_way(frame_dists(a, b), lbda)
                                                 + otam_one_way(frame_dists(b, a), lbda)))
    assert torch.allclose(otam_distance(q, s, lbda, bidirectional=False), one, atol=1e-10)
    assert torch.allclose(otam_distance(q, s, lbda), two, atol=1e-10)


def test_otam_float32_stays_finite_for_far_apart_videos():
    q = torch.ones(1, 1, 8, 4)
    s = -torch.ones(1, 1, 8, 4)                                               # every frame distance is 2
    d = otam_distance(q, s, lbda=0.01)                                        # exp(-cost/lbda) underflows
    assert torch.isfinite(d).all() and d.item() > 10


def test_bi_mhm_matches_reference():
    q, s = rand(2, 3, 8, 8), rand(2, 4, 6, 8, seed=1)
    want = per_pair(q, s, lambda a, b, *_: mhm(frame_dists(a, b), range(8), range(6)))
    assert torch.allclose(bi_mhm_distance(q, s), want, atol=1e-12)


def test_bi_mhm_with_masks_matches_reference():
    q, s = rand(2, 3, 8, 8), rand(2, 4, 8, 8, seed=1)
    g = torch.Generator().manual_seed(2)
    qm, sm = torch.rand(2, 3, 8, generator=g) > 0.5, torch.rand(2, 4, 8, generator=g) > 0.5
    qm[..., 0] = sm[..., 3] = True                                            # no empty set

    def ref(a, b, e, i, j):
        return mhm(frame_dists(a, b), qm[e, i].nonzero().flatten().tolist(),
                   sm[e, j].nonzero().flatten().tolist())

    assert torch.allclose(bi_mhm_distance(q, s, qm, sm), per_pair(q, s, ref), atol=1e-12)
    # all-True masks are the unmasked distance
    ones_q, ones_s = torch.ones_like(qm), torch.ones_like(sm)
    assert torch.allclose(bi_mhm_distance(q, s, ones_q, ones_s), bi_mhm_distance(q, s), atol=1e-12)


def test_ab_mhm_matches_reference():
    q, s = rand(2, 3, 8, 8), rand(2, 4, 8, 8, seed=1)
    qm = phase_masks(cluster_segment(q.flatten(0, 1), 3), 8).view(2, 3, 3, 8)
    sm = phase_masks(cluster_segment(s.flatten(0, 1), 3), 8).view(2, 4, 3, 8)

    def ref(a, b, e, i, j):
        d = frame_dists(a, b)
        return sum(mhm(d, qm[e, i, p].nonzero().flatten().tolist(), sm[e, j, p].nonzero().flatten().tolist())
                   for p in range(3))

    assert torch.allclose(ab_mhm_distance(q, qm, s, sm), per_pair(q, s, ref), atol=1e-12)


def test_video_text_similarity_matches_reference():
    qp, txt = rand(2, 3, 3, 8), rand(2, 5, 3, 8, seed=1)
    want = per_pair(qp, txt, lambda a, b, *_: sum(cos(a[p], b[p]) for p in range(3)) / 3)
    got = video_text_similarity(qp, txt)
    assert got.shape == (2, 3, 5) and torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cosine"])
def test_prototype_mean_distance_matches_reference(metric):
    q, s = rand(2, 3, 8, 6), rand(2, 4, 8, 6, seed=1)

    def ref(a, b, *_):
        ma = [sum(col) / len(a) for col in zip(*a)]
        mb = [sum(col) / len(b) for col in zip(*b)]
        sq = sum((x - y) ** 2 for x, y in zip(ma, mb))
        return {"sqeuclidean": sq, "euclidean": math.sqrt(sq), "cosine": 1 - cos(ma, mb)}[metric]

    assert torch.allclose(prototype_mean_distance(q, s, metric), per_pair(q, s, ref), atol=1e-12)
    with pytest.raises(ValueError):
        prototype_mean_distance(q, s, "manhattan")


def test_fuse_probabilities_equals_formula():
    g = torch.Generator().manual_seed(0)
    p_vv = torch.softmax(torch.randn(4, 5, generator=g), -1)
    p_vt = torch.softmax(torch.randn(4, 5, generator=g), -1)
    for alpha in [0.0, 0.3, 0.5, 1.0]:
        raw = p_vv ** alpha * p_vt ** (1 - alpha)
        want = raw / raw.sum(-1, keepdim=True)
        got = fuse_probabilities(p_vv, p_vt, alpha)
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(fuse_log_probabilities(p_vv.log(), p_vt.log(), alpha).exp(), want, atol=1e-6)
    assert torch.allclose(fuse_probabilities(p_vv, p_vt, 1.0), p_vv, atol=1e-6)
    # a zero probability stays (near) zero and produces no NaN
    z = torch.tensor([[1.0, 0.0]])
    assert torch.isfinite(fuse_probabilities(z, torch.tensor([[0.5, 0.5]]), 0.5)).all()


def test_logits_from_distance():
    d = torch.tensor([[1.0, 2.0, 4.0]])
    assert torch.equal(logits_from_distance(d, 0.5), torch.tensor([[-2.0, -4.0, -8.0]]))


def test_batched_over_episodes_equals_one_episode_at_a_time():
    q, s = rand(3, 5, 8, 16), rand(3, 5, 8, 16, seed=1)
    qm = phase_masks(cluster_segment(q.flatten(0, 1), 3), 8).view(3, 5, 3, 8)
    sm = phase_masks(cluster_segment(s.flatten(0, 1), 3), 8).view(3, 5, 3, 8)
    for fn in [otam_distance, bi_mhm_distance, prototype_mean_distance]:
        full = fn(q, s)
        assert torch.allclose(full, torch.cat([fn(q[e:e + 1], s[e:e + 1]) for e in range(3)]), atol=1e-12)
    full = ab_mhm_distance(q, qm, s, sm)
    each = torch.cat([ab_mhm_distance(q[e:e + 1], qm[e:e + 1], s[e:e + 1], sm[e:e + 1]) for e in range(3)])
    assert torch.allclose(full, each, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# gradients


def test_gradients_flow_and_are_finite():
    q = torch.randn(2, 3, 8, 16, requires_grad=True)
    s = torch.randn(2, 3, 8, 16, requires_grad=True)
    with torch.no_grad():
        s[0, 0] = q[0, 0]                                                     # an exact match: distance 0
    qm = phase_masks(cluster_segment(q.detach().flatten(0, 1), 3), 8).view(2, 3, 3, 8)
    sm = phase_masks(cluster_segment(s.detach().flatten(0, 1), 3), 8).view(2, 3, 3, 8)
    text = torch.randn(2, 3, 3, 16, requires_grad=True)
    outputs = {
        "otam": otam_distance(q, s),
        "otam_sharp": otam_distance(q, s, lbda=0.01),
        "bi_mhm": bi_mhm_distance(q, s),
        "bi_mhm_masked": bi_mhm_distance(q, s, qm[:, :, 0], sm[:, :, 1]),
        "ab_mhm": ab_mhm_distance(q, qm, s, sm),
        "proto_sq": prototype_mean_distance(q, s),
        "proto_euc": prototype_mean_distance(q, s, "euclidean"),
        "proto_cos": prototype_mean_distance(q, s, "cosine"),
        "video_text": video_text_similarity(q[:, :, :3], text),
    }
    for name, out in outputs.items():
        assert out.shape == (2, 3, 3), name
        grads = torch.autograd.grad(out.sum(), [q, s, text], allow_unused=True, retain_graph=True)
        used = [g for g in grads if g is not None]
        assert used and all(torch.isfinite(g).all() for g in used), name
        assert grads[0].abs().sum() > 0, name
    # the fused probabilities pass gradients back to both branches
    lv = logits_from_distance(outputs["ab_mhm"], 0.1)
    lt = outputs["video_text"] / 0.07
    p = fuse_probabilities(lv.softmax(-1), lt.softmax(-1), 0.5)
    gq, gt = torch.autograd.grad(p[..., 0].log().sum(), [q, text])
    assert torch.isfinite(gq).all() and gt.abs().sum() > 0


# ----------------------------------------------------------------------------------------------
# order sensitivity


def ordered_videos(n=6, T=8, D=32, seed=0):
    """Videos of three distinct phases (lengths 3, 2, 3), query = support + noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(1, n, 3, D, generator=g)
    frames = centres[:, :, [0, 0, 0, 1, 1, 2, 2, 2]]                          # [1, n, T, D]
    s = frames + 0.1 * torch.randn(frames.shape, generator=g)
    q = frames + 0.1 * torch.randn(frames.shape, generator=g)
    return q, s


def masks_of(x):
    E, N, T, _ = x.shape
    return phase_masks(cluster_segment(x.flatten(0, 1), 3), T).view(E, N, 3, T)


def test_time_reversal_hurts_otam_and_ab_mhm_but_not_bi_mhm_or_mean():
    q, s = ordered_videos()
    rev = q.flip(2)
    same = torch.arange(6)
    d_fwd, d_rev = otam_distance(q, s)[0, same, same], otam_distance(rev, s)[0, same, same]
    assert (d_fwd < d_rev).all()
    d_fwd = ab_mhm_distance(q, masks_of(q), s, masks_of(s))[0, same, same]
    d_rev = ab_mhm_distance(rev, masks_of(rev), s, masks_of(s))[0, same, same]
    assert (d_fwd < d_rev).all()
    assert torch.allclose(bi_mhm_distance(q, s), bi_mhm_distance(rev, s), atol=1e-6)
    assert torch.allclose(prototype_mean_distance(q, s), prototype_mean_distance(rev, s), atol=1e-4)
    assert torch.allclose(prototype_mean_distance(q, s, "cosine"),
                          prototype_mean_distance(rev, s, "cosine"), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    q, s = rand(2, 5, 8, 32).float(), rand(2, 5, 8, 32, seed=1).float()
    qm, sm = masks_of(q), masks_of(s)
    for fn, args in [(otam_distance, (q, s)), (bi_mhm_distance, (q, s)), (ab_mhm_distance, (q, qm, s, sm))]:
        cpu = fn(*args)
        gpu = fn(*[a.cuda() for a in args]).cpu()
        assert torch.allclose(cpu, gpu, atol=1e-4)
