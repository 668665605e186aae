"""Episodic meta-training: sample an episode, score its queries, step on the cross-entropy.

This is the loop of chapter 1 (ProtoNet). A model is a frame ``encoder`` (clips -> ``[B, T, D]``)
and a ``head`` with the small-head interface of :mod:`lga.models.baselines`. Everything random
(episodes, initialisation, dropout) follows from ``seed``: the same seed gives the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..data.episodes import EpisodeSampler
from . import checkpoint as ckpt
from .build import build_encoder, build_head, build_text_bank, encoder_dim, head_loss


@dataclass
class TrainHistory:
    """Loss and accuracy of every training episode (for learning curves)."""

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)


def train_episodic(encoder, head, clips: torch.Tensor, labels, sampler: EpisodeSampler, steps: int,
                   lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
                   progress: bool = True) -> TrainHistory:
    """Meta-train ``encoder`` (and ``head``'s parameters, if any) on ``steps`` episodes.

    Args:
        clips: uint8 ``[V, T, H, W, 3]`` of the training videos (see :func:`lga.data.dataset.load_clips`).
        labels: ``[V]`` their labels; ``sampler`` must have been built on the same labels.
        sampler: episode ``i`` of training step ``i`` is ``sampler.episode(i)``.
    """
    torch.manual_seed(seed)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    hist = TrainHistory()
    encoder.train()
    bar = tqdm(range(steps), desc="meta-training", disable=not progress)
    for step in bar:
        ep = sampler.episode(step)
        idx = torch.from_numpy(np.concatenate([ep.support, ep.query]))
        feats = encoder(clips[idx])                                   # [N*K + N*Q, T, D]
        n_s = len(ep.support)
        logits = head(feats[None, :n_s], torch.from_numpy(ep.support_labels)[None],
                      feats[None, n_s:], sampler.n_way)[0]            # [N*Q, N]
        target = torch.from_numpy(ep.query_labels)
        loss = F.cross_entropy(logits, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at training step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.loss.append(loss.item())
        hist.accuracy.append((logits.argmax(-1) == target).float().mean().item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(hist.loss[-20:]) / len(hist.loss[-20:]):.3f}")
    encoder.eval()
    return hist


# ============================================================================ the full engine
# ``python -m lga train``: configs, gradient accumulation over tasks, warm-up + step schedule, AMP on
# CUDA, clipping, a non-finite-loss guard, validation-based model selection, atomic checkpoints,
# exact resume, DDP (torchrun) with NCCL on GPUs and gloo on CPUs.


LOG_FIELDS = ("step", "epoch", "lr", "loss", "accuracy", "grad_norm", "episodes_per_s",
              "val_accuracy", "val_ci95", "best_step", "elapsed_s")
#: keys that may differ between a run and its resumption
RESUMABLE_CHANGES = ("data.workers", "train.log_interval", "train.device", "eval", "name")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient); the message says where and what to try."""


class LRSchedule:
    """LR multiplier as a pure function of the optimizer step: linear warm-up, then step / cosine / constant.

    ``factor(s)`` for step s (0-based): ``warmup_factor -> 1`` linearly over the warm-up steps, then
    ``gamma ** (number of milestones reached)`` (``step``), a half cosine to 0 (``cosine``), or 1.
    Being a function of the step, its whole state is the step: resuming restores it exactly.
    """

    def __init__(self, train_cfg):
        t = train_cfg
        self.kind, self.gamma = t.schedule, t.gamma
        self.steps_per_epoch, self.total = t.steps_per_epoch, t.epochs * t.steps_per_epoch
        self.warmup = int(round(t.warmup_epochs * t.steps_per_epoch))
        self.warmup_factor = t.warmup_factor
        self.milestones = [int(round(m * t.steps_per_epoch)) for m in t.milestones]
        self.step_count = 0

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return self.warmup_factor + (1 - self.warmup_factor) * step / self.warmup
        if self.kind == "step":
            return self.gamma ** sum(step >= m for m in self.milestones)
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))
        return 1.0

    def apply(self, optimizer, step: int) -> float:
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.factor(step)
        self.step_count = step
        return optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step_count, "warmup": self.warmup, "milestones": self.milestones}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])


class EpisodicModel(nn.Module):
    """Encoder + head as one module (what DDP wraps): clips of an episode in, ``(loss, logits)`` out."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, clips, support_labels, query_labels, n_way: int, text: dict | None = None):
        n_s = support_labels.shape[-1]
        feats = self.encoder(clips)                                    # [N*K + N*Q, T, D]
        return head_loss(self.head, feats[None, :n_s], support_labels[None], feats[None, n_s:],
                         query_labels[None], n_way, text)


# ----------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group that torchrun describes in the environment (no-op when WORLD_SIZE<=1)."""
    import torch.distributed as tdist
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not tdist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local)
        tdist.init_process_group(backend=backend)
        created = True
    return Dist(rank, world, local, created)


def _resolve_device(name: str, dist: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.world > 1:
        return torch.device("cuda", dist.local_rank)
    return torch.device(name)


# ----------------------------------------------------------------------------- data
def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a function of ``parts`` (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


class TrainEpisodes(torch.utils.data.Dataset):
    """Item ``step`` = this rank's episodes of optimizer step ``step``, with their frames read.

    Global task ``j`` (0..E-1) of step ``s`` is episode ``s*E + j`` of the sampler; rank ``r`` of
    ``W`` takes tasks ``r, r+W, ...``. Train-mode frames of position ``p`` of task ``j`` come from
    ``default_rng([seed, s, j, p])``: the same frames whatever the rank count, worker count, or
    where the run was resumed.
    """

    def __init__(self, dataset, sampler: EpisodeSampler, tasks_per_step: int, seed: int, rank: int = 0,
                 world: int = 1, sampling: str = "random"):
        self.dataset, self.sampler, self.tasks, self.seed = dataset, sampler, tasks_per_step, seed
        self.rank, self.world, self.sampling = rank, world, sampling
        self.warned: set = set()

    def __len__(self):
        return 1 << 62

    def _read(self, idx: int, rng) -> torch.Tensor:
        from ..data.video import VideoError, read_video
        item = self.dataset.items[idx]
        candidates = [idx] + [int(i) for i in self.sampler.by_class[item.label] if i != idx]
        for i in candidates:   # an unreadable video is replaced by the next readable one of its class
            try:
                mode = "train" if self.sampling == "random" else "test"
                return read_video(self.dataset.items[i].path, self.dataset.num_frames, mode,
                                  rng if mode == "train" else None)
            except VideoError as e:
                if e.path not in self.warned:
                    self.warned.add(e.path)
                    warnings.warn(f"skipping unreadable training video ({e})")
        raise RuntimeError(f"no readable video of class {item.class_name!r}")

    def __getitem__(self, step: int):
        out = []
        for j in range(self.rank, self.tasks, self.world):
            ep = self.sampler.episode(step * self.tasks + j)
            idx = np.concatenate([ep.support, ep.query])
            clips = torch.stack([self._read(int(v), np.random.default_rng([self.seed, step, j, p]))
                                 for p, v in enumerate(idx)])
            out.append({"task": j, "clips": clips, "classes": torch.from_numpy(ep.classes),
                        "support_labels": torch.from_numpy(ep.support_labels),
                        "query_labels": torch.from_numpy(ep.query_labels)})
        return out


class _StepSampler(torch.utils.data.Sampler):
    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


def _identity(x):
    return x


# ----------------------------------------------------------------------------- logs
class RunLog:
    """CSV log (and TensorBoard when installed) of a run directory; resumption drops rows past the checkpoint."""

    def __init__(self, run_dir: Path, resume_step: int | None, enabled: bool = True):
        self.path = run_dir / "log.csv"
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        rows = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)
        try:  # optional
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)
        except Exception:
            self.tb = None

    def write(self, **row):
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow({k: row.get(k, "") for k in LOG_FIELDS})
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and v != "":
                    self.tb.add_scalar(k, v, row["step"])

    def close(self):
        if self.tb is not None:
            self.tb.close()


def read_log(run_dir) -> list[dict]:
    """Rows of a run's ``log.csv`` with numbers parsed (empty cells become None)."""
    with open(Path(run_dir) / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in rows]


# ----------------------------------------------------------------------------- the run
@dataclass
class RunResult:
    """What :func:`train` leaves behind."""

    run_dir: Path
    step: int
    best_step: int | None
    best_val: float | None
    val_history: list            # [(step, accuracy, ci95)]
    last_checkpoint: Path
    best_checkpoint: Path | None
    model: nn.Module | None = None   # the trained EpisodicModel (encoder + head), last weights


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and not key.endswith("_args"):
            out += _config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def make_optimizer(params, t) -> torch.optim.Optimizer:
    if t.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    elif t.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])
    return opt


def build_model(cfg, device=None) -> EpisodicModel:
    """Encoder and head of a config, seeded by ``train.seed`` (same seed, same initial weights)."""
    torch.manual_seed(cfg.train.seed)
    encoder = build_encoder(cfg.model, device=device)
    head = build_head(cfg.model, encoder_dim(encoder))
    return EpisodicModel(encoder, head)


def _load_anatomy(cfg, root: Path):
    """Where the class anatomy comes from: ``data.anatomy`` (a file or a shipped dataset name), else the
    dataset's own ``anatomy.json``, else the anatomy shipped for the benchmark, else None."""
    if cfg.data.anatomy:
        return cfg.data.anatomy
    if (root / "anatomy.json").is_file():
        return str(root)
    from ..anatomy.shipped import SHIPPED_FILES
    return cfg.data.dataset if cfg.data.dataset in SHIPPED_FILES else None


def train(cfg, out_dir, resume: bool = False, progress: bool = True, stop_after: int | None = None,
          fault=None) -> RunResult:
    """Meta-train the model of ``cfg`` into the run directory ``out_dir``.

    Args:
        resume: continue from ``out_dir/checkpoints/last.safetensors`` (exactly: same final weights as
            an uninterrupted run).
        stop_after: stop (as if killed) once this many optimizer steps are done (tests, notebooks).
        fault: test hook ``fault(step, loss)`` called after every micro-batch loss (may alter it).

    Returns a :class:`RunResult`. Under torchrun every rank calls this; rank 0 writes the files.
    """
    from ..config import validate
    from ..data.dataset import VideoDataset
    from .evaluate import encode_split, evaluate_episodes

    validate(cfg)
    from .build import check_components
    check_components(cfg.model)
    t, d = cfg.train, cfg.data
    kind = "cuda" if (t.device.startswith("cuda") or (t.device == "auto" and torch.cuda.is_available())) else "cpu"
    dist = init_distributed(kind)
    device = _resolve_device(t.device, dist)
    run_dir = Path(out_dir)
    ck_dir = run_dir / "checkpoints"
    last_path, best_path = ck_dir / "last.safetensors", ck_dir / "best.safetensors"
    if t.tasks_per_step % dist.world:
        raise ValueError(f"train.tasks_per_step={t.tasks_per_step} must be a multiple of the number of "
                         f"processes ({dist.world})")
    resolved = cfg.to_dict()
    if resume:          # every rank checks (one node, one file system), so none is left waiting
        if not last_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint {last_path} to resume from")
    elif last_path.is_file():
        raise FileExistsError(f"{run_dir} already holds a run (checkpoints/last.safetensors); pass "
                              "--resume to continue it or choose another --out")
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")

    # --- data
    root = cfg.dataset_root()
    train_ds = VideoDataset(root, "train", d.num_frames, mode="train" if d.train_sampling == "random" else "test")
    sampler = EpisodeSampler(train_ds.labels, d.n_way, d.k_shot, d.train_queries, seed=t.seed,
                             num_episodes=cfg.total_steps * t.tasks_per_step)
    val_ds = VideoDataset(root, "val", d.num_frames, mode="test")
    anatomy = _load_anatomy(cfg, root)

    # --- model, optimizer
    model = build_model(cfg, device).to(device)
    text_train = build_text_bank(cfg.model, train_ds.class_names, encoder=model.encoder, anatomy=anatomy,
                                 device=device)
    text_val = build_text_bank(cfg.model, val_ds.class_names, encoder=model.encoder, anatomy=anatomy,
                               device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = make_optimizer(params, t)
    sched = LRSchedule(t)
    use_amp = t.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    start, best_val, best_step, val_hist = 0, None, None, []
    if resume:
        tensors, meta = ckpt.read_checkpoint(last_path)
        diff = [k for k in _config_diff(meta["config"], resolved)
                if not any(k == c or k.startswith(c + ".") for c in RESUMABLE_CHANGES)]
        if diff:
            raise ValueError(f"--resume: the config differs from the run's in {', '.join(diff)}")
        model.load_state_dict(ckpt.model_state(tensors))
        opt.load_state_dict(ckpt.optimizer_from_flat(tensors, meta["optimizer"]))
        sched.load_state_dict(meta["scheduler"])
        if meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        ckpt.set_rng_state(tensors, meta["rng"])
        start, best_val, best_step = meta["step"], meta["best_val"], meta["best_step"]
        val_hist = [tuple(v) for v in meta.get("val_history", [])]

    ddp = None
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=t.find_unused_parameters)
    net = ddp or model

    log = RunLog(run_dir, start if resume else None, enabled=dist.main)
    total = cfg.total_steps if stop_after is None else min(cfg.total_steps, stop_after)
    data = TrainEpisodes(train_ds, sampler, t.tasks_per_step, t.seed, dist.rank, dist.world, d.train_sampling)
    loader = torch.utils.data.DataLoader(data, sampler=_StepSampler(start, total), batch_size=None,
                                         num_workers=d.workers, collate_fn=_identity,
                                         persistent_workers=False, pin_memory=device.type == "cuda")
    ck_every = t.checkpoint_interval or t.eval_interval

    def save(step):
        meta = {"step": step, "best_val": best_val, "best_step": best_step, "val_history": val_hist,
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "config": resolved, "world_size": dist.world}
        ckpt.save_checkpoint(last_path, model, meta, optimizer=opt)

    def validate_now(step):
        feats, labels, _, _ = encode_split(model.encoder, val_ds, batch_size=cfg.eval.encode_batch,
                                           device=device, progress=False)
        vs = EpisodeSampler(labels.numpy(), d.n_way, d.k_shot, d.test_queries, seed=t.seed + 10_000,
                            num_episodes=t.val_episodes)
        model.head.eval()
        r = evaluate_episodes(model.head, feats, labels, vs, batch_episodes=cfg.eval.batch_episodes,
                              progress=False, text_bank=text_val)
        model.head.train()
        return r

    model.train()
    t0, seen, window = time.perf_counter(), 0, []
    bar = tqdm(total=total, initial=start, desc="meta-training", disable=not (progress and dist.main),
               dynamic_ncols=True)
    step = start
    try:
        for step_items in loader:
            lr = sched.apply(opt, step)
            opt.zero_grad(set_to_none=True)
            losses, accs = [], []
            for m, item in enumerate(step_items):
                torch.manual_seed(derive_seed(t.seed, 2, step, item["task"]))   # dropout etc.
                clips = item["clips"].to(device, non_blocking=True)
                s_lab, q_lab = item["support_labels"].to(device), item["query_labels"].to(device)
                text = text_train.for_episodes(item["classes"][None].to(device)) if text_train else None
                sync = ddp is None or m == len(step_items) - 1
                with (contextlib.nullcontext() if sync else ddp.no_sync()):
                    with torch.autocast("cuda", dtype=amp_dtype) if use_amp else contextlib.nullcontext():
                        loss, logits = net(clips, s_lab, q_lab, sampler.n_way, text)
                    if fault is not None:
                        loss = fault(step, loss)
                    _guard(loss, step, item["task"], dist, device, last_path)
                    scaler.scale(loss / t.tasks_per_step * dist.world).backward()
                losses.append(loss.item())
                accs.append((logits.detach().argmax(-1).flatten().cpu() == item["query_labels"]).float().mean().item())
            scaler.unscale_(opt)
            gnorm = (torch.nn.utils.clip_grad_norm_(params, t.grad_clip) if t.grad_clip
                     else torch.nn.utils.clip_grad_norm_(params, float("inf")))
            if not scaler.is_enabled() and not torch.isfinite(gnorm):
                raise NonFiniteLossError(f"non-finite gradient norm at step {step}; lower train.lr or set "
                                         f"train.grad_clip (last checkpoint: {last_path})")
            scaler.step(opt)
            scaler.update()
            step += 1
            seen += t.tasks_per_step
            loss_v, acc_v = _mean_across(losses, dist, device), _mean_across(accs, dist, device)
            window.append((loss_v, acc_v))
            bar.update(1)
            elapsed = time.perf_counter() - t0
            if step % t.log_interval == 0 or step == total:
                lw, aw = np.mean([w[0] for w in window]), np.mean([w[1] for w in window])
                window = []
                bar.set_postfix(loss=f"{lw:.3f}", acc=f"{aw:.2f}", lr=f"{lr:.2e}")
                log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), lr=lr, loss=float(lw),
                          accuracy=float(aw), grad_norm=float(gnorm), episodes_per_s=seen / max(elapsed, 1e-9),
                          elapsed_s=round(elapsed, 2))
            if step % t.eval_interval == 0 or step == cfg.total_steps:
                if dist.main:
                    r = validate_now(step)
                    val_hist.append((step, r.mean, r.ci95))
                    if best_val is None or r.mean > best_val:
                        best_val, best_step = r.mean, step
                        ckpt.save_checkpoint(best_path, model, {"step": step, "val_accuracy": r.mean,
                                                                "val_ci95": r.ci95, "config": resolved},
                                             with_rng=False)
                    log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), val_accuracy=r.mean,
                              val_ci95=r.ci95, best_step=best_step, elapsed_s=round(elapsed, 2))
                    bar.write(f"step {step}: val {100 * r.mean:.2f} ± {100 * r.ci95:.2f} % "
                              f"(best {100 * best_val:.2f} at step {best_step})")
                _barrier(dist)
            if step % ck_every == 0 or step == total:
                if dist.main:
                    save(step)
                _barrier(dist)
    finally:
        bar.close()
        log.close()
    if dist.main and step == cfg.total_steps:
        summary = {"steps": step, "best_step": best_step, "best_val_accuracy": best_val,
                   "val_history": val_hist, "episodes_per_s": seen / max(time.perf_counter() - t0, 1e-9),
                   "world_size": dist.world}
        from ..data.layout import write_json
        write_json(run_dir / "summary.json", summary)
    result = RunResult(run_dir, step, best_step, best_val, val_hist, last_path,
                       best_path if best_path.is_file() else None, model)
    if dist.initialised_here:
        import torch.distributed as tdist
        tdist.destroy_process_group()
    return result


def _guard(loss, step, task, dist, device, last_path):
    finite = torch.isfinite(loss.detach()).all()
    if dist.world > 1:
        import torch.distributed as tdist
        flag = finite.to(device=device, dtype=torch.int32).reshape(1)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MIN)
        finite = bool(flag.item())
    if not bool(finite):
        where = (f"resume from {last_path} with --resume once fixed" if Path(last_path).is_file() else
                 "no checkpoint was written yet, so start the run again once fixed")
        raise NonFiniteLossError(
            f"non-finite loss ({loss.detach().float().flatten()[0].item()}) at optimizer step {step}, task {task}; "
            f"training stopped. Try a lower train.lr, train.grad_clip, or train.amp=false; {where}")


def _mean_across(values, dist, device) -> float:
    v = float(np.mean(values))
    if dist.world > 1:
        import torch.distributed as tdist
        x = torch.tensor([v], device=device, dtype=torch.float64)
        tdist.all_reduce(x)
        v = x.item() / dist.world
    return v


def _barrier(dist):
    if dist.world > 1:
        import torch.distributed as tdist
        tdist.barrier()
