"""Same input and seed, same videos: byte for byte, decoded frame for decoded frame, under CPU load,
with any number of workers, whatever the process did before.

The cause of the old differences (issue 15, item 3): libx264, as bundled with PyAV, reads heap memory
it never initialised when macroblock-tree rate control meets B-frames, so what it wrote depended on
what the process had freed earlier. glibc's ``MALLOC_PERTURB_`` fills every new allocation with a
chosen byte: two runs with two bytes are two runs with different leftover memory, on demand.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lga.data import layout
from lga.data.atomic_actions import AtomicActionsConfig, generate
from lga.data.video import count_frames, read_video

REPO = Path(__file__).resolve().parents[1]

#: encodes a few videos with write_video and prints the sha256 of each file
ENCODE = """
import hashlib, sys
import numpy as np
from lga.data.video import write_video
out = sys.argv[1]
for seed in range(6):
    rng = np.random.default_rng(seed)
    t, s = 32, 64
    y, x = np.mgrid[0:s, 0:s]
    frames = np.empty((t, s, s, 3), np.uint8)
    cx, cy = rng.uniform(10, 54, 2)
    vx, vy = rng.uniform(-1.5, 1.5, 2)
    for i in range(t):
        blob = ((x - cx - vx * i) ** 2 + (y - cy - vy * i) ** 2 < 80)[..., None] * rng.integers(60, 200, 3)
        frames[i] = np.clip(40 + blob + rng.normal(0, 6, (s, s, 3)), 0, 255).astype(np.uint8)
    path = write_video(f"{out}/v{seed}.mp4", frames)
    print(hashlib.sha256(path.read_bytes()).hexdigest())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="MALLOC_PERTURB_ is a glibc feature")
def test_write_video_does_not_depend_on_leftover_memory(tmp_path):
    digests = []
    for byte in ("1", "165"):
        out = tmp_path / byte
        out.mkdir()
        env = dict(os.environ, MALLOC_PERTURB_=byte, PYTHONPATH=str(REPO))
        r = subprocess.run([sys.executable, "-c", ENCODE, str(out)], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        digests.append(r.stdout.split())
    assert len(digests[0]) == 6
    assert digests[0] == digests[1]


@contextmanager
def cpu_load():
    """Another process spinning on a CPU for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def decoded(path: Path) -> np.ndarray:
    """Every frame of a video, decoded: uint8 [T, H, W, 3]."""
    return read_video(path, num_frames=count_frames(path)).numpy()


def assert_same_videos(a: Path, b: Path) -> int:
    """The two dataset folders list the same videos, with the same bytes and decoded frames."""
    keys = [k for s in layout.SPLITS for k in layout.read_split_list(a, s)]
    assert keys == [k for s in layout.SPLITS for k in layout.read_split_list(b, s)]
    assert keys
    for key in keys:
        va, vb = layout.find_video(a, key), layout.find_video(b, key)
        fa, fb = decoded(va), decoded(vb)
        assert fa.shape == fb.shape, key
        diff = np.abs(fa.astype(int) - fb.astype(int))
        assert diff.max() == 0, f"{key}: {np.mean(diff > 0):.1%} of pixels differ (max {diff.max()})"
        assert hashlib.sha256(va.read_bytes()).digest() == hashlib.sha256(vb.read_bytes()).digest(), key
    return len(keys)


TINY = dict(seed=3, num_classes=(4, 2, 2), videos_per_class=3, frames_per_video=24, size=48)


def test_atomic_actions_regenerated_gives_the_same_videos(tmp_path):
    generate(tmp_path / "one", AtomicActionsConfig(**TINY, workers=1), progress=False)
    with cpu_load():
        generate(tmp_path / "two", AtomicActionsConfig(**TINY, workers=2), progress=False)
    assert assert_same_videos(tmp_path / "one", tmp_path / "two") == 8 * 3
