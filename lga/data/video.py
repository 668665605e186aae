"""Reading and writing videos: encoded files through PyAV, or folders of frame images.

``read_video`` is the one reader of the project: AtomicActions and the real benchmarks go through
it, so the synthetic benchmark exercises exactly the code that reads HMDB51.
(``torchvision.io.read_video`` no longer exists in torchvision 0.29; we decode with PyAV directly.)

Reading decodes the video as a stream and keeps only the frames it samples, so memory does not grow
with the length of the video. A frame folder must hold one numbered sequence (``img_1.jpg`` ...
``img_12.jpg`` or ``000001.jpg`` ...), read in numeric order; a gap, a repeated number or an
unnumbered image among numbered ones is an error.
Frames larger than :data:`MAX_FRAME_PIXELS` are refused before they are decoded.

Writing is reproducible: the same frames give the same bytes, in any process, under any load, on
any number of CPUs.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from ..util.files import atomic_path
from .layout import FRAME_EXTENSIONS, OutsideRootError, confined, is_inside
from .sampling import sample_indices

#: the largest frame (width x height) read from a video or a frame image: 8192 x 8192, well above
#: 8K video; a larger header is a corrupt or hostile file (a "decompression bomb"), refused unread
MAX_FRAME_PIXELS = 8192 * 8192

#: libx264 settings of :func:`write_video`. ``mbtree=0``: x264 (core 165, as bundled with PyAV 18)
#: reads heap memory it never initialised when macroblock-tree rate control meets B-frames, so the
#: bitstream depended on what the process had freed before (the same frames gave other bytes and
#: other decoded pixels, run to run); without mbtree the output is a function of the frames only.
X264_OPTIONS = {"preset": "veryfast", "tune": "fastdecode", "x264-params": "mbtree=0"}

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class VideoError(RuntimeError):
    """A video that cannot be used: missing, empty, corrupt or too short. The message names the file."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _frame_files(folder: Path) -> list[Path]:
    """The frame images of ``folder`` in frame order: by the last number in their names.

    Raises:
        VideoError: two images carry the same number, a number between the first and the last
            is missing, or some images are numbered and others not.
    """
    files = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS]
    numbers = [_LAST_NUMBER.search(p.stem) for p in files]
    unnumbered = sorted(p.name for p, m in zip(files, numbers) if m is None)
    if len(unnumbered) == len(files):   # no numbers at all (or no files): by name
        return sorted(files)
    if unnumbered:
        raise VideoError(folder, f"{len(unnumbered)} of {len(files)} frame images carry no number "
                                 f"({', '.join(unnumbered[:3])}{', ...' if len(unnumbered) > 3 else ''}), "
                                 "so their place among the numbered frames is unknown")
    order = sorted(zip((int(m.group(1)) for m in numbers), (p.name for p in files), files))
    for (a, name_a, _), (b, name_b, _) in zip(order, order[1:]):
        if a == b:
            raise VideoError(folder, f"frames {name_a} and {name_b} have the same number {a}")
        if b != a + 1:
            missing = f"{a + 1}" if b == a + 2 else f"{a + 1}..{b - 1}"
            raise VideoError(folder, f"frame number {missing} is missing (between {name_a} and {name_b})")
    return [p for _, _, p in order]


def check_frame_size(path, width: int, height: int) -> None:
    """Raise :class:`VideoError` naming ``path`` if a ``width`` x ``height`` frame exceeds :data:`MAX_FRAME_PIXELS`."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(path, f"frames of {width}x{height} pixels exceed the limit of {MAX_FRAME_PIXELS} "
                               "(lga.data.video.MAX_FRAME_PIXELS): a corrupt or hostile file?")


def _read_image(path: Path) -> np.ndarray:
    """One frame image as uint8 ``[H, W, 3]``; an oversized header is refused before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                check_frame_size(path, *im.size)
                return np.asarray(im.convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise VideoError(path, f"image too large to read ({e})") from e
    except (OSError, ValueError, SyntaxError) as e:   # PIL's errors for broken images
        raise VideoError(path, f"cannot be read as an image ({e})") from e


@contextmanager
def _opened(path: Path):
    """``(container, stream)``: ``path`` opened, its first video stream checked; PyAV's errors inside
    the block become :class:`VideoError` naming the file."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(path, f"cannot be decoded ({type(e).__name__}: {e})") from e
    with container:
        if not container.streams.video:
            raise VideoError(path, "has no video stream")
        stream = container.streams.video[0]
        check_frame_size(path, stream.codec_context.width, stream.codec_context.height)
        try:
            yield container, stream
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise VideoError(path, f"cannot be decoded ({type(e).__name__}: {e})") from e


def _decode(path: Path, keep=frozenset(), convert=None) -> tuple[int, dict]:
    """Decode every frame of ``path`` once, keeping only the frames whose index is in ``keep``.

    Returns (number of decoded frames, {index: ``convert(frame)``}). Memory holds one decoded frame
    at a time plus the kept ones.
    """
    kept: dict = {}
    n = 0
    with _opened(path) as (container, stream):
        for frame in container.decode(stream):
            if n in keep:
                kept[n] = convert(frame)
            n += 1
    return n, kept


def _count_packets(path: Path) -> int:
    """Frames the container says it holds (its video packets; cheap: nothing is decoded)."""
    with _opened(path) as (container, stream):
        return sum(1 for p in container.demux(stream) if p.size)


def count_frames(path: str | os.PathLike) -> int:
    """Number of decodable frames of a video file or frame folder."""
    path = Path(path)
    if path.is_dir():
        return len(_frame_files(path))
    return _decode(path)[0]


def _check_images(folder: Path, files: list[Path], root: Path | None, allow_symlinks: bool) -> None:
    """Refuse a frame image of ``folder`` that resolves outside ``root`` (else outside ``folder``)."""
    if allow_symlinks:
        return
    within = os.path.realpath(root if root is not None else folder)
    for f in files:
        target = os.path.realpath(f)
        if not is_inside(target, within):
            where = f"the dataset folder {root}" if root is not None else f"its frame folder {folder}"
            raise VideoError(f, f"a symlink to {target}, outside {where}: refused (allow_symlinks=True reads it)")


def read_video(path: str | os.PathLike, num_frames: int = 8, mode: str = "test",
               rng: np.random.Generator | None = None, return_indices: bool = False, *,
               root: str | os.PathLike | None = None, allow_symlinks: bool = False):
    """Read ``num_frames`` frames of a video file or frame folder.

    A video file is read in two passes: its packets are counted (no decoding), then it is decoded
    once, keeping only the sampled frames. Should the decoder give another number of frames than
    the container has packets (a damaged file), the frames are sampled again from the decoded count.

    Args:
        path: an encoded video (.mp4, .avi, .webm, ...) or a folder of frame images (one numbered
            sequence, read in numeric order).
        num_frames: T.
        mode: ``"test"``: deterministic, uniformly spaced frames; ``"train"``: one random frame per
            segment, drawn from ``rng``.
        rng: numpy Generator for ``train`` mode.
        return_indices: also return the indices of the frames read (in the video's frame numbering).
        root: the dataset folder ``path`` belongs to: ``path`` and every frame image read must resolve
            inside it (a video of a :class:`~lga.data.dataset.VideoDataset` is read so). Without
            ``root``, the frame images of a folder must resolve inside that folder.
        allow_symlinks: follow symlinks wherever they lead (``..`` and absolute paths stay refused).

    Returns:
        uint8 tensor ``[T, H, W, 3]`` (RGB), and int64 array ``[T]`` if ``return_indices``.

    Raises:
        VideoError: the file is missing, empty, unreadable, oversized, has fewer than ``num_frames``
            frames, (a folder) its frame numbers have a gap or a repeat, or it leads outside ``root``
            (or a frame image outside its folder).
    """
    path = Path(path)
    if root is not None:
        try:
            confined(root, os.path.relpath(os.path.abspath(path), os.path.abspath(root)), allow_symlinks)
        except OutsideRootError as e:
            raise VideoError(path, str(e).split(": ", 1)[1]) from None
    if not path.exists():
        raise VideoError(path, "does not exist")

    def check(total):
        if total == 0:
            raise VideoError(path, "contains no frames")
        if total < num_frames:
            raise VideoError(path, f"has {total} frames, fewer than the {num_frames} needed")

    if path.is_dir():
        files = _frame_files(path)
        check(len(files))
        idx = sample_indices(len(files), num_frames, mode, rng)
        _check_images(path, [files[i] for i in idx], None if root is None else Path(root), allow_symlinks)
        arrays = [_read_image(files[i]) for i in idx]
    else:
        if path.stat().st_size == 0:
            raise VideoError(path, "is empty (0 bytes)")
        state = rng.bit_generator.state if rng is not None else None
        to_rgb = lambda f: f.to_ndarray(format="rgb24")  # noqa: E731
        total = _count_packets(path)
        if total >= num_frames:
            idx = sample_indices(total, num_frames, mode, rng)
            decoded, kept = _decode(path, set(idx.tolist()), to_rgb)
        else:
            decoded = _decode(path)[0]
        check(decoded)
        if decoded != total:   # the container miscounted: sample from what decodes
            if rng is not None:
                rng.bit_generator.state = state
            idx = sample_indices(decoded, num_frames, mode, rng)
            kept = _decode(path, set(idx.tolist()), to_rgb)[1]
        arrays = [kept[i] for i in idx.tolist()]
    if len({a.shape for a in arrays}) != 1:
        raise VideoError(path, "frames have different sizes")
    out = torch.from_numpy(np.stack(arrays))
    return (out, idx) if return_indices else out


def write_video(path: str | os.PathLike, frames, fps: int = 12, codec: str = "libx264",
                crf: int = 18) -> Path:
    """Encode ``frames`` (uint8 ``[T, H, W, 3]`` RGB; H and W even) to ``path`` atomically.

    The file is written to a temporary name beside ``path`` and renamed when complete, so an
    interrupted run never leaves a truncated video under the final name. The same frames give the
    same bytes: one encoder thread, and libx264 run with :data:`X264_OPTIONS` (see there why).
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
                stream.options = {"crf": str(crf), **X264_OPTIONS}
            for i in range(t):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
