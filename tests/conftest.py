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


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for the module: on a shared 2-core machine two spinning threads
    can be many times slower, and one thread keeps runs bit-reproducible."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_atomic_actions(tmp_path_factory):
    """A small AtomicActions dataset (8/3/6 classes, 4 videos of 16 frames at 32 px) for the module."""
    from lga.data.atomic_actions import AtomicActionsConfig, generate

    root = tmp_path_factory.mktemp("atomic_actions")
    generate(root, AtomicActionsConfig(num_classes=(8, 3, 6), videos_per_class=4, frames_per_video=16,
                                       size=32, workers=1), progress=False)
    return root


@pytest.fixture(scope="session")
def micro_clip_config() -> dict:
    """An open_clip config of a micro ViT CLIP (D=32, 32-px images, 16-token texts), built in milliseconds."""
    return {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }


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


@pytest.fixture
def fake():
    """A fake-tensor mode in which real CPU tensors may enter (they become fake CPU tensors): a stand-in
    for a CUDA device on a machine without one (``tests/engine/test_device_rule.py``,
    ``tests/models/test_heads_contract.py``). Skips on a torch whose fake tensors need a driver."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    cuda = torch.device("cuda", 0)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        try:    # older torch (2.6) asks the CUDA driver even for fake tensors (random init of a layer)
            torch.zeros(2, device=cuda).gather(0, torch.zeros(1, dtype=torch.long, device=cuda))
            torch.nn.Linear(2, 2, device=cuda)
        except RuntimeError as e:
            pytest.skip(f"this torch's fake tensors cannot stand in for CUDA without a driver ({str(e).splitlines()[0]})")
        yield mode
