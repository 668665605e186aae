"""Checking a config: mappings converted to the typed dataclasses of :mod:`lga.config.schema`, every
key and value checked, each error naming the key (:class:`~lga.config.errors.ConfigError`)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from .components import check_component_names
from .errors import ConfigError
from .schema import Config


# --------------------------------------------------------------------------- conversion
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(types, "UnionType", typing.Union)):
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
    bank are registered names (:mod:`lga.config.components`: nothing a config names is ever imported).
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
    check_component_names(cfg.model)
    return cfg
