"""The LGA head: shapes, gradients, every ablation row and its switches, order sensitivity,
the (frame, phase text) pairs of AtomicActions, and the whole path from a tiny CLIP to a loss."""

from __future__ import annotations


import pytest
import torch

from lga.anatomy.visual import phase_masks, uniform_segment
from lga.models import matching
from lga.models.baselines import OTAMHead, ProtoNet
from lga.models.lga import ABLATION_ROWS, LGA, LGAConfig, ablation_config

D = 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def episode(E=2, N=5, K=2, Q=3, T=8, L=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(E, N * K, T, D, generator=g)
    q = torch.randn(E, N * Q, T, D, generator=g)
    sl = torch.stack([torch.randperm(N * K, generator=g) % N for _ in range(E)])
    ql = torch.arange(N).repeat_interleave(Q).expand(E, -1).clone()
    text = {"class_text": torch.randn(E, N, L, D, generator=g), "label_text": torch.randn(E, N, D, generator=g)}
    return s, sl, q, ql, N, text


def make(cfg: LGAConfig | str = "full LGA", **kw) -> LGA:
    torch.manual_seed(0)
    cfg = ABLATION_ROWS[cfg] if isinstance(cfg, str) else cfg
    return LGA(D, cfg, num_heads=4, **kw)


def test_forward_and_loss_shapes_finite_and_gradients_reach_the_fusion():
    s, sl, q, ql, n, text = episode()
    head = make()
    logits = head(s, sl, q, n, **text)
    assert logits.shape == (2, 15, 5) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(2, 15))   # fused log-probabilities
    s.requires_grad_(True)
    q.requires_grad_(True)
    loss, logits2 = head.loss(s, sl, q, ql, n, **text)
    assert loss.ndim == 0 and torch.isfinite(loss)
    torch.testing.assert_close(logits2, logits)
    loss.backward()
    for name, p in head.fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert s.grad.abs().sum() > 0 and q.grad.abs().sum() > 0


@pytest.mark.parametrize("row", list(ABLATION_ROWS))
@pytest.mark.parametrize("metric", ["frames", "phases"])
def test_every_ablation_row_runs(row, metric):
    s, sl, q, ql, n, text = episode(K=1, Q=2)
    head = make(ablation_config(row, vv_metric=metric))
    s.requires_grad_(True)
    loss, logits = head.loss(s, sl, q, ql, n, **text)
    assert logits.shape == (2, 10, 5) and torch.isfinite(logits).all() and torch.isfinite(loss)
    loss.backward()
    assert (head.fusion is not None) == ABLATION_ROWS[row].use_text_anatomy


def test_ablation_rows_are_the_papers():
    assert list(ABLATION_ROWS) == ["video-video", "+ visual anatomy", "+ textual anatomy", "both anatomies",
                                   "both anatomies, video-text only", "full LGA"]
    assert ABLATION_ROWS["full LGA"] == LGAConfig()
    assert ABLATION_ROWS["video-video"].phases_used == 1
    assert ablation_config("full LGA", alpha=0.9).alpha == 0.9
    with pytest.raises(KeyError):
        ablation_config("nope")
    with pytest.raises(ValueError):
        LGAConfig(segmenter="kmeans")
    with pytest.raises(ValueError):
        LGAConfig(use_video_video=False, use_video_text=False)


def test_video_text_only_ignores_the_support_videos():
    s, sl, q, ql, n, text = episode()
    head = make("both anatomies, video-text only")
    out = head(s, sl, q, n, **text)
    torch.testing.assert_close(out, head(torch.randn_like(s), sl, q, n, **text))
    # ... and is the mean over phases of query-phase / step-text cosines
    bounds, masks = head.segment(q.flatten(0, 1))
    from lga.anatomy.visual import phase_pool
    phases = phase_pool(q.flatten(0, 1), masks).view(2, 15, 3, D)
    expected = matching.video_text_similarity(phases, text["class_text"]) / head.config.vt_temperature
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, head(s, sl, q, n, **dict(text, class_text=torch.randn_like(text["class_text"]))))


@pytest.mark.parametrize("row", ["video-video", "+ visual anatomy"])
def test_rows_without_text_ignore_text(row):
    s, sl, q, ql, n, text = episode()
    head = make(row)
    out = head(s, sl, q, n, **text)
    torch.testing.assert_close(out, head(s, sl, q, n))                     # no text needed at all
    noise = {k: torch.randn_like(v) for k, v in text.items()}
    torch.testing.assert_close(out, head(s, sl, q, n, **noise))


def test_text_anatomy_changes_video_video_scores():
    s, sl, q, ql, n, text = episode()
    head = make("both anatomies")
    out = head(s, sl, q, n, **text)
    assert not torch.allclose(out, head(s, sl, q, n, **dict(text, class_text=torch.randn_like(text["class_text"]))))
    with pytest.raises(ValueError, match="class_text"):
        head(s, sl, q, n)


def test_without_fusion_frames_metric_is_ab_mhm_averaged_over_shots():
    s, sl, q, ql, n, text = episode(K=2, Q=1)
    for row in ("video-video", "+ visual anatomy"):
        head = make(row, shot_rule="mean_distance")
        _, det = head(s, sl, q, n, return_details=True)
        qm, sm = det["query_side"]["masks"], det["support_side"]["masks"]
        d = matching.ab_mhm_distance(q, qm, s, sm)                                  # [E, Nq, Ns]
        per_class = torch.stack([torch.stack([d[e][:, sl[e] == c].mean(-1) for c in range(n)], -1)
                                 for e in range(2)])
        torch.testing.assert_close(det["vv"], -per_class / head.config.vv_temperature)
        assert head.temperatures()["vv"] == pytest.approx(head.config.vv_temperature)
    # one whole-video phase: AB-MHM is Bi-MHM
    head = make("video-video", shot_rule="mean_distance")
    _, det = head(s, sl, q, n, return_details=True)
    torch.testing.assert_close(det["vv_video_distance"], matching.bi_mhm_distance(q, s))


@pytest.mark.parametrize("row", ["full LGA", "both anatomies", "+ textual anatomy"])
def test_the_fused_video_video_distance_is_the_books_ab_mhm_with_the_residual_as_offsets(row):
    """The head's video-video distance is matching.ab_mhm_distance (chapter 7) with the fused-phase
    residual f~_i - f_{S_i} (f~_i at the norm of f_{S_i}) as per-phase offsets, which equals Bi-MHM
    of each phase's frames with its offset added, summed over phases."""
    import torch.nn.functional as F
    s, sl, q, ql, n, text = episode(K=2, Q=2, seed=3)
    head = make(row, shot_rule="mean_distance")
    with torch.no_grad():                                  # a trained-looking fusion: not the identity
        for p in head.fusion.parameters():
            p.add_(0.1 * torch.randn_like(p))
    _, det = head(s, sl, q, n, return_details=True, **text)
    qd, sd = det["query_side"], det["support_side"]

    def residual(side):
        return F.normalize(side["fused"], dim=-1) * side["pooled"].norm(dim=-1, keepdim=True) - side["pooled"]
    rq, rs = residual(qd), residual(sd)
    d = matching.ab_mhm_distance(q, qd["masks"], s, sd["masks"], q_offsets=rq, s_offsets=rs)
    torch.testing.assert_close(det["vv_video_distance"], d)
    L = qd["masks"].shape[2]
    by_phase = sum(matching.bi_mhm_distance(q + rq[:, :, i, None], s + rs[:, :, i, None],
                                            qd["masks"][:, :, i], sd["masks"][:, :, i]) for i in range(L))
    torch.testing.assert_close(det["vv_video_distance"], by_phase)
    torch.testing.assert_close(det["vv_per_phase"], matching.ab_mhm_distance(
        q, qd["masks"], s, sd["masks"], q_offsets=rq, s_offsets=rs, per_phase=True))
    assert not torch.allclose(d, matching.ab_mhm_distance(q, qd["masks"], s, sd["masks"]))   # the offsets act
    for i, mat in enumerate(det["frame_distances"]):
        torch.testing.assert_close(mat, matching.cosine_distance_matrix(q + rq[:, :, i, None], s + rs[:, :, i, None]))


def test_the_lga_head_calls_no_private_matching_function():
    import inspect

    import lga.models.lga as module
    assert "matching._" not in inspect.getsource(module)


def test_uniform_plain_phases_and_overlap():
    s, sl, q, ql, n, text = episode(K=1, Q=1)
    head = make("+ textual anatomy")
    _, det = head(s, sl, q, n, return_details=True, **text)
    expected = phase_masks(uniform_segment(1, 8, 3), 8, overlap=0)[0]
    assert torch.equal(det["query_side"]["masks"][0, 0], expected)
    head = make("full LGA", overlap=2)
    _, det = head(s, sl, q, n, return_details=True, **text)
    masks = det["query_side"]["masks"]
    assert (masks.sum(2) >= 1).all() and (masks.sum(-1).sum(-1) > 8).all()   # overlapping phases


def test_order_sensitivity_lga_otam_protonet():
    s, sl, q, ql, n, text = episode(K=1, Q=1, seed=3)
    rev = q.flip(2)
    torch.testing.assert_close(ProtoNet()(s, sl, q, n), ProtoNet()(s, sl, rev, n))
    assert not torch.allclose(OTAMHead()(s, sl, q, n), OTAMHead()(s, sl, rev, n))
    for row in ("+ visual anatomy", "full LGA"):
        head = make(row)
        assert not torch.allclose(head(s, sl, q, n, **text), head(s, sl, rev, n, **text))
    # whole-video Bi-MHM (no visual anatomy) is a set metric: order-blind like ProtoNet
    head = make("video-video")
    torch.testing.assert_close(head(s, sl, q, n), head(s, sl, rev, n))


def test_alpha_and_train_with():
    s, sl, q, ql, n, text = episode()
    full = make()
    _, det = full(s, sl, q, n, return_details=True, **text)
    torch.testing.assert_close(make(alpha=1.0)(s, sl, q, n, **text), det["vv"].log_softmax(-1))
    torch.testing.assert_close(make(alpha=0.0)(s, sl, q, n, **text), det["vt"].log_softmax(-1))
    # train_with="vv" and no contrastive loss: the loss is the CE of the video-video logits
    head = make(vt_weight=0.0)
    loss, _ = head.loss(s, sl, q, ql, n, **text)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(det["vv"].flatten(0, 1), ql.flatten()))
    fused, _ = make(vt_weight=0.0, train_with="fused").loss(s, sl, q, ql, n, **text)
    assert not torch.allclose(loss, fused)
    with_vt, _ = make().loss(s, sl, q, ql, n, **text)
    assert with_vt > loss                                    # the contrastive term is added


def test_query_text_shared_and_phase_metric_prototypes():
    s, sl, q, ql, n, text = episode()
    a = make(query_text="shared")(s, sl, q, n, **text)
    b = make()(s, sl, q, n, **text)
    assert torch.isfinite(a).all() and not torch.allclose(a, b)
    head = make(vv_metric="phases", use_video_text=False, shot_rule="mean_distance")
    _, det = head(s, sl, q, n, return_details=True, **text)
    fused_s = torch.nn.functional.normalize(det["support_side"]["fused"], dim=-1)
    fused_q = torch.nn.functional.normalize(det["query_side"]["fused"], dim=-1)
    e, j, c = 1, 4, 2
    proto = fused_s[e][sl[e] == c].mean(0)                                   # [L, D]: mean over shots
    d = (1 - torch.nn.functional.cosine_similarity(fused_q[e, j], proto, dim=-1)).sum()
    torch.testing.assert_close(det["d_vv"][e, j, c], d)


def test_explain_returns_figure_material():
    s, sl, q, ql, n, text = episode(E=1, K=1, Q=1)
    head = make()
    head.train()
    out = head.explain(s, sl, q, n, **text)
    assert head.training                                     # explain does not flip the mode
    assert out["logits"].shape == (1, 5, 5)
    side = out["query_side"]
    assert side["bounds"].shape == (1, 5, 4) and side["masks"].shape == (1, 5, 3, 8)
    assert side["attention"].shape == (1, 5, 4, 3, 3)
    torch.testing.assert_close(side["attention"].sum(-1), torch.ones(1, 5, 4, 3))
    assert out["vv_per_phase"].shape == (1, 5, 5, 3)
    assert len(out["frame_distances"]) == 3 and out["frame_distances"][0].shape == (1, 5, 5, 8, 8)
    assert out["vt_similarity"].abs().max() <= 1 + 1e-5


# --------------------------------------------------------------------------- data and the full path

@pytest.fixture(scope="module")
def tiny_aa(tmp_path_factory):
    from lga.data.atomic_actions import AtomicActionsConfig, generate

    root = tmp_path_factory.mktemp("aa")
    generate(root, AtomicActionsConfig(seed=2, num_classes=(4, 2, 2), videos_per_class=2,
                                       frames_per_video=16, size=32, workers=1), progress=False)
    return root


def test_phase_pairs_pair_each_frame_with_its_phase(tiny_aa):
    from lga.data import layout
    from lga.data.atomic_actions import phase_pairs
    from lga.data.video import read_video

    pairs = phase_pairs(tiny_aa, "train", frames_per_phase=2, seed=0)
    anatomy = layout.read_anatomy(tiny_aa / "anatomy.json")
    assert len(pairs) == 4 * 2 * 3 * 2 and pairs.frames.shape == (48, 32, 32, 3)
    frame, text = pairs[0]
    assert frame.dtype == torch.uint8 and isinstance(text, str)
    clips = {}
    for i in range(len(pairs)):
        key, t, phase = pairs.keys[i], pairs.frame_indices[i], pairs.phases[i]
        bounds = anatomy["videos"][key]["phase_bounds"]
        lo, hi = bounds[phase], bounds[phase + 1]
        margin = 1 if hi - lo - 2 >= 2 else 0                      # default margin, dropped if too short
        assert lo + margin <= t < hi - margin
        assert pairs.texts[i] == anatomy["classes"][pairs.class_names[i]]["steps"][phase]["description"]
        if key not in clips:
            clips[key] = read_video(layout.find_video(tiny_aa, key), num_frames=16)
        assert torch.equal(pairs.frames[i], clips[key][t])
    again = phase_pairs(tiny_aa, "train", frames_per_phase=2, seed=0)
    assert again.frame_indices == pairs.frame_indices              # a function of the seed
    other = phase_pairs(tiny_aa, "train", frames_per_phase=2, seed=1)
    assert other.frame_indices != pairs.frame_indices
    assert set(pairs.text_index().tolist()) == set(range(len(pairs.descriptions)))
    labelled = phase_pairs(tiny_aa, "val", frames_per_phase=1, label_frames=2, label_template="a {label}",
                           max_videos_per_class=1)
    assert len(labelled) == 2 * 1 * (3 + 2)
    assert labelled.subset([k == "label" for k in labelled.kinds]).texts[0].startswith("a ")
    assert set(labelled.phases) == {-1, 0, 1, 2}


def test_full_path_tiny_clip_encoder_text_bank_lga_backward(tiny_aa, micro_clip_config):
    from lga.data.dataset import VideoDataset, load_clips
    from lga.data.episodes import EpisodeSampler
    from lga.models.backbone import load_clip
    from lga.models.backbone_encoder import ClipFrameEncoder
    from lga.models.text_bank import TextBank

    torch.manual_seed(0)
    model, _, tok = load_clip(micro_clip_config)
    enc = ClipFrameEncoder(model, tok, train_last_blocks=1)
    assert enc.dim == 32 and any("resblocks.1" in n for n in enc.trainable)
    assert not any("resblocks.0" in n for n in enc.trainable)
    ds = VideoDataset(tiny_aa, "train", num_frames=8)
    clips, labels, _, _ = load_clips(ds, progress=False)
    bank = TextBank.build(tiny_aa, ds.class_names, model, tok, label_template="{label}")
    assert bank.steps.shape == (4, 3, 32)
    sampler = EpisodeSampler(labels.numpy(), n_way=2, k_shot=1, q_query=1, seed=0)
    ep = sampler.batch(0, 2)                                            # 2 episodes
    sup, qry = torch.from_numpy(ep.support), torch.from_numpy(ep.query)
    feats = enc(clips[torch.cat([sup.flatten(), qry.flatten()])])        # [E*(NK+NQ), T, D]
    assert feats.shape == (8, 8, 32) and feats.requires_grad
    s_f, q_f = feats[:4].view(2, 2, 8, 32), feats[4:].view(2, 2, 8, 32)
    head = LGA(32, num_heads=4)
    enc.train()
    assert not enc.model.visual.training or enc.trainable                 # partly trainable: mode follows
    loss, logits = head.loss(s_f, torch.from_numpy(ep.support_labels), q_f, torch.from_numpy(ep.query_labels),
                             2, **bank.for_episodes(ep.classes))
    loss.backward()
    assert logits.shape == (2, 2, 2) and torch.isfinite(loss)
    assert head.fusion.q_proj.weight.grad.abs().sum() > 0
    last = model.visual.transformer.resblocks[1].mlp.c_fc.weight
    assert last.grad is not None and last.grad.abs().sum() > 0
    assert model.visual.transformer.resblocks[0].mlp.c_fc.weight.grad is None

    frozen = ClipFrameEncoder(model, tok)                                  # everything frozen
    frozen.train()
    assert not frozen.model.visual.training
    out = frozen(clips[:2])
    assert out.shape == (2, 8, 32) and not out.requires_grad
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 8))


@pytest.mark.parametrize("kw", [dict(vt_features="fused"), dict(vt_features="fused", query_text="shared"),
                                dict(use_text_anatomy=False), dict(fusion_residual="query")])
def test_variants_train(kw):
    s, sl, q, ql, n, text = episode()
    head = make(**kw)
    s.requires_grad_(True)
    loss, logits = head.loss(s, sl, q, ql, n, **text)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits).all() and s.grad.abs().sum() > 0
    if kw.get("use_text_anatomy") is False:                  # video-text against the label prompt
        other = dict(text, label_text=torch.randn_like(text["label_text"]))
        assert not torch.allclose(logits, head(s, sl, q, n, **other))


def test_explain_video_text_only_has_query_phases():
    s, sl, q, ql, n, text = episode(E=1, K=1, Q=1)
    out = make("both anatomies, video-text only").explain(s, sl, q, n, **text)
    assert out["vv"] is None and out["query_side"]["masks"].shape == (1, 5, 3, 8)
    torch.testing.assert_close(out["logits"], out["vt"])


def test_tiny_clip_recipe_and_retrieval_on_phase_pairs(tiny_aa, tmp_path, micro_clip_config):
    from lga.data.atomic_actions import phase_pairs
    from lga.models import tiny_clip as tc
    from lga.models.backbone import encode_images, encode_text

    recipe = tc.tiny_clip_recipe()
    assert recipe == tc.TINY_CLIP_RECIPE and tc.tiny_clip_recipe(steps=3)["steps"] == 3
    with pytest.raises(TypeError):
        tc.tiny_clip_recipe(stpes=3)
    model, _, tok = tc.get_or_train_atomic_actions_clip(tiny_aa, tmp_path / "clip", progress=False,
                                                        config=micro_clip_config, steps=2, batch_size=8)
    assert tc.read_train_log(tmp_path / "clip")["settings"]["steps"] == 2
    pairs = phase_pairs(tiny_aa, "val", frames_per_phase=1)
    acc = tc.retrieval_accuracy(model, tok, pairs)
    with torch.no_grad():
        sims = encode_images(model, pairs.frames) @ encode_text(model, tok, pairs.descriptions).T
    assert acc == pytest.approx((sims.argmax(1) == torch.from_numpy(pairs.text_index())).float().mean().item())
    assert acc == pytest.approx(tc.retrieval_accuracy(model, tok, [pairs[i] for i in range(len(pairs))]))


def test_the_k_shot_rules():
    """"prototype" is a 1-shot episode on the frame-averaged shots; "mean_distance" averages K distances."""
    from lga.models.baselines import merge_shots
    s, sl, q, ql, n, text = episode(K=3, Q=2)
    protos, plabels = merge_shots(s, sl, n)
    assert protos.shape == (2, 5, 8, D) and torch.equal(plabels, torch.arange(5).expand(2, 5))
    torch.testing.assert_close(protos[1, 2], s[1][sl[1] == 2].mean(0))
    for row in ("+ visual anatomy", "both anatomies", "full LGA"):
        proto = make(row, shot_rule="prototype")
        torch.testing.assert_close(proto(s, sl, q, n, **text), proto(protos, plabels, q, n, **text))
        mean = make(row, shot_rule="mean_distance")
        assert not torch.allclose(mean(s, sl, q, n, **text), proto(s, sl, q, n, **text))
        s1, sl1, q1, _, _, text1 = episode(K=1, Q=2)             # K = 1: the two rules are one
        torch.testing.assert_close(proto(s1, sl1, q1, n, **text1), mean(s1, sl1, q1, n, **text1))
        # the loss's support video-text term still sees every support video
        loss, _ = proto.loss(s, sl, q, ql, n, **text)
        assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="shot_rule"):
        LGAConfig(shot_rule="median")


def test_video_text_temperature_is_a_clamped_learnable_logit_scale():
    import math
    s, sl, q, ql, n, text = episode(K=1)
    head = make("full LGA")
    assert head.vt_scale.requires_grad and not head.vv_scale.requires_grad
    assert head.vt_scale.item() == pytest.approx(math.log(1 / 0.07))
    _, det = head(s, sl, q, n, return_details=True, **text)
    loss, _ = head.loss(s, sl, q, ql, n, **text)
    loss.backward()
    assert head.vt_scale.grad is not None and head.vt_scale.grad.abs() > 0
    with torch.no_grad():
        head.vt_scale.fill_(math.log(1000.0))                           # clamped at max_logit_scale = 100
    _, hot = head(s, sl, q, n, return_details=True, **text)
    torch.testing.assert_close(hot["vt"], det["vt_similarity"] * 100)
    assert head.temperatures()["vt"] == pytest.approx(0.01)
    fixed = make("full LGA", learn_vt_temperature=False, learn_vv_temperature=True)
    assert not fixed.vt_scale.requires_grad and fixed.vv_scale.requires_grad
    assert not make("+ visual anatomy").vt_scale.requires_grad           # no video-text branch: nothing to learn
    with pytest.raises(ValueError, match="vt_temperature"):
        LGAConfig(vt_temperature=0.0)


def test_the_loss_is_the_documented_equation():
    """L = w_ce * CE(z^vv of the queries) + w_vt * CE(z^vt of the queries and the supports), each a mean."""
    import torch.nn.functional as F
    s, sl, q, ql, n, text = episode(K=2, Q=3)
    head = make("full LGA", ce_weight=0.7, vt_weight=1.3, shot_rule="mean_distance")
    loss, _ = head.loss(s, sl, q, ql, n, **text)
    _, det = head(s, sl, q, n, return_details=True, **text)
    tau = head.temperatures()["vt"]

    def z_vt(videos):                          # per phase cosine with the class's step, averaged over phases
        _, masks = head.segment(videos.flatten(0, 1))
        from lga.anatomy.visual import phase_pool
        phases = phase_pool(videos.flatten(0, 1), masks).view(*videos.shape[:2], 3, D)
        cos = F.cosine_similarity(phases[:, :, None], text["class_text"][:, None], dim=-1)   # [E, B, N, L]
        return cos.mean(-1) / tau
    ce = F.cross_entropy(det["vv"].flatten(0, 1), ql.flatten())
    vt = F.cross_entropy(torch.cat([z_vt(q), z_vt(s)], 1).flatten(0, 1), torch.cat([ql, sl], 1).flatten())
    torch.testing.assert_close(loss, 0.7 * ce + 1.3 * vt)


def test_every_ablation_step_changes_one_thing():
    from dataclasses import asdict

    from lga.models.lga import ABLATION_CHAIN, ABLATION_STEPS
    structural = {"use_visual_anatomy", "plain_phases", "segmenter", "overlap", "use_text_anatomy",
                  "use_video_video", "use_video_text", "train_with"}
    assert list(ABLATION_CHAIN)[0] == "video-video" and list(ABLATION_CHAIN)[-1] == "full LGA"
    assert all(ABLATION_CHAIN[k] == v for k, v in ABLATION_ROWS.items())      # the paper's rows, unchanged
    covered = set()
    for row, neighbour, what in ABLATION_STEPS:
        a, b = ABLATION_CHAIN[row], ABLATION_CHAIN[neighbour]
        ea, eb = a.effective(), b.effective()
        assert [k for k in ea if ea[k] != eb[k]] == [what], (row, neighbour)
        assert {k: v for k, v in asdict(a).items() if k not in structural} == \
               {k: v for k, v in asdict(b).items() if k not in structural}
        covered |= {row, neighbour}
    assert covered == set(ABLATION_CHAIN)
    # the paper's "+ textual anatomy" and "both anatomies" differ in the segmenter *and* the overlap
    e1, e2 = ABLATION_ROWS["+ textual anatomy"].effective(), ABLATION_ROWS["both anatomies"].effective()
    assert [k for k in e1 if e1[k] != e2[k]] == ["segments", "overlap"]
    # the switches spell the same computation two ways
    assert LGAConfig(use_visual_anatomy=False, plain_phases="uniform").effective() == \
        LGAConfig(segmenter="uniform", overlap=0).effective()


def test_given_segmenter_takes_the_ground_truth_phase_bounds():
    """Oracle phases: segmenter="given" cuts each video where its ground-truth bounds say."""
    from lga.models.lga import _given_bounds
    s, sl, q, ql, n, text = episode(K=2, Q=1)
    sb = torch.tensor([0, 2, 5, 8]).expand(2, 10, 4)
    qb = torch.tensor([0, 1, 6, 8]).expand(2, 5, 4)
    head = make("+ visual anatomy", segmenter="given", shot_rule="mean_distance")
    _, det = head(s, sl, q, n, return_details=True, support_bounds=sb, query_bounds=qb)
    assert torch.equal(det["support_side"]["bounds"], sb) and torch.equal(det["query_side"]["bounds"], qb)
    qm = phase_masks(qb.reshape(-1, 4), 8, overlap=1).view(2, 5, 3, 8)
    sm = phase_masks(sb.reshape(-1, 4), 8, overlap=1).view(2, 10, 3, 8)
    torch.testing.assert_close(det["vv_video_distance"], matching.ab_mhm_distance(q, qm, s, sm))
    assert not torch.allclose(det["vv"], make("+ visual anatomy", shot_rule="mean_distance")(s, sl, q, n))
    with pytest.raises(ValueError, match="given"):
        head(s, sl, q, n)
    # prototypes (K > 1) take the shots' bounds, averaged; the whole LGA trains with them
    full = make("full LGA", segmenter="given")
    loss, _ = full.loss(s, sl, q, ql, n, **text, support_bounds=sb, query_bounds=qb)
    assert torch.isfinite(loss)
    _, det = full(s, sl, q, n, return_details=True, **text, support_bounds=sb, query_bounds=qb)
    assert torch.equal(det["support_side"]["bounds"], sb[:, :5])
    # a phase without a frame (shorter than the sampling stride) takes one from a neighbour
    fixed = _given_bounds(torch.tensor([[0, 3, 3, 8], [0, 8, 8, 8], [1, 2, 4, 7]]), 3, 8, 3, "cpu")
    assert fixed.tolist() == [[0, 3, 4, 8], [0, 6, 7, 8], [0, 2, 4, 8]]
    with pytest.raises(ValueError, match="shape"):
        _given_bounds(torch.zeros(3, 3, dtype=torch.long), 3, 8, 3, "cpu")


def test_the_tiny_clip_recipe_is_a_shipped_config_file(tmp_path):
    """The tiny CLIP's recipe is configs/tiny_clip/atomic_actions.yaml (shipped as lga/configs), not a
    constant in the code; a recipe file with a key train_tiny_clip does not take is refused by name."""
    from lga.config import ConfigError, find_config, list_configs
    from lga.models import tiny_clip as tc
    from lga.yaml_io import load_yaml
    path = find_config(tc.TINY_CLIP_RECIPE_FILE)
    assert path.as_posix().endswith("configs/tiny_clip/atomic_actions.yaml")
    assert tc.TINY_CLIP_RECIPE == tc.load_tiny_clip_recipe() == load_yaml(path)
    assert not [n for n in list_configs() if n.startswith("tiny_clip/")]      # not a run config
    bad = tmp_path / "r.yaml"
    bad.write_text(path.read_text() + "stpes: 3\n")
    with pytest.raises(ConfigError, match=r"r.yaml: unknown tiny-CLIP recipe keys \['stpes'\]"):
        tc.load_tiny_clip_recipe(bad)
