"""The folder where ``lga`` keeps datasets, checkpoints and downloads."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where datasets, checkpoints and downloads live: ``$LGA_DATA_DIR`` or ``~/.cache/lga``."""
    return Path(os.environ.get("LGA_DATA_DIR", Path.home() / ".cache" / "lga")).expanduser()
