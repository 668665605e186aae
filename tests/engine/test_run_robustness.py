"""Robustness of training runs (issue 23, items 2, 4, 7): one run per run folder, checkpoints that
prove what they hold and resume exactly, a full disk that is a named error and loses nothing."""

import errno
import json
import os
import signal
import struct
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lga.__main__ import main
from lga.config import load_config
from lga.engine import checkpoint as ck
from lga.engine.train import read_log, train

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

#: the conv4 ProtoNet recipe (the cpu profile's default is LGA on the tiny CLIP), made small
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"
SETS = ["data.n_way=3", "data.train_queries=1", "model.encoder_args={dim: 16, width: 4}", "train.epochs=1",
        "train.steps_per_epoch=6", "train.milestones=[1]", "train.warmup_epochs=0.5", "train.eval_interval=2",
        "train.val_episodes=5", "train.checkpoint_interval=2", "train.log_interval=2", "train.lr=3e-3"]


def small_cfg(root, *extra):
    return load_config(CONV4, [f"data.root={root}", *SETS, *extra])


def cli(root, out, *extra):
    argv = ["train", "--config", CONV4, "--out", str(out), "--no-progress", *extra]
    for item in SETS + [f"data.root={root}"]:
        argv += ["--set", item]
    return main(argv)


@pytest.fixture(scope="module")
def straight(tiny_atomic_actions, tmp_path_factory):
    """The uninterrupted run every interrupted one is compared with."""
    return train(small_cfg(tiny_atomic_actions), tmp_path_factory.mktemp("runs") / "straight", progress=False)


def _rows(run_dir):
    """log.csv without the columns that measure time."""
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "episodes_per_s")} for r in read_log(run_dir)]


def _weights(path):
    tensors, _ = ck.read_checkpoint(path)
    return {k: v for k, v in tensors.items() if not k.startswith("rng/")}


def _same_run(a, b):
    assert _rows(a.run_dir) == _rows(b.run_dir)
    wa, wb = _weights(a.last_checkpoint), _weights(b.last_checkpoint)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# ----------------------------------------------------------------------------- item 2: one run, one folder
def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_holder(tiny_atomic_actions, straight, tmp_path,
                                                                       capsys):
    """A run started on the folder of a live run (here: from inside the first one, at its first step)
    is refused, from Python and from the command line (exit 2, no traceback); the first run goes on
    undisturbed and its log and checkpoints are its own."""
    out = tmp_path / "run"
    refused = []

    def second_run(step, loss):
        if step == 1:
            with pytest.raises(FileExistsError, match=rf"{out} is in use by another run \(process {os.getpid()} on "
                                                      r".*lock file .*run.lock.*another --out") as e:
                train(small_cfg(tiny_atomic_actions), out, progress=False)
            refused.append(str(e.value))
            capsys.readouterr()
            refused.append(cli(tiny_atomic_actions, out))
            refused.append(capsys.readouterr().err)
        return loss

    first = train(small_cfg(tiny_atomic_actions), out, progress=False, fault=second_run)
    assert refused[1] == 2 and refused[2].startswith(f"lga train: {out} is in use") and "Traceback" not in refused[2]
    _same_run(first, straight)                    # the first run, as if alone
    assert not (out / "run.lock").exists()        # released at the end: the folder is free again
    assert train(small_cfg(tiny_atomic_actions), out, resume=True, progress=False).step == 6


def test_the_lock_of_a_killed_run_is_taken_over(tiny_atomic_actions, straight, tmp_path):
    """A run killed with SIGKILL leaves its run.lock behind; the kernel released its lock, so the next
    run takes it over and says whose it was."""
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from lga.engine.runlock import RunLock; "
                              "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(out)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match=rf"in use by another run \(process {child.pid} "):
            train(small_cfg(tiny_atomic_actions), out, progress=False)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (out / "run.lock").is_file()
    with pytest.warns(UserWarning, match=rf"taking over the lock of a run that ended without releasing it "
                                         rf"\(process {child.pid} on "):
        r = train(small_cfg(tiny_atomic_actions), out, progress=False)
    _same_run(r, straight)


# ----------------------------------------------------------------------------- item 4: resume, proven exact
def test_stopped_and_resumed_gives_the_rows_and_weights_of_the_uninterrupted_run(tiny_atomic_actions, straight,
                                                                                  tmp_path):
    """N steps in one go against N/2 + resume N/2, stopped between two log rows (log_interval 2, stop at
    3): the same log.csv rows (time columns aside) and the same final weights and optimizer state."""
    out = tmp_path / "run"
    assert train(small_cfg(tiny_atomic_actions), out, progress=False, stop_after=3).step == 3
    r = train(small_cfg(tiny_atomic_actions), out, resume=True, progress=False)
    assert [row["step"] for row in read_log(out)] == [2, 2, 4, 4, 6, 6]
    _same_run(r, straight)


def _rewrite(path, change):
    """Rewrite the checkpoint ``path`` with ``change(metadata, tensors)`` applied (checksums kept as stored)."""
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["lga"])
    tensors = load_file(str(path))
    change(meta, tensors)
    save_file(tensors, str(path), metadata={"lga": json.dumps(meta)})


def _flip_exponent_bit(meta, tensors):
    name = sorted(k for k in tensors if k.startswith("model/") and tensors[k].dtype == torch.float32)[0]
    flat = tensors[name].reshape(-1).clone()
    bits = struct.unpack("<I", struct.pack("<f", flat[0].item()))[0] ^ (1 << 29)      # an exponent bit
    flat[0] = struct.unpack("<f", struct.pack("<I", bits))[0]
    tensors[name] = flat.reshape(tensors[name].shape)


DAMAGES = {
    "every optimizer tensor removed": (lambda m, t: [t.pop(k) for k in [k for k in t if k.startswith("optim/")]],
                                       r"damaged: \d+ tensors missing: optim/0/exp_avg"),
    "a flipped exponent bit in a weight": (_flip_exponent_bit, r"damaged: 1 tensors do not match their checksum: model/"),
    "no checksum, no optimizer tensors": (
        lambda m, t: [m.pop(ck.CHECKSUM)] + [t.pop(k) for k in [k for k in t if k.startswith("optim/")]],
        "carries no checksum"),
    "no scheduler state": (lambda m, t: m.pop("scheduler"), "no 'scheduler'"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_resume_refuses_a_damaged_checkpoint_naming_the_file(tiny_atomic_actions, tmp_path, capsys, damage):
    out = tmp_path / "run"
    train(small_cfg(tiny_atomic_actions), out, progress=False, stop_after=2)
    last = out / "checkpoints" / "last.safetensors"
    change, message = DAMAGES[damage]
    _rewrite(last, change)
    before = last.read_bytes(), (out / "log.csv").read_bytes()
    with pytest.raises(ValueError, match=message) as e:
        train(small_cfg(tiny_atomic_actions), out, resume=True, progress=False)
    assert str(e.value).startswith(f"{last}: --resume: ")
    capsys.readouterr()
    assert cli(tiny_atomic_actions, out, "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lga train: {last}: --resume: ") and "Traceback" not in err
    assert (last.read_bytes(), (out / "log.csv").read_bytes()) == before       # nothing rewritten


def test_a_lost_optimizer_state_resumes_only_when_asked_and_the_log_says_so(tiny_atomic_actions, tmp_path, capsys):
    out = tmp_path / "run"
    train(small_cfg(tiny_atomic_actions), out, progress=False, stop_after=2)
    _rewrite(out / "checkpoints" / "last.safetensors",
             lambda m, t: [t.pop(k) for k in [k for k in t if k.startswith("optim/")]])
    assert cli(tiny_atomic_actions, out, "--restart-optimizer") == 2          # only with --resume
    capsys.readouterr()
    assert cli(tiny_atomic_actions, out, "--resume", "--restart-optimizer") == 0
    notes = [(r["step"], r["note"]) for r in read_log(out) if r["note"]]
    assert notes == [(2, "optimizer restarted: resumed with restart_optimizer, its moments start from zero here")]
    assert ck.read_checkpoint(out / "checkpoints" / "last.safetensors")[1]["step"] == 6


def test_every_checkpoint_carries_checksums_that_reading_verifies(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = ck.save_checkpoint(tmp_path / "c.safetensors", model, {"step": 1}, with_rng=False)
    tensors, meta = ck.read_checkpoint(path)
    assert set(meta[ck.CHECKSUM]) == set(tensors) == {"model/weight", "model/bias"}
    _rewrite(path, lambda m, t: t.update({"model/bias": t["model/bias"] + 1}))
    with pytest.raises(ValueError, match=rf"{path}: the checkpoint is damaged: 1 tensors do not match their "
                                         r"checksum: model/bias"):
        ck.load_model_weights(path, torch.nn.Linear(3, 2))


# ----------------------------------------------------------------------------- item 7: a full disk
def _full_disk(monkeypatch, name, times=1):
    """Make writes of files named ``name`` fail as a full disk does, half-way through, from the ``times``-th."""
    from lga.util import files as layout   # where the atomic writes open their files
    seen = []

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, key):
            return getattr(self.f, key)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, *a, **kw):
        f = open(path, *a, **kw)
        if os.path.basename(path).startswith(f".{name}."):
            seen.append(path)
            if len(seen) >= times:
                return Full(f)
        return f

    monkeypatch.setattr(layout, "open", fake_open, raising=False)


def test_a_full_disk_while_checkpointing_names_the_file_and_loses_nothing(tiny_atomic_actions, straight, tmp_path,
                                                                         monkeypatch, capsys):
    out = tmp_path / "run"
    _full_disk(monkeypatch, "last.safetensors", times=2)       # the checkpoint of step 4
    with pytest.raises(OSError) as e:
        train(small_cfg(tiny_atomic_actions), out, progress=False)
    last = out / "checkpoints" / "last.safetensors"
    msg = str(e.value)
    assert e.value.errno == errno.ENOSPC and msg.startswith(f"{last}: No space left on device (the disk is full)")
    assert "needs" in msg and "bytes are free there" in msg and f"--resume (from {last}, which is intact)" in msg
    assert ck.read_checkpoint(last)[1]["step"] == 2               # the checkpoint before is intact ...
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.safetensors", "last.safetensors"]  # no debris
    assert not (out / "run.lock").exists()
    monkeypatch.undo()                                            # ... space freed: resume, exactly
    _same_run(train(small_cfg(tiny_atomic_actions), out, resume=True, progress=False), straight)


def test_a_full_disk_while_writing_the_config_is_a_message_and_exit_1(tiny_atomic_actions, tmp_path, monkeypatch,
                                                                       capsys):
    out = tmp_path / "run"
    _full_disk(monkeypatch, "config.yaml")
    capsys.readouterr()
    assert cli(tiny_atomic_actions, out) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lga train: {out / 'config.yaml'}: No space left on device (the disk is full): "
                          "writing it needs ") and "Traceback" not in err
    assert not out.exists()                      # nothing half-made is left behind


def test_a_file_system_without_locks_runs_unlocked_with_a_warning(tiny_atomic_actions, straight, tmp_path,
                                                                   monkeypatch):
    """Where flock is not supported (some network and FUSE mounts), the run is not refused as if the
    folder were in use: it runs, and a warning says it is unprotected."""
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot lock files"):
        r = train(small_cfg(tiny_atomic_actions), tmp_path / "run", progress=False)
    _same_run(r, straight)
    assert not (tmp_path / "run" / "run.lock").exists()
