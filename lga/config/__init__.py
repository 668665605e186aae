"""Run configs: the two profiles, typed dataclass configs, YAML in and out (book chapters 0 and 8).

Every chapter and command runs under one of two profiles through one code path: ``paper`` (open_clip
ViT-B-16 with OpenAI weights, real LLMs, real benchmarks, a GPU) and ``cpu`` (a tiny open_clip CLIP
shipped with the package, trained once by the book's recipe; the shipped anatomy; the synthetic
AtomicActions benchmark; a laptop or CI in minutes). ``select_profile("auto")`` picks ``paper`` when a
CUDA GPU is present and ``cpu`` otherwise; the environment variable ``LGA_PROFILE`` overrides ``auto``.

**Configs are data.** A profile is defined once, by its base recipe ``configs/_base/<profile>.yaml``
(:func:`default_config` reads it, :func:`select_profile` reports from it). A config file holds only
what differs from what it builds on: the profile's recipe (its ``profile:``), plus the files named
by its ``base:`` key, read first, in order. The rows of the ablation table are no files:
``ablations/hmdb51_5way_1shot_text_anatomy`` (or ``hmdb51_5way_1shot/ablation=text_anatomy``) is
``hmdb51_5way_1shot`` with that row's switches from
:data:`lga.config.ablations.ABLATION_SWITCHES`. ``python -m lga config show NAME`` prints a resolved
config and where each value came from (:func:`resolve_config`).

One module per job; every name is importable from ``lga.config`` as well:

- :mod:`lga.config.errors`      :class:`ConfigError`.
- :mod:`lga.config.paths`       where files live: :func:`data_dir`, :func:`config_dirs`.
- :mod:`lga.config.schema`      the typed sections (:class:`Config`, :class:`DataConfig`, ...).
- :mod:`lga.config.validation`  mappings to dataclasses, every key and value checked.
- :mod:`lga.config.components`  the registry of encoder, head and text-bank names a config may use.
- :mod:`lga.config.ablations`   the ablation table's rows as data, and their config names.
- :mod:`lga.config.loading`     files, ``base:``, ablation rows, ``--set`` overrides, sources, diffs.
- :mod:`lga.config.profiles`    :class:`Profile` and :func:`select_profile`.

This package imports neither torch nor anything above it in lga (``import lga.config`` is light).
"""

from .ablations import (ABLATION_BASES, ABLATION_CONFIG_NAMES, ABLATION_FIELDS, ABLATION_SEPARATOR,
                        ABLATION_SWITCHES, ablation_configs, ablation_head_args)
from .errors import ConfigError
from .loading import (BASE_DIR, MAX_BASE_DEPTH, RECIPE_DIRS, apply_override, config_diff, config_from_dict,
                      default_config, find_config, list_configs, load_config, resolve_config, show_config)
from .paths import config_dirs, data_dir
from .profiles import Profile, select_profile
from .schema import DATASET_NAMES, PROFILES, Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from .validation import MAX_CONFIG_DEPTH, MAX_CONFIG_VALUES, validate

__all__ = [
    "ABLATION_BASES", "ABLATION_CONFIG_NAMES", "ABLATION_FIELDS", "ABLATION_SEPARATOR", "ABLATION_SWITCHES",
    "BASE_DIR", "DATASET_NAMES", "MAX_BASE_DEPTH", "MAX_CONFIG_DEPTH", "MAX_CONFIG_VALUES", "PROFILES",
    "RECIPE_DIRS", "Config", "ConfigError", "DataConfig", "EvalConfig", "ModelConfig", "Profile", "TrainConfig",
    "ablation_configs", "ablation_head_args", "apply_override", "config_diff", "config_dirs", "config_from_dict",
    "data_dir", "default_config", "find_config", "list_configs", "load_config", "resolve_config",
    "select_profile", "show_config", "validate",
]
