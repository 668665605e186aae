"""The small-head interface and the baselines: ProtoNet, OTAM, label-only (CLIP-FSAR style);
the TextBank that feeds heads their class texts; the CLIP frame encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lga.models import matching
from lga.models.baselines import (FewShotHead, LabelOnlyHead, OTAMHead, ProtoNet,
                                  per_class_mean_distance)
from lga.models.text_bank import DEFAULT_LABEL_TEMPLATE, TextBank


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def episode(E=2, N=5, K=2, Q=3, T=8, D=16, L=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(E, N * K, T, D, generator=g)
    q = torch.randn(E, N * Q, T, D, generator=g)
    # shuffled support order, so heads must use the labels, not the positions
    sl = torch.stack([torch.randperm(N * K, generator=g) % N for _ in range(E)])
    ql = torch.arange(N).repeat_interleave(Q).expand(E, -1).clone()
    text = {"class_text": torch.randn(E, N, L, D, generator=g), "label_text": torch.randn(E, N, D, generator=g)}
    return s, sl, q, ql, N, text


def test_protonet_is_a_few_shot_head_and_ignores_text():
    s, sl, q, ql, n, text = episode()
    head = ProtoNet()
    assert isinstance(head, FewShotHead)
    torch.testing.assert_close(head(s, sl, q, n), head(s, sl, q, n, **text))
    loss, logits = head.loss(s, sl, q, ql, n, **text)
    assert logits.shape == (2, 15, 5)
    torch.testing.assert_close(loss, F.cross_entropy(logits.flatten(0, 1), ql.flatten()))


def test_otam_head_matches_a_naive_loop_for_k_shots():
    s, sl, q, ql, n, text = episode(E=2, N=3, K=3, Q=2, T=5, D=6)
    head = OTAMHead(lbda=0.1, temperature=0.5, shot_rule="mean_distance")
    logits = head(s, sl, q, n, **text)
    for e in range(2):
        for j in range(q.shape[1]):
            for c in range(n):
                shots = s[e][sl[e] == c]
                d = torch.stack([matching.otam_distance(q[e, j][None, None], shot[None, None], 0.1)[0, 0, 0]
                                 for shot in shots]).mean()
                torch.testing.assert_close(logits[e, j, c], -d / 0.5, rtol=1e-4, atol=1e-5)


def test_per_class_mean_distance():
    d = torch.tensor([[[1.0, 2.0, 3.0, 5.0]]])          # one query, 4 support videos
    labels = torch.tensor([[1, 0, 1, 0]])
    torch.testing.assert_close(per_class_mean_distance(d, labels, 2), torch.tensor([[[3.5, 2.0]]]))


def test_otam_prototype_rule_aligns_with_the_frame_averaged_shots():
    from lga.models.baselines import merge_shots
    s, sl, q, ql, n, text = episode(E=2, N=3, K=3, Q=2, T=5, D=6)
    head = OTAMHead(lbda=0.5, shot_rule="prototype")
    protos, plabels = merge_shots(s, sl, n)
    for e in range(2):
        for c in range(n):
            torch.testing.assert_close(protos[e, c], s[e][sl[e] == c].mean(0))
    d = matching.otam_distance(q, protos, 0.5)                       # [E, Nq, N], prototypes in class order
    torch.testing.assert_close(head(s, sl, q, n), -d)
    assert not torch.allclose(head(s, sl, q, n), OTAMHead(lbda=0.5, shot_rule="mean_distance")(s, sl, q, n))
    with pytest.raises(ValueError, match="shot_rule"):
        OTAMHead(shot_rule="max")


def test_label_only_is_clip_fsars_recipe_by_default():
    """OTAM with CLIP-FSAR's lambda 0.5 on label-modulated frames (the registry passes the encoder's
    dim), fused with video-to-label matching; a learnable video-text logit scale."""
    import math

    from lga.engine.build import build_head
    from lga.config import ModelConfig
    head = build_head(ModelConfig(head="label_only", head_args={"num_heads": 2}), dim=16)
    assert head.vv == "otam" and head.otam_lbda == 0.5 and head.fusion is not None
    assert head.temperatures() == pytest.approx({"vv": 0.5, "vt": 0.07})
    assert head.vt_scale.requires_grad and head.vt_scale.item() == pytest.approx(math.log(1 / 0.07))
    plain = build_head(ModelConfig(head="label_only", head_args={"dim": None, "shot_rule": "mean_distance"}), dim=16)
    assert plain.fusion is None
    s, sl, q, ql, n, text = episode(K=2)
    vv, vt = plain.branch_logits(s, sl, q, n, text["label_text"])
    d = matching.otam_distance(q, s, 0.5)
    torch.testing.assert_close(vv, -per_class_mean_distance(d, sl, n) / 0.5)
    proto = LabelOnlyHead(shot_rule="prototype")
    from lga.models.baselines import merge_shots
    ps, pl = merge_shots(s, sl, n)
    torch.testing.assert_close(proto.branch_logits(s, sl, q, n, text["label_text"])[0],
                               -matching.otam_distance(q, ps, 0.5) / 0.5)
    # with the label modulation: the shots are averaged first (CLIP-FSAR's MERGE_BEFORE), then modulated
    torch.manual_seed(0)
    modulated = LabelOnlyHead(dim=16, num_heads=2, shot_rule="prototype")
    torch.testing.assert_close(modulated.branch_logits(s, sl, q, n, text["label_text"])[0],
                               modulated.branch_logits(ps, pl, q, n, text["label_text"])[0])
    loss, _ = proto.loss(s, sl, q, ql, n, **text)
    loss.backward()
    assert proto.vt_scale.grad.abs() > 0


def test_order_sensitivity_otam_vs_protonet():
    s, sl, q, ql, n, text = episode(K=1, Q=1)
    rev = q.flip(2)
    torch.testing.assert_close(ProtoNet()(s, sl, q, n), ProtoNet()(s, sl, rev, n))
    assert not torch.allclose(OTAMHead()(s, sl, q, n), OTAMHead()(s, sl, rev, n))


@pytest.mark.parametrize("vv,dim", [("mean", None), ("otam", None), ("mean", 16)])
def test_label_only_head_uses_labels_not_anatomy(vv, dim):
    s, sl, q, ql, n, text = episode()
    torch.manual_seed(0)
    head = LabelOnlyHead(vv=vv, dim=dim, num_heads=2)
    out = head(s, sl, q, n, **text)
    assert out.shape == (2, 15, 5) and torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 15))          # log-probabilities
    other = dict(text, class_text=torch.randn_like(text["class_text"]))
    torch.testing.assert_close(out, head(s, sl, q, n, **other))               # class_text ignored
    changed = dict(text, label_text=torch.randn_like(text["label_text"]))
    assert not torch.allclose(out, head(s, sl, q, n, **changed))              # label_text used
    with pytest.raises(ValueError, match="label_text"):
        head(s, sl, q, n)
    s.requires_grad_(True)
    loss, logits = head.loss(s, sl, q, ql, n, **text)
    loss.backward()
    assert torch.isfinite(loss) and s.grad.abs().sum() > 0
    if dim is not None:
        assert head.fusion.q_proj.weight.grad.abs().sum() > 0


def test_label_only_alpha_extremes():
    s, sl, q, ql, n, text = episode()
    vv_only, vt_only = LabelOnlyHead(alpha=1.0), LabelOnlyHead(alpha=0.0)   # OTAM, no modulation
    vv, vt = vv_only.branch_logits(s, sl, q, n, text["label_text"])
    torch.testing.assert_close(vv_only(s, sl, q, n, **text), vv.log_softmax(-1))
    torch.testing.assert_close(vt_only(s, sl, q, n, **text), vt.log_softmax(-1))
    # the video-text branch never looks at the supports
    torch.testing.assert_close(vt_only(torch.randn_like(s), sl, q, n, **text), vt.log_softmax(-1))


# --------------------------------------------------------------------------- TextBank

ANATOMY = {
    "schema": "lga-anatomy/1", "dataset": "toy", "num_steps": 2, "provenance": {},
    "classes": {
        "brush_hair": {"label": "brush hair", "steps": [
            {"subject": "a person", "motion": "lifts", "object": "a brush", "description": "a person lifts a brush"},
            {"subject": "a person", "motion": "strokes", "object": "hair", "description": "a person strokes the hair"}]},
        "kick ball": {"label": "kick ball", "steps": [
            {"subject": "a person", "motion": "runs", "object": "a ball", "description": "a person runs to a ball"},
            {"subject": "a foot", "motion": "hits", "object": "a ball", "description": "a foot hits the ball"}]},
        "wave": {"label": "wave", "steps": [
            {"subject": "a person", "motion": "raises", "object": "a hand", "description": "a person raises a hand"},
            {"subject": "a hand", "motion": "swings", "object": "air", "description": "the hand swings"}]},
    },
}


def fake_encode(texts):
    """A deterministic 'text encoder': a fixed random vector per string."""
    out = []
    for t in texts:
        g = torch.Generator().manual_seed(sum(ord(ch) * (i + 1) for i, ch in enumerate(t)) % (2**31))
        out.append(F.normalize(torch.randn(8, generator=g), dim=0))
    return torch.stack(out)


def test_text_bank_gathers_and_round_trips(tmp_path):
    names = ["wave", "brush hair", "kick ball"]             # tolerant lookup: "brush hair" -> brush_hair
    bank = TextBank.build(ANATOMY, names, encode=fake_encode)
    assert bank.steps.shape == (3, 2, 8) and bank.labels.shape == (3, 8)
    assert bank.label_texts[1] == DEFAULT_LABEL_TEMPLATE.format(label="brush hair")
    expected = fake_encode(["a person runs to a ball", "a foot hits the ball"])
    torch.testing.assert_close(bank.steps[2], expected)
    classes = torch.tensor([[2, 0], [1, 2]])
    out = bank.for_episodes(classes)
    assert out["class_text"].shape == (2, 2, 2, 8) and out["label_text"].shape == (2, 2, 8)
    for e in range(2):
        for i in range(2):
            torch.testing.assert_close(out["class_text"][e, i], bank.steps[classes[e, i]])
            torch.testing.assert_close(out["label_text"][e, i], bank.labels[classes[e, i]])
    assert bank.for_episodes(torch.tensor([1, 0]))["class_text"].shape == (2, 2, 8)
    path = bank.save(tmp_path / "bank.safetensors")
    again = TextBank.load(path)
    assert torch.equal(again.steps, bank.steps) and torch.equal(again.labels, bank.labels)
    assert again.class_names == names and again.step_texts == bank.step_texts
    assert again.label_template == DEFAULT_LABEL_TEMPLATE
    custom = TextBank.build(ANATOMY, ["wave"], encode=fake_encode, label_template="{label}")
    assert custom.label_texts == ["wave"]
    with pytest.raises(KeyError, match="jump"):
        TextBank.build(ANATOMY, ["jump"], encode=fake_encode)
    with pytest.raises(ValueError, match="text encoder"):
        TextBank.build(ANATOMY, names)


def test_text_bank_from_shipped_anatomy():
    from lga.anatomy.shipped import load_shipped_anatomy

    anatomy = load_shipped_anatomy("hmdb51")
    names = list(anatomy)[:4]
    bank = TextBank.build(anatomy, names, encode=fake_encode)
    assert bank.steps.shape == (4, anatomy.num_steps, 8)
    assert bank.step_texts[0] == anatomy.descriptions(names[0])
