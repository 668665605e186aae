"""The two profiles and where the project keeps its files.

Every chapter and command runs under one of two profiles through one code path:

- ``paper``: open_clip ViT-B-16 with OpenAI weights, real LLMs, real benchmarks, a GPU.
- ``cpu``: a tiny open_clip CLIP trained in the book, the shipped anatomy, the synthetic
  AtomicActions benchmark; runs on a laptop or CI in minutes.

``select_profile("auto")`` picks ``paper`` when a CUDA GPU is present and ``cpu`` otherwise; the
environment variable ``LGA_PROFILE`` overrides ``auto``.

**Configs are data.** A profile is defined once, by its base recipe ``configs/_base/<profile>.yaml``
(:func:`default_config` reads it, :func:`select_profile` reports from it). A config file holds only
what differs from what it builds on: the profile's recipe (its ``profile:``), plus the files named
by its ``base:`` key, read first, in order. The rows of the ablation table are no files:
``ablations/hmdb51_5way_1shot_text_anatomy`` (or ``hmdb51_5way_1shot/ablation=text_anatomy``) is
``hmdb51_5way_1shot`` with that row's switches from :data:`lga.models.lga.ABLATION_CHAIN`.
``python -m lga config show NAME`` prints a resolved config and where each value came from
(:func:`resolve_config`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("paper", "cpu")


@dataclass(frozen=True)
class Profile:
    """What a profile means in practice (read from the profile's recipe, :func:`default_config`)."""

    name: str
    device: str
    backbone: str          # model.encoder_args.model of the recipe: an open_clip name or a checkpoint folder
    pretrained: str | None  # model.encoder_args.pretrained of the recipe
    dataset: str           # data.dataset of the recipe: the default benchmark of the chapters
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
    recipe = default_config(name)
    device = "cuda" if name == "paper" and torch.cuda.is_available() else "cpu"
    args = recipe.model.encoder_args
    return Profile(name, device, str(args.get("model", recipe.model.encoder)), args.get("pretrained"),
                   recipe.data.dataset, why)


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
        import yaml
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            from .data.layout import atomic_write_text
            atomic_write_text(path, text)
        return text


def default_config(profile: str = "cpu") -> Config:
    """The recipe of a profile: the field defaults of the dataclasses (:class:`TrainConfig`'s are the
    paper recipe) under the profile's base file ``configs/_base/<profile>.yaml``.

    ``paper``: HMDB51, CLIP ViT-B/16 with OpenAI weights fine-tuned, the LGA head, CLIP-FSAR's
    recipe, 10,000 test episodes. ``cpu``: AtomicActions, the tiny CLIP trained in chapter 3 kept
    frozen, the LGA head trained on cached features in minutes on 2 cores.
    """
    if profile not in PROFILES:
        raise ConfigError(f"profile: must be one of {PROFILES}, got {profile!r}")
    data, _ = _profile_recipe(profile)
    return _build(Config, data, "")


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
    if data is None and prefix:
        # a header with nothing under it: most often keys lost to indentation or a bad edit, which would
        # silently train the defaults; {} says "the defaults" on purpose
        name = prefix.rstrip(".")
        raise ConfigError(f"{name}: empty section ('{name}:' with nothing under it); write its keys under "
                          f"it, '{name}: {{}}' to take the profile's defaults, or delete the line")
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


#: most values (counted as often as they are reached) and deepest nesting a config may have: a few
#: lines of YAML aliases (``b: &b [*a, *a]`` ...) or a self-referencing list are otherwise endless work
MAX_CONFIG_VALUES, MAX_CONFIG_DEPTH = 100_000, 32


def _check_size(data) -> None:
    """Raise :class:`ConfigError` when ``data`` holds more than :data:`MAX_CONFIG_VALUES` values or
    nests deeper than :data:`MAX_CONFIG_DEPTH`; stops there, so a hostile file costs little."""
    stack, seen = [(data, 0)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"the config nests deeper than {MAX_CONFIG_DEPTH} levels")
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        stack.extend((v, depth + 1) for v in items)
        if seen + len(stack) > MAX_CONFIG_VALUES:
            raise ConfigError(f"the config holds more than {MAX_CONFIG_VALUES} values (YAML aliases that "
                              "expand, or a list that contains itself?)")


def config_from_dict(data: dict) -> Config:
    """Build a validated :class:`Config` from a (possibly partial) mapping.

    Missing keys take the recipe of the mapping's ``profile`` (``cpu`` if absent,
    :func:`default_config`). Mappings under ``*_args`` keys are merged with the recipe's only when the
    component is unchanged. A mapping larger or deeper than any config (:func:`_check_size`) is
    refused before it is read.
    """
    cfg, _ = _from_layers(data, {})
    return cfg


def _from_layers(data: dict, sources: dict) -> tuple[Config, dict]:
    """``data`` (a mapping, its values' origins in ``sources``) over its profile's recipe, built and
    validated; returns the config and every key's origin."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    _check_size(data)
    profile = _coerce("profile", data.get("profile", "cpu"), str, PROFILES)
    base, origin = _profile_recipe(profile)
    _overlay(base, origin, data, sources)
    cfg = _build(Config, base, "")
    validate(cfg)
    return cfg, origin


def _leaves(value, prefix: str):
    """The dotted keys of every leaf of ``value`` below ``prefix`` (a mapping: its leaves; else itself)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}.{k}")
    else:
        yield prefix


def _overlay(base: dict, origin: dict, over: dict, over_origin, prefix: str = "") -> None:
    """Merge ``over`` into ``base`` in place: mappings key by key, anything else replaced.

    ``origin`` maps each dotted leaf key of ``base`` to where its value came from; ``over_origin`` is
    a string (every value of ``over`` came from there) or such a mapping. In the ``model`` section a
    component that changes (``encoder``, ``head``, ``text``) drops the arguments it had: a different
    head does not inherit the old head's ``head_args``.
    """
    def where(key):
        if isinstance(over_origin, str):
            return over_origin
        return over_origin.get(key) or next((v for k, v in over_origin.items() if key.startswith(k + ".")),
                                            "?")

    def forget(key):
        for k in [k for k in origin if k == key or k.startswith(key + ".")]:
            del origin[k]

    if prefix == "model.":
        for comp in ("encoder", "head", "text"):
            if comp in over and over[comp] != base.get(comp) and isinstance(base.get(f"{comp}_args"), dict):
                base[f"{comp}_args"] = {}
                forget(f"model.{comp}_args")
                origin[f"model.{comp}_args"] = where(f"model.{comp}")
    for k, v in over.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            if not v and not base[k]:
                continue
            origin.pop(key, None)                                  # an empty mapping's own entry
            _overlay(base[k], origin, v, over_origin, key + ".")
            continue
        forget(key)
        base[k] = _copy(v)
        for leaf in _leaves(v, key):
            origin[leaf] = where(leaf)


def _copy(value):
    import copy
    return copy.deepcopy(value)


def _check_numbers(section, prefix: str = "") -> None:
    """Every number field of ``section`` (and its sub-sections): finite, and within its :func:`_range`
    (default: >= 0). Generic, so that a new field is checked without new code."""
    hints = _hints(type(section))
    for f in dataclasses.fields(section):
        key, v = f"{prefix}{f.name}", getattr(section, f.name)
        if dataclasses.is_dataclass(v):
            _check_numbers(v, key + ".")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        low, high, strict = (f.metadata.get(k, d) for k, d in (("low", 0), ("high", None), ("strict", False)))
        if not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number, got {v}")
        if (low is not None and (v < low or (strict and v == low))) or (high is not None and v > high):
            if high is not None:
                want = f"in {'(' if strict else '['}{low}, {high}]"
            else:
                want = f"{'>' if strict else '>='} {low}"
            optional = " or null" if type(None) in typing.get_args(hints[f.name]) else ""
            raise ConfigError(f"{key}: must be {want}{optional}, got {v}")


def _check_args(value, key: str) -> None:
    """The free-form ``model.*_args`` mappings: no NaN or infinite number anywhere, temperatures > 0."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_args(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_args(v, f"{key}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        if "temperature" in key.rsplit(".", 1)[-1] and value <= 0:
            raise ConfigError(f"{key}: a temperature must be > 0, got {value}")


def validate(cfg: Config) -> Config:
    """Value and cross-field checks (raise :class:`ConfigError` naming the key).

    Number fields are finite and within their bounds (>= 0 unless the field says otherwise), numbers
    in ``model.*_args`` are finite and temperatures there positive, and the encoder, head and text
    bank are registered names (:mod:`lga.engine.build`: nothing a config names is ever imported).
    """
    t = cfg.train
    _check_numbers(cfg)
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
    for key in ("encoder_args", "head_args", "text_args"):
        _check_args(getattr(cfg.model, key), f"model.{key}")
    from .engine.build import check_component_names   # a registry lookup; imports nothing it names
    check_component_names(cfg.model)
    return cfg


def config_dirs() -> list[Path]:
    """Where shipped configs live: ``lga/configs`` in an installed wheel, ``configs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "configs", here.parent / "configs") if d.is_dir()]


#: the folder of the base recipes (profiles, benchmarks, components): files that configs build on
BASE_DIR = "_base"
#: folders of ``configs/`` that hold recipes other than run configs (``tiny_clip/``: the tiny CLIP's,
#: :data:`lga.models.tiny_clip.TINY_CLIP_RECIPE`)
RECIPE_DIRS = ("tiny_clip",)
#: the shipped configs that have one config per row of the ablation table, ``ablations/<name>``
ABLATION_BASES = ("atomic_actions_5way_1shot_cpu", "atomic_actions_5way_5shot_cpu",
                  "hmdb51_5way_1shot", "hmdb51_5way_5shot")
#: ``NAME/ablation=ROW``: the config NAME with the switches of ablation row ROW
ABLATION_SEPARATOR = "/ablation="


def _ablation_name(base: str, row: str) -> str:
    """``hmdb51_5way_1shot`` + ``full`` -> ``hmdb51_5way_1shot_full``; a ``_cpu`` suffix stays last."""
    stem = base.rsplit("/", 1)[-1]
    return f"{stem[:-4]}_{row}_cpu" if stem.endswith("_cpu") else f"{stem}_{row}"


def ablation_configs() -> dict[str, tuple[str, str]]:
    """``{"ablations/hmdb51_5way_1shot_full": ("hmdb51_5way_1shot", "full LGA"), ...}``: every ablation
    config name, the config it changes (:data:`ABLATION_BASES`) and its row of
    :data:`lga.models.lga.ABLATION_CHAIN`."""
    from .models.lga import ABLATION_CONFIG_NAMES
    return {f"ablations/{_ablation_name(b, short)}": (b, row)
            for b in ABLATION_BASES for row, short in ABLATION_CONFIG_NAMES.items()}


def list_configs() -> list[str]:
    """Names of the shipped configs (``"hmdb51_5way_1shot"``, ``"ablations/hmdb51_5way_1shot_full"``, ...):
    the files of ``configs/`` except the base recipes of ``configs/_base`` and the recipes of
    :data:`RECIPE_DIRS`, and the ablation rows."""
    names = set(ablation_configs())
    for d in config_dirs():
        names.update(p.relative_to(d).with_suffix("").as_posix() for p in d.rglob("*.yaml")
                     if p.relative_to(d).parts[0] not in (BASE_DIR, *RECIPE_DIRS))
    return sorted(names)


def _stem(name) -> str:
    return Path(name).as_posix().removesuffix(".yaml").removeprefix("configs/")


def find_config(name: str | os.PathLike) -> Path:
    """A config file: an existing path as is, else a shipped config by name (with or without ``.yaml``).

    ``find_config("hmdb51_5way_1shot")`` works in a checkout and after ``pip install`` (Colab), where
    ``configs/`` is installed as ``lga/configs``. The ablation configs are no files: load them with
    :func:`load_config`.
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = _stem(name)
    for d in config_dirs():
        candidate = d / f"{stem}.yaml"
        if candidate.is_file():
            return candidate
    if ABLATION_SEPARATOR in stem or (stem.startswith("ablations/") and stem in ablation_configs()):
        raise FileNotFoundError(f"{stem!r} is a row of the ablation table, not a file: load it with "
                                f"lga.config.load_config({stem!r})")
    raise FileNotFoundError(f"no config file {name} (and no shipped config named {stem!r}; "
                            f"see lga.config.list_configs())")


def _shipped_label(path: Path) -> str:
    """How sources name a file: ``configs/_base/paper.yaml`` for a shipped one, else its path."""
    for d in config_dirs():
        try:
            return "configs/" + path.resolve().relative_to(d.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


#: how deep ``base:`` files may nest (a file naming itself through others is refused too)
MAX_BASE_DEPTH = 8


def _read_file(path: Path) -> dict:
    import yaml

    from .yaml_io import DuplicateKeyError, load_yaml
    try:
        data = load_yaml(path)
    except DuplicateKeyError as e:
        raise ConfigError(str(e)) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; write 'profile: cpu' (or '{{}}') to take the cpu "
                          "profile's defaults")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    try:
        _check_size(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return data


def _file_layers(path: Path, chain: tuple = ()) -> tuple[dict, dict]:
    """A config file with its ``base:`` files merged under it: ``(data, origin of every leaf)``.

    ``base:`` is a name or a list of names, each an existing path relative to the file's folder or
    a shipped config name, read first and merged in order (:func:`_overlay`); the file's own keys
    come last."""
    path = Path(path)
    if len(chain) >= MAX_BASE_DEPTH or path.resolve() in chain:
        trail = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ConfigError(f"{path}: base files nest too deeply or in a circle ({trail})")
    data = _read_file(path)
    label = _shipped_label(path)
    bases = data.pop("base", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: base: expected a config name or a list of them, got {bases!r}")
    out, origin = {}, {}
    for b in bases:
        near = path.parent / (b if b.endswith(".yaml") else f"{b}.yaml")
        try:
            base_path = near if near.is_file() else find_config(b)
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: base: {e}") from None
        _overlay(out, origin, *_file_layers(base_path, (*chain, path.resolve())))
    _overlay(out, origin, data, label)
    return out, origin


def _field_defaults() -> tuple[dict, dict]:
    data = Config().to_dict()
    data.pop("profile")
    origin = {}
    for section in ("name", "data", "model", "train", "eval"):
        for leaf in _leaves(data[section], section):
            origin[leaf] = "default" if section == "name" else f"default ({type(getattr(Config(), section)).__name__})"
    return data, origin


def _profile_recipe(profile: str) -> tuple[dict, dict]:
    """The recipe of ``profile`` as a mapping, and the origin of each value: the dataclasses' field
    defaults under ``configs/_base/<profile>.yaml``."""
    data, origin = _field_defaults()
    path = find_config(f"{BASE_DIR}/{profile}")
    layer, layer_origin = _file_layers(path)
    if layer.get("profile", profile) != profile:
        raise ConfigError(f"{path}: the base recipe of profile {profile!r} says profile: {layer['profile']!r}")
    layer.pop("profile", None)
    layer_origin.pop("profile", None)
    _overlay(data, origin, layer, layer_origin)
    data["profile"], origin["profile"] = profile, _shipped_label(path)
    return data, origin


def resolve_config(path: str | os.PathLike | None = None, overrides=()) -> tuple[Config, dict[str, str]]:
    """:func:`load_config`, and where each value came from.

    Returns ``(config, sources)``: ``sources`` maps every dotted key (``train.lr``, and each key
    inside the ``*_args`` mappings, ``model.head_args.alpha``) to ``"default (TrainConfig)"`` (a field
    default), the file that set it (``configs/_base/paper.yaml``), the row of the ablation table, or
    ``--set KEY=VALUE``.
    """
    data, origin, label = {}, {}, None
    if path is not None:
        stem = _stem(path)
        name, row = stem, None
        if not Path(path).is_file() and (stem.startswith("ablations/") or ABLATION_SEPARATOR in stem):
            table = ablation_configs()                     # imports lga.models.lga (torch): only when asked
            if stem in table:
                name, row = table[stem]
            elif ABLATION_SEPARATOR in stem:
                name, short = stem.split(ABLATION_SEPARATOR, 1)
                from .models.lga import ABLATION_CONFIG_NAMES
                rows = {v: k for k, v in ABLATION_CONFIG_NAMES.items()}
                if short not in rows:
                    raise ConfigError(f"{stem}: unknown ablation row {short!r}; rows: {', '.join(rows)}")
                row = rows[short]
        file = find_config(path if row is None else name)
        label = file if row is None else stem
        data, origin = _file_layers(file)
        if row is not None:
            from .models.lga import ABLATION_CONFIG_NAMES, ablation_head_args
            model = data.get("model") if isinstance(data.get("model"), dict) else {}
            head = model.get("head") or default_config(data.get("profile", "cpu")).model.head
            if head != "lga":
                raise ConfigError(f"{stem}: the ablation rows are switches of the LGA head; {name} uses "
                                  f"model.head {head!r}")
            row_layer = {"name": _ablation_name(name, ABLATION_CONFIG_NAMES[row]),
                         "model": {"head_args": ablation_head_args(row)}}
            _overlay(data, origin, row_layer, f"ablation table, row {row!r} (lga.models.lga.ABLATION_CHAIN)")
    for item in overrides:
        data = apply_override(data, item)
        key = item.split("=", 1)[0].strip()
        for k in [k for k in origin if k == key or k.startswith(key + ".")]:
            del origin[k]
        for leaf in _leaves(_get(data, key), key):
            origin[leaf] = f"--set {item}"
    try:
        return _from_layers(data, origin)
    except ConfigError as e:
        raise ConfigError(f"{label}: {e}" if label is not None else str(e)) from None


def _get(data: dict, key: str):
    for part in key.split("."):
        data = data[part]
    return data


def show_config(path: str | os.PathLike | None = None, overrides=()) -> str:
    """The resolved config as ``key: value  # where it came from`` lines (``python -m lga config show``)."""
    import json
    cfg, sources = resolve_config(path, overrides)
    flat = {}

    def walk(value, key):
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else k)
        else:
            flat[key] = value
    walk(cfg.to_dict(), "")
    rows = [(k, json.dumps(v)) for k, v in flat.items()]
    width = max(len(k) + len(v) + 2 for k, v in rows)
    title = f"# {path if path is not None else 'the cpu profile'}"
    lines = [title + (f" with {' '.join('--set ' + o for o in overrides)}" if overrides else "")
             + ", resolved: every value and where it came from"]
    lines += [f"{k}: {v}".ljust(width) + f"  # {sources.get(k, '?')}" for k, v in rows]
    return "\n".join(lines)


def config_diff(a: dict, b: dict, ignore=(), prefix: str = "") -> list[str]:
    """The dotted keys in which two config mappings (:meth:`Config.to_dict`) differ, sorted.

    A ``*_args`` mapping counts as one value (``model.encoder_args``). A key equal to an entry of
    ``ignore`` or below it (``"train"`` ignores ``train.lr``) is left out.
    """
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and not key.endswith("_args"):
            out += config_diff(va, vb, ignore, key + ".")
        elif va != vb and not any(key == c or key.startswith(c + ".") for c in ignore):
            out.append(key)
    return out


def load_config(path: str | os.PathLike | None = None, overrides=()) -> Config:
    """Read a YAML config (or the cpu profile's recipe when ``path`` is None) and apply ``--set`` overrides.

    ``path``: a YAML file, the name of a shipped config (:func:`find_config`), or an ablation row of
    one (``ablations/hmdb51_5way_1shot_full``, ``hmdb51_5way_1shot/ablation=full``). A file's
    ``base:`` files are read first (see the module docstring); :func:`resolve_config` also says where
    each value came from.
    """
    return resolve_config(path, overrides)[0]


def apply_override(data: dict, item: str) -> dict:
    """``"train.lr=1e-4"`` -> a copy of ``data`` with that key set (the value is parsed as YAML).

    Keys inside ``model.*_args`` mappings may be new (``model.head_args.alpha=0.5``); every other
    key must exist in the config classes.
    """
    import copy

    import yaml

    from .yaml_io import DuplicateKeyError, load_yaml
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = load_yaml(raw, name=f"--set {item}") if raw.strip() else ""
    except DuplicateKeyError as e:
        raise ConfigError(str(e)) from None
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
