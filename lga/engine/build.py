"""Turning a :class:`~lga.config.ModelConfig` into modules: frame encoder, few-shot head, text bank.

It also says where a run's class texts come from (:func:`anatomy_source`); the whole model of a
config (encoder + head) is :func:`lga.engine.model.build_model`.

Components are named in configs by a short name of a fixed registry, kept as data in
:mod:`lga.config.components` (so that a config is checked without the engine):
:data:`~lga.config.components.ENCODERS` (``conv4``, ``clip``), :data:`~lga.config.components.HEADS`
(``protonet``, ``otam``, ``label_only``, ``lga``) and :data:`~lga.config.components.TEXT_BANKS` (``clip``),
and ``register_head``, ``register_encoder``, ``allow_component`` are importable from here too; arguments come from the ``*_args`` mappings. A class with a ``from_config(args,
**context)`` classmethod is built through it; otherwise its constructor gets the arguments, plus
``dim`` (the encoder's feature size) when it *requires* one and none was given. An encoder with
``from_pretrained(model, ...)`` (the CLIP encoder) is built through that, with
``encoder_args["model"]`` as the CLIP name or checkpoint folder.

**Nothing a file names is imported or called.** A config, and the config stored inside a checkpoint,
can only pick one of the registered names; a ``"package.module:Class"`` string found there is
refused (a crafted checkpoint naming ``subprocess:run`` must not run a shell). Research code adds its
own components in Python, which is code the user runs on purpose::

    from lga.config.components import register_head   # or: from lga.engine.build import ...
    register_head("my_head", MyHead)        # a config then says  model.head: my_head

or trusts a ``"package.module:Class"`` string explicitly, by name, before the config is read:
``python -m lga train ... --allow-component mypkg.heads:MyHead`` (repeatable; ``eval`` takes it too),
or :func:`~lga.config.components.allow_component` in Python.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from torch.nn import functional as F

from ..anatomy.shipped import SHIPPED_FILES
from ..config.components import (ENCODERS, HEADS, TEXT_BANKS, _ALLOWED, _REGISTRIES,  # noqa: F401  (names kept here)
                                 allow_component, check_component_name, check_component_names, register_encoder,
                                 register_head)
from ..config.errors import ConfigError
from ..config.paths import data_dir

if TYPE_CHECKING:
    from torch import nn


def resolve(name: str, what: str):
    """The ``what`` (``"encoder"``, ``"head"``, ``"text"``) called ``name``: the registered class, or an
    allowed ``"pkg.mod:Class"`` imported now; anything else raises :class:`~lga.config.ConfigError`
    before anything is imported."""
    check_component_name(name, what)
    target = _REGISTRIES[what].get(name, name)
    if not isinstance(target, str):
        return target
    module, attr = target.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"model.{what}: {name!r} needs module {module} which cannot be imported ({e})") from e
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"model.{what}: module {module} has no {attr} (for {name!r})")
        obj = getattr(obj, part)
    return obj


def _construct(cls, args: dict, **context):
    args = dict(args)
    if hasattr(cls, "from_config"):
        return cls.from_config(args, **context)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    for k, v in context.items():
        p = params.get(k)
        if k not in args and v is not None and p is not None and p.default is inspect.Parameter.empty:
            args[k] = v
    return cls(**args)


def build_encoder(model_cfg, device=None) -> nn.Module:
    """The frame encoder: uint8 clips ``[B, T, H, W, 3]`` -> float ``[B, T, D]``."""
    cls = resolve(model_cfg.encoder, "encoder")
    args = dict(model_cfg.encoder_args)
    if hasattr(cls, "from_pretrained") and "model" in args:
        name = args.pop("model")
        if isinstance(name, str) and not name.startswith("local-dir:") and ("/" in name or name.startswith("~")):
            name = resolve_checkpoint_dir(name)
        return cls.from_pretrained(name, device=device or "cpu", **args)
    return _construct(cls, args)


def resolve_checkpoint_dir(name: str):
    """A checkpoint folder: absolute, ``~``, relative to the working directory if it exists there,
    else relative to :func:`lga.config.data_dir` (``tiny_clip/atomic_actions`` -> ``~/.cache/lga/...``).
    The name of the shipped tiny CLIP (``tiny_clip/atomic_actions``) installs it there first
    (:func:`~lga.models.tiny_clip_shipped.install_shipped_tiny_clip`), so a ``cpu``-profile config runs
    without any chapter having run before."""
    from ..models import tiny_clip_shipped  # heavy: open_clip, only once an encoder is built
    p = Path(name).expanduser()
    shipped = Path(name) == Path(tiny_clip_shipped.SHIPPED_NAME)
    if p.is_absolute() or p.exists() and not shipped:
        return p
    if shipped:
        return tiny_clip_shipped.install_shipped_tiny_clip(data_dir() / tiny_clip_shipped.SHIPPED_NAME)
    return data_dir() / p


def resolve_dataset_root(cfg, generate: bool = True, progress: bool = False) -> Path:
    """``cfg.dataset_root()``; the book's AtomicActions (``data.dataset: atomic_actions`` with the root
    ``atomic_actions-seed<N>`` directly under :func:`lga.config.data_dir`, the default dataset of seed
    ``N``) is generated there first when it is missing or incomplete
    (:func:`lga.data.atomic_actions.get_atomic_actions`), as the shipped tiny CLIP is installed, so a
    ``cpu``-profile config runs on an empty data cache. Any other root is returned as it is (a missing
    one fails where it is read, naming the folder); ``generate=False`` never generates (one process of
    a multi-process run must not write what the others read)."""
    root = cfg.dataset_root()
    if not generate or cfg.data.dataset != "atomic_actions" or root.parent.resolve() != data_dir().resolve():
        return root
    from ..data.atomic_actions import AtomicActionsConfig, default_seed, get_atomic_actions  # heavy: the renderer
    seed = default_seed(root.name)
    if seed is None:
        return root
    return get_atomic_actions(root, AtomicActionsConfig(seed=seed), progress=progress)


def check_components(model_cfg) -> None:
    """Resolve the configured classes and check their arguments without building anything heavy.

    A class that names a dataclass as ``args_schema`` (the LGA head: :class:`~lga.models.lga.LGAConfig`)
    takes exactly that dataclass's fields, checked by building it; any other class, the parameters of
    its constructor (or of ``from_pretrained``).

    Raises :class:`lga.config.ConfigError` naming the key (``model.head_args.alhpa``) and what is allowed.
    """
    for what, args_key in (("encoder", "encoder_args"), ("head", "head_args")):
        name = getattr(model_cfg, what)
        cls = resolve(name, what)
        args = dict(getattr(model_cfg, args_key))
        schema = getattr(cls, "args_schema", None)
        if schema is not None:       # a dataclass of the component's arguments (LGA: LGAConfig)
            allowed = [f.name for f in dataclasses.fields(schema)]
            for k in args:
                if k not in allowed:
                    raise ConfigError(f"unknown key model.{args_key}.{k}; {schema.__name__} fields: "
                                      f"{', '.join(allowed)}")
            try:
                schema(**args)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"model.{args_key}: {e}") from None
            continue
        target = cls.from_pretrained if (what == "encoder" and hasattr(cls, "from_pretrained")
                                         and "model" in args) else cls
        args.pop("model", None) if target is not cls else None
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in params.values()) and target is not cls:
            params = {**params, **inspect.signature(cls).parameters}
        elif any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        for k in args:
            if k not in params:
                raise ConfigError(f"unknown key model.{args_key}.{k}; {cls.__name__} accepts: "
                                  f"{', '.join(p for p in params if p not in ('self', 'kwargs'))}")


def encoder_dim(encoder: nn.Module) -> int | None:
    for attr in ("dim", "out_dim", "embed_dim", "feature_dim"):
        v = getattr(encoder, attr, None)
        if isinstance(v, int):
            return v
    return None


def build_head(model_cfg, dim: int | None = None) -> nn.Module:
    """The few-shot head (``head(support, support_labels, query, n_way, **text) -> logits``)."""
    return _construct(resolve(model_cfg.head, "head"), model_cfg.head_args, dim=dim)


def build_text_bank(model_cfg, class_names, *, encoder=None, anatomy=None, device=None):
    """The text bank of one split's classes, or None when ``model.text`` is ``none``.

    ``clip``: the anatomy steps and label prompts of ``class_names`` encoded once by the encoder's
    own text tower (``encoder.encode_text``); ``anatomy`` is a path, dataset root or shipped name.
    """
    if model_cfg.text == "none":
        return None
    cls = resolve(model_cfg.text, "text")
    if not hasattr(encoder, "encode_text"):
        raise ValueError(f"model.text={model_cfg.text!r} needs an encoder with a text tower "
                         f"(model.encoder: clip), not {type(encoder).__name__}")
    if anatomy is None:
        raise ValueError("model.text needs an anatomy: set data.anatomy (a file or a shipped dataset name)")
    bank = cls.build(anatomy, list(class_names), encode=encoder.encode_text, **model_cfg.text_args)
    return bank.to(device) if device is not None else bank


def head_loss(head, support, support_labels, query, query_labels, n_way, text=None):
    """``head.loss(...)`` when the head defines one, else cross-entropy on its logits. ``text``: the
    head's keyword inputs (class texts, phase bounds)."""
    text = text or {}
    if hasattr(head, "loss"):
        return head.loss(support, support_labels, query, query_labels, n_way, **text)
    logits = head(support, support_labels, query, n_way, **text)
    return F.cross_entropy(logits.flatten(0, 1), query_labels.flatten()), logits


def anatomy_source(cfg, root):
    """Where the class anatomy comes from: ``data.anatomy`` (a file or a shipped dataset name), else the
    dataset's own ``anatomy.json``, else the anatomy shipped for the benchmark, else None."""
    if cfg.data.anatomy:
        return cfg.data.anatomy
    if (Path(root) / "anatomy.json").is_file():
        return str(root)
    return cfg.data.dataset if cfg.data.dataset in SHIPPED_FILES else None
