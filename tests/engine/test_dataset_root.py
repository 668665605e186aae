"""lga.engine.build.resolve_dataset_root: the book's AtomicActions is generated on first use.

A reader who opens chapter 9 (or runs `lga train` with a `cpu` config) on an empty data cache needs
the default AtomicActions without having run chapter 2; every other root is left alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lga.config import load_config


@pytest.fixture
def calls(monkeypatch, tmp_path):
    monkeypatch.setenv("LGA_DATA_DIR", str(tmp_path))
    made = []

    def fake_get(root, cfg=None, progress=True):
        made.append((Path(root), cfg.seed))
        return Path(root)

    import lga.data.atomic_actions as aa
    monkeypatch.setattr(aa, "get_atomic_actions", fake_get)
    return made


def test_the_default_atomic_actions_is_generated_where_the_config_reads_it(calls, tmp_path):
    from lga.engine.build import resolve_dataset_root
    cfg = load_config("atomic_actions_5way_1shot_cpu")
    assert resolve_dataset_root(cfg) == tmp_path / "atomic_actions-seed0"
    assert calls == [(tmp_path / "atomic_actions-seed0", 0)]
    seed3 = load_config("atomic_actions_5way_1shot_cpu", ["data.root=atomic_actions-seed3"])
    resolve_dataset_root(seed3)
    assert calls[-1] == (tmp_path / "atomic_actions-seed3", 3)


@pytest.mark.parametrize("override", ["data.root=my_atomic_actions", "data.root=/elsewhere/atomic_actions-seed0",
                                      "data.dataset=hmdb51"])
def test_any_other_root_is_returned_untouched(calls, override):
    from lga.engine.build import resolve_dataset_root
    cfg = load_config("atomic_actions_5way_1shot_cpu", [override])
    assert resolve_dataset_root(cfg) == cfg.dataset_root()
    assert calls == []


def test_one_process_of_a_multi_process_run_does_not_generate(calls):
    from lga.engine.build import resolve_dataset_root
    cfg = load_config("atomic_actions_5way_1shot_cpu")
    assert resolve_dataset_root(cfg, generate=False) == cfg.dataset_root() and calls == []


def test_features_of_a_cpu_config_on_an_empty_cache_ask_for_the_dataset(calls, tmp_path):
    """FrozenFeatures.from_config, the path of chapter 9, reaches the generator before reading videos."""
    import torch

    from lga.engine.features import FrozenFeatures
    cfg = load_config("atomic_actions_5way_1shot_cpu", ["train.device=cpu"])
    with pytest.raises(FileNotFoundError, match="dataset.json"):     # the fake generator writes nothing
        FrozenFeatures.from_config(cfg, encoder=torch.nn.Linear(1, 1), splits=("test",), progress=False)
    assert calls == [(tmp_path / "atomic_actions-seed0", 0)]


def test_default_seed_inverts_default_root():
    from lga.data.atomic_actions import AtomicActionsConfig, default_root, default_seed
    for seed in (0, 3, 12):
        assert default_seed(default_root(AtomicActionsConfig(seed=seed))) == seed
    sweep = default_root(AtomicActionsConfig(seed=0, phase_cue=0.0))           # a sweep's folder: name + digest
    assert sweep.startswith("atomic_actions-seed0-") and default_seed(sweep) is None
    for other in ("atomic_actions-seed", "atomic_actions-seedx", "my_atomic_actions", "hmdb51"):
        assert default_seed(other) is None
