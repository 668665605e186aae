"""Episodic meta-training: the one training loop behind every number of the book and ``lga train``.

:func:`train` meta-trains the model of a config (:func:`lga.engine.model.build_model`: a frame
encoder and a few-shot head) into a run directory: gradient accumulation over ``train.tasks_per_step``
tasks, warm-up + step (or cosine) schedule, AMP on CUDA, gradient clipping, a non-finite-loss guard,
validation-based model selection, atomic checkpoints, exact resume, DDP under torchrun, ``log.csv``
and ``summary.json``.

Two modes (``train.backbone``), one loop:

- ``finetune``: every step reads its clips from the videos (random frames per segment, a random
  crop) and encodes them; the encoder's trainable parts train with the head.
- ``frozen``: the encoder does not train, so every frame of every training video is encoded once
  (:class:`lga.engine.features.FrameBank`, cached on disk under ``train.feature_cache``) and each
  step draws its clips from the cached features, with the same frames and crops the videos would
  give. The head alone trains and is checkpointed. Pass ``features=`` (a
  :class:`~lga.engine.features.FrozenFeatures`) to share one encoding between many runs.
- ``auto`` (default): ``frozen`` exactly when no parameter of the encoder is trainable.

One training task is :func:`episode_loss` (the step a teaching loop calls too: chapter 1); a task is
a dict made by :func:`make_task`. Everything random (episodes, frames, crops, initialisation,
dropout) follows from ``train.seed``: the same seed gives the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.episodes import Episode, EpisodeSampler
from . import checkpoint as ckpt
from .augment import Crops
from .build import anatomy_source, build_text_bank
from .device import device_kind, init_distributed, model_device, resolve_device, to_device, worker_init
from .evaluate import evaluate_episodes
from .features import FrameBank, FrozenFeatures, encode_split, sampled_bounds, video_bounds
from .model import EpisodicModel, backbone_mode, build_model, derive_seed

__all__ = ["train", "episode_loss", "make_task", "stack_tasks", "TrainEpisodes", "LRSchedule", "RunResult",
           "read_log", "NonFiniteLossError"]

LOG_FIELDS = ("step", "epoch", "lr", "loss", "accuracy", "grad_norm", "episodes_per_s",
              "val_accuracy", "val_ci95", "best_step", "elapsed_s")
#: keys that may differ between a run and its resumption
RESUMABLE_CHANGES = ("data.workers", "data.verify", "data.allow_symlinks", "train.log_interval", "train.device",
                     "train.feature_cache", "eval", "name")


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


# ----------------------------------------------------------------------------- one task
def make_task(episode: Episode, videos: torch.Tensor, task: int = 0,
              phase_bounds: torch.Tensor | None = None) -> dict:
    """One episode as the training task :func:`episode_loss` takes.

    Args:
        episode: an :class:`~lga.data.episodes.Episode` (one, not a batch).
        videos: the pool its indices point into: uint8 clips ``[V, T, H, W, 3]`` or features ``[V, T, D]``.
        phase_bounds: ``[V, L+1]`` ground-truth phase bounds of the pool's videos over their T frames
            (for LGA's ``segmenter="given"``), or None.
    Returns ``{"task", "videos" [N*K + N*Q, ...] (supports then queries), "classes" [N],
    "support_labels" [N*K], "query_labels" [N*Q]}`` (and ``"bounds" [N*K + N*Q, L+1]``).
    """
    idx = torch.from_numpy(np.concatenate([episode.support, episode.query]))
    out = {"task": task, "videos": videos[idx], "classes": torch.from_numpy(episode.classes),
           "support_labels": torch.from_numpy(episode.support_labels),
           "query_labels": torch.from_numpy(episode.query_labels)}
    if phase_bounds is not None:
        out["bounds"] = phase_bounds[idx]
    return out


def episode_loss(net: nn.Module, item: dict, n_way: int, text_bank=None, device=None, amp_dtype=None):
    """One training task's ``(loss, logits [1, N*Q, N])``, computed on the model's device.

    ``net``: an :class:`~lga.engine.model.EpisodicModel` (or DDP around one); ``item``: a task
    (:func:`make_task`, :class:`TrainEpisodes`) whose ``videos`` are clips or cached features,
    wherever its tensors live, or E tasks of cached features stacked (:func:`stack_tasks`: one
    forward pass, the loss averaged over the E tasks); ``text_bank``: the split's
    :class:`~lga.models.text_bank.TextBank` (or None). Every input, the class texts included, is
    moved to ``device`` (default: the model's, :mod:`lga.engine.device`) before the model runs;
    ``amp_dtype`` turns on autocast there.
    """
    device = torch.device(device) if device is not None else model_device(net, default="cpu")
    classes = item["classes"] if item["classes"].dim() == 2 else item["classes"][None]
    text = text_bank.for_episodes(classes) if text_bank is not None else None
    videos, s_lab, q_lab, text, bounds = to_device(
        (item["videos"], item["support_labels"], item["query_labels"], text, item.get("bounds")), device,
        non_blocking=True)
    with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext():
        return net(videos, s_lab, q_lab, n_way, text, bounds)


def stack_tasks(items: list) -> dict:
    """Tasks of cached features (same N, K, Q) as one batch: ``videos [E, N*K + N*Q, T, D]``,
    ``classes [E, N]``, labels ``[E, N*K]`` / ``[E, N*Q]``; ``task`` is the first task's index.
    The head's loss on the batch is the mean of the E tasks' losses (each averages over the same
    number of queries and videos), so one step on it equals accumulating the E tasks' gradients."""
    keys = ("videos", "classes", "support_labels", "query_labels") + (("bounds",) if "bounds" in items[0] else ())
    out = {k: torch.stack([it[k] for it in items]) for k in keys}
    out["task"] = items[0]["task"]
    return out


class TrainEpisodes(torch.utils.data.Dataset):
    """Item ``step`` = this rank's tasks of optimizer step ``step`` (:func:`make_task` dicts).

    Global task ``j`` (0..E-1) of step ``s`` is episode ``s*E + j`` of the sampler; rank ``r`` of
    ``W`` takes tasks ``r, r+W, ...``. The frames and the crop of position ``p`` of task ``j`` come
    from ``default_rng([seed, s, j, p])``: the same whatever the rank count, worker count, where the
    run was resumed, and whether they are read from the videos (``source``: a
    :class:`~lga.data.dataset.VideoDataset`) or from a frozen backbone's cached frames (a
    :class:`~lga.engine.features.FrameBank`). With ground-truth phase bounds (the frame bank's, or
    ``phase_bounds [V, L+1]`` in the videos' frame numbers), each task also has its clips' ``bounds``.
    """

    def __init__(self, source, sampler: EpisodeSampler, tasks_per_step: int, seed: int, rank: int = 0,
                 world: int = 1, sampling: str = "random", crops: Crops | None = None, num_frames: int = 8,
                 phase_bounds: torch.Tensor | None = None):
        self.source, self.sampler, self.tasks, self.seed = source, sampler, tasks_per_step, seed
        self.phase_bounds = phase_bounds
        self.rank, self.world, self.sampling = rank, world, sampling
        self.crops = crops or Crops()
        self.num_frames = getattr(source, "num_frames", num_frames)
        self.warned: set = set()

    def __len__(self):
        return 1 << 62

    def _read(self, idx: int, rng):
        """``(clip or features [T, ...], bounds [L+1] or None)`` of video ``idx``."""
        if isinstance(self.source, FrameBank):
            return self.source.clip(idx, self.num_frames, rng, self.crops, self.sampling)
        from ..anatomy.visual import bounds_for_sampled_frames
        from ..data.video import VideoError, read_video
        item = self.source.items[idx]
        candidates = [idx] + [int(i) for i in self.sampler.by_class[item.label] if i != idx]
        for i in candidates:   # an unreadable video is replaced by the next readable one of its class
            try:
                mode = "train" if self.sampling == "random" else "test"
                clip, frames = read_video(self.source.items[i].path, self.num_frames, mode,
                                          rng if mode == "train" else None, return_indices=True,
                                          **getattr(self.source, "read_options", {}))
                view = self.crops.train_view(self.crops.draw(rng), clip.shape[1], clip.shape[2])
                bounds = None
                if self.phase_bounds is not None:
                    bounds = bounds_for_sampled_frames(torch.from_numpy(frames), self.phase_bounds[i][None])[0]
                return Crops.apply(clip, view).contiguous(), bounds
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
            read = [self._read(int(v), np.random.default_rng([self.seed, step, j, p])) for p, v in enumerate(idx)]
            task = {"task": j, "videos": torch.stack([r[0] for r in read]), "classes": torch.from_numpy(ep.classes),
                    "support_labels": torch.from_numpy(ep.support_labels),
                    "query_labels": torch.from_numpy(ep.query_labels)}
            if all(r[1] is not None for r in read):
                task["bounds"] = torch.stack([r[1] for r in read])
            out.append(task)
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
    model: nn.Module | None = None   # the trained EpisodicModel, last weights (the head alone if frozen)
    episodes_per_s: float | None = None   # training tasks per second of training-step time (this process)
    peak_memory_gib: float | None = None  # peak GPU memory allocated by this process (None on the CPU)
    backbone: str = "finetune"            # the mode the run trained in: "finetune" or "frozen"


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


def train(cfg, out_dir, resume: bool = False, progress: bool = True, stop_after: int | None = None,
          fault=None, features: FrozenFeatures | None = None) -> RunResult:
    """Meta-train the model of ``cfg`` into the run directory ``out_dir``.

    Args:
        resume: continue from ``out_dir/checkpoints/last.safetensors`` (exactly: same final weights as
            an uninterrupted run).
        stop_after: stop (as if killed) once this many optimizer steps are done (tests, notebooks).
        fault: test hook ``fault(step, loss)`` called after every micro-batch loss (may alter it).
        features: a frozen backbone's cached features for this config
            (:meth:`FrozenFeatures.from_config`); the run then trains the head on them without
            building or running the encoder (``train.backbone`` must be ``frozen`` or ``auto``).

    Returns a :class:`RunResult`. Under torchrun every rank calls this; rank 0 writes the files. The
    run directory holds ``config.yaml``, ``log.csv``, ``summary.json`` (at the end) and
    ``checkpoints/{last,best}.safetensors`` (a frozen-backbone run checkpoints the head alone, with
    the key of the encoder its features came from).
    """
    from ..config import config_diff, validate
    from ..data.dataset import VideoDataset
    from ..data.manifest import verify_dataset
    from .build import check_components

    validate(cfg)
    check_components(cfg.model)
    t, d = cfg.train, cfg.data
    if features is not None and t.backbone == "finetune":
        raise ValueError("train(features=...) trains a head on a frozen backbone's features, but the config "
                         "says train.backbone=finetune")
    dist = init_distributed(device_kind(t.device))
    device = resolve_device(t.device, dist)
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
        # refuse a changed config before anything in the run directory is rewritten
        stored = ckpt.read_metadata(last_path).get("config")
        if not isinstance(stored, dict):
            raise ValueError(f"{last_path}: --resume: the checkpoint stores no run config to check this one "
                             "against (not written by lga train?)")
        diff = config_diff(stored, resolved, ignore=RESUMABLE_CHANGES)
        if diff:
            raise ValueError(f"--resume: the config differs from the run's in {', '.join(diff)}")
    elif last_path.is_file():
        raise FileExistsError(f"{run_dir} already holds a run (checkpoints/last.safetensors); pass "
                              "--resume to continue it or choose another --out")

    # --- data (checked before anything is written or encoded)
    root = cfg.dataset_root()
    verify_dataset(root, allow_symlinks=d.allow_symlinks, skip=not d.verify)
    crops = Crops.from_config(d)
    if features is None:
        train_ds = VideoDataset(root, "train", d.num_frames, mode="train" if d.train_sampling == "random" else "test",
                                allow_symlinks=d.allow_symlinks)
        val_ds = VideoDataset(root, "val", d.num_frames, mode="test", allow_symlinks=d.allow_symlinks)
        train_labels, val_labels = train_ds.labels, val_ds.labels
    else:
        features.check(cfg)
        train_labels, val_labels = features.train.labels, features.val.labels
    sampler = EpisodeSampler(train_labels, d.n_way, d.k_shot, d.train_queries, seed=t.seed,
                             num_episodes=cfg.total_steps * t.tasks_per_step)
    try:    # fail now, not at the first validation, eval_interval steps later
        EpisodeSampler(val_labels, d.n_way, d.k_shot, d.test_queries, num_episodes=t.val_episodes)
    except ValueError as e:
        raise ValueError(f"the validation split of {root} cannot supply episodes: {e}") from None

    # --- model: encoder + head, or the head alone on a frozen backbone's features
    if features is None:
        model = build_model(cfg, device).to(device)
        mode = backbone_mode(cfg, model.encoder)
        if mode == "frozen":
            if dist.world > 1:
                raise ValueError("train.backbone=frozen runs in one process (a head on cached features); "
                                 "start it without torchrun")
            features = FrozenFeatures.from_config(cfg, encoder=model.encoder, splits=("train", "val"),
                                                  device=device, progress=progress and dist.main)
            model = EpisodicModel(None, model.head)
    else:
        mode = "frozen"
        model = build_model(cfg, device, dim=features.dim).to(device)
    if mode == "frozen":
        text_train = features.train.bank if cfg.model.text != "none" else None
        text_val = features.val.bank if cfg.model.text != "none" else None
        source, train_bounds = features.train, None
    else:
        anatomy = anatomy_source(cfg, root)
        text_train = build_text_bank(cfg.model, train_ds.class_names, encoder=model.encoder, anatomy=anatomy,
                                     device=device)
        text_val = build_text_bank(cfg.model, val_ds.class_names, encoder=model.encoder, anatomy=anatomy,
                                   device=device)
        source = train_ds
        gt = video_bounds(root, [it.key for it in train_ds.items])
        train_bounds = gt[0] if gt is not None else None
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters" + (
            " (a head without parameters on a frozen backbone: evaluate it as it is, "
            "lga.engine.evaluate.evaluate_checkpoint(cfg, None))" if mode == "frozen" else ""))
    opt = make_optimizer(params, t)
    sched = LRSchedule(t)
    use_amp = t.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ck_extra = {"backbone": mode, "encoder_key": features.key if mode == "frozen" else None}

    start, best_val, best_step, val_hist = 0, None, None, []
    if resume:
        start, best_val, best_step, val_hist = _restore(last_path, model, opt, sched, scaler, cfg.total_steps)
    if dist.main:       # only now: a refused --resume leaves the run's config.yaml as it was
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")

    ddp = None
    if dist.grouped:
        from torch.nn.parallel import DistributedDataParallel
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=t.find_unused_parameters)
    net = ddp or model

    log = RunLog(run_dir, start if resume else None, enabled=dist.main)
    total = cfg.total_steps if stop_after is None else min(cfg.total_steps, stop_after)
    data = TrainEpisodes(source, sampler, t.tasks_per_step, t.seed, dist.rank, dist.world, d.train_sampling,
                         crops, d.num_frames, train_bounds)
    loader = torch.utils.data.DataLoader(data, sampler=_StepSampler(start, total), batch_size=None,
                                         num_workers=d.workers if mode == "finetune" else 0, collate_fn=_identity,
                                         persistent_workers=False, pin_memory=device.type == "cuda",
                                         worker_init_fn=worker_init())
    ck_every = t.checkpoint_interval or t.eval_interval
    # a frozen backbone's tasks go through the head in one batched pass (no dropout RNG per task then)
    batch_tasks = mode == "frozen" and ddp is None and t.tasks_per_step > 1

    def save(step):
        meta = {"step": step, "best_val": best_val, "best_step": best_step, "val_history": val_hist,
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "config": resolved, "world_size": dist.world, **ck_extra}
        ckpt.save_checkpoint(last_path, model, meta, optimizer=opt)

    def validate_now(step):
        if mode == "frozen":
            feats, labels, bounds = features.val.features, features.val.labels, features.val.phase_bounds
        else:
            feats, labels, keys, _ = encode_split(model.encoder, val_ds, batch_size=cfg.eval.encode_batch,
                                                  device=device, progress=False, crops=crops)
            bounds = sampled_bounds(root, keys, d.num_frames)
        vs = EpisodeSampler(np.asarray(labels), d.n_way, d.k_shot, d.test_queries, seed=t.seed + 10_000,
                            num_episodes=t.val_episodes)
        model.head.eval()
        r = evaluate_episodes(model.head, feats.to(device), labels, vs, batch_episodes=cfg.eval.batch_episodes,
                              progress=False, text_bank=text_val, device=device, phase_bounds=bounds)
        model.head.train()
        return r

    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0, seen, window = time.perf_counter(), 0, []
    train_s = 0.0                       # seconds spent in training steps (not validation, not checkpoints)
    bar = tqdm(total=total, initial=start, desc=f"meta-training ({mode} backbone)",
               disable=not (progress and dist.main), dynamic_ncols=True)
    step = start
    try:
        for step_items in loader:
            t_step = time.perf_counter()
            lr = sched.apply(opt, step)
            opt.zero_grad(set_to_none=True)
            losses, accs = [], []
            if batch_tasks:   # a frozen backbone's tasks: one batched forward (the mean of their losses)
                step_items = [stack_tasks(step_items)]
            for m, item in enumerate(step_items):
                torch.manual_seed(derive_seed(t.seed, 2, step, item["task"]))   # dropout etc.
                sync = ddp is None or m == len(step_items) - 1
                with (contextlib.nullcontext() if sync else ddp.no_sync()):
                    loss, logits = episode_loss(net, item, sampler.n_way, text_train, device,
                                                amp_dtype if use_amp else None)
                    if fault is not None:
                        loss = fault(step, loss)
                    _guard(loss, step, item["task"], dist, device, last_path)
                    scaler.scale(loss / len(step_items)).backward()     # DDP averages over ranks
                losses.append(loss.item())
                hits = logits.detach().argmax(-1).flatten().cpu() == item["query_labels"].flatten()
                accs.append(hits.float().mean().item())
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
            train_s += time.perf_counter() - t_step
            loss_v, acc_v = _mean_across(losses, dist, device), _mean_across(accs, dist, device)
            window.append((loss_v, acc_v))
            bar.update(1)
            elapsed = time.perf_counter() - t0
            if step % t.log_interval == 0 or step == total:
                lw, aw = np.mean([w[0] for w in window]), np.mean([w[1] for w in window])
                window = []
                bar.set_postfix(loss=f"{lw:.3f}", acc=f"{aw:.2f}", lr=f"{lr:.2e}")
                log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), lr=lr, loss=float(lw),
                          accuracy=float(aw), grad_norm=float(gnorm), episodes_per_s=seen / max(train_s, 1e-9),
                          elapsed_s=round(elapsed, 2))
            if step % t.eval_interval == 0 or step == cfg.total_steps:
                if dist.main:
                    r = validate_now(step)
                    val_hist.append((step, r.mean, r.ci95))
                    if best_val is None or r.mean > best_val:
                        best_val, best_step = r.mean, step
                        ckpt.save_checkpoint(best_path, model, {"step": step, "val_accuracy": r.mean,
                                                                "val_ci95": r.ci95, "config": resolved,
                                                                **ck_extra}, with_rng=False)
                    log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), val_accuracy=r.mean,
                              val_ci95=r.ci95, best_step=best_step, elapsed_s=round(elapsed, 2))
                    if progress:
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
                   "val_history": val_hist, "episodes_per_s": seen / max(train_s, 1e-9),
                   "steps_this_process": step - start, "world_size": dist.world,
                   "peak_memory_gib": peak_memory_gib(device), "backbone": mode}
        from ..data.layout import write_json
        write_json(run_dir / "summary.json", summary)
    result = RunResult(run_dir, step, best_step, best_val, val_hist, last_path,
                       best_path if best_path.is_file() else None, model,
                       episodes_per_s=seen / max(train_s, 1e-9), peak_memory_gib=peak_memory_gib(device),
                       backbone=mode)
    if dist.initialised_here:
        import torch.distributed as tdist
        tdist.destroy_process_group()
    return result


def _restore(path, model, opt, sched, scaler, total: int):
    """Load a run's ``last`` checkpoint into the model, optimizer, schedule, scaler and RNGs; return
    ``(step, best_val, best_step, val_history)``. A checkpoint whose metadata or tensors do not fit
    (missing or mistyped keys, weights of another model) raises ValueError naming the file."""
    tensors, meta = ckpt.read_checkpoint(path)

    def number(v, kind=(int, float)):
        return isinstance(v, kind) and not isinstance(v, bool)
    try:
        problem = ckpt.weights_mismatch(model.state_dict(), ckpt.model_state(tensors))
        if problem:
            raise ValueError(f"its weights do not fit this model: {problem}")
        start, best_val, best_step = meta["step"], meta["best_val"], meta["best_step"]
        val_hist = [tuple(v) for v in meta.get("val_history", [])]     # (step, accuracy, ci95: nan for 1 episode)
        if not (number(start, int) and 0 <= start <= total and (best_val is None or number(best_val))
                and (best_step is None or number(best_step, int))
                and all(len(v) == 3 and all(number(x) for x in v) for v in val_hist)):
            raise ValueError(f"step {start!r}, best_val {best_val!r}, best_step {best_step!r} or val_history "
                             f"is not what lga train writes (0 <= step <= {total})")
        model.load_state_dict(ckpt.model_state(tensors))
        opt.load_state_dict(ckpt.optimizer_from_flat(tensors, meta["optimizer"]))
        sched.load_state_dict(meta["scheduler"])
        if meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        ckpt.set_rng_state(tensors, meta["rng"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{path}: --resume: cannot continue from this checkpoint ({what}); it is damaged or "
                         "not a checkpoint of this run") from None
    return start, best_val, best_step, val_hist


def peak_memory_gib(device) -> float | None:
    """Peak GPU memory allocated on ``device`` since the last reset, in GiB (None off CUDA)."""
    device = torch.device(device)
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _guard(loss, step, task, dist, device, last_path):
    finite = torch.isfinite(loss.detach()).all()
    if dist.grouped:
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
    if dist.grouped:
        import torch.distributed as tdist
        x = torch.tensor([v], device=device, dtype=torch.float64)
        tdist.all_reduce(x)
        v = x.item() / dist.world
    return v


def _barrier(dist):
    if dist.grouped:
        import torch.distributed as tdist
        tdist.barrier()
