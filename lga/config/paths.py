"""Where the project keeps its files: the data folder (:func:`data_dir`) and the shipped configs
(:func:`config_dirs`)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where datasets, checkpoints and downloads live: ``$LGA_DATA_DIR`` or ``~/.cache/lga``."""
    return Path(os.environ.get("LGA_DATA_DIR", Path.home() / ".cache" / "lga")).expanduser()


def config_dirs() -> list[Path]:
    """Where shipped configs live: ``lga/configs`` in an installed wheel, ``configs/`` in a checkout."""
    here = Path(__file__).resolve().parents[1]          # lga/
    return [d for d in (here / "configs", here.parent / "configs") if d.is_dir()]
