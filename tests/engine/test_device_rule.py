"""The placement rule of :mod:`lga.engine.device`, checked without a GPU.

CI has no GPU, and the bug this guards against (issue 12: validation features on the CPU, the head
and its text bank on CUDA, episode indices moved to the *features'* device) only shows on one. PyTorch's
fake-tensor mode runs a model "on CUDA" on a CPU-only machine: tensors carry a device and a shape but
no data, and an operation that mixes devices raises the same "Expected all tensors to be on the same
device" error as a real GPU. So each test builds the model on a fake ``cuda`` device, feeds it inputs
that live on the CPU (as the engine's caches and samplers make them), and calls the engine's functions
that run a model: whatever they forget to move, the test sees.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

# private but stable: torch.compile uses them
from torch._subclasses.fake_tensor import unset_fake_temporarily

from lga.data.episodes import EpisodeSampler
from lga.engine import evaluate
from lga.engine.device import model_device, to_device
from lga.engine.evaluate import score_episodes
from lga.engine.model import EpisodicModel
from lga.engine.train import episode_loss, make_task, stack_tasks
from lga.models.baselines import LabelOnlyHead, OTAMHead, ProtoNet
from lga.models.frame_encoder import FrameEncoder
from lga.models.lga import LGA, ablation_config
from lga.models.text_bank import TextBank

D, T, L = 16, 8, 3
CUDA = torch.device("cuda", 0)


def _mismatch(exc: BaseException) -> bool:
    return "same device" in str(exc)


def _bank(num_classes=6):
    g = torch.Generator().manual_seed(0)
    return TextBank(torch.randn(num_classes, L, D, generator=g), torch.randn(num_classes, D, generator=g),
                    [f"class{i}" for i in range(num_classes)])


def _features(videos=24, num_classes=6):
    g = torch.Generator().manual_seed(1)
    labels = np.repeat(np.arange(num_classes), videos // num_classes)
    return torch.nn.functional.normalize(torch.randn(videos, T, D, generator=g), dim=-1), labels


def _on_fake_cuda(build):
    with torch.device(CUDA):
        return build()


def test_the_harness_sees_a_tensor_left_on_the_cpu(fake):
    """Negative control: calling a fake-CUDA head directly on CPU features fails as on a real GPU."""
    head = _on_fake_cuda(lambda: LGA(D, ablation_config("full LGA"), num_heads=2))
    assert model_device(head) == CUDA
    feats, labels = _features()
    ep = EpisodeSampler(labels, 5, 1, 1, seed=0).batch(0, 2)
    text = _bank().for_episodes(torch.as_tensor(ep.classes))
    with pytest.raises(Exception) as info:
        head(feats[torch.as_tensor(ep.support)], torch.as_tensor(ep.support_labels),
             feats[torch.as_tensor(ep.query)], 5, **text)
    assert _mismatch(info.value)


@pytest.mark.parametrize("row", ["full LGA", "both anatomies", "both anatomies, video-text only", "video-video"])
@pytest.mark.parametrize("bank_on_cuda", [False, True])
def test_score_episodes_runs_on_the_heads_device(fake, row, bank_on_cuda):
    head = _on_fake_cuda(lambda: LGA(D, ablation_config(row), num_heads=2))
    bank = _bank()
    if bank_on_cuda:
        bank = bank.to(CUDA)
    feats, labels = _features()                      # CPU: as encode_split returns them
    ep = EpisodeSampler(labels, 5, 2, 1, seed=0).batch(0, 3)
    # the engine passes its model's device; a row without parameters ("video-video") has no device of its own
    logits = score_episodes(head, feats, ep, 5, bank, device=model_device(head, default=CUDA))
    assert logits.device == CUDA and tuple(logits.shape) == (3, 5, 5)


@pytest.mark.parametrize("bank_on_cuda", [False, True])
def test_evaluate_episodes_scores_cpu_features_with_a_cuda_head(fake, monkeypatch, bank_on_cuda):
    """Issue 12's crash as it happened: validation and ``lga eval`` call
    :func:`~lga.engine.evaluate.evaluate_episodes` with the features on the CPU (``encode_split``,
    the frozen-feature cache) and the head on CUDA, the text bank on either, and no device argument.

    Each batch of episodes is scored in the fake mode; the rest of ``evaluate_episodes`` reads values
    (the label check, the accuracies), which fake tensors do not have, so it runs on real tensors and
    gets real logits of the fake ones' shape. A head called on the features' device, as before the
    fix, fails here: on CPU tensors against fake CUDA parameters ("same device"), or moving a real
    tensor to CUDA without a driver."""
    head = _on_fake_cuda(lambda: LGA(D, ablation_config("full LGA"), num_heads=2))
    bank = _bank().to(CUDA) if bank_on_cuda else _bank()
    real_score, scored = evaluate.score_episodes, []

    def score(*args, **kwargs):
        with fake:
            logits = real_score(*args, **kwargs)
        scored.append((logits.device, tuple(logits.shape)))
        return torch.zeros(logits.shape)

    monkeypatch.setattr(evaluate, "score_episodes", score)
    with unset_fake_temporarily():                          # real CPU tensors, as encode_split returns them
        feats, labels = _features()
        sampler = EpisodeSampler(labels, 5, 1, 1, seed=0, num_episodes=6)
        result = evaluate.evaluate_episodes(head, feats, labels, sampler, 6, batch_episodes=4, progress=False,
                                            text_bank=bank)
    assert scored == [(CUDA, (4, 5, 5)), (CUDA, (2, 5, 5))] and len(result.accuracies) == 6


def test_oracle_phase_bounds_follow_the_rule(fake):
    """segmenter="given": the videos' ground-truth bounds (CPU, as the features carry them) move with
    everything else, in scoring and in a training step."""
    head = _on_fake_cuda(lambda: LGA(D, ablation_config("full LGA", segmenter="given"), num_heads=2))
    feats, labels = _features()
    bounds = torch.tensor([0, 2, 5, 8]).expand(len(labels), 4).clone()
    ep = EpisodeSampler(labels, 5, 2, 1, seed=0).batch(0, 3)
    assert score_episodes(head, feats, ep, 5, _bank(), phase_bounds=bounds).device == CUDA
    model = EpisodicModel(None, head)
    task = make_task(EpisodeSampler(labels, 5, 1, 2, seed=0).episode(0), feats, phase_bounds=bounds)
    loss, _ = episode_loss(model, task, 5, _bank(), device=model_device(model))
    assert loss.device == CUDA


def test_score_episodes_moves_cuda_features_to_a_cpu_head(fake):
    head = LGA(D, ablation_config("full LGA"), num_heads=2)               # real CPU parameters
    feats, labels = _features()
    feats = feats.to(CUDA)                                                  # features cached on the GPU
    ep = EpisodeSampler(labels, 5, 1, 1, seed=0).batch(0, 2)
    assert score_episodes(head, feats, ep, 5, _bank().to(CUDA)).device == torch.device("cpu")


@pytest.mark.parametrize("make_head", [ProtoNet, OTAMHead, lambda: LabelOnlyHead(dim=D, num_heads=2)])
def test_baseline_heads_follow_the_rule(fake, make_head):
    head = _on_fake_cuda(make_head)
    feats, labels = _features()
    ep = EpisodeSampler(labels, 5, 1, 1, seed=0).batch(0, 2)
    dev = model_device(head, default=CUDA)                                  # parameter-free heads: where asked
    logits = score_episodes(head, feats, ep, 5, _bank(), device=dev)
    assert logits.device == CUDA


def test_training_step_moves_clips_labels_and_texts_to_the_model(fake):
    """The engine's training step (:func:`lga.engine.train.episode_loss`) with the model on CUDA and a
    task as the data loader yields it (CPU tensors). (Backward is not run: the autograd engine asks the
    CUDA driver for a context even for fake tensors; gradients live where their parameters live.)"""
    model = _on_fake_cuda(lambda: EpisodicModel(FrameEncoder(dim=D, width=4, blocks=2),
                                                LGA(D, ablation_config("full LGA"), num_heads=2)))
    g = torch.Generator().manual_seed(0)
    item = {"task": 0, "videos": torch.randint(0, 255, (5 + 10, T, 16, 16, 3), dtype=torch.uint8, generator=g),
            "classes": torch.arange(5), "support_labels": torch.arange(5),
            "query_labels": torch.arange(5).repeat_interleave(2)}
    loss, logits = episode_loss(model, item, 5, _bank(), device=model_device(model))
    assert loss.device == CUDA and logits.device == CUDA and loss.requires_grad


@pytest.mark.parametrize("batched", [False, True])
def test_frozen_backbone_step_moves_cached_features_to_the_head(fake, batched):
    """Frozen mode: a head alone on (fake) CUDA, tasks of cached CPU features, one at a time or
    stacked into one batched pass (:func:`lga.engine.train.stack_tasks`)."""
    model = _on_fake_cuda(lambda: EpisodicModel(None, LGA(D, ablation_config("full LGA"), num_heads=2)))
    feats, labels = _features()                                             # CPU, as FrameBank.clip gives them
    sampler = EpisodeSampler(labels, 5, 1, 2, seed=0)
    tasks = [make_task(sampler.episode(i), feats, task=i) for i in range(2)]
    item = stack_tasks(tasks) if batched else tasks[0]
    loss, logits = episode_loss(model, item, 5, _bank(), device=model_device(model))
    assert loss.device == CUDA and logits.device == CUDA and loss.requires_grad
    assert tuple(logits.shape) == ((2 if batched else 1), 10, 5)


def test_to_device_recurses_and_leaves_modules_alone():
    bank = _bank()
    moved = to_device({"a": [torch.zeros(1), (torch.ones(1), 3)], "bank": bank, "m": torch.nn.Linear(1, 1)},
                      "cpu")
    assert moved["a"][1][1] == 3 and isinstance(moved["a"][1], tuple) and moved["bank"] is bank
    assert to_device(None, "cpu") is None and to_device(torch.zeros(1), None).device.type == "cpu"
    assert model_device(ProtoNet()) is None and model_device(ProtoNet(), default="cpu") == torch.device("cpu")
