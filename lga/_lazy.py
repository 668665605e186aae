"""Lazy exports for a package's ``__init__`` (PEP 562): a name is imported on first use.

``import lga`` then costs nothing: ``lga.train`` imports :mod:`lga.engine.train` (and torch) the first
time it is read, and ``lga.viz`` (matplotlib) only when asked for. This module imports nothing of lga.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys


def attach(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__, __all__)`` for the package named ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> ``"module"`` (the object of the same name there) or
            ``"module:attribute"`` (another name there); a module name may be relative to
            ``package`` (``".dataset"``).

    Reading an exported name imports its module and keeps the object on the package, so the next
    read is a plain attribute. Any other name that is a submodule (``lga.engine``) is imported the
    same way; ``__all__`` holds the exported names (what ``from package import *`` takes).
    """
    def __getattr__(name: str):
        target = exports.get(name)
        if target is not None:
            module, _, attr = target.partition(":")
            value = getattr(importlib.import_module(module, package), attr or name)
        elif not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, list(exports)
