"""Tests for lga.models.fusion: PhaseFusion, prototypes, the query-text modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from lga.models.fusion import PhaseFusion, prototypes, shared_query_text

B, L, D, H = 4, 3, 16, 4


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, D, generator=g), torch.randn(B, L, D, generator=g)


def test_shapes_and_attention_rows_sum_to_one():
    torch.manual_seed(0)
    fusion = PhaseFusion(D, num_heads=H)
    phases, text = inputs()
    fused, att = fusion(phases, text, return_attention=True)
    assert fused.shape == (B, L, D) and att.shape == (B, H, L, L)
    assert torch.allclose(att.sum(-1), torch.ones(B, H, L), atol=1e-6)
    assert (att >= 0).all()
    assert fusion(phases, text).shape == (B, L, D)


def test_matches_torch_multihead_attention():
    """Same weights in nn.MultiheadAttention give the same fused features and per-head weights."""
    torch.manual_seed(0)
    fusion = PhaseFusion(D, num_heads=H)
    mha = nn.MultiheadAttention(D, H, batch_first=True)
    with torch.no_grad():
        projections = [fusion.q_proj, fusion.k_proj, fusion.v_proj]
        mha.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        mha.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        mha.out_proj.weight.copy_(fusion.out_proj.weight)
        mha.out_proj.bias.copy_(fusion.out_proj.bias)
    phases, text = inputs(1)
    out, w = mha(phases + text, phases, phases, average_attn_weights=False)
    fused, att = fusion(phases, text, return_attention=True)
    assert torch.allclose(att, w, atol=1e-6)
    assert torch.allclose(fused, fusion.norm(phases + text + out), atol=1e-5)      # default: query residual
    fusion.residual = "visual"
    assert torch.allclose(fusion(phases, text), fusion.norm(phases + out), atol=1e-5)


def test_query_text_none_mode():
    torch.manual_seed(0)
    fusion = PhaseFusion(D, num_heads=H, query_text="none")
    phases, text = inputs()
    assert torch.allclose(fusion(phases), fusion(phases, torch.zeros_like(phases)))
    assert not torch.allclose(fusion(phases), fusion(phases, text))           # text steers attention


def test_query_text_shared_mode():
    torch.manual_seed(0)
    fusion = PhaseFusion(D, num_heads=H, query_text="shared")
    phases, text = inputs()
    with pytest.raises(ValueError):
        fusion(phases)                                                        # queries need the shared text
    shared = shared_query_text(text)                                          # [L, D]
    assert shared.shape == (L, D) and torch.allclose(shared, text.mean(0))
    assert torch.allclose(fusion(phases, shared), fusion(phases, shared.expand(B, L, D)))


def test_residual_modes():
    torch.manual_seed(0)
    visual = PhaseFusion(D, num_heads=H, residual="visual")
    query = PhaseFusion(D, num_heads=H, residual="query")
    query.load_state_dict(visual.state_dict())
    phases, text = inputs()
    assert torch.allclose(visual(phases), query(phases))                      # no text: the same
    assert not torch.allclose(visual(phases, text), query(phases, text))
    with pytest.raises(ValueError):
        PhaseFusion(D, num_heads=H, residual="both")
    with pytest.raises(ValueError):
        PhaseFusion(D, num_heads=H, query_text="learned")
    with pytest.raises(ValueError):
        PhaseFusion(10, num_heads=4)


def test_gradients_flow_and_dropout():
    torch.manual_seed(0)
    fusion = PhaseFusion(D, num_heads=H, dropout=0.5)
    phases, text = inputs()
    phases.requires_grad_(True)
    text.requires_grad_(True)
    fusion(phases, text).pow(2).sum().backward()
    for t in [phases.grad, text.grad] + [p.grad for p in fusion.parameters()]:
        assert t is not None and torch.isfinite(t).all()
    assert text.grad.abs().sum() > 0 and fusion.q_proj.weight.grad.abs().sum() > 0
    fusion.eval()
    assert torch.equal(fusion(phases, text), fusion(phases, text))           # no dropout in eval


def test_prototypes_mean_over_shots():
    x = torch.randn(5, 3, L, D)                                               # [N, K, L, D]
    assert torch.allclose(prototypes(x), x.mean(1))
    xe = torch.randn(2, 5, 3, L, D)                                           # [E, N, K, L, D]
    assert prototypes(xe).shape == (2, 5, L, D)
    assert torch.allclose(prototypes(xe)[1], prototypes(xe[1]))


def test_attention_stats_measure_the_distance_from_uniform():
    import math

    from lga.models.fusion import attention_stats
    uniform = torch.full((2, 4, 3, 3), 1 / 3)
    s = attention_stats(uniform)
    assert s["entropy"] == pytest.approx(1.0) and s["max_weight"] == pytest.approx(1 / 3) == s["uniform"]
    one_hot = torch.eye(3).expand(2, 4, 3, 3)
    s = attention_stats(one_hot)
    assert s["entropy"] == pytest.approx(0.0, abs=1e-6) and s["max_weight"] == 1.0 and s["diagonal"] == 1.0
    half = torch.tensor([[0.5, 0.5, 0.0]]).expand(3, 3)
    assert attention_stats(half)["entropy"] == pytest.approx(math.log(2) / math.log(3))
