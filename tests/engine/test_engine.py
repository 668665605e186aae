"""The training and evaluation engine: exact resume, DDP, guards, checkpoints, selection, statistics."""

import json
import math
import os
import shutil
import socket

import numpy as np
import pytest
import torch

from lga.config import load_config
from lga.data.episodes import EpisodeSampler
from lga.engine import checkpoint as ck
from lga.engine.evaluate import EvalResult, compare, evaluate_checkpoint, evaluate_episodes
from lga.engine.train import LRSchedule, NonFiniteLossError, read_log, train
from lga.models.baselines import ProtoNet

#: the chapter 1 recipe (conv4 frame encoder, ProtoNet) that these small runs change with --set values
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def tiny(tiny_atomic_actions):
    return tiny_atomic_actions


def small_cfg(root, *extra):
    return load_config(CONV4, [f"data.root={root}", "data.n_way=3", "data.train_queries=2",
                              "model.encoder_args={dim: 32, width: 8}", "train.epochs=2",
                              "train.steps_per_epoch=3", "train.tasks_per_step=2", "train.milestones=[1]",
                              "train.warmup_epochs=0.5", "train.eval_interval=2", "train.val_episodes=30",
                              "train.checkpoint_interval=2", "train.lr=3e-3", "eval.episodes=200",
                              "eval.batch_episodes=64", *extra])


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def full_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    return train(small_cfg(tiny), out, progress=False)


def _tensors(path):
    t, m = ck.read_checkpoint(path)
    return {k: v for k, v in t.items() if not k.startswith("rng/")}, m


@pytest.mark.parametrize("kill_at", [1, 3])
def test_killed_and_resumed_run_ends_bit_identical(tiny, full_run, tmp_path, kill_at):
    cfg = small_cfg(tiny)
    out = tmp_path / "resumed"

    def kill(step, loss):           # dies in the middle of optimizer step `kill_at` (after its forward)
        if step == kill_at:
            raise Killed
        return loss

    with pytest.raises(Killed):
        train(cfg, out, progress=False, fault=kill)
    if kill_at == 1:                 # nothing saved yet: a fresh start is the only option
        assert not (out / "checkpoints" / "last.safetensors").exists()
        shutil.rmtree(out)
        train(cfg, out, progress=False, stop_after=2)    # a clean stop at step 2, then resume
    else:
        assert ck.read_checkpoint(out / "checkpoints" / "last.safetensors")[1]["step"] == 2
    r = train(cfg, out, resume=True, progress=False)
    assert r.step == full_run.step == 6
    a, ma = _tensors(full_run.last_checkpoint)
    b, mb = _tensors(r.last_checkpoint)
    assert a.keys() == b.keys()
    for k in a:                     # model parameters, buffers and optimizer moments, bit for bit
        assert torch.equal(a[k], b[k]), k
    assert ma["optimizer"] == mb["optimizer"]              # step counts, LRs, betas
    assert ma["val_history"] == mb["val_history"] and ma["best_step"] == mb["best_step"]
    steps = [row["step"] for row in read_log(out) if row["val_accuracy"] is not None]
    assert steps == [2, 4, 6]       # rows past the checkpoint were dropped on resume


def test_resume_refuses_a_changed_config_and_an_existing_run(tiny, full_run):
    with pytest.raises(ValueError, match="train.lr"):
        train(small_cfg(tiny, "train.lr=1e-2"), full_run.run_dir, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(small_cfg(tiny), full_run.run_dir, progress=False)


def test_validation_selects_best_val_step_and_never_reads_test(tiny, tmp_path, monkeypatch):
    import lga.data.dataset as dsmod
    splits = []
    orig = dsmod.VideoDataset.__init__

    def spy(self, root, split, *a, **k):
        splits.append(split)
        orig(self, root, split, *a, **k)

    monkeypatch.setattr(dsmod.VideoDataset, "__init__", spy)
    r = train(small_cfg(tiny, "train.eval_interval=1", "train.checkpoint_interval=3"), tmp_path / "sel",
              progress=False)
    assert "test" not in splits and "val" in splits
    vals = [v for _, v, _ in r.val_history]
    assert len(vals) == 6
    assert r.best_step == r.val_history[int(np.argmax(vals))][0] and r.best_val == max(vals)
    _, meta = ck.read_checkpoint(r.best_checkpoint)
    assert meta["step"] == r.best_step and meta["val_accuracy"] == r.best_val
    # the best checkpoint really scores best_val on the validation episodes
    cfg = small_cfg(tiny)
    again = evaluate_checkpoint(load_config(CONV4, [f"data.root={tiny}", "data.n_way=3",
                                                   "model.encoder_args={dim: 32, width: 8}",
                                                   f"eval.seed={cfg.train.seed + 10_000}"]),
                                r.best_checkpoint, episodes=cfg.train.val_episodes, split="val", progress=False)
    assert again.mean == pytest.approx(r.best_val, abs=1e-9)
    rows = read_log(r.run_dir)
    assert any(row["loss"] is not None for row in rows) and (r.run_dir / "config.yaml").is_file()


def test_non_finite_loss_stops_with_a_clear_message(tiny, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at optimizer step 3.*train.lr"
                                                 r".*resume from .*last.safetensors"):
        train(small_cfg(tiny), tmp_path / "nan", progress=False,
              fault=lambda step, loss: loss * float("nan") if step == 3 else loss)
    # the checkpoint of step 2 is intact and resumable
    assert ck.read_checkpoint(tmp_path / "nan" / "checkpoints" / "last.safetensors")[1]["step"] == 2
    # before the first checkpoint there is nothing to resume, and the message says so
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written yet"):
        train(small_cfg(tiny), tmp_path / "nan0", progress=False,
              fault=lambda step, loss: loss * float("nan") if step == 0 else loss)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "c.safetensors"
    ck.save_checkpoint(path, model, {"step": 1}, optimizer=opt)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1)

    def crash(fd):
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", crash)           # dies after writing the bytes, before the rename
    with pytest.raises(OSError, match="power cut"):
        ck.save_checkpoint(path, model, {"step": 2}, optimizer=opt)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]   # no temporary left behind
    t, meta = ck.read_checkpoint(path)
    assert meta["step"] == 1
    fresh = torch.nn.Linear(3, 2)
    ck.load_model_weights(path, fresh)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])
    opt2 = torch.optim.Adam(fresh.parameters())
    opt2.load_state_dict(ck.optimizer_from_flat(t, meta["optimizer"]))
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    # a file cut short (a crash of a non-atomic writer) is reported, never half-loaded
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        ck.read_checkpoint(tmp_path / "cut.safetensors")


def test_checkpoint_restores_rng_states(tmp_path):
    import random
    model = torch.nn.Linear(2, 2)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    ck.save_checkpoint(tmp_path / "r.safetensors", model, {})
    want = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    t, m = ck.read_checkpoint(tmp_path / "r.safetensors")
    ck.set_rng_state(t, m["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_lr_schedule_warmup_then_steps():
    cfg = load_config(CONV4, ["train.epochs=10", "train.steps_per_epoch=10", "train.warmup_epochs=1",
                             "train.warmup_factor=0.01", "train.milestones=[6, 9]", "train.gamma=0.1"])
    s = LRSchedule(cfg.train)
    assert s.factor(0) == pytest.approx(0.01) and s.factor(5) == pytest.approx(0.505)
    assert s.factor(10) == 1.0 and s.factor(59) == 1.0
    assert s.factor(60) == pytest.approx(0.1) and s.factor(90) == pytest.approx(0.01)


def _ddp_worker(rank, world, port, root, out, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    r = train(small_cfg(root, "train.epochs=1"), out, progress=False)
    from safetensors.torch import save_file
    save_file({k: v.detach().contiguous() for k, v in r.model.named_parameters()},
              os.path.join(result_dir, f"rank{rank}.safetensors"))


@pytest.mark.slow          # two spawned processes (each starts torch) and a third training
def test_ddp_two_processes_on_cpu_keep_replicas_identical(tiny, tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tiny), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # the 2 x 1 tasks of a DDP step are the 2 tasks of a single-process step: same training, up to rounding
    single = train(small_cfg(tiny, "train.epochs=1"), tmp_path / "single", progress=False)
    for k, v in single.model.named_parameters():
        torch.testing.assert_close(r0[k], v.detach(), rtol=1e-4, atol=1e-5)
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["world_size"] == 2


def test_head_without_loss_falls_back_to_cross_entropy():
    from lga.engine.build import head_loss

    class Plain(torch.nn.Module):
        def forward(self, s, sl, q, n):
            return -torch.cdist(q.mean(2), s.mean(2))

    s, q = torch.randn(1, 3, 4, 5), torch.randn(1, 3, 4, 5)
    lab = torch.arange(3)[None]
    loss, logits = head_loss(Plain(), s, lab, q, lab, 3)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits[0], lab[0]).item())


def test_paired_interval_and_json(tmp_path):
    rng = np.random.default_rng(0)
    difficulty = rng.random(2000)
    a = EvalResult((difficulty + 0.1 * rng.random(2000) > 0.4).astype(float), "same")
    b = EvalResult((difficulty > 0.4).astype(float), "same")
    c = compare(a, b)
    d = a.accuracies - b.accuracies
    assert c.diff == pytest.approx(d.mean()) and c.ci95 == pytest.approx(1.96 * d.std(ddof=1) / math.sqrt(2000))
    assert c.ci95 < math.hypot(a.ci95, b.ci95)      # pairing removes the shared episode difficulty
    assert c.significant and "paired" in str(c)
    with pytest.raises(ValueError, match="different episodes"):
        compare(a, EvalResult(b.accuracies, "other"))
    with pytest.raises(ValueError, match="cannot pair"):
        compare(a, EvalResult(b.accuracies[:10]))
    a.to_json(tmp_path / "a.json")
    back = EvalResult.from_json(tmp_path / "a.json")
    assert np.array_equal(back.accuracies, a.accuracies) and back.episodes == "same"


def test_evaluation_caches_features_and_passes_text(tiny, full_run, tmp_path, monkeypatch):
    cfg = small_cfg(tiny, f"eval.feature_cache={tmp_path / 'cache'}")
    first = evaluate_checkpoint(cfg, full_run.best_checkpoint, progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    import lga.engine.features as fe
    monkeypatch.setattr(fe, "encode_split", lambda *a, **k: pytest.fail("features were recomputed"))
    second = evaluate_checkpoint(cfg, full_run.best_checkpoint, progress=False)
    assert np.array_equal(first.accuracies, second.accuracies) and first.episodes == second.episodes
    assert compare(first, second).diff == 0.0
    monkeypatch.undo()
    other = evaluate_checkpoint(cfg, full_run.last_checkpoint, progress=False)   # another checkpoint, new key
    assert len(list((tmp_path / "cache").iterdir())) == 2 and other.episodes == first.episodes

    class Bank:
        def for_episodes(self, classes):
            return {"class_text": classes.float()[..., None]}

    class Spy(ProtoNet):
        def forward(self, s, sl, q, n, class_text=None):
            assert class_text is not None and class_text.shape[:2] == (s.shape[0], n)
            return super().forward(s, sl, q, n)

    labels = np.repeat(np.arange(4), 3)
    feats = torch.randn(12, 2, 5)
    sampler = EpisodeSampler(labels, 3, 1, 1, seed=0, num_episodes=20)
    with_text = evaluate_episodes(Spy(), feats, labels, sampler, batch_episodes=7, progress=False, text_bank=Bank())
    plain = evaluate_episodes(ProtoNet(), feats, labels, sampler, batch_episodes=20, progress=False)
    assert np.array_equal(with_text.accuracies, plain.accuracies)


def _state(pid: int) -> str | None:
    """The process state letter of ``pid`` ("Z": a zombie), None when it is gone (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc (Linux)")
@pytest.mark.parametrize("guarded", [True, False])
def test_data_loader_workers_end_with_a_killed_parent(tmp_path, guarded):
    """issue 15: a DataLoader worker must not outlive its parent killed by SIGKILL (the engine's loaders
    use lga.engine.device.worker_init); the unguarded loader is the control that shows what it prevents."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time
    pid_file = tmp_path / "worker.pid"
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, time, torch
        from lga.engine.device import worker_init

        class Slow(torch.utils.data.Dataset):
            def __len__(self):
                return 2

            def __getitem__(self, i):
                with open({str(pid_file)!r}, "w") as f:
                    f.write(str(os.getpid()))
                time.sleep(60)
                return i

        for _ in torch.utils.data.DataLoader(Slow(), num_workers=1,
                                             worker_init_fn=worker_init() if {guarded} else None):
            pass
    """))
    parent = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 120
    while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
        assert parent.poll() is None, "the parent died before its worker started"
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    for _ in range(30):
        if _state(worker) in (None, "Z"):
            break
        time.sleep(0.1)
    gone = _state(worker) in (None, "Z")
    if not gone:
        os.kill(worker, signal.SIGKILL)                  # the control's orphan: end it ourselves
    assert gone == guarded


def test_open_clip_warmup_and_cosine_give_the_tiny_clips_rates_exactly():
    """The one schedule, as the tiny CLIP uses it, gives bit for bit the rates of the tiny CLIP's former
    own schedule (open_clip's: lr * (s + 1) / W, then lr * 0.5 * (1 + cos)): its weights stay the same."""
    def former(step, steps, lr, warmup):      # lga.models.tiny_clip._lr_at, as it was
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    for steps, warmup, lr in ((400, 40, 2e-3), (37, 3, 1e-3), (5, 1, 3e-4)):
        s = LRSchedule.in_steps("cosine", steps, warmup, warmup="open_clip")
        assert [s.lr(i, lr) for i in range(steps)] == [former(i, steps, lr, warmup) for i in range(steps)]


def test_train_step_is_the_hand_written_update(tiny):
    """train_step (chapter 1 calls it) equals the loop it replaced: the schedule's rate, zero_grad,
    backward, clipping, Adam's step; same losses and weights, bit for bit."""
    from lga.data.dataset import load_clips
    from lga.engine.model import build_model
    from lga.engine.train import episode_loss, make_optimizer, make_task, train_step
    from lga.data.dataset import VideoDataset
    cfg = small_cfg(tiny, "train.tasks_per_step=1", "train.warmup_epochs=1")
    t, d = cfg.train, cfg.data
    clips, labels, _, _ = load_clips(VideoDataset(tiny, "train", num_frames=4), progress=False)
    sampler = EpisodeSampler(labels.numpy(), d.n_way, d.k_shot, d.train_queries, seed=0, num_episodes=6)

    def run(engine):
        net = build_model(cfg)
        opt = make_optimizer(net.parameters(), t) if engine else torch.optim.Adam(net.parameters(), lr=t.lr,
                                                                                   weight_decay=t.weight_decay)
        sched, losses = LRSchedule(t), []
        for step in range(6):
            task = make_task(sampler.episode(step), clips)
            if engine:
                losses.append(train_step(net, [task], opt, sched, step, d.n_way, grad_clip=t.grad_clip).loss)
                continue
            for group in opt.param_groups:
                group["lr"] = t.lr * sched.factor(step)
            loss, _ = episode_loss(net, task, d.n_way)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
            opt.step()
            losses.append(loss.item())
        return losses, net.state_dict()
    (la, wa), (lb, wb) = run(False), run(True)
    assert la == lb and all(torch.equal(wa[k], wb[k]) for k in wa)
