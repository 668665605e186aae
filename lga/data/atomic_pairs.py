"""AtomicActions, (frame, text) pairs to train and probe a CLIP on (book chapter 3): frames from
inside one ground-truth phase paired with that phase's description (:func:`phase_pairs`). Part of
:mod:`lga.data.atomic_actions`, which offers every name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import atomic_text, layout
from .atomic_design import load_classes, load_wording
from .video import read_video


class PhasePairs:
    """(frame, text) pairs for training and probing a CLIP on AtomicActions (book chapter 3).

    ``pairs[i]`` is ``(frame uint8 [H, W, 3], text)``. Built by :func:`phase_pairs`; every frame comes
    from inside one ground-truth phase of one video and is paired with a description of that phase
    (``kind == "phase"``), or, optionally, from anywhere in the video and paired with the class label
    prompt (``kind == "label"``).

    Attributes (one entry per pair): ``frames`` uint8 ``[P, H, W, 3]``, ``texts``, ``keys``
    (``class_dir/video_id``), ``class_names``, ``phases`` (phase index, -1 for label pairs),
    ``frame_indices`` (index of the frame in the video), ``kinds``.
    """

    def __init__(self, frames, texts, keys, class_names, phases, frame_indices, kinds):
        self.frames = frames
        self.texts, self.keys, self.class_names = list(texts), list(keys), list(class_names)
        self.phases, self.frame_indices, self.kinds = list(phases), list(frame_indices), list(kinds)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int):
        return self.frames[i], self.texts[i]

    @property
    def descriptions(self) -> list[str]:
        """The distinct texts, in order of first appearance (the candidates of a retrieval test)."""
        return list(dict.fromkeys(self.texts))

    def text_index(self) -> "np.ndarray":
        """int64 ``[P]``: for each pair, the index of its text in :attr:`descriptions`."""
        lookup = {t: i for i, t in enumerate(self.descriptions)}
        return np.array([lookup[t] for t in self.texts], dtype=np.int64)

    def subset(self, mask) -> "PhasePairs":
        """The pairs where ``mask`` (bool sequence, one per pair) is True."""
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return PhasePairs(self.frames[idx], pick(self.texts), pick(self.keys), pick(self.class_names),
                          pick(self.phases), pick(self.frame_indices), pick(self.kinds))


def _frames_inside(rng: np.random.Generator, lo: int, hi: int, count: int, margin: int) -> list[int]:
    """``count`` distinct frame indices in ``[lo + margin, hi - margin)`` (margin dropped when the
    phase is too short for it; fewer frames when the phase has fewer), sorted."""
    if hi - lo - 2 * margin < max(1, count):
        margin = 0
    pool = np.arange(lo + margin, hi - margin)
    take = min(count, len(pool))
    return sorted(int(i) for i in rng.choice(pool, size=take, replace=False))


def phase_pairs(root: str | Path, split: str = "train", frames_per_phase: int = 2, seed: int = 0, *,
                label_frames: int = 0, label_template: str = "{label}", margin: int = 1,
                max_videos_per_class: int | None = None, anatomy: dict | None = None,
                wording: str = "anatomy", progress: bool = False) -> PhasePairs:
    """The (frame, phase description) pairs of one split of an AtomicActions dataset.

    For every video of ``split`` (all of them, or the first ``max_videos_per_class`` per class), and
    every ground-truth phase ``[b_i, b_{i+1})`` of it (``phase_bounds`` in ``anatomy.json``),
    ``frames_per_phase`` distinct frames are drawn at random from inside the phase, keeping ``margin``
    frames away from each phase boundary (where the motion is changing and the frame is ambiguous;
    the margin is dropped for phases too short to afford it). Each frame is paired with a description
    of that phase's step:

    - ``wording="anatomy"``: the step's description in the class anatomy (``anatomy.json``, or
      ``anatomy`` if given, e.g. a :func:`~lga.data.atomic_anatomy.noisy_anatomy`);
    - ``wording="train"`` (v2 datasets): one of the *training* sentences of the step's atom
      (:func:`lga.data.atomic_text.sentences`, list ``"train"``), drawn at random for every frame;
      the oracle anatomy's sentence is one of them, the held-out and unseen ones never are.

    With ``label_frames > 0``, that many frames per video, drawn from the whole video, are also paired
    with ``label_template.format(label=...)`` (whole-video label pairs; the label of ``anatomy`` or of
    ``anatomy.json``).

    Videos are decoded once each with :func:`lga.data.video.read_video` (every frame, so the indices
    of ``phase_bounds`` are the decoded frames). Which frames and sentences are drawn depends on
    ``seed`` only.
    """
    if wording not in ("anatomy", "train"):
        raise ValueError(f"phase_pairs: wording must be 'anatomy' or 'train', got {wording!r}")
    root = Path(root)
    data = layout.read_anatomy(root / "anatomy.json")
    classes = (anatomy or data)["classes"]
    if wording == "train":
        words = load_wording(root)
        atoms = {c.name: c.atoms() for c in load_classes(root)}
    videos = data.get("videos") or {}
    by_dir = {c.class_dir: c for c in layout.read_classes(root) if c.split == split}
    keys = layout.read_split_list(root, split)
    if max_videos_per_class is not None:
        seen: dict = {}
        keys = [k for k in keys if seen.setdefault(k.split("/")[0], []).append(k) or
                len(seen[k.split("/")[0]]) <= max_videos_per_class]
    frames, texts, out_keys, names, phases, fidx, kinds = [], [], [], [], [], [], []
    for v, key in enumerate(tqdm(keys, desc=f"{split} phase pairs", disable=not progress)):
        entry = by_dir.get(key.split("/")[0])
        if entry is None:
            raise ValueError(f"{root}: video {key!r} of split {split!r} has no class in classes.tsv")
        if key not in videos:
            raise KeyError(f"{root / 'anatomy.json'}: no phase_bounds for video {key!r}")
        bounds = [int(b) for b in videos[key]["phase_bounds"]]
        steps = classes[entry.class_name]["steps"]
        if len(steps) != len(bounds) - 1:
            raise ValueError(f"class {entry.class_name!r}: {len(steps)} steps but {len(bounds) - 1} phases")
        clip = read_video(layout.find_video(root, key), num_frames=int(videos[key]["num_frames"]))
        rng = np.random.default_rng([seed, 4, v])
        for i, step in enumerate(steps):
            options = (atomic_text.sentences(words, atoms[entry.class_name][i], "train")
                       if wording == "train" else None)
            for t in _frames_inside(rng, bounds[i], bounds[i + 1], frames_per_phase, margin):
                frames.append(clip[t])
                texts.append(step["description"] if options is None else options[rng.integers(len(options))])
                out_keys.append(key), names.append(entry.class_name), phases.append(i)
                fidx.append(t), kinds.append("phase")
        if label_frames > 0:
            label = classes[entry.class_name].get("label", entry.class_name)
            for t in sorted(rng.choice(len(clip), size=min(label_frames, len(clip)), replace=False)):
                frames.append(clip[int(t)])
                texts.append(label_template.format(label=label))
                out_keys.append(key), names.append(entry.class_name), phases.append(-1)
                fidx.append(int(t)), kinds.append("label")
    stacked = torch.stack(frames) if frames else torch.empty(0, 0, 0, 3, dtype=torch.uint8)
    return PhasePairs(stacked, texts, out_keys, names, phases, fidx, kinds)
