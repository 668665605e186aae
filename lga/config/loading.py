"""Reading configs: shipped config names and files, their ``base:`` files, the rows of the ablation
table, ``--set key=value`` overrides, and where each value came from (:func:`resolve_config`,
``python -m lga config show``).

A config file holds only what differs from what it builds on: the profile's recipe (its
``profile:``, ``configs/_base/<profile>.yaml``), plus the files named by its ``base:`` key, read
first, in order.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import yaml

from ..yaml_io import DuplicateKeyError, load_yaml
from .ablations import (ABLATION_CONFIG_NAMES, ABLATION_SEPARATOR, _ablation_name, ablation_configs,
                        ablation_head_args)
from .errors import ConfigError
from .paths import config_dirs
from .schema import PROFILES, Config
from .validation import _build, _check_size, _coerce, _hints, validate


#: the folder of the base recipes (profiles, benchmarks, components): files that configs build on
BASE_DIR = "_base"
#: folders of ``configs/`` that hold recipes other than run configs (``tiny_clip/``: the tiny CLIP's,
#: :data:`lga.models.tiny_clip.TINY_CLIP_RECIPE`)
RECIPE_DIRS = ("tiny_clip",)

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
        base[k] = copy.deepcopy(v)
        for leaf in _leaves(v, key):
            origin[leaf] = where(leaf)


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
            table = ablation_configs()
            if stem in table:
                name, row = table[stem]
            elif ABLATION_SEPARATOR in stem:
                name, short = stem.split(ABLATION_SEPARATOR, 1)
                rows = {v: k for k, v in ABLATION_CONFIG_NAMES.items()}
                if short not in rows:
                    raise ConfigError(f"{stem}: unknown ablation row {short!r}; rows: {', '.join(rows)}")
                row = rows[short]
        file = find_config(path if row is None else name)
        label = file if row is None else stem
        data, origin = _file_layers(file)
        if row is not None:
            model = data.get("model") if isinstance(data.get("model"), dict) else {}
            head = model.get("head") or default_config(data.get("profile", "cpu")).model.head
            if head != "lga":
                raise ConfigError(f"{stem}: the ablation rows are switches of the LGA head; {name} uses "
                                  f"model.head {head!r}")
            row_layer = {"name": _ablation_name(name, ABLATION_CONFIG_NAMES[row]),
                         "model": {"head_args": ablation_head_args(row)}}
            _overlay(data, origin, row_layer, f"ablation table, row {row!r} (lga.config.ablations.ABLATION_SWITCHES)")
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
