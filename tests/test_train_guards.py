"""Faults that lose long work late or rewrite a run (issue 15, item 5): caught before training starts."""

import pytest

from lga.config import load_config
from lga.engine.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def small_cfg(root, *extra):
    return load_config(None, [f"data.root={root}", "data.n_way=3", "data.train_queries=1",
                              "model.encoder_args={dim: 16, width: 4}", "train.epochs=1",
                              "train.steps_per_epoch=4", "train.milestones=[1]", "train.warmup_epochs=0",
                              "train.eval_interval=2", "train.val_episodes=5", "train.log_interval=1", *extra])


def test_a_validation_split_too_small_for_n_way_fails_before_the_first_step(tiny_atomic_actions, tmp_path):
    # the tiny dataset has 8 training classes but only 3 validation classes: 4-way validation is impossible
    steps = []

    def count(step, loss):
        steps.append(step)
        return loss
    with pytest.raises(ValueError, match=r"(?i)validation.*4-way") as e:
        train(small_cfg(tiny_atomic_actions, "data.n_way=4"), tmp_path / "run", progress=False, fault=count)
    assert str(tiny_atomic_actions) in str(e.value)
    assert steps == []                                            # not one training step was spent
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_refused_resume_leaves_the_runs_config_untouched(tiny_atomic_actions, tmp_path):
    run = tmp_path / "run"
    train(small_cfg(tiny_atomic_actions), run, progress=False, stop_after=1)
    before = (run / "config.yaml").read_bytes()
    with pytest.raises(ValueError, match=r"--resume: the config differs from the run's in train.lr"):
        train(small_cfg(tiny_atomic_actions, "train.lr=0.5"), run, resume=True, progress=False)
    assert (run / "config.yaml").read_bytes() == before
    with pytest.raises(FileExistsError, match="--resume"):                   # and without --resume
        train(small_cfg(tiny_atomic_actions, "train.lr=0.5"), run, progress=False)
    assert (run / "config.yaml").read_bytes() == before
    # the accepted resume continues from the checkpoint with the run's config
    assert train(small_cfg(tiny_atomic_actions), run, resume=True, progress=False).step == 4
    assert (run / "config.yaml").read_bytes() == before
