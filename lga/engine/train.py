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

The loop is made of named pieces: :func:`setup_run` (everything before the first step, checked
before anything is written), :func:`train_step` (one optimizer step: the step a teaching loop calls
too, chapter 1), :func:`validate_run` and :func:`record_validation` (model selection),
:func:`save_last` and :func:`restore` (checkpoints). One training task is :func:`episode_loss`; a
task is a dict made by :func:`make_task`. The optimizer and the learning-rate schedule are
:mod:`lga.engine.optim`'s, shared with the tiny CLIP's training. Everything random (episodes, frames, crops, initialisation,
dropout) follows from ``train.seed``: the same seed gives the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..anatomy.visual import bounds_for_sampled_frames
from ..config import config_diff, validate
from ..data.episodes import Episode, EpisodeSampler
from ..data.manifest import verify_dataset
from ..optim import LRSchedule, NonFiniteLossError, make_optimizer, optimizer_step
from ..util.files import DISK_FULL_ERRNOS, DiskFullError, atomic_write_text, write_json
from . import checkpoint as ckpt
from .augment import Crops
from .build import anatomy_source, build_text_bank, check_components, resolve_dataset_root
from .device import device_kind, init_distributed, model_device, resolve_device, to_device, worker_init
from .evaluate import evaluate_split
from .features import FrameBank, FrozenFeatures, SplitFeatures, encode_split, sampled_bounds, video_bounds
from .model import EpisodicModel, backbone_mode, build_model, derive_seed
from .runlock import RunLock, RunLockedError

__all__ = ["train", "setup_run", "train_step", "validate_run", "record_validation", "save_last", "restore",
           "training_data", "Run", "StepResult", "episode_loss", "make_task", "stack_tasks", "TrainEpisodes",
           "RunResult", "read_log"]
# also importable from here (documented in lga.optim): LRSchedule, make_optimizer, NonFiniteLossError

LOG_FIELDS = ("step", "epoch", "lr", "loss", "accuracy", "grad_norm", "episodes_per_s",
              "val_accuracy", "val_ci95", "best_step", "elapsed_s", "note")
#: columns of ``log.csv`` that hold text, not numbers
LOG_TEXT_FIELDS = ("note",)
#: keys that may differ between a run and its resumption
RESUMABLE_CHANGES = ("data.workers", "data.verify", "data.allow_symlinks", "train.log_interval", "train.device",
                     "train.feature_cache", "eval", "name")


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
        from ..data.video import VideoError, read_video  # heavy: PyAV, only where videos are decoded
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
            with open(self.path, newline="") as f:      # (a row cut short by a full disk is dropped)
                rows = [{k: r.get(k) or "" for k in LOG_FIELDS} for r in csv.DictReader(f)
                        if (r.get("step") or "").isdigit() and int(r["step"]) <= resume_step]
        text = io.StringIO()
        w = csv.DictWriter(text, LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path, text.getvalue())
        try:  # optional
            from torch.utils.tensorboard import SummaryWriter  # optional: tensorboard may be missing
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)
        except Exception:
            self.tb = None

    def write(self, **row):
        if not self.enabled:
            return
        text = io.StringIO()
        csv.DictWriter(text, LOG_FIELDS).writerow({k: row.get(k, "") for k in LOG_FIELDS})
        try:
            with open(self.path, "a", newline="") as f:
                f.write(text.getvalue())
        except OSError as e:
            if e.errno in DISK_FULL_ERRNOS:
                raise DiskFullError(self.path, len(text.getvalue()), e) from e
            raise
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
    return [{k: (v if k in LOG_TEXT_FIELDS else float(v)) if v not in ("", None) else None for k, v in r.items()}
            for r in rows]

# ----------------------------------------------------------------------------- one step
@dataclass
class StepResult:
    """What one optimizer step of :func:`train_step` did: its learning rate, the mean loss and query
    accuracy of its tasks (and each task's), the gradient norm before clipping."""

    lr: float
    loss: float
    accuracy: float
    grad_norm: float
    losses: list
    accuracies: list


def train_step(net: nn.Module, tasks: list, optimizer, schedule: LRSchedule, step: int, n_way: int, *,
               params=None, grad_clip: float | None = None, seed: int | None = None, text_bank=None,
               device=None, amp_dtype=None, scaler=None, fault=None, last_checkpoint=None) -> StepResult:
    """Optimizer step ``step`` of episodic meta-training on ``tasks`` (:func:`make_task` dicts, or one
    :func:`stack_tasks` batch): the step's learning rate, the mean of the tasks' losses
    (:func:`episode_loss`, accumulated one task at a time), gradient clipping, the update
    (:func:`lga.engine.optim.optimizer_step`). :func:`train` runs it at every step; a teaching loop
    calls it too (chapter 1).

    Args:
        net: an :class:`~lga.engine.model.EpisodicModel`, or DDP around one (one all-reduce per step).
        optimizer, schedule: :func:`~lga.engine.optim.make_optimizer`, :class:`~lga.engine.optim.LRSchedule`.
        params: the parameters whose gradient norm is clipped to ``grad_clip`` (default: the optimizer's).
        seed: when given, torch's global seed is set to a function of ``(seed, step, task)`` before each
            task (dropout and the like: the same whatever the rank count or where a run resumed).
        text_bank, device, amp_dtype: as :func:`episode_loss`; ``scaler``: a ``GradScaler`` (AMP).
        fault: test hook ``fault(step, loss) -> loss`` called on every task's loss.
        last_checkpoint: named in the message of a non-finite loss (:class:`NonFiniteLossError`).
    """
    ddp = net if isinstance(net, DistributedDataParallel) else None

    def loss_of(task):
        if seed is not None:
            torch.manual_seed(derive_seed(seed, 2, step, task["task"]))   # dropout etc.
        loss, logits = episode_loss(net, task, n_way, text_bank, device, amp_dtype)
        return (fault(step, loss) if fault is not None else loss), logits

    def check(loss, task):
        _guard(loss, step, task["task"], ddp is not None, device or model_device(net, default="cpu"),
               last_checkpoint)

    try:
        s = optimizer_step(optimizer, schedule, step, tasks, loss_of, params=params, grad_clip=grad_clip,
                           scaler=scaler, no_sync=ddp.no_sync if ddp is not None else None, check=check)
    except NonFiniteLossError as e:
        if last_checkpoint is None or "gradient norm" not in str(e):
            raise
        raise NonFiniteLossError(f"{e} (last checkpoint: {last_checkpoint})") from None
    losses = [loss.item() for loss, _ in s.outputs]
    accs = [(logits.detach().argmax(-1).flatten().cpu() == task["query_labels"].flatten()).float().mean().item()
            for (_, logits), task in zip(s.outputs, tasks)]
    return StepResult(s.lr, float(np.mean(losses)), float(np.mean(accs)), float(s.grad_norm), losses, accs)


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


@dataclass
class Run:
    """One process's run, as :func:`setup_run` prepares it for the loop of :func:`train`: the config,
    the run folder, the data, the model, the optimizer, and where training stands (``step``, best
    validation so far, validation history)."""

    cfg: Any
    run_dir: Path
    dist: Any
    device: torch.device
    mode: str                       # "finetune" or "frozen"
    model: EpisodicModel
    net: nn.Module                  # the model, or DDP around it
    params: list
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: Any
    amp_dtype: Any                  # autocast dtype (None: no AMP)
    sampler: EpisodeSampler         # the training episodes
    source: Any                     # the training videos (VideoDataset) or the frozen backbone's FrameBank
    train_bounds: Any               # ground-truth phase bounds of the training videos, or None
    text_train: Any
    text_val: Any
    crops: Crops
    root: Path
    val_ds: Any                     # the validation videos (fine-tuning) or None
    features: FrozenFeatures | None
    ck_extra: dict                  # written into every checkpoint: backbone mode, encoder key
    resolved: dict                  # the config as a mapping
    step: int = 0
    best_val: float | None = None
    best_step: int | None = None
    val_history: list = field(default_factory=list)
    log_window: list = field(default_factory=list)   # (loss, accuracy) of the steps since the last log row
    optimizer_restarted: bool = False                # resumed with a fresh optimizer (restart_optimizer)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.safetensors"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "checkpoints" / "best.safetensors"


def _check_run_dir(run_dir: Path, resume: bool, resolved: dict) -> None:
    """Refuse ``--resume`` without a checkpoint or with a changed config, and a new run over an old one."""
    last_path = run_dir / "checkpoints" / "last.safetensors"
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


def setup_run(cfg, out_dir, resume: bool = False, progress: bool = True, features: FrozenFeatures | None = None,
              dist=None, restart_optimizer: bool = False) -> Run:
    """Everything :func:`train` needs before its first step, checked before anything is written:
    the processes and device, the run folder (``--resume`` or a new run), the data, the model (with
    a frozen backbone: the head, on features encoded once), the optimizer and schedule, and, with
    ``resume``, the state of ``checkpoints/last.safetensors``. Then ``config.yaml`` is written.
    Arguments as :func:`train`; ``dist``: the processes (default :func:`~lga.engine.device.init_distributed`)."""
    from ..data.dataset import VideoDataset  # heavy: PyAV, only where videos are decoded

    validate(cfg)
    check_components(cfg.model)
    t, d = cfg.train, cfg.data
    if features is not None and t.backbone == "finetune":
        raise ValueError("train(features=...) trains a head on a frozen backbone's features, but the config "
                         "says train.backbone=finetune")
    dist = dist or init_distributed(device_kind(t.device))
    device = resolve_device(t.device, dist)
    run_dir = Path(out_dir)
    if t.tasks_per_step % dist.world:
        raise ValueError(f"train.tasks_per_step={t.tasks_per_step} must be a multiple of the number of "
                         f"processes ({dist.world})")
    resolved = cfg.to_dict()
    _check_run_dir(run_dir, resume, resolved)

    # --- data (checked before anything is written or encoded)
    root = resolve_dataset_root(cfg, generate=dist.world == 1)     # torchrun: generate it first
    verify_dataset(root, allow_symlinks=d.allow_symlinks, skip=not d.verify)
    crops = Crops.from_config(d)
    train_ds = val_ds = None
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
    mode, model, features = _build(cfg, device, dist, features, progress)
    if mode == "frozen":
        text_train = features.train.bank if cfg.model.text != "none" else None
        text_val = features.val.bank if cfg.model.text != "none" else None
        source, train_bounds, val_ds = features.train, None, None
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
    use_amp = t.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    run = Run(cfg, run_dir, dist, device, mode, model, model, params, opt, LRSchedule(t),
              torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16),
              amp_dtype if use_amp else None, sampler, source, train_bounds, text_train, text_val, crops, root,
              val_ds, features, {"backbone": mode, "encoder_key": features.key if mode == "frozen" else None},
              resolved)
    if resume:
        restore(run, restart_optimizer=restart_optimizer)
    if dist.main:       # only now: a refused --resume leaves the run's config.yaml as it was
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
    if dist.grouped:
        run.net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=t.find_unused_parameters)
    return run


def _build(cfg, device, dist, features, progress):
    """``(mode, model, features)``: the model of ``cfg`` on ``device``; with a frozen backbone the head
    alone, and the features it trains on (encoded here unless given)."""
    if features is not None:
        return "frozen", build_model(cfg, device, dim=features.dim).to(device), features
    model = build_model(cfg, device).to(device)
    mode = backbone_mode(cfg, model.encoder)
    if mode == "frozen":
        if dist.world > 1:
            raise ValueError("train.backbone=frozen runs in one process (a head on cached features); "
                             "start it without torchrun")
        features = FrozenFeatures.from_config(cfg, encoder=model.encoder, splits=("train", "val"),
                                              device=device, progress=progress and dist.main)
        model = EpisodicModel(None, model.head)
    return mode, model, features


def training_data(run: Run, stop: int) -> torch.utils.data.DataLoader:
    """The tasks of steps ``run.step`` to ``stop`` (:class:`TrainEpisodes`): read from the videos by
    ``data.workers`` worker processes, or drawn from a frozen backbone's cached frames in this process."""
    d, t = run.cfg.data, run.cfg.train
    data = TrainEpisodes(run.source, run.sampler, t.tasks_per_step, t.seed, run.dist.rank, run.dist.world,
                         d.train_sampling, run.crops, d.num_frames, run.train_bounds)
    return torch.utils.data.DataLoader(data, sampler=_StepSampler(run.step, stop), batch_size=None,
                                       num_workers=d.workers if run.mode == "finetune" else 0, collate_fn=_identity,
                                       persistent_workers=False, pin_memory=run.device.type == "cuda",
                                       worker_init_fn=worker_init())


def validate_run(run: Run):
    """The model's accuracy on ``train.val_episodes`` validation episodes (the same ones at every
    validation of the run): an :class:`~lga.engine.evaluate.EvalResult`."""
    cfg, d, t, device = run.cfg, run.cfg.data, run.cfg.train, run.device
    if run.mode == "frozen":
        val = replace(run.features.val, bank=run.text_val)
    else:
        feats, labels, keys, _ = encode_split(run.model.encoder, run.val_ds, batch_size=cfg.eval.encode_batch,
                                              device=device, progress=False, crops=run.crops)
        val = SplitFeatures(feats, labels.numpy(), keys, run.text_val, "val",
                            phase_bounds=sampled_bounds(run.root, keys, d.num_frames))
    vs = EpisodeSampler(val.labels, d.n_way, d.k_shot, d.test_queries, seed=t.seed + 10_000,
                        num_episodes=t.val_episodes)
    return evaluate_split(run.model.head, val, vs, batch_episodes=cfg.eval.batch_episodes, device=device)


def record_validation(run: Run, step: int, r) -> bool:
    """Add a validation result to the run's history; a new best is checkpointed as
    ``checkpoints/best.safetensors``. Returns whether it is the best so far."""
    run.val_history.append((step, r.mean, r.ci95))
    if run.best_val is not None and r.mean <= run.best_val:
        return False
    run.best_val, run.best_step = r.mean, step
    ckpt.save_checkpoint(run.best_path, run.model, {"step": step, "val_accuracy": r.mean, "val_ci95": r.ci95,
                                                    "config": run.resolved, **run.ck_extra}, with_rng=False)
    return True


def save_last(run: Run, step: int) -> Path:
    """Checkpoint everything a resume needs as ``checkpoints/last.safetensors`` (atomically): weights,
    optimizer, schedule, scaler, RNG states, validation history."""
    meta = {"step": step, "best_val": run.best_val, "best_step": run.best_step, "val_history": run.val_history,
            "scheduler": run.schedule.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
            "config": run.resolved, "world_size": run.dist.world, "log_window": run.log_window, **run.ck_extra}
    return ckpt.save_checkpoint(run.last_path, run.model, meta, optimizer=run.optimizer)


def train(cfg, out_dir, resume: bool = False, progress: bool = True, stop_after: int | None = None,
          fault=None, features: FrozenFeatures | None = None, restart_optimizer: bool = False) -> RunResult:
    """Meta-train the model of ``cfg`` into the run directory ``out_dir``.

    Args:
        resume: continue from ``out_dir/checkpoints/last.safetensors`` (exactly: same final weights as
            an uninterrupted run).
        stop_after: stop (as if killed) once this many optimizer steps are done (tests, notebooks).
        fault: test hook ``fault(step, loss)`` called after every micro-batch loss (may alter it).
        features: a frozen backbone's cached features for this config
            (:meth:`FrozenFeatures.from_config`); the run then trains the head on them without
            building or running the encoder (``train.backbone`` must be ``frozen`` or ``auto``).
        restart_optimizer: with ``resume``, start the optimizer afresh (its moments at zero) instead of
            loading its state, e.g. from a checkpoint whose optimizer state is lost; a ``note`` row
            of ``log.csv`` records it. The run is then no longer the uninterrupted one.

    The run folder belongs to this run while it lives (:class:`~lga.engine.runlock.RunLock`): a
    second run on it is refused (:class:`~lga.engine.runlock.RunLockedError`, naming the holder).
    A full disk is a :class:`~lga.util.files.DiskFullError` naming the file; the checkpoint
    written before it stays intact.

    Returns a :class:`RunResult`. Under torchrun every rank calls this; rank 0 writes the files. The
    run directory holds ``config.yaml``, ``log.csv``, ``summary.json`` (at the end) and
    ``checkpoints/{last,best}.safetensors`` (a frozen-backbone run checkpoints the head alone, with
    the key of the encoder its features came from).

    The pieces, in order: :func:`setup_run`; per step :func:`train_step`; every ``train.eval_interval``
    steps :func:`validate_run` and :func:`record_validation`; every ``train.checkpoint_interval``
    steps :func:`save_last`.
    """
    validate(cfg)
    dist = init_distributed(device_kind(cfg.train.device))
    lock = _lock(Path(out_dir), dist)
    try:
        try:
            run = setup_run(cfg, out_dir, resume=resume, progress=progress, features=features, dist=dist,
                            restart_optimizer=restart_optimizer)
        except BaseException:
            if lock is not None:
                lock.release(remove_dir=True)   # a refused run leaves no folder it made
                lock = None
            raise
        return _run(run, resume, progress, stop_after, fault)
    except DiskFullError as e:
        if e.path.name in ("last.safetensors", "best.safetensors", "log.csv", "summary.json", "config.yaml"):
            last = Path(out_dir) / "checkpoints" / "last.safetensors"
            raise DiskFullError(e.path, e.needed, e, note=(
                f"; training stopped: free some space, then continue with --resume (from {last}, which is intact)"
                if last.is_file() else "; training stopped before its first checkpoint: free some space and "
                "start it again")) from e
        raise
    finally:
        if lock is not None:
            lock.release()


def _lock(run_dir: Path, dist):
    """The run folder's :class:`RunLock`, taken by the main process (None in the others). Under
    torchrun every process learns whether it was taken, so none is left waiting for the others."""
    lock, error = None, None
    if dist.main:
        try:
            lock = RunLock(run_dir).acquire()
        except RunLockedError as e:
            error = e
    if dist.grouped:
        flag = torch.tensor([0 if error else 1], dtype=torch.int32,
                            device=resolve_device("cuda", dist) if tdist.get_backend() == "nccl" else "cpu")
        tdist.all_reduce(flag, op=tdist.ReduceOp.MIN)
        if not flag.item() and error is None:
            if lock is not None:
                lock.release()
            raise RunLockedError(f"{run_dir}: the main process could not take the run folder's lock")
    if error is not None:
        raise error
    return lock


def _run(run: Run, resume: bool, progress: bool, stop_after: int | None, fault) -> RunResult:
    """The loop of :func:`train` on a prepared :class:`Run`."""
    cfg = run.cfg
    t, dist, device, start = cfg.train, run.dist, run.device, run.step
    log = RunLog(run.run_dir, start if resume else None, enabled=dist.main)
    if run.optimizer_restarted:
        log.write(step=start, epoch=round(start / t.steps_per_epoch, 4),
                  note="optimizer restarted: resumed with restart_optimizer, its moments start from zero here")
    total = cfg.total_steps if stop_after is None else min(cfg.total_steps, stop_after)
    loader = training_data(run, total)
    ck_every = t.checkpoint_interval or t.eval_interval
    # a frozen backbone's tasks go through the head in one batched pass (no dropout RNG per task then)
    batch_tasks = run.mode == "frozen" and run.net is run.model and t.tasks_per_step > 1

    run.model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0, seen = time.perf_counter(), 0
    train_s = 0.0                       # seconds spent in training steps (not validation, not checkpoints)
    bar = tqdm(total=total, initial=start, desc=f"meta-training ({run.mode} backbone)",
               disable=not (progress and dist.main), dynamic_ncols=True)
    step = start
    try:
        for step_items in loader:
            t_step = time.perf_counter()
            if batch_tasks:   # a frozen backbone's tasks: one batched forward (the mean of their losses)
                step_items = [stack_tasks(step_items)]
            s = train_step(run.net, step_items, run.optimizer, run.schedule, step, run.sampler.n_way,
                           params=run.params, grad_clip=t.grad_clip, seed=t.seed, text_bank=run.text_train,
                           device=device, amp_dtype=run.amp_dtype, scaler=run.scaler, fault=fault,
                           last_checkpoint=run.last_path)
            step = run.step = step + 1
            seen += t.tasks_per_step
            train_s += time.perf_counter() - t_step
            loss_v, acc_v = _mean_across(s.losses, dist, device), _mean_across(s.accuracies, dist, device)
            run.log_window.append((loss_v, acc_v))
            bar.update(1)
            elapsed = time.perf_counter() - t0
            # one row every log_interval steps (a stopped run keeps its unlogged steps in its checkpoint,
            # so a resumed run writes the very rows of an uninterrupted one)
            if step % t.log_interval == 0 or step == cfg.total_steps:
                lw, aw = np.mean([w[0] for w in run.log_window]), np.mean([w[1] for w in run.log_window])
                run.log_window = []
                bar.set_postfix(loss=f"{lw:.3f}", acc=f"{aw:.2f}", lr=f"{s.lr:.2e}")
                log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), lr=s.lr, loss=float(lw),
                          accuracy=float(aw), grad_norm=s.grad_norm, episodes_per_s=seen / max(train_s, 1e-9),
                          elapsed_s=round(elapsed, 2))
            if step % t.eval_interval == 0 or step == cfg.total_steps:
                if dist.main:
                    r = validate_run(run)
                    record_validation(run, step, r)
                    log.write(step=step, epoch=round(step / t.steps_per_epoch, 4), val_accuracy=r.mean,
                              val_ci95=r.ci95, best_step=run.best_step, elapsed_s=round(elapsed, 2))
                    if progress:
                        bar.write(f"step {step}: val {100 * r.mean:.2f} ± {100 * r.ci95:.2f} % "
                                  f"(best {100 * run.best_val:.2f} at step {run.best_step})")
                _barrier(dist)
            if step % ck_every == 0 or step == total:
                if dist.main:
                    save_last(run, step)
                _barrier(dist)
    finally:
        bar.close()
        log.close()
    if dist.main and step == cfg.total_steps:
        summary = {"steps": step, "best_step": run.best_step, "best_val_accuracy": run.best_val,
                   "val_history": run.val_history, "episodes_per_s": seen / max(train_s, 1e-9),
                   "steps_this_process": step - start, "world_size": dist.world,
                   "peak_memory_gib": peak_memory_gib(device), "backbone": run.mode}
        write_json(run.run_dir / "summary.json", summary)
    result = RunResult(run.run_dir, step, run.best_step, run.best_val, run.val_history, run.last_path,
                       run.best_path if run.best_path.is_file() else None, run.model,
                       episodes_per_s=seen / max(train_s, 1e-9), peak_memory_gib=peak_memory_gib(device),
                       backbone=run.mode)
    if dist.initialised_here:
        tdist.destroy_process_group()
    return result


def restore(run: Run, restart_optimizer: bool = False) -> None:
    """Load the run's ``last`` checkpoint into its model, optimizer, schedule, scaler and the RNGs, and
    set ``run.step``, the validation state and the unlogged steps from it.

    Refused with a ValueError naming the file: a checkpoint without tensor checksums or whose tensors
    do not match them (:func:`lga.engine.checkpoint.verify_checksums`), whose optimizer or scheduler
    state is missing, or whose metadata or tensors do not fit (missing or mistyped keys, weights of
    another model). With ``restart_optimizer`` the optimizer's state is neither checked nor loaded
    (the optimizer starts afresh; ``run.optimizer_restarted``)."""
    path, model, total = run.last_path, run.model, run.cfg.total_steps
    tensors, meta = ckpt.read_checkpoint(path, verify=False)

    def number(v, kind=(int, float)):
        return isinstance(v, kind) and not isinstance(v, bool)
    try:
        if ckpt.CHECKSUM not in meta:
            raise ValueError("it carries no checksum of its tensors (written by an older lga, or its metadata "
                             "was rewritten), so damaged weights could not be told from intact ones")
        try:    # the weights and RNG states, then the optimizer's state (which restart_optimizer leaves out)
            ckpt.verify_checksums(tensors, meta, path, skip=("optim/",))
        except ValueError as e:
            raise ValueError(str(e).removeprefix(f"{path}: ")) from None
        if not restart_optimizer:
            try:
                ckpt.verify_checksums(tensors, meta, path, only=("optim/",))
            except ValueError as e:
                raise ValueError(str(e).removeprefix(f"{path}: ") + " (only the optimizer's state: "
                                 "--restart-optimizer goes on from these weights with a fresh optimizer)") from None
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
        window = [tuple(w) for w in meta.get("log_window", [])]
        if not all(len(w) == 2 and all(number(x) for x in w) for w in window):
            raise ValueError("log_window is not what lga train writes")
        if not isinstance(meta["scheduler"], dict):
            raise TypeError(f"the scheduler state is a {type(meta['scheduler']).__name__}, not a mapping")
        model.load_state_dict(ckpt.model_state(tensors))
        if not restart_optimizer:
            optim = ckpt.optimizer_from_flat(tensors, meta["optimizer"])
            if start > 0 and not optim["state"]:
                raise ValueError(f"its optimizer state is empty at step {start} (the optimizer's moments are "
                                 "lost); pass --restart-optimizer to go on with a fresh optimizer")
            run.optimizer.load_state_dict(optim)
        run.schedule.load_state_dict(meta["scheduler"])
        if meta.get("scaler"):
            run.scaler.load_state_dict(meta["scaler"])
        ckpt.set_rng_state(tensors, meta["rng"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{path}: --resume: cannot continue from this checkpoint ({what}); it is damaged or "
                         "not a checkpoint of this run") from None
    run.step, run.best_val, run.best_step, run.val_history = start, best_val, best_step, val_hist
    run.log_window, run.optimizer_restarted = window, restart_optimizer


def peak_memory_gib(device) -> float | None:
    """Peak GPU memory allocated on ``device`` since the last reset, in GiB (None off CUDA)."""
    device = torch.device(device)
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _guard(loss, step, task, grouped: bool, device, last_path):
    """Raise :class:`NonFiniteLossError` on a non-finite loss (on every rank of a process group at once)."""
    finite = torch.isfinite(loss.detach()).all()
    if grouped:
        flag = finite.to(device=device, dtype=torch.int32).reshape(1)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MIN)
        finite = bool(flag.item())
    if not bool(finite):
        where = ("no checkpoint was written yet, so start the run again once fixed"
                 if last_path is None or not Path(last_path).is_file() else
                 f"resume from {last_path} with --resume once fixed")
        raise NonFiniteLossError(
            f"non-finite loss ({loss.detach().float().flatten()[0].item()}) at optimizer step {step}, task {task}; "
            f"training stopped. Try a lower train.lr, train.grad_clip, or train.amp=false; {where}")


def _mean_across(values, dist, device) -> float:
    v = float(np.mean(values))
    if dist.grouped:
        x = torch.tensor([v], device=device, dtype=torch.float64)
        tdist.all_reduce(x)
        v = x.item() / dist.world
    return v


def _barrier(dist):
    if dist.grouped:
        tdist.barrier()
