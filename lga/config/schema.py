"""Typed run configs: four sections (data, model, train, eval) as dataclasses, with the bounds and
choices of every field as metadata (checked by :mod:`lga.config.validation`).

``python -m lga train|eval`` reads them from YAML (:mod:`lga.config.loading`) and overrides them on the
command line with ``--set section.key=value``; a wrong key or value is an error that names the key and
says what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..util.files import atomic_write_text
from .paths import data_dir

#: the two profiles (:mod:`lga.config.profiles`)
PROFILES = ("paper", "cpu")

#: dataset names the configs know (AtomicActions plus the five real benchmarks)
DATASET_NAMES = ("atomic_actions", "hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full")


def _choices(*values, doc: str = ""):
    return {"choices": values, "doc": doc}


def _range(low: float | None = 0, high: float | None = None, strict: bool = False) -> dict:
    """Bounds of a number field (metadata). A number field without them must be finite and >= 0;
    ``strict``: must be > ``low``; ``low=None``: no lower bound. Checked by :func:`validate`."""
    return {"low": low, "high": high, "strict": strict}


@dataclass
class DataConfig:
    """Which benchmark, and what an episode is."""

    dataset: str = field(default="atomic_actions", metadata=_choices(*DATASET_NAMES))
    root: str | None = None            # prepared dataset folder; relative -> data_dir()/root; None -> data_dir()/dataset
    num_frames: int = field(default=8, metadata=_range(1))      # T frames per clip
    n_way: int = field(default=5, metadata=_range(2))
    k_shot: int = field(default=1, metadata=_range(1))
    train_queries: int = field(default=5, metadata=_range(1))   # queries per class in training episodes
    test_queries: int = field(default=1, metadata=_range(1))    # queries per class in val/test episodes
    train_sampling: str = field(default="random", metadata=_choices("random", "fixed"))
    # random: one random frame per segment, drawn from an RNG seeded by (seed, step); fixed: test frames
    anatomy: str | None = None         # anatomy JSON (None: the dataset's anatomy.json, else the shipped one)
    workers: int = 0                   # DataLoader worker processes reading training videos
    # spatial augmentation of training clips (lga.engine.augment): "crop" draws one of crop_grid x crop_grid
    # crops of side crop_scale x the frame's per training video; val/test (and "none") take the centre crop
    augment: str = field(default="none", metadata=_choices("none", "crop"))
    crop_scale: float = field(default=1.0, metadata=_range(0, 1, strict=True))   # CLIP-FSAR: 224/256
    crop_grid: int = field(default=3, metadata=_range(1))
    # check the dataset against the manifest in its dataset.json before use (lga.data.manifest); false
    # (--no-verify) uses it unchecked, and the run's config.yaml records that
    verify: bool = True
    # read videos and frame folders that are symlinks to outside the dataset folder (else refused)
    allow_symlinks: bool = False


@dataclass
class ModelConfig:
    """Frame encoder, few-shot head, and (optionally) the text bank."""

    encoder: str = "conv4"             # conv4 | clip | "package.module:Class"
    encoder_args: dict = field(default_factory=dict)
    head: str = "protonet"             # protonet | otam | lga | ... | "package.module:Class"
    head_args: dict = field(default_factory=dict)
    text: str = field(default="none", metadata=_choices("none", "clip"))
    text_args: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Episodic meta-training (defaults: the paper recipe, CLIP-FSAR's public configs; book page *The paper, and how we know it*)."""

    seed: int = 0
    epochs: int = field(default=10, metadata=_range(1))
    steps_per_epoch: int = field(default=250, metadata=_range(1))   # optimizer steps per epoch
    tasks_per_step: int = field(default=4, metadata=_range(1))      # episodes accumulated into one step
    optimizer: str = field(default="adam", metadata=_choices("adam", "adamw", "sgd"))
    lr: float = field(default=1e-5, metadata=_range(0, strict=True))
    weight_decay: float = 5e-4
    momentum: float = 0.9              # sgd only
    schedule: str = field(default="step", metadata=_choices("step", "cosine", "constant"))
    milestones: list = field(default_factory=lambda: [6, 9])   # epochs at which LR *= gamma
    gamma: float = field(default=0.1, metadata=_range(0, strict=True))
    warmup_epochs: float = 1.0
    # LR multiplier at step 0, rising linearly to 1
    warmup_factor: float = field(default=0.01, metadata=_range(0, 1, strict=True))
    # max global gradient norm (None: no clipping)
    grad_clip: float | None = field(default=10.0, metadata=_range(0, strict=True))
    amp: bool = True                   # mixed precision on CUDA (ignored on CPU)
    # validate (model selection) every this many steps, and at the end
    eval_interval: int = field(default=250, metadata=_range(1))
    val_episodes: int = field(default=1000, metadata=_range(1))
    checkpoint_interval: int = 0       # 0: at every validation
    log_interval: int = field(default=10, metadata=_range(1))
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    find_unused_parameters: bool = True  # DDP: heads may leave branches unused in training
    # finetune: encode the sampled clips at every step (the encoder's trainable parts train); frozen: encode
    # every frame of every video once and train the head on the cached features (lga.engine.features);
    # auto: frozen exactly when no parameter of the encoder is trainable
    backbone: str = field(default="auto", metadata=_choices("auto", "finetune", "frozen"))
    # frozen backbone: folder of cached features (relative: under data_dir(); None: in memory only)
    feature_cache: str | None = None
    # frozen backbone: frames cached per training video (0: all of them, so training samples frames as from
    # the video; N: N evenly spaced frames, among which training samples)
    cache_frames: int = 0


@dataclass
class EvalConfig:
    """Test-time protocol."""

    episodes: int = field(default=10_000, metadata=_range(1))
    batch_episodes: int = field(default=500, metadata=_range(1))
    seed: int = 1                      # test episodes are a function of this seed (train uses train.seed)
    split: str = field(default="test", metadata=_choices("test", "val"))
    feature_cache: str | None = None   # folder for cached features (relative: under data_dir(); None: memory only)
    encode_batch: int = field(default=64, metadata=_range(1))


@dataclass
class Config:
    """A whole run."""

    profile: str = field(default="cpu", metadata=_choices(*PROFILES))
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # --------------------------------------------------------------- conveniences
    @property
    def total_steps(self) -> int:
        return self.train.epochs * self.train.steps_per_epoch

    def dataset_root(self) -> Path:
        """The prepared dataset folder (relative roots live under :func:`data_dir`)."""
        root = Path(self.data.root) if self.data.root else Path(self.data.dataset)
        root = root.expanduser()
        return root if root.is_absolute() else data_dir() / root

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            atomic_write_text(path, text)
        return text

