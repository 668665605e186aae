"""Heads on a frozen backbone (lga.engine.frozen) and the reported numbers (lga.reported)."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def micro_clip(micro_clip_config):
    from lga.models.backbone import load_clip
    torch.manual_seed(0)
    model, _, tok = load_clip(micro_clip_config)
    return model.eval(), tok


@pytest.fixture(scope="module")
def splits(tiny_atomic_actions, micro_clip, one_thread):
    from lga.engine.frozen import SplitFeatures
    model, tok = micro_clip
    train = SplitFeatures.encode(model, tok, tiny_atomic_actions, "train", per_class=3)
    test = SplitFeatures.encode(model, tok, tiny_atomic_actions, "test")
    return train, test


def test_encode_matches_encoding_each_video_and_keeps_per_class(tiny_atomic_actions, micro_clip, splits):
    from lga.data.dataset import VideoDataset
    from lga.models.backbone import encode_frames
    model, _ = micro_clip
    train, test = splits
    ds = VideoDataset(tiny_atomic_actions, "test", num_frames=8)
    assert test.features.shape == (len(ds), 8, 32) and test.dim == 32
    assert list(test.labels) == list(ds.labels) and test.keys == [it.key for it in ds.items]
    with torch.no_grad():
        direct = encode_frames(model, ds[2][0][None])[0]
    assert torch.allclose(test.features[2], direct, atol=1e-5)
    assert np.bincount(train.labels).tolist() == [3] * 8          # per_class=3 of 4 videos, 8 classes
    assert train.class_names == VideoDataset(tiny_atomic_actions, "train").class_names
    assert train.bank.steps.shape == (8, 3, 32)
    with pytest.raises(ValueError, match="per_class"):
        type(train).encode(model, None, tiny_atomic_actions, "train", per_class=0)


def test_with_text_swaps_only_the_class_texts(tiny_atomic_actions, micro_clip, splits):
    from lga.data.atomic_actions import noisy_anatomy
    from lga.data.layout import read_anatomy
    model, tok = micro_clip
    _, test = splits
    noisy = test.with_text(model, tok, noisy_anatomy(read_anatomy(tiny_atomic_actions / "anatomy.json"), 1.0))
    assert noisy.features is test.features and noisy.class_names == test.class_names
    assert not torch.allclose(noisy.bank.steps, test.bank.steps)


def test_train_head_learns_is_seeded_and_skips_heads_without_parameters(splits):
    from lga.engine.evaluate import evaluate_episodes
    from lga.engine.frozen import train_head, trainable_parameters
    from lga.models.baselines import ProtoNet
    from lga.models.lga import ABLATION_ROWS, LGA
    train, test = splits
    proto = ProtoNet()
    assert trainable_parameters(proto) == 0 and train_head(proto, train, steps=5).loss == []
    vt_only = LGA(32, ABLATION_ROWS["both anatomies, video-text only"], num_heads=2)   # fusion unused
    before = {k: v.clone() for k, v in vt_only.state_dict().items()}
    assert trainable_parameters(vt_only) > 0
    assert train_head(vt_only, train, n_way=3, queries=1, steps=5, progress=False).loss == []
    assert all(torch.equal(before[k], v) for k, v in vt_only.state_dict().items()) and not vt_only.training
    runs = []
    for _ in range(2):
        torch.manual_seed(123)                                   # train_head must not depend on this
        head = LGA(32, ABLATION_ROWS["full LGA"], num_heads=2)
        hist = train_head(head, train, n_way=3, k_shot=1, queries=1, steps=40, lr=3e-3, seed=7,
                          progress=False)
        runs.append((hist, head))
    (h1, m1), (h2, m2) = runs
    assert len(h1.loss) == 40 and h1.loss == h2.loss and not m1.training
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    torch.manual_seed(7)
    init = LGA(32, ABLATION_ROWS["full LGA"], num_heads=2)           # the weights before training
    assert not all(torch.equal(a, b) for a, b in zip(init.state_dict().values(), m1.state_dict().values()))
    r = evaluate_episodes(m1, test.features, test.labels, test.sampler(3, 1, 1, seed=0, num_episodes=50),
                          progress=False, text_bank=test.bank)
    assert len(r.accuracies) == 50


def test_train_head_stops_on_a_non_finite_loss(splits):
    from dataclasses import replace

    from lga.engine.frozen import train_head
    from lga.models.baselines import LabelOnlyHead
    train, _ = splits
    broken = replace(train, features=torch.full_like(train.features, float("nan")))
    with pytest.raises(FloatingPointError, match="non-finite loss at step 0"):
        train_head(LabelOnlyHead(dim=32), broken, n_way=3, queries=1, steps=3, progress=False)


def test_reported_numbers_cover_the_ablation_rows_and_the_benchmarks():
    from lga.models.lga import ABLATION_ROWS
    from lga.reported import ABLATION_HMDB51, MAIN_TABLE, METHODS
    assert list(ABLATION_HMDB51) == list(ABLATION_ROWS)
    assert {ds for ds, _ in MAIN_TABLE} == {"HMDB51", "UCF101", "Kinetics-100", "SSv2-Small", "SSv2-Full"}
    assert all(list(row) == list(METHODS) for row in MAIN_TABLE.values())
    assert MAIN_TABLE["HMDB51", 1]["LGA"] == ABLATION_HMDB51["full LGA"][0]
    assert all(v is None or 0 < v <= 100 for row in MAIN_TABLE.values() for v in row.values())
