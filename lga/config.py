"""The two profiles and where the project keeps its files.

Every chapter and command runs under one of two profiles through one code path:

- ``paper``: open_clip ViT-B-16 with OpenAI weights, real LLMs, real benchmarks, a GPU.
- ``cpu``: a tiny open_clip CLIP trained in the book, the shipped anatomy, the synthetic
  AtomicActions benchmark; runs on a laptop or CI in minutes.

``select_profile("auto")`` picks ``paper`` when a CUDA GPU is present and ``cpu`` otherwise; the
environment variable ``LGA_PROFILE`` overrides ``auto``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("paper", "cpu")


@dataclass(frozen=True)
class Profile:
    """What a profile means in practice."""

    name: str
    device: str
    backbone: str          # open_clip model name or tiny config
    pretrained: str | None
    dataset: str           # the default benchmark of the chapters
    why: str               # one line for the reader: why this profile was chosen


def select_profile(name: str = "auto") -> Profile:
    """Resolve ``"auto"`` / ``"paper"`` / ``"cpu"`` into a :class:`Profile`."""
    import torch

    why = f"asked for {name!r}"
    if name == "auto":
        env = os.environ.get("LGA_PROFILE")
        if env:
            name, why = env, f"LGA_PROFILE={env}"
        elif torch.cuda.is_available():
            name, why = "paper", f"a CUDA GPU is available ({torch.cuda.get_device_name(0)})"
        else:
            name, why = "cpu", "no CUDA GPU found"
    if name not in PROFILES:
        raise ValueError(f"profile must be 'auto' or one of {PROFILES}, got {name!r}")
    if name == "paper":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return Profile("paper", device, "ViT-B-16", "openai", "hmdb51", why)
    return Profile("cpu", "cpu", "lga-tiny-rn-64", None, "atomic_actions", why)


def data_dir() -> Path:
    """Where datasets, checkpoints and downloads live: ``$LGA_DATA_DIR`` or ``~/.cache/lga``."""
    return Path(os.environ.get("LGA_DATA_DIR", Path.home() / ".cache" / "lga")).expanduser()


# ============================================================================ run configs
# Typed configs for ``python -m lga train|eval``: four sections (data, model, train, eval), read from
# and written to YAML, overridden on the command line with ``--set section.key=value``. A wrong key or
# value is an error that names the key and says what is allowed.

import dataclasses
import typing
from dataclasses import field

#: dataset names the configs know (AtomicActions plus the five real benchmarks)
DATASET_NAMES = ("atomic_actions", "hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full")


class ConfigError(ValueError):
    """A config key that does not exist, or a value of the wrong type or outside what is allowed."""


def _choices(*values, doc: str = ""):
    return {"choices": values, "doc": doc}


@dataclass
class DataConfig:
    """Which benchmark, and what an episode is."""

    dataset: str = field(default="atomic_actions", metadata=_choices(*DATASET_NAMES))
    root: str | None = None            # prepared dataset folder; relative -> data_dir()/root; None -> data_dir()/dataset
    num_frames: int = 8                # T frames per clip
    n_way: int = 5
    k_shot: int = 1
    train_queries: int = 5             # queries per class in training episodes
    test_queries: int = 1              # queries per class in val/test episodes
    train_sampling: str = field(default="random", metadata=_choices("random", "fixed"))
    # random: one random frame per segment, drawn from an RNG seeded by (seed, step); fixed: test frames
    anatomy: str | None = None         # anatomy JSON (None: the dataset's anatomy.json, else the shipped one)
    workers: int = 0                   # DataLoader worker processes reading training videos


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
    """Episodic meta-training (defaults: the paper recipe of PAPER.md)."""

    seed: int = 0
    epochs: int = 10
    steps_per_epoch: int = 250         # optimizer steps per epoch
    tasks_per_step: int = 4            # episodes accumulated into one optimizer step
    optimizer: str = field(default="adam", metadata=_choices("adam", "adamw", "sgd"))
    lr: float = 1e-5
    weight_decay: float = 5e-4
    momentum: float = 0.9              # sgd only
    schedule: str = field(default="step", metadata=_choices("step", "cosine", "constant"))
    milestones: list = field(default_factory=lambda: [6, 9])   # epochs at which LR *= gamma
    gamma: float = 0.1
    warmup_epochs: float = 1.0
    warmup_factor: float = 0.01        # LR multiplier at step 0, rising linearly to 1
    grad_clip: float | None = 10.0     # max global gradient norm (None: no clipping)
    amp: bool = True                   # mixed precision on CUDA (ignored on CPU)
    eval_interval: int = 250           # validate (model selection) every this many steps, and at the end
    val_episodes: int = 1000
    checkpoint_interval: int = 0       # 0: at every validation
    log_interval: int = 10
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    find_unused_parameters: bool = True  # DDP: heads may leave branches unused in training


@dataclass
class EvalConfig:
    """Test-time protocol."""

    episodes: int = 10_000
    batch_episodes: int = 500
    seed: int = 1                      # test episodes are a function of this seed (train uses train.seed)
    split: str = field(default="test", metadata=_choices("test", "val"))
    feature_cache: str | None = None   # folder for cached features (None: memory only)
    encode_batch: int = 64


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
        import yaml
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            from .data.layout import atomic_write_text
            atomic_write_text(path, text)
        return text


def default_config(profile: str = "cpu") -> Config:
    """The defaults of a profile.

    ``paper``: CLIP ViT-B/16 frames (8), the LGA recipe of PAPER.md (Adam, LR 1e-5, 10 epochs with a
    warm-up epoch, LR x0.1 at epochs 6 and 9, 4 tasks per step), 10,000 test episodes.
    ``cpu``: AtomicActions, the small conv encoder, a recipe that trains in minutes on 2 cores.
    """
    if profile not in PROFILES:
        raise ConfigError(f"profile: must be one of {PROFILES}, got {profile!r}")
    if profile == "paper":
        return Config(
            profile="paper",
            data=DataConfig(dataset="hmdb51", num_frames=8, workers=8),
            model=ModelConfig(encoder="clip", encoder_args={"model": "ViT-B-16", "pretrained": "openai",
                                                           "train_last_blocks": 12},
                              head="protonet"),
            train=TrainConfig(),
            eval=EvalConfig())
    return Config(
        profile="cpu",
        data=DataConfig(dataset="atomic_actions", root="atomic_actions-seed0", num_frames=8,
                        train_queries=2),
        model=ModelConfig(encoder="conv4", encoder_args={"dim": 64, "width": 16}, head="protonet"),
        train=TrainConfig(epochs=4, steps_per_epoch=100, tasks_per_step=1, lr=2e-3, weight_decay=0.0,
                          milestones=[3], warmup_epochs=0.25, warmup_factor=0.1, grad_clip=10.0,
                          eval_interval=100, val_episodes=300, log_interval=10),
        eval=EvalConfig(episodes=10_000, batch_episodes=1000))


# --------------------------------------------------------------------------- conversion
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            list: "a list", dict: "a mapping"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(key: str, value, tp, choices=None):
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin is not None and type(None) in typing.get_args(tp):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else tp
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            out = value.lower() in ("true", "yes", "on", "1")
        else:
            raise bad
    elif tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                raise bad from None
        if not isinstance(value, int):
            raise bad
        out = value
    elif tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, (int, float)):
            raise bad
        out = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise bad
        out = value
    elif tp is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad
        out = value
    elif tp is dict:
        if not isinstance(value, dict):
            raise bad
        out = dict(value)
    else:
        out = value
    if choices and out not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(map(str, choices))}; got {out!r}")
    return out


def _build(cls, data, prefix: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]!s}; allowed keys of "
                          f"{prefix.rstrip('.') or 'the config'}: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(f"{prefix}{name}", value, tp, fields[name].metadata.get("choices"))
    return cls(**kwargs)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config_from_dict(data: dict) -> Config:
    """Build a validated :class:`Config` from a (possibly partial) mapping.

    Missing keys take the defaults of the mapping's ``profile`` (``cpu`` if absent). Mappings under
    ``*_args`` keys are merged with the profile's only when the component is unchanged.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    profile = data.get("profile", "cpu")
    base = default_config(_coerce("profile", profile, str, PROFILES)).to_dict()
    model = data.get("model") or {}
    if isinstance(model, dict):  # a different component does not inherit the default's arguments
        for comp, args in (("encoder", "encoder_args"), ("head", "head_args"), ("text", "text_args")):
            if comp in model and model[comp] != base["model"][comp]:
                base["model"][args] = {}
    cfg = _build(Config, _deep_merge(base, data), "")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> Config:
    """Cross-field checks (raise :class:`ConfigError`)."""
    d, t, e = cfg.data, cfg.train, cfg.eval
    positive = {"data.num_frames": d.num_frames, "data.n_way": d.n_way, "data.k_shot": d.k_shot,
                "data.train_queries": d.train_queries, "data.test_queries": d.test_queries,
                "train.epochs": t.epochs, "train.steps_per_epoch": t.steps_per_epoch,
                "train.tasks_per_step": t.tasks_per_step, "train.eval_interval": t.eval_interval,
                "train.val_episodes": t.val_episodes, "train.log_interval": t.log_interval,
                "eval.episodes": e.episodes, "eval.batch_episodes": e.batch_episodes,
                "eval.encode_batch": e.encode_batch}
    for k, v in positive.items():
        if v < 1:
            raise ConfigError(f"{k}: must be >= 1, got {v}")
    if d.n_way < 2:
        raise ConfigError(f"data.n_way: must be >= 2, got {d.n_way}")
    if d.workers < 0 or t.checkpoint_interval < 0:
        raise ConfigError("data.workers and train.checkpoint_interval must be >= 0")
    if t.lr <= 0:
        raise ConfigError(f"train.lr: must be > 0, got {t.lr}")
    if t.weight_decay < 0:
        raise ConfigError(f"train.weight_decay: must be >= 0, got {t.weight_decay}")
    if not 0 < t.warmup_factor <= 1:
        raise ConfigError(f"train.warmup_factor: must be in (0, 1], got {t.warmup_factor}")
    if t.warmup_epochs < 0:
        raise ConfigError(f"train.warmup_epochs: must be >= 0, got {t.warmup_epochs}")
    if t.grad_clip is not None and t.grad_clip <= 0:
        raise ConfigError(f"train.grad_clip: must be > 0 or null, got {t.grad_clip}")
    if not all(isinstance(m, (int, float)) and not isinstance(m, bool) and 0 < m <= t.epochs
               for m in t.milestones) or list(t.milestones) != sorted(t.milestones):
        raise ConfigError(f"train.milestones: must be increasing epochs in 1..train.epochs={t.epochs}, "
                          f"got {t.milestones}")
    if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
        raise ConfigError(f"train.device: must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    for key in ("encoder", "head"):
        name = getattr(cfg.model, key)
        if not name:
            raise ConfigError(f"model.{key}: must not be empty")
    return cfg


def config_dirs() -> list[Path]:
    """Where shipped configs live: ``lga/configs`` in an installed wheel, ``configs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "configs", here.parent / "configs") if d.is_dir()]


def list_configs() -> list[str]:
    """Names of the shipped configs (``"hmdb51_5way_1shot"``, ``"ablations/hmdb51_5way_1shot_full"``, ...)."""
    names = set()
    for d in config_dirs():
        names.update(p.relative_to(d).with_suffix("").as_posix() for p in d.rglob("*.yaml"))
    return sorted(names)


def find_config(name: str | os.PathLike) -> Path:
    """A config file: an existing path as is, else a shipped config by name (with or without ``.yaml``).

    ``find_config("hmdb51_5way_1shot")`` works in a checkout and after ``pip install`` (Colab), where
    ``configs/`` is installed as ``lga/configs``.
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = path.as_posix().removesuffix(".yaml").removeprefix("configs/")
    for d in config_dirs():
        candidate = d / f"{stem}.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no config file {name} (and no shipped config named {stem!r}; "
                            f"see lga.config.list_configs())")


def load_config(path: str | os.PathLike | None = None, overrides=()) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    ``path``: a YAML file, or the name of a shipped config (:func:`find_config`).
    """
    import yaml
    data = {}
    if path is not None:
        path = find_config(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        data = apply_override(data, item)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path is not None else str(e)) from None


def apply_override(data: dict, item: str) -> dict:
    """``"train.lr=1e-4"`` -> a copy of ``data`` with that key set (the value is parsed as YAML).

    Keys inside ``model.*_args`` mappings may be new (``model.head_args.alpha=0.5``); every other
    key must exist in the config classes.
    """
    import copy

    import yaml
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    # check the path against the classes (free-form below *_args mappings)
    cls, hints = Config, _hints(Config)
    for i, p in enumerate(parts):
        if cls is None:
            break
        names = [f.name for f in dataclasses.fields(cls)]
        if p not in names:
            where = ".".join(parts[:i]) or "the config"
            raise ConfigError(f"unknown key {'.'.join(parts[:i + 1])}; allowed keys of {where}: {', '.join(names)}")
        tp = hints[p]
        if dataclasses.is_dataclass(tp) and i == len(parts) - 1:
            raise ConfigError(f"{key} is a section; set one of its keys ({key}.KEY=VALUE)")
        if dataclasses.is_dataclass(tp):
            cls, hints = tp, _hints(tp)
        elif tp is dict:
            cls = None
        elif i != len(parts) - 1:
            raise ConfigError(f"{'.'.join(parts[:i + 1])} is not a section; cannot set {key}")
        else:
            cls = None
    out = copy.deepcopy(data)
    node = out
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value
    return out
