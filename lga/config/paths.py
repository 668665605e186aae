"""Where the project keeps its files: the data folder (:func:`data_dir`) and the shipped configs
(:func:`config_dirs`)."""

from __future__ import annotations

from pathlib import Path

from ..util.paths import data_dir

__all__ = ["data_dir", "config_dirs"]


def config_dirs() -> list[Path]:
    """Where shipped configs live: ``lga/configs`` in an installed wheel, ``configs/`` in a checkout."""
    here = Path(__file__).resolve().parents[1]          # lga/
    return [d for d in (here / "configs", here.parent / "configs") if d.is_dir()]
