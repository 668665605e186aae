"""Reading and writing videos: encoded files through PyAV, or folders of frame images.

``read_video`` is the one reader of the project: AtomicActions and the real benchmarks go through
it, so the synthetic benchmark exercises exactly the code that reads HMDB51.
(``torchvision.io.read_video`` no longer exists in torchvision 0.29; we decode with PyAV directly.)
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .layout import FRAME_EXTENSIONS, atomic_path
from .sampling import sample_indices


class VideoError(RuntimeError):
    """A video that cannot be used: missing, empty, corrupt or too short. The message names the file."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)


def _decode_all(path: Path) -> list:
    """Decode every frame of a video file into PyAV frames (cheap: no colour conversion yet)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(path, "has no video stream")
            stream = container.streams.video[0]
            return list(container.decode(stream))
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(path, f"cannot be decoded ({type(e).__name__}: {e})") from e


def count_frames(path: str | os.PathLike) -> int:
    """Number of decodable frames of a video file or frame folder."""
    path = Path(path)
    if path.is_dir():
        return len(_frame_files(path))
    return len(_decode_all(path))


def read_video(path: str | os.PathLike, num_frames: int = 8, mode: str = "test",
               rng: np.random.Generator | None = None, return_indices: bool = False):
    """Read ``num_frames`` frames of a video file or frame folder.

    Args:
        path: an encoded video (.mp4, .avi, .webm, ...) or a folder of frame images (sorted by name).
        num_frames: T.
        mode: ``"test"``: deterministic, uniformly spaced frames; ``"train"``: one random frame per
            segment, drawn from ``rng``.
        rng: numpy Generator for ``train`` mode.
        return_indices: also return the indices of the frames read (in the video's frame numbering).

    Returns:
        uint8 tensor ``[T, H, W, 3]`` (RGB), and int64 array ``[T]`` if ``return_indices``.

    Raises:
        VideoError: the file is missing, empty, unreadable, or has fewer than ``num_frames`` frames.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "does not exist")
    if path.is_dir():
        files = _frame_files(path)
        total = len(files)
    else:
        if path.stat().st_size == 0:
            raise VideoError(path, "is empty (0 bytes)")
        frames = _decode_all(path)
        total = len(frames)
    if total == 0:
        raise VideoError(path, "contains no frames")
    if total < num_frames:
        raise VideoError(path, f"has {total} frames, fewer than the {num_frames} needed")
    idx = sample_indices(total, num_frames, mode, rng)
    if path.is_dir():
        from PIL import Image

        arrays = []
        for i in idx:
            try:
                with Image.open(files[i]) as im:
                    arrays.append(np.asarray(im.convert("RGB")))
            except OSError as e:
                raise VideoError(files[i], f"cannot be read as an image ({e})") from e
    else:
        arrays = [frames[i].to_ndarray(format="rgb24") for i in idx]
    if len({a.shape for a in arrays}) != 1:
        raise VideoError(path, "frames have different sizes")
    out = torch.from_numpy(np.stack(arrays))
    return (out, idx) if return_indices else out


def write_video(path: str | os.PathLike, frames, fps: int = 12, codec: str = "libx264",
                crf: int = 18) -> Path:
    """Encode ``frames`` (uint8 ``[T, H, W, 3]`` RGB; H and W even) to ``path`` atomically.

    The file is written to a temporary name beside ``path`` and renamed when complete, so an
    interrupted run never leaves a truncated video under the final name. Encoding is single-threaded
    so that the same frames give the same bytes.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"{path}: height and width must be even for yuv420p, got {h}x{w}")
    with atomic_path(path, suffix=path.suffix) as tmp:   # the suffix tells PyAV the container
        with av.open(tmp, mode="w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.thread_count = 1
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "fastdecode"}
            for i in range(t):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
