"""Turning a :class:`~lga.config.ModelConfig` into modules: frame encoder, few-shot head, text bank.

Components are named in configs by a short name (``conv4``, ``clip``, ``protonet``, ``lga``, ...)
or by ``"package.module:Class"``; arguments come from the ``*_args`` mappings. A class with a
``from_config(args, **context)`` classmethod is built through it; otherwise its constructor gets
the arguments, plus ``dim`` (the encoder's feature size) when it *requires* one and none was given.
An encoder with ``from_pretrained(model, ...)`` (the CLIP encoder) is built through that, with
``encoder_args["model"]`` as the CLIP name or checkpoint folder.
"""

from __future__ import annotations

import importlib
import inspect

from torch import nn

ENCODERS = {
    "conv4": "lga.models.frame_encoder:FrameEncoder",
    "clip": "lga.models.backbone_encoder:ClipFrameEncoder",
}
HEADS = {
    "protonet": "lga.models.baselines:ProtoNet",
    "otam": "lga.models.baselines:OTAMHead",
    "label_only": "lga.models.baselines:LabelOnlyHead",
    "lga": "lga.models.lga:LGA",
}
TEXT_BANKS = {"clip": "lga.models.text_bank:TextBank"}


def resolve(name: str, registry: dict, what: str):
    """``"protonet"`` or ``"pkg.mod:Class"`` -> the class (a clear error when it does not exist)."""
    target = registry.get(name, name)
    if ":" not in target:
        raise ValueError(f"model.{what}: unknown {what} {name!r}; use one of {', '.join(registry)} "
                         f"or 'package.module:Class'")
    module, attr = target.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"model.{what}: {name!r} needs module {module} which cannot be imported ({e})") from e
    if not hasattr(mod, attr):
        raise ValueError(f"model.{what}: module {module} has no {attr} (for {name!r})")
    return getattr(mod, attr)


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
    cls = resolve(model_cfg.encoder, ENCODERS, "encoder")
    args = dict(model_cfg.encoder_args)
    if hasattr(cls, "from_pretrained") and "model" in args:
        name = args.pop("model")
        if isinstance(name, str) and not name.startswith("local-dir:") and ("/" in name or name.startswith("~")):
            name = resolve_checkpoint_dir(name)
        return cls.from_pretrained(name, device=device or "cpu", **args)
    return _construct(cls, args)


def resolve_checkpoint_dir(name: str):
    """A checkpoint folder: absolute, ``~``, relative to the working directory if it exists there,
    else relative to :func:`lga.config.data_dir` (``tiny_clip/atomic_actions`` -> ``~/.cache/lga/...``)."""
    from pathlib import Path

    from ..config import data_dir
    p = Path(name).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return data_dir() / p


def check_components(model_cfg) -> None:
    """Resolve the configured classes and check their arguments without building anything heavy.

    Raises :class:`lga.config.ConfigError` naming the key (``model.head_args.alhpa``) and what is allowed.
    """
    from ..config import ConfigError
    for what, registry, args_key in (("encoder", ENCODERS, "encoder_args"), ("head", HEADS, "head_args")):
        name = getattr(model_cfg, what)
        try:
            cls = resolve(name, registry, what)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        args = dict(getattr(model_cfg, args_key))
        if what == "head" and name == "lga":
            import dataclasses

            from ..models.lga import LGAConfig
            allowed = [f.name for f in dataclasses.fields(LGAConfig)]
            for k in args:
                if k not in allowed:
                    raise ConfigError(f"unknown key model.head_args.{k}; LGAConfig fields: {', '.join(allowed)}")
            try:
                LGAConfig(**args)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"model.head_args: {e}") from None
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
    return _construct(resolve(model_cfg.head, HEADS, "head"), model_cfg.head_args, dim=dim)


def build_text_bank(model_cfg, class_names, *, encoder=None, anatomy=None, device=None):
    """The text bank of one split's classes, or None when ``model.text`` is ``none``.

    ``clip``: the anatomy steps and label prompts of ``class_names`` encoded once by the encoder's
    own text tower (``encoder.encode_text``); ``anatomy`` is a path, dataset root or shipped name.
    """
    if model_cfg.text == "none":
        return None
    cls = resolve(model_cfg.text, TEXT_BANKS, "text")
    if not hasattr(encoder, "encode_text"):
        raise ValueError(f"model.text={model_cfg.text!r} needs an encoder with a text tower "
                         f"(model.encoder: clip), not {type(encoder).__name__}")
    if anatomy is None:
        raise ValueError("model.text needs an anatomy: set data.anatomy (a file or a shipped dataset name)")
    bank = cls.build(anatomy, list(class_names), encode=encoder.encode_text, **model_cfg.text_args)
    return bank.to(device) if device is not None else bank


def head_loss(head, support, support_labels, query, query_labels, n_way, text=None):
    """``head.loss(...)`` when the head defines one, else cross-entropy on its logits."""
    text = text or {}
    if hasattr(head, "loss"):
        return head.loss(support, support_labels, query, query_labels, n_way, **text)
    from torch.nn import functional as F
    logits = head(support, support_labels, query, n_way, **text)
    return F.cross_entropy(logits.flatten(0, 1), query_labels.flatten()), logits
