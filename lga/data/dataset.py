"""A prepared dataset split as a list of videos, and its clips loaded once into memory.

Works for every dataset in the layout of :mod:`lga.data.layout` (AtomicActions and the real
benchmarks). Bad videos never stop a long run: :func:`load_clips` skips them and lists each one,
with the reason, in a :class:`LoadReport`. A folder without ``dataset.json`` (which preparers write
last) is refused: its preparation was interrupted or is still running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import layout
from .layout import read_dataset_meta
from .video import VideoError, read_video


@dataclass
class VideoItem:
    """One video of a split: where it is and which class (split-local label index) it shows."""

    key: str          # "class_dir/video_id"
    path: Path
    label: int
    class_name: str


class VideoDataset:
    """The videos of one split of a prepared dataset.

    Args:
        root: dataset folder (see :mod:`lga.data.layout`).
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_frames: T, frames per clip.
        mode: ``"test"`` (deterministic frames) or ``"train"`` (random frame per segment).
        allow_symlinks: read videos and frame folders that are symlinks to outside ``root`` (by default
            every path a split list leads to must resolve inside ``root``, symlinks included).

    ``dataset[i]`` returns ``(frames uint8 [T, H, W, 3], label)`` in test mode;
    ``dataset.get(i, rng)`` samples train-mode frames from a numpy Generator.
    Videos whose files are missing are skipped at construction and listed in ``self.missing``.
    ``self.meta`` is the folder's ``dataset.json``.

    Raises:
        FileNotFoundError: ``root`` has no ``dataset.json``: it is not a complete dataset.
        ValueError: a line of the split list is not ``class_dir/video_id`` of a class of the split,
            or leads outside ``root`` (:class:`~lga.data.layout.OutsideRootError`, listing them all).
    """

    def __init__(self, root: str | os.PathLike, split: str, num_frames: int = 8, mode: str = "test", *,
                 allow_symlinks: bool = False):
        self.root, self.split, self.num_frames, self.mode = Path(root), split, num_frames, mode
        self.allow_symlinks = allow_symlinks
        self.meta = read_dataset_meta(self.root)
        classes = [c for c in layout.read_classes(self.root) if c.split == split]
        by_dir = {c.class_dir: c for c in classes}
        self.class_names = [c.class_name for c in sorted(classes, key=lambda c: c.label_index)]
        self.items: list[VideoItem] = []
        self.missing: list[str] = []
        outside: list[layout.OutsideRootError] = []
        folders: dict = {}        # real paths of the class folders, resolved once
        for key in layout.read_split_list(self.root, split):
            class_dir = key.split("/")[0]
            if class_dir not in by_dir:
                raise ValueError(f"{self.root / 'splits' / (split + '.txt')}: class folder {class_dir!r} "
                                 f"of {key!r} is not a {split} class in classes.tsv")
            try:
                path = layout.find_video(self.root, key, allow_symlinks, folders)
            except FileNotFoundError:
                self.missing.append(key)
                continue
            except layout.OutsideRootError as e:
                outside.append(e)
                continue
            c = by_dir[class_dir]
            self.items.append(VideoItem(key, path, c.label_index, c.class_name))
        if len(outside) == 1:
            raise outside[0]
        if outside:
            raise layout.OutsideRootError.of_list(self.root / "splits" / f"{split}.txt", outside, self.root)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def read_options(self) -> dict:
        """Keywords for :func:`~lga.data.video.read_video` to read this dataset's videos as it does:
        inside ``root``, symlinks out of it only if ``allow_symlinks``."""
        return {"root": self.root, "allow_symlinks": self.allow_symlinks}

    @property
    def labels(self) -> np.ndarray:
        """int64 ``[V]``: the split-local label of every video."""
        return np.array([it.label for it in self.items], dtype=np.int64)

    def __getitem__(self, i: int):
        return read_video(self.items[i].path, self.num_frames, "test", **self.read_options), self.items[i].label

    def get(self, i: int, rng: np.random.Generator | None = None):
        """Frames of video ``i`` in this dataset's mode (``rng`` needed in train mode)."""
        return read_video(self.items[i].path, self.num_frames, self.mode, rng,
                          **self.read_options), self.items[i].label


@dataclass
class LoadReport:
    """What happened while loading a split: how many videos were read, and which were skipped."""

    loaded: int = 0
    skipped: dict = field(default_factory=dict)   # key -> reason
    missing: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} videos, skipped {len(self.skipped)} unreadable, "
                 f"{len(self.missing)} missing"]
        lines += [f"  skipped {k}: {r}" for k, r in sorted(self.skipped.items())]
        lines += [f"  missing {k}" for k in self.missing]
        return "\n".join(lines)


def load_clips(dataset: VideoDataset, progress: bool = True):
    """Read the test-mode clip of every video once.

    Returns:
        clips: uint8 ``[V, T, H, W, 3]`` for the V readable videos,
        labels: int64 ``[V]``,
        keys: list of V ``class_dir/video_id``,
        report: :class:`LoadReport` (unreadable videos are skipped and listed, never fatal).
    """
    clips, labels, keys = [], [], []
    report = LoadReport(missing=list(dataset.missing))
    for i in tqdm(range(len(dataset)), desc=f"reading {dataset.split} videos", disable=not progress):
        item = dataset.items[i]
        try:
            frames, label = dataset[i]
        except VideoError as e:
            report.skipped[item.key] = e.reason
            continue
        clips.append(frames)
        labels.append(label)
        keys.append(item.key)
    report.loaded = len(clips)
    if not clips:
        raise RuntimeError(f"no readable video in {dataset.root} split {dataset.split!r}\n{report}")
    if len({c.shape for c in clips}) != 1:
        raise RuntimeError(f"{dataset.root}: clips have different shapes; resize when preparing the dataset")
    return torch.stack(clips), torch.tensor(labels), keys, report
