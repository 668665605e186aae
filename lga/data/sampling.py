"""Which frames of a video a model sees: deterministic test sampling, random train sampling.

Both split a video of ``num_total`` frames into ``num_frames`` equal segments (TSN style):
``test`` takes the centre frame of every segment (the same frames every time, as TRX and
few-shot-action-recognition do; CLIP-FSAR samples randomly even at test time, so its numbers vary
run to run), ``train`` takes one random frame inside each segment (a cheap temporal augmentation
that still keeps the frames in order).
"""

from __future__ import annotations

import numpy as np

MODES = ("test", "train")


def sample_indices(num_total: int, num_frames: int = 8, mode: str = "test",
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices to read from a video of ``num_total`` frames.

    Args:
        num_total: frames in the video (must be >= ``num_frames``).
        num_frames: T, frames to sample.
        mode: ``"test"`` (segment centres, deterministic) or ``"train"`` (random frame per segment).
        rng: numpy Generator, required in ``train`` mode (pass a seeded one for reproducibility).

    Returns:
        int64 array ``[T]``, strictly increasing, each in ``[0, num_total)``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_total < num_frames:
        raise ValueError(f"cannot sample {num_frames} distinct frames from a video of {num_total}")
    edges = (np.arange(num_frames + 1) * num_total) // num_frames  # [T+1], segment i = [e_i, e_{i+1})
    if mode == "test":
        return ((np.arange(num_frames) + 0.5) * num_total / num_frames).astype(np.int64)
    if rng is None:
        raise ValueError("train-mode sampling needs a numpy Generator (rng=np.random.default_rng(seed))")
    return (edges[:-1] + (rng.random(num_frames) * (edges[1:] - edges[:-1]))).astype(np.int64)
