"""The engine's frozen-backbone mode (lga.engine.features, train.backbone=frozen), crops, and the
reported numbers (lga.reported)."""

import numpy as np
import pytest
import torch

from lga.config import load_config
from lga.engine import checkpoint as ck
from lga.engine.train import read_log, train

#: the chapter 1 recipe (conv4 frame encoder, ProtoNet) that these small runs change with --set values
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def micro_clip(micro_clip_config):
    from lga.models.backbone import load_clip
    torch.manual_seed(0)
    model, _, tok = load_clip(micro_clip_config)
    return model.eval(), tok


@pytest.fixture(scope="module")
def clip_dirs(micro_clip, micro_clip_config, tmp_path_factory):
    """Two micro CLIP checkpoints: the one of ``micro_clip`` and another with other weights."""
    from lga.models.backbone import load_clip, save_clip_checkpoint
    root = tmp_path_factory.mktemp("clips")
    save_clip_checkpoint(micro_clip[0], root / "a", micro_clip_config)
    torch.manual_seed(1)
    save_clip_checkpoint(load_clip(micro_clip_config)[0], root / "b", micro_clip_config)
    return root / "a", root / "b"


def cfg_of(root, clip_dir, *extra):
    return load_config(CONV4, [
        f"data.root={root}", "data.n_way=3", "data.train_queries=1", "model.encoder=clip",
        f"model.encoder_args={{model: {clip_dir}}}", "model.head=lga", "model.head_args={num_heads: 2}",
        "model.text=clip", "model.text_args={label_template: '{label}'}", "train.epochs=2",
        "train.steps_per_epoch=3", "train.tasks_per_step=2", "train.milestones=[1]", "train.warmup_epochs=0.5",
        "train.eval_interval=3", "train.val_episodes=20", "train.checkpoint_interval=2", "train.lr=3e-3",
        "train.log_interval=1", "train.device=cpu", "eval.episodes=40", "eval.batch_episodes=16", *extra])


@pytest.fixture(scope="module")
def splits(tiny_atomic_actions, micro_clip, one_thread):
    from lga.engine.features import SplitFeatures
    model, tok = micro_clip
    train_split = SplitFeatures.encode(model, tok, tiny_atomic_actions, "train", per_class=3)
    test = SplitFeatures.encode(model, tok, tiny_atomic_actions, "test")
    return train_split, test


def test_encode_matches_encoding_each_video_and_keeps_per_class(tiny_atomic_actions, micro_clip, splits):
    from lga.data.dataset import VideoDataset
    from lga.models.backbone import encode_frames
    model, _ = micro_clip
    train_split, test = splits
    ds = VideoDataset(tiny_atomic_actions, "test", num_frames=8)
    assert test.features.shape == (len(ds), 8, 32) and test.dim == 32
    assert list(test.labels) == list(ds.labels) and test.keys == [it.key for it in ds.items]
    with torch.no_grad():
        direct = encode_frames(model, ds[2][0][None])[0]
    assert torch.allclose(test.features[2], direct, atol=1e-5)
    assert np.bincount(train_split.labels).tolist() == [3] * 8          # per_class=3 of 4 videos, 8 classes
    assert train_split.class_names == VideoDataset(tiny_atomic_actions, "train").class_names
    assert train_split.bank.steps.shape == (8, 3, 32)
    with pytest.raises(ValueError, match="per_class"):
        type(train_split).encode(model, None, tiny_atomic_actions, "train", per_class=0)


def test_with_text_swaps_only_the_class_texts(tiny_atomic_actions, micro_clip, splits):
    from lga.data.atomic_actions import noisy_anatomy
    from lga.data.layout import read_anatomy
    model, tok = micro_clip
    _, test = splits
    noisy = test.with_text(model, tok, noisy_anatomy(read_anatomy(tiny_atomic_actions / "anatomy.json"), 1.0))
    assert noisy.features is test.features and noisy.class_names == test.class_names
    assert not torch.allclose(noisy.bank.steps, test.bank.steps)


def test_crops_lie_on_a_grid_and_draw_nothing_without_augmentation():
    from lga.engine.augment import Crops
    c = Crops(scale=0.75, grid=3, augment=True)
    views = [c.train_view(i, 32, 40) for i in range(c.num_train_views)]
    assert c.num_train_views == 9 and views[0] == (0, 0, 24, 24) and views[8] == (8, 16, 24, 24)
    assert views[4] == c.test_view(32, 40) == (4, 8, 24, 24)               # the centre is one of them
    clip = torch.arange(2 * 32 * 40 * 3).view(2, 32, 40, 3)
    assert torch.equal(Crops.apply(clip, views[8]), clip[:, 8:32, 16:40])
    rng = np.random.default_rng(0)
    assert {c.draw(rng) for _ in range(200)} == set(range(9))
    off = Crops(scale=0.75, augment=False)
    rng, ref = np.random.default_rng(0), np.random.default_rng(0)
    assert off.draw(rng) == 0 and off.num_train_views == 1 and off.train_view(5, 32, 40) == off.test_view(32, 40)
    assert rng.random() == ref.random()                                    # no random number was used
    assert Crops().apply(clip, Crops().test_view(32, 40)) is clip           # scale 1: the frame itself


@pytest.mark.parametrize("variant", ["plain", "crops", "oracle phases"])
def test_a_frozen_backbone_trains_as_reading_the_videos_would(tiny_atomic_actions, clip_dirs, tmp_path, variant):
    """Frozen mode (every frame encoded once, clips drawn from the cache, tasks batched) gives the run
    that reading and encoding the sampled clips at every step gives: same frames, same crops, same
    ground-truth phases."""
    extra = {"plain": [], "crops": ["data.augment=crop", "data.crop_scale=0.75", "data.crop_grid=2"],
             "oracle phases": ["model.head_args={num_heads: 2, segmenter: given}"]}[variant]
    extra += ["train.optimizer=sgd", "train.lr=0.3"]   # (Adam blows rounding noise of near-zero gradients up to lr)
    read = train(cfg_of(tiny_atomic_actions, clip_dirs[0], "train.backbone=finetune", *extra), tmp_path / "read",
                 progress=False)
    cached = train(cfg_of(tiny_atomic_actions, clip_dirs[0], "train.backbone=auto", *extra), tmp_path / "cached",
                   progress=False)
    assert (read.backbone, cached.backbone) == ("finetune", "frozen")      # auto: no trainable encoder part
    la, lb = read_log(read.run_dir), read_log(cached.run_dir)
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    np.testing.assert_allclose([r["loss"] for r in la if r["loss"] is not None],
                               [r["loss"] for r in lb if r["loss"] is not None], rtol=1e-4)
    heads = {k[len("head."):]: v for k, v in read.model.state_dict().items() if k.startswith("head.")}
    assert set(cached.model.state_dict()) == {"head." + k for k in heads}        # the head alone
    from lga.engine.model import build_model
    init = build_model(cfg_of(tiny_atomic_actions, clip_dirs[0], *extra), dim=32).head.state_dict()
    moved = max((v - init[k]).abs().max().item() for k, v in heads.items())
    assert moved > 1e-2                                                      # training changed the head ...
    for k, v in cached.model.head.state_dict().items():                     # ... the same way in both modes
        torch.testing.assert_close(v, heads[k], rtol=1e-4, atol=1e-5)
    assert [s for s, _, _ in read.val_history] == [s for s, _, _ in cached.val_history]
    np.testing.assert_allclose([a for _, a, _ in read.val_history], [a for _, a, _ in cached.val_history], atol=0.051)
    # the frozen run checkpoints the head alone, with the key of the encoder its features came from
    tensors, meta = ck.read_checkpoint(cached.best_checkpoint)
    assert meta["backbone"] == "frozen" and len(meta["encoder_key"]) == 64
    state = ck.model_state(tensors)
    assert state and all(k.startswith("head.") for k in state)


def test_features_carry_the_ground_truth_phases_of_their_frames(tiny_atomic_actions, clip_dirs):
    from lga.anatomy.visual import bounds_for_sampled_frames
    from lga.data.layout import read_anatomy
    from lga.data.sampling import sample_indices
    from lga.engine.augment import Crops
    from lga.engine.features import FrozenFeatures
    feats = FrozenFeatures.from_config(cfg_of(tiny_atomic_actions, clip_dirs[0]), progress=False)
    videos = read_anatomy(tiny_atomic_actions / "anatomy.json")["videos"]
    v = 5
    truth = torch.tensor([videos[feats.test.keys[v]]["phase_bounds"]])
    idx = torch.from_numpy(sample_indices(videos[feats.test.keys[v]]["num_frames"], 8, "test"))
    assert torch.equal(feats.test.phase_bounds[v], bounds_for_sampled_frames(idx, truth)[0])
    assert feats.val.phase_bounds.shape == (len(feats.val.keys), 4)
    assert torch.equal(feats.train.phase_bounds[2], torch.tensor(videos[feats.train.keys[2]]["phase_bounds"]))
    rng = np.random.default_rng(3)
    clip, bounds = feats.train.clip(2, 8, rng, Crops())
    frames = sample_indices(feats.train.frames_of(2), 8, "train", np.random.default_rng(3))
    assert clip.shape == (8, 32) and torch.equal(bounds, bounds_for_sampled_frames(
        torch.from_numpy(frames), feats.train.phase_bounds[2][None])[0])


def test_cached_features_are_reused_and_keyed_by_the_encoder(tiny_atomic_actions, clip_dirs, tmp_path, monkeypatch):
    import lga.engine.features as fe
    from lga.engine.evaluate import evaluate_checkpoint
    from lga.engine.features import FrozenFeatures
    cache = tmp_path / "cache"
    cfg = cfg_of(tiny_atomic_actions, clip_dirs[0], f"train.feature_cache={cache}")
    first = train(cfg, tmp_path / "one", progress=False)
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and sum(n.startswith("frames-") for n in files) == 1      # train frames + val
    monkeypatch.setattr(fe.FrameBank, "encode", lambda *a, **k: pytest.fail("training frames were re-encoded"))
    monkeypatch.setattr(fe, "encode_split", lambda *a, **k: pytest.fail("a split was re-encoded"))
    again = train(cfg, tmp_path / "two", progress=False)
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    monkeypatch.undo()
    other = cfg_of(tiny_atomic_actions, clip_dirs[1], f"train.feature_cache={cache}")   # other weights: new files
    feats = FrozenFeatures.from_config(other, splits=("train",), progress=False)
    assert len(list(cache.iterdir())) == 3 and feats.val is None and feats.key != FrozenFeatures.from_config(
        cfg, splits=(), progress=False).key
    # a head-only checkpoint is evaluated on its own encoder, and refused on another
    r = evaluate_checkpoint(cfg, first.best_checkpoint, episodes=30, progress=False)
    assert len(r.accuracies) == 30 and r.meta["checkpoint_step"] == first.best_step
    with pytest.raises(ValueError, match="another encoder"):
        evaluate_checkpoint(other, first.best_checkpoint, episodes=30, progress=False)


def test_frozen_runs_resume_exactly_and_share_features(tiny_atomic_actions, clip_dirs, tmp_path):
    from lga.engine.features import FrozenFeatures
    from lga.engine.model import backbone_mode, build_model
    cfg = cfg_of(tiny_atomic_actions, clip_dirs[0])
    feats = FrozenFeatures.from_config(cfg, splits=("train", "val"), progress=False)
    full = train(cfg, tmp_path / "full", features=feats, progress=False)

    class Killed(Exception):
        pass

    def kill(step, loss):
        if step == 3:
            raise Killed
        return loss
    with pytest.raises(Killed):
        train(cfg, tmp_path / "resumed", features=feats, progress=False, fault=kill)
    r = train(cfg, tmp_path / "resumed", features=feats, resume=True, progress=False)
    a, ma = ck.read_checkpoint(full.last_checkpoint)
    b, mb = ck.read_checkpoint(r.last_checkpoint)
    for k in a:
        if not k.startswith("rng/"):
            assert torch.equal(a[k], b[k]), k
    assert ma["val_history"] == mb["val_history"]
    # the features belong to one config; a fine-tuning config cannot take them
    with pytest.raises(ValueError, match="num_frames"):
        train(cfg_of(tiny_atomic_actions, clip_dirs[0], "data.num_frames=4"), tmp_path / "x", features=feats)
    with pytest.raises(ValueError, match="train.backbone=finetune"):
        train(cfg_of(tiny_atomic_actions, clip_dirs[0], "train.backbone=finetune"), tmp_path / "y", features=feats)
    # auto: frozen exactly when no encoder parameter trains
    assert backbone_mode(cfg, build_model(cfg).encoder) == "frozen"
    tuned = cfg_of(tiny_atomic_actions, clip_dirs[0], "model.encoder_args={model: %s, train_last_blocks: 1}"
                   % clip_dirs[0])
    assert backbone_mode(tuned, build_model(tuned).encoder) == "finetune"


def test_reported_numbers_cover_the_ablation_rows_and_the_benchmarks():
    from lga.models.lga import ABLATION_ROWS
    from lga.reported import ABLATION_HMDB51, MAIN_TABLE, METHODS
    assert list(ABLATION_HMDB51) == list(ABLATION_ROWS)
    assert {ds for ds, _ in MAIN_TABLE} == {"HMDB51", "UCF101", "Kinetics-100", "SSv2-Small", "SSv2-Full"}
    assert all(list(row) == list(METHODS) for row in MAIN_TABLE.values())
    assert MAIN_TABLE["HMDB51", 1]["LGA"] == ABLATION_HMDB51["full LGA"][0]
    assert all(v is None or 0 < v <= 100 for row in MAIN_TABLE.values() for v in row.values())
