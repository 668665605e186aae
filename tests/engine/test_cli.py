"""``python -m lga train`` and ``python -m lga eval`` end to end on a tiny AtomicActions."""

import json
import os
import subprocess
import sys

import pytest

from lga.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tiny(tiny_atomic_actions):
    return tiny_atomic_actions


def lga(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "lga", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def sets(root):
    out = []
    for s in [f"data.root={root}", "data.n_way=3", "model.encoder_args={dim: 32, width: 8}", "train.epochs=2",
              "train.steps_per_epoch=2", "train.milestones=[1]", "train.eval_interval=2",
              "train.val_episodes=20", "train.log_interval=1"]:
        out += ["--set", s]
    return out


def test_help_lists_train_and_eval():
    r = lga("--help")
    assert r.returncode == 0 and "train" in r.stdout and "eval" in r.stdout


def test_train_resume_and_eval_end_to_end(tiny, tmp_path, capsys):
    cfg = os.path.join(REPO, "configs", "atomic_actions_5way_1shot_protonet_cpu.yaml")
    run = tmp_path / "run"
    # train in this process through the same entry point as `python -m lga` (saves a torch start-up)
    argv = ["train", "--config", cfg, "--out", str(run), "--no-progress", *sets(tiny)]
    assert main(argv + ["--stop-after", "3"]) == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.safetensors").is_file()
    assert not (run / "summary.json").exists()          # stopped early
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err  # refuses to overwrite a run
    assert main(argv + ["--resume"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["best_step"] in (2, 4)
    assert "best val" in capsys.readouterr().out
    out = tmp_path / "result.json"
    # the run's own config.yaml is found beside the checkpoint when --config is left out
    r = lga("eval", "--checkpoint", run / "checkpoints" / "best.safetensors", "--episodes", 300,
            "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"config: {run / 'config.yaml'}" in r.stderr and "not using" not in r.stderr   # matched the run
    assert "3-way 1-shot (test)" in r.stdout and "± " in r.stdout and "(300 episodes)" in r.stdout
    res = json.loads(out.read_text())
    assert res["num_episodes"] == 300 and len(res["accuracies"]) == 300 and 0 <= res["mean"] <= 1
    assert res["meta"]["split"] == "test" and res["meta"]["checkpoint_step"] == summary["best_step"]
    # a checkpoint copied away from its run still carries its config
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes((run / "checkpoints" / "best.safetensors").read_bytes())
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(lone), "--episodes", "300", "--no-progress"]) == 0
    assert f"{100 * res['mean']:.2f} ±" in capsys.readouterr().out


def test_bad_config_values_exit_2_with_the_key(tmp_path):
    r = lga("train", "--out", tmp_path / "x", "--set", "train.lr=fast")
    assert r.returncode == 2 and "train.lr: expected a number, got 'fast'" in r.stderr
    r = lga("eval", "--checkpoint", tmp_path / "none.safetensors", "--set", "train.optimizer=rmsprop")
    assert r.returncode == 2 and f"no checkpoint {tmp_path / 'none.safetensors'}" in r.stderr
    # bad --set values for eval are checked against the checkpoint's own config: tests/engine/test_security_checkpoint.py
