"""``evaluate_split``: the short evaluation call gives exactly what the long ``evaluate_episodes`` call
it replaces gives (the same episodes, the same per-episode accuracies), for every kind of head."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lga.engine.evaluate import evaluate_episodes, evaluate_split
from lga.engine.features import SplitFeatures
from lga.models.baselines import LabelOnlyHead, OTAMHead, ProtoNet
from lga.models.lga import LGA, ablation_config
from lga.models.text_bank import TextBank

D, T, L, C, PER_CLASS = 16, 8, 3, 7, 5


@pytest.fixture(scope="module")
def split():
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(C), PER_CLASS)
    centres = torch.randn(C, 1, D, generator=g)
    feats = torch.nn.functional.normalize(centres[labels] + 4 * torch.randn(len(labels), T, D, generator=g), dim=-1)
    bank = TextBank(torch.randn(C, L, D, generator=g), torch.randn(C, D, generator=g), [f"c{i}" for i in range(C)])
    cuts = torch.sort(torch.randint(1, T, (len(labels), 2), generator=g), dim=1).values
    cuts[:, 1] = torch.maximum(cuts[:, 1], cuts[:, 0] + 1).clamp(max=T - 1)
    cuts[:, 0] = torch.minimum(cuts[:, 0], cuts[:, 1] - 1)
    bounds = torch.cat([torch.zeros(len(labels), 1, dtype=torch.long), cuts,
                        torch.full((len(labels), 1), T, dtype=torch.long)], dim=1)
    return SplitFeatures(feats, labels, [f"v{i}" for i in range(len(labels))], bank, "test", None, bounds)


HEADS = {
    "protonet": lambda: ProtoNet(),
    "otam": lambda: OTAMHead(lbda=0.5),
    "label_only": lambda: LabelOnlyHead(dim=D, num_heads=2),
    "lga": lambda: LGA(D, ablation_config("full LGA"), num_heads=2),
    "lga oracle phases": lambda: LGA(D, ablation_config("full LGA", segmenter="given"), num_heads=2),
}


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("k_shot", [1, 2])
def test_the_helper_gives_exactly_the_long_call(split, name, k_shot):
    torch.manual_seed(0)
    head = HEADS[name]().eval()
    sampler = split.sampler(5, k_shot, 1, seed=3, num_episodes=37)
    long = evaluate_episodes(head, split.features, split.labels, sampler, 37, 8, progress=False,
                             text_bank=split.bank, phase_bounds=split.phase_bounds)
    short = evaluate_split(head, split, sampler, 37, batch_episodes=8)
    assert short.episodes == long.episodes
    assert np.array_equal(short.accuracies, long.accuracies)
    assert 0 < long.mean < 1                     # the fixture is neither trivial nor hopeless
    # the episodes drawn from keywords are the sampler's
    drawn = evaluate_split(head, split, n_way=5, k_shot=k_shot, queries=1, seed=3, num_episodes=37, batch_episodes=8)
    assert drawn.episodes == long.episodes and np.array_equal(drawn.accuracies, long.accuracies)


def test_the_head_is_scored_in_eval_mode_and_its_mode_restored(split):
    """Dropout on: scoring in train mode would draw random masks; the helper scores in eval mode (the
    numbers of an eval-mode call) and gives the head back in the mode it had."""
    torch.manual_seed(0)
    head = LGA(D, ablation_config("full LGA", fusion_dropout=0.5), num_heads=2)
    sampler = split.sampler(5, 1, 1, seed=0, num_episodes=40)
    expected = evaluate_episodes(head.eval(), split.features, split.labels, sampler, progress=False,
                                 text_bank=split.bank, phase_bounds=split.phase_bounds)
    head.train()
    got = evaluate_split(head, split, sampler)
    assert head.training and all(m.training for m in head.modules())
    assert np.array_equal(got.accuracies, expected.accuracies)
    head.eval()
    evaluate_split(head, split, sampler)
    assert not head.training


def test_a_split_without_texts_or_bounds(split):
    """Any object with ``features`` and ``labels`` is a split; no ``bank`` / ``phase_bounds`` means none."""
    plain = SimpleNamespace(features=split.features, labels=split.labels)
    sampler = split.sampler(5, 1, 1, seed=0, num_episodes=30)
    got = evaluate_split(ProtoNet(), plain, sampler)
    assert np.array_equal(got.accuracies,
                          evaluate_episodes(ProtoNet(), split.features, split.labels, sampler, progress=False).accuracies)
    with pytest.raises(ValueError, match="needs the videos' phase bounds"):
        evaluate_split(LGA(D, ablation_config("+ visual anatomy", segmenter="given")), plain, sampler)


def test_episodes_must_be_named(split):
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate_split(ProtoNet(), split)
