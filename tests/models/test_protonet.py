"""The dataset reader's skip report, ProtoNet against a naive reference, training and evaluation."""

import math

import numpy as np
import pytest
import torch

from lga.data import layout
from lga.data.atomic_actions import AtomicActionsConfig, generate
from lga.data.dataset import VideoDataset, load_clips
from lga.data.episodes import EpisodeSampler
from lga.engine.evaluate import EvalResult, encode_clips, evaluate_episodes
from lga.engine.model import EpisodicModel
from lga.engine.train import episode_loss, make_task
from lga.models.baselines import ProtoNet, class_means
from lga.models.frame_encoder import FrameEncoder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    generate(root, AtomicActionsConfig(seed=1, num_classes=(8, 2, 6), videos_per_class=4,
                                       frames_per_video=16, size=32, workers=1), progress=False)
    return root


def test_bad_and_missing_videos_are_skipped_and_reported(tiny, tmp_path):
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(tiny, root)
    entries = layout.read_split_list(root, "test")
    layout.find_video(root, entries[0]).write_bytes(b"garbage")      # corrupt
    layout.find_video(root, entries[1]).write_bytes(b"")             # empty
    layout.find_video(root, entries[2]).unlink()                     # missing
    ds = VideoDataset(root, "test")
    assert ds.missing == [entries[2]] and len(ds) == len(entries) - 1
    clips, labels, keys, report = load_clips(ds, progress=False)
    assert clips.shape == (len(entries) - 3, 8, 32, 32, 3) and len(labels) == len(keys) == len(clips)
    assert set(report.skipped) == {entries[0], entries[1]} and report.missing == [entries[2]]
    assert "empty" in report.skipped[entries[1]]
    assert "skipped 2 unreadable, 1 missing" in str(report)


def test_unknown_class_in_split_list_is_named(tiny, tmp_path):
    import shutil
    root = tmp_path / "copy2"
    shutil.copytree(tiny, root)
    (root / "splits" / "val.txt").write_text("no_such_class/x\n")
    with pytest.raises(ValueError, match="no_such_class"):
        VideoDataset(root, "val")


def test_class_means_and_protonet_match_naive():
    g = torch.Generator().manual_seed(0)
    e, n, k, q, t, d = 3, 5, 2, 4, 6, 7
    s = torch.randn(e, n * k, t, d, generator=g)
    qf = torch.randn(e, n * q, t, d, generator=g)
    labels = torch.stack([torch.randperm(n * k, generator=g) % n for _ in range(e)])
    means = class_means(s, labels, n)
    logits = ProtoNet()(s, labels, qf, n)
    for i in range(e):
        for c in range(n):
            proto = s[i][labels[i] == c].mean(0)
            torch.testing.assert_close(means[i, c], proto)
            for j in range(n * q):
                naive = -((qf[i, j].mean(0) - proto.mean(0)) ** 2).sum()
                torch.testing.assert_close(logits[i, j, c], naive, rtol=1e-4, atol=1e-4)


def test_protonet_is_blind_to_frame_order():
    g = torch.Generator().manual_seed(1)
    s, qf = torch.randn(1, 5, 8, 4, generator=g), torch.randn(1, 3, 8, 4, generator=g)
    lab = torch.arange(5)[None]
    torch.testing.assert_close(ProtoNet()(s, lab, qf, 5), ProtoNet()(s, lab, qf.flip(2), 5))


def test_a_teaching_loop_on_the_engines_step_learns_and_is_deterministic(tiny):
    """Chapter 1's short loop: tasks made by make_task, each step the engine's own episode_loss."""
    clips, labels, _, _ = load_clips(VideoDataset(tiny, "train"), progress=False)
    sampler = EpisodeSampler(labels.numpy(), 5, 1, 2, seed=0)

    def run():
        torch.manual_seed(0)
        model = EpisodicModel(FrameEncoder(dim=32, width=8), ProtoNet())
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for step in range(40):
            loss, logits = episode_loss(model, make_task(sampler.episode(step), clips), n_way=5)
            assert logits.shape == (1, 10, 5)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return model.encoder, losses

    enc, losses = run()
    _, losses2 = run()
    assert losses == losses2                                  # same seed, same run
    assert np.mean(losses[-10:]) < np.mean(losses[:10])       # it learns
    feats = encode_clips(enc, clips, progress=False)
    assert feats.shape == (len(clips), 8, 32)


def test_evaluation_statistics():
    labels = np.repeat(np.arange(6), 5)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels), 6).float()[:, None, :]  # [V,1,6]
    sampler = EpisodeSampler(labels, 5, 1, 2, seed=0, num_episodes=300)
    perfect = evaluate_episodes(ProtoNet(), onehot, labels, sampler, batch_episodes=64, progress=False)
    assert perfect.mean == 1.0 and perfect.ci95 == 0.0
    noise = torch.randn(len(labels), 1, 6, generator=torch.Generator().manual_seed(0))
    chance = evaluate_episodes(ProtoNet(), noise, labels, sampler, progress=False)
    assert abs(chance.mean - 0.2) < 0.1
    accs = np.array([0.2, 0.4, 0.6, 0.8])
    r = EvalResult(accs)
    assert r.mean == pytest.approx(0.5)
    assert r.ci95 == pytest.approx(1.96 * accs.std(ddof=1) / math.sqrt(4))
    with pytest.raises(RuntimeError, match="other labels"):
        evaluate_episodes(ProtoNet(), onehot, np.roll(labels, 1), sampler, progress=False)
