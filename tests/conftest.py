"""Shared pytest fixtures.

``shared_splits`` is the folder of standard few-shot split lists that lies beside the repository
(``../shared/splits``, or ``$LGA_SHARED_DIR/splits``). It is read-only reference data: the project
itself fetches these lists from their public sources (``lga.data.splits``); tests use this copy as a
pre-filled download cache and to check the registry's checksums.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("LGA_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_splits() -> Path:
    path = shared_dir() / "splits"
    if not (path / "SOURCES.md").is_file():
        pytest.fail(f"the shared split lists are missing: expected {path}/SOURCES.md "
                    "(set LGA_SHARED_DIR to the folder that holds splits/)")
    return path
