"""Faults that lose long work late or rewrite a run (issue 15, item 5): caught before training (or
encoding) starts; a damaged checkpoint is refused naming the file (item 8); the engine's worker
processes carry the guard that ends them with their parent (item 6)."""

import json
import math
import os
import sys

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lga.__main__ import main
from lga.config import load_config
from lga.engine.evaluate import evaluate_checkpoint
from lga.engine.train import train

#: the chapter 1 recipe (conv4 frame encoder, ProtoNet) that these small runs change with --set values
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


SETS = ["data.n_way=3", "data.train_queries=1", "model.encoder_args={dim: 16, width: 4}", "train.epochs=1",
        "train.steps_per_epoch=4", "train.milestones=[1]", "train.warmup_epochs=0", "train.eval_interval=2",
        "train.val_episodes=5", "train.log_interval=1"]


def small_cfg(root, *extra):
    return load_config(CONV4, [f"data.root={root}", *SETS, *extra])


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


def _damage(path, change):
    """Rewrite the checkpoint ``path`` with ``change(metadata, tensors)`` applied (in place)."""
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["lga"])
    tensors = load_file(str(path))
    change(meta, tensors)
    save_file(tensors, str(path), metadata={"lga": json.dumps(meta)})


DAMAGES = {
    "no optimizer": (lambda m, t: m.pop("optimizer"), "no 'optimizer'"),
    "no rng": (lambda m, t: m.pop("rng"), "no 'rng'"),
    "no step": (lambda m, t: m.pop("step"), "no 'step'"),
    "step not a number": (lambda m, t: m.update(step="x"), r"step 'x'"),
    "step past the end": (lambda m, t: m.update(step=99), r"0 <= step <= 4"),
    "scheduler not a mapping": (lambda m, t: m.update(scheduler=3), "TypeError"),
    "param groups not a list": (lambda m, t: m["optimizer"].update(param_groups=5), "TypeError"),
    "an optimizer tensor lost": (lambda m, t: t.pop(sorted(k for k in t if k.endswith("/exp_avg"))[0]),
                                 r"damaged: 1 tensors missing: optim/0/exp_avg"),
    "a weight lost": (lambda m, t: t.pop(sorted(k for k in t if k.startswith("model/"))[0]),
                      r"damaged: 1 tensors missing: model/"),
    "no stored config": (lambda m, t: m.pop("config"), "stores no run config"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_resuming_from_a_damaged_checkpoint_names_the_file_and_keeps_the_config(tiny_atomic_actions, tmp_path,
                                                                                 capsys, damage):
    """issue 15 (items 5, 8): a ``last.safetensors`` with missing or mistyped metadata, or tensors that do
    not fit, is an error naming the file before anything is trained or rewritten, not a KeyError /
    TypeError traceback (or one at the first optimizer step); the refused resume, which here also
    changes a key a resume may change (eval.episodes), leaves the run's config.yaml as it was."""
    run = tmp_path / "run"
    train(small_cfg(tiny_atomic_actions), run, progress=False, stop_after=1)
    last = run / "checkpoints" / "last.safetensors"
    change, message = DAMAGES[damage]
    _damage(last, change)
    before = (run / "config.yaml").read_bytes(), (run / "log.csv").read_bytes()
    steps = []
    with pytest.raises(ValueError, match=message) as e:
        train(small_cfg(tiny_atomic_actions, "eval.episodes=77"), run, resume=True, progress=False,
              fault=lambda step, loss: steps.append(step) or loss)
    assert str(e.value).startswith(f"{last}: --resume: ")
    assert steps == [] and ((run / "config.yaml").read_bytes(), (run / "log.csv").read_bytes()) == before
    # the command line says the same in one line, exit status 2
    argv = ["train", "--config", CONV4, "--out", str(run), "--resume", "--no-progress"]
    for item in SETS + [f"data.root={tiny_atomic_actions}"]:
        argv += ["--set", item]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lga train: {last}: --resume: ") and "Traceback" not in err


def test_an_undamaged_checkpoint_still_resumes(tiny_atomic_actions, tmp_path):
    """The control of the test above: the same run, its checkpoint rewritten unchanged, resumes to the end
    (here past a validation of one episode, whose ci95 is NaN)."""
    run = tmp_path / "run"
    r = train(small_cfg(tiny_atomic_actions, "train.val_episodes=1"), run, progress=False, stop_after=2)
    assert len(r.val_history) == 1 and math.isnan(r.val_history[0][2])
    _damage(run / "checkpoints" / "last.safetensors", lambda m, t: None)
    r = train(small_cfg(tiny_atomic_actions, "train.val_episodes=1", "eval.episodes=77"), run, resume=True,
              progress=False)
    assert r.step == 4 and len(r.val_history) == 2
    assert "episodes: 77" in (run / "config.yaml").read_text()      # a resumable change, written once accepted


def test_evaluation_of_a_split_too_small_for_n_way_fails_before_encoding(tiny_atomic_actions, monkeypatch):
    # the test split has 6 classes: 7-way test episodes are impossible, and no video need be encoded to know it
    from lga.engine import features
    encoded = []
    monkeypatch.setattr(features, "cached_features", lambda *a, **k: encoded.append(1) or 1 / 0)
    with pytest.raises(ValueError, match=rf"the test split of {tiny_atomic_actions} cannot supply episodes: 7-way"):
        evaluate_checkpoint(small_cfg(tiny_atomic_actions, "data.n_way=7"), None, episodes=5, progress=False)
    assert encoded == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork start method passes the spy on")
def test_the_engines_worker_processes_end_with_their_parent(tiny_atomic_actions, tmp_path, monkeypatch):
    """issue 15 (item 6): every DataLoader the engine starts (training's, and the one that encodes a split)
    runs :func:`lga.engine.device.worker_init` in its workers, the guard that
    ``tests/engine/test_engine.py::test_data_loader_workers_end_with_a_killed_parent`` shows ends a worker whose
    parent was killed. A spy around the guard records which process ran it, for which parent."""
    from lga.engine import device
    from lga.engine.features import encode_split
    from lga.engine.model import build_model

    guard, log = device._die_with_parent, tmp_path / "guarded"

    def spy(parent, worker_id):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {parent}\n")
        guard(parent, worker_id)
    monkeypatch.setattr(device, "_die_with_parent", spy)

    def guarded_workers():
        rows = [tuple(map(int, line.split())) for line in log.read_text().splitlines()] if log.is_file() else []
        log.unlink(missing_ok=True)
        return rows
    cfg = small_cfg(tiny_atomic_actions, "data.workers=1", "train.backbone=finetune")
    train(cfg, tmp_path / "run", progress=False, stop_after=1)
    rows = guarded_workers()
    assert rows and all(pid != os.getpid() and parent == os.getpid() for pid, parent in rows), rows
    from lga.data.dataset import VideoDataset
    encode_split(build_model(cfg).encoder, VideoDataset(tiny_atomic_actions, "val", 8, mode="test"), batch_size=4,
                 workers=1, progress=False)
    rows = guarded_workers()
    assert rows and all(pid != os.getpid() and parent == os.getpid() for pid, parent in rows), rows
