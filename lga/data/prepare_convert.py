"""Preparing a benchmark, one video: decode it with PyAV, resize it to a short side, optionally
resample its frame rate or cap its frames, and write it as an mp4 (:func:`convert_video`). Part of
:mod:`lga.data.prepare`, which offers every name.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from .video import VideoError, check_frame_size, write_video


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side ``short_side`` (0: unchanged), aspect kept, both even."""
    if short_side <= 0:
        return max(2, width - width % 2), max(2, height - height % 2)
    scale = short_side / min(width, height)
    even = lambda x: max(2, int(round(x / 2.0)) * 2)  # noqa: E731
    return even(width * scale), even(height * scale)


def convert_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 256,
                  fps: float | None = None, max_frames: int | None = None, min_frames: int = 8,
                  clip: tuple[float, float] | None = None) -> dict:
    """Decode ``src``, resize, resample, and write ``dst`` (mp4, H.264) atomically.

    Args:
        short_side: target short side in pixels (0 keeps the size).
        fps: resample to this frame rate (``None``: keep the source rate, rounded).
        max_frames: keep at most this many frames, evenly spaced over the whole video.
        min_frames: fewer decodable frames than this is an error (the model reads 8).
        clip: ``(start, end)`` seconds to keep, applied only if the video is longer than the clip
            (an untrimmed Kinetics download).

    Returns:
        ``{"frames", "width", "height", "fps"}`` of the written video.

    Raises:
        VideoError: the source is missing, empty, undecodable or too short.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise VideoError(src, "does not exist")
    if src.stat().st_size == 0:
        raise VideoError(src, "is empty (0 bytes)")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(src)) as container:
            if not container.streams.video:
                raise VideoError(src, "has no video stream")
            stream = container.streams.video[0]
            stream.thread_count = 1  # one process per core already
            check_frame_size(src, stream.codec_context.width, stream.codec_context.height)
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            if clip is not None:
                duration = container.duration / 1e6 if container.duration else None
                if duration is None or duration <= (clip[1] - clip[0]) + 2.0:
                    clip = None  # already trimmed
            size = None
            step = 1.0 / fps if fps else None
            next_t = None
            for i, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else i / rate
                if clip is not None:
                    if t < clip[0]:
                        continue
                    if t >= clip[1]:
                        break
                if step is not None:
                    if next_t is not None and t + 1e-6 < next_t:
                        continue
                    next_t = (t if next_t is None else next_t) + step
                    while next_t <= t:
                        next_t += step
                if size is None:
                    size = output_size(frame.width, frame.height, short_side)
                frames.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24",
                                               interpolation="AREA", threads=1))  # same on any machine
    except VideoError:
        raise
    except Exception as e:  # PyAV raises many kinds of errors on broken files
        raise VideoError(src, f"cannot be decoded ({type(e).__name__}: {e})") from e
    if len(frames) < max(1, min_frames):
        raise VideoError(src, f"has {len(frames)} decodable frames, fewer than the {min_frames} needed")
    out_fps = fps if fps else rate
    if max_frames and len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(np.int64)
        out_fps = out_fps * max_frames / len(frames)
        frames = [frames[i] for i in keep]
    out_fps = max(1, int(round(out_fps)))
    write_video(dst, np.stack(frames), fps=out_fps)
    return {"frames": len(frames), "width": size[0], "height": size[1], "fps": out_fps}
