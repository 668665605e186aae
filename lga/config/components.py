"""The registry of component names: which frame encoders, few-shot heads and text banks a config
may name (:data:`ENCODERS`, :data:`HEADS`, :data:`TEXT_BANKS`), and the check a config passes
(:func:`check_component_names`).

The registry is data: a name maps to a class added by :func:`register_head` /
:func:`register_encoder`, or to the ``"module:Class"`` string of lga's own code, imported only when
:mod:`lga.engine.build` builds it. **Nothing a file names is imported or called**: a config (or the
config stored in a checkpoint) can only pick a registered name; a ``"package.module:Class"`` string
found there is refused unless the user trusts it by name (:func:`allow_component`,
``--allow-component``). Checking a name imports nothing.
"""

from __future__ import annotations

import re

from .errors import ConfigError

#: frame encoders: config name -> class, or ``"module:Class"`` of lga's own code (imported when used)
ENCODERS = {
    "conv4": "lga.models.frame_encoder:FrameEncoder",
    "clip": "lga.models.backbone_encoder:ClipFrameEncoder",
}
#: few-shot heads (see :data:`ENCODERS`)
HEADS = {
    "protonet": "lga.models.baselines:ProtoNet",
    "otam": "lga.models.baselines:OTAMHead",
    "label_only": "lga.models.baselines:LabelOnlyHead",
    "lga": "lga.models.lga:LGA",
}
#: text banks (see :data:`ENCODERS`)
TEXT_BANKS = {"clip": "lga.models.text_bank:TextBank"}

_REGISTRIES = {"encoder": ENCODERS, "head": HEADS, "text": TEXT_BANKS}
_REGISTER_FUNCTION = {"encoder": "register_encoder", "head": "register_head"}
#: ``"package.module:Class"`` strings the user trusts (:func:`allow_component`, ``--allow-component``)
_ALLOWED: set[str] = set()
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_TARGET = re.compile(rf"{_DOTTED}:{_DOTTED}")


def _register(what: str, name: str, component, replace: bool):
    registry = _REGISTRIES[what]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {what} name must be a non-empty string, got {name!r}")
    if isinstance(component, str) or not callable(component):
        raise TypeError(f"register_{what}({name!r}, ...) needs the class itself (or a factory function), "
                        f"got {component!r}")
    if name in registry and registry[name] is not component and not replace:
        raise ValueError(f"{what} {name!r} is already registered ({registry[name]!r}); "
                         f"pass replace=True to replace it")
    registry[name] = component
    return component


def register_encoder(name: str, cls, *, replace: bool = False):
    """Make ``cls`` (a frame encoder class, or a factory) available to configs as ``model.encoder: name``.

    Args:
        name: the config name; may also be the ``"package.module:Class"`` string that configs
            already use, so those configs load unchanged.
        cls: the class itself (imported by your code, not by lga).
        replace: allow replacing a name that is already registered.

    Returns ``cls``.
    """
    return _register("encoder", name, cls, replace)


def register_head(name: str, cls, *, replace: bool = False):
    """Make ``cls`` (a few-shot head class, or a factory) available to configs as ``model.head: name``.

    Same arguments as :func:`register_encoder`.
    """
    return _register("head", name, cls, replace)


def allow_component(target: str) -> str:
    """Trust one ``"package.module:Class"`` string: configs naming it may then import and build it.

    This is what ``--allow-component`` on the command line does. Only the exact string is trusted,
    for encoders and heads; everything else a config or checkpoint names stays refused.
    """
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise ConfigError(f"--allow-component expects package.module:Class, got {target!r}")
    _ALLOWED.add(target)
    return target


def check_component_name(name, what: str) -> None:
    """Raise :class:`~lga.config.ConfigError` unless ``name`` is a registered ``what`` (``"encoder"``,
    ``"head"``, ``"text"``) or an allowed ``"package.module:Class"`` string. Imports nothing."""
    registry = _REGISTRIES[what]
    if isinstance(name, str) and (name in registry or (what != "text" and name in _ALLOWED)):
        return
    known = ", ".join(registry)
    register = _REGISTER_FUNCTION.get(what)
    if isinstance(name, str) and ":" in name:
        how = (f"if you trust it, allow it explicitly: --allow-component {name} on the command line, or "
               f"lga.config.components.allow_component({name!r}) or {register}(...) in Python"
               if register else f"use one of {known}")
        raise ConfigError(f"model.{what}: {name!r} names Python code to import; lga never imports or calls "
                          f"what a config or checkpoint names ({how}). Registered {what}s: {known}")
    hint = f" (add your own with lga.engine.build.{register})" if register else ""
    raise ConfigError(f"model.{what}: unknown {what} {name!r}; use one of {known}{hint}")


def check_component_names(model) -> None:
    """:func:`check_component_name` for the encoder, head and text bank of a
    :class:`~lga.config.ModelConfig` or of its dict (the ``model`` section of a stored config)."""
    get = model.get if isinstance(model, dict) else (lambda key, default=None: getattr(model, key, default))
    for what, default in (("encoder", None), ("head", None), ("text", "none")):
        name = get(what, default)
        if what == "text" and name == "none":
            continue
        check_component_name(name, what)
