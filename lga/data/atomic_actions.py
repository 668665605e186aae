"""AtomicActions: a synthetic few-shot action benchmark with ground-truth anatomy.

Every class is an ordered sequence of L = 3 atomic actions (onset, progression, completion), each a
(subject, motion, object) triple such as ("hand", "push_left", "ball"): *"the hand pushes the ball
to the left"*. Videos show the three phases with random durations under nuisances (position, speed,
size, colour, clutter, distractors, occlusion, noise).

The class set contains *hard pairs* like SSv2's: the same atoms in another order (``order``), a
direction mirrored (``mirror``), one phase different (``phase``), the object different
(``object``). The 100 classes split 64 / 12 / 24 (train / val / test) like Kinetics-100 and SSv2;
val and test classes are new sequences of atoms that all occur in training classes, so what must
generalise is composition.

**Version 2** (the default; ``version="1.0"`` reproduces v1's classes, labels, texts, phase bounds
and frames) adds knobs, each a field of :class:`AtomicActionsConfig`, a flag of
``make-atomic-actions`` and a record of ``dataset.json``:

- ``phase_variability`` (0..1): phase durations from equal thirds (0) to strongly unequal (1: two
  phases as short as one sampled frame of a ``clip_frames`` clip, the third gets the rest). In v1
  every phase lasted at least 20 % of the video, so uniform thirds of the 8 test-time frames found
  85 % of the phase frames; the v2 default 0.75 brings that to about 64 %
  (:func:`phase_frame_accuracy`).
- ``label_level``: how informative the label is, from an invented verb to real verbs naming the
  motions and the object (never their order or timing); see :mod:`lga.data.atomic_text`.
- ``wording``: which wording of the step descriptions ``anatomy.json`` carries: ``heldout`` (default;
  sentences the tiny CLIP never saw, made of words it did see), ``oracle`` (sentences it was trained
  on) or ``unseen`` (synonyms it never saw). Every wording is also written as
  ``anatomy_<wording>.json``.
- ``distractor_motion``: the chance that a distractor object performs atom-like motions of its own
  (pushes, lifts, spins, ... on its own clock), which misleads frame-based segmenters.
- ``grip_cues``: the subject holds the object from a side that depends on the motion (lift from
  below, lower from above, turn from an upper corner, ...), as hands hold things differently for
  different actions; so a single frame shows which phase is going on and a frame-based segmenter
  can find the phases (with the cpu profile's tiny CLIP, CLUSTER-Segment finds 73 % of the test
  phase frames with grip cues and 66 % without, uniform thirds 64 %). In v1 the subject held
  everything from its own side.
- ``motion_blur``: faded copies of everything that moved in the last frames (off by default: with
  a tiny CLIP trained for 200 steps it lowered the video-text branch from 68 % to 59 %).

The dataset is written in the layout of :mod:`lga.data.layout` (encoded videos, split lists,
``classes.tsv``, ``anatomy.json`` with ground-truth steps and per-video phase boundaries), so every
reader and command that serves HMDB51 serves it too. It is generated into ``<out>.partial`` and
renamed when complete; ``dataset.json``, written last, holds a manifest (size and sha256 of every
file) that :func:`verify` checks. Everything is a function of the seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..util.processes import die_with_parent
from . import atomic_text, layout
from .sampling import sample_indices
from .scene import (MIRROR, MOTION_GRIPS, MOTIONS, OBJECT_MOTIONS, OBJECTS, SUBJECTS, Look, fit_origin,
                    object_track, render_background, render_frame, simulate)
from .video import write_video

VERSION = "2.0"                 # the default version
VERSIONS = ("1.0", "2.0")
PAIR_KINDS = ("order", "mirror", "phase", "object")
NOISE_KINDS = ("object", "order", "vague")
WORDINGS = atomic_text.WORDINGS
LABEL_LEVELS = atomic_text.LABEL_LEVELS
WORDING_COPY = "wording.json"   # the dataset's copy of the wording data

#: v1: how each motion is said in a step description ({s}: subject, {o}: object)
_SENTENCE = {
    "reach": "the {s} reaches out and touches the {o}",
    "withdraw": "the {s} lets go of the {o} and pulls away",
    "push_left": "the {s} pushes the {o} to the left",
    "push_right": "the {s} pushes the {o} to the right",
    "lift": "the {s} lifts the {o} up",
    "lower": "the {s} lowers the {o} down",
    "spin_cw": "the {s} spins the {o} clockwise",
    "spin_ccw": "the {s} spins the {o} counterclockwise",
    "shake": "the {s} shakes the {o} from side to side",
    "tap": "the {s} taps the {o} twice",
    "toss": "the {s} tosses the {o} up and catches it",
    "squeeze": "the {s} squeezes the {o} until it shrinks",
}
_MOTION_PHRASE = {m: s.split("{s} ", 1)[1].replace(" the {o}", "").replace("{o}", "it")
                  for m, s in _SENTENCE.items()}
_SYLLABLES = ("bl", "fr", "gr", "sk", "tr", "pl", "sn", "dr", "kl", "zw", "st", "br", "qu", "sp")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "oo", "ee")
_CODAS = ("ck", "rn", "mp", "sh", "ft", "nd", "x", "zz", "lt", "rp", "ng", "sk")
_PALETTE = [(220, 60, 50), (60, 160, 70), (50, 90, 210), (235, 190, 40), (170, 70, 190),
            (240, 130, 40), (40, 180, 190), (230, 90, 150), (140, 200, 60), (120, 120, 230)]
_SUBJECT_COLOR = {"hand": (238, 190, 150), "claw": (120, 125, 135), "robot": (90, 150, 200)}


@dataclass(frozen=True)
class ActionClass:
    """One class: who does what to which object, in which order, and its hard-pair partner.

    ``name`` is unique (the key of ``anatomy.json``, ``class_name`` in ``classes.tsv``); ``label`` is
    the text a label-only model reads (v2; None in v1, where the label is the name). Two v2 classes
    may share a label (see :mod:`lga.data.atomic_text`), then their names carry ``#1``, ``#2``.
    """

    name: str                  # unique class name (v1: the label, "blick ball")
    subject: str
    object: str
    motions: tuple             # L motions, in temporal order
    split: str
    family: int                # classes of one family were made from one another
    pair_kind: str | None = None      # how it differs from its partner (PAIR_KINDS)
    partner: str | None = None        # the partner's name
    label: str | None = None          # v2: the label text at the dataset's label level
    invented: str | None = None       # v2: the invented-verb label ("blick ball"), for other levels
    wording: str | None = None        # v2: the wording of anatomy.json
    anatomies: dict | None = field(default=None, compare=False, hash=False)  # v2: wording -> steps

    @property
    def class_dir(self) -> str:
        return re.sub(r"[^0-9A-Za-z]+", "_", self.name).strip("_")

    @property
    def label_text(self) -> str:
        """What a label-only baseline reads (v1: the name)."""
        return self.label if self.label is not None else self.name

    def atoms(self) -> list[tuple[str, str, str]]:
        return [(self.subject, m, self.object) for m in self.motions]

    def steps(self, wording: str | None = None) -> list[dict]:
        """The anatomy: one step per phase (subject, motion, object, description), in ``wording``
        (v2; default: the wording of the dataset's ``anatomy.json``). v1 has one wording."""
        if self.anatomies is None:
            if wording not in (None, "oracle"):
                raise ValueError(f"class {self.name!r} is a v1 class: it has one wording only")
            return [{"subject": f"the {self.subject}", "motion": _MOTION_PHRASE[m],
                     "object": f"the {self.object}",
                     "description": _SENTENCE[m].format(s=self.subject, o=self.object)}
                    for m in self.motions]
        wording = wording or self.wording
        if wording not in self.anatomies:
            raise ValueError(f"unknown wording {wording!r}; known: {sorted(self.anatomies)}")
        return [dict(s) for s in self.anatomies[wording]]


#: knobs only one version reads; ``dataset.json`` records the other version's as null
_V1_ONLY = ("min_phase_share",)
_V2_ONLY = ("phase_variability", "label_level", "wording", "distractor_motion", "clip_frames", "motion_blur",
            "grip_cues")


@dataclass
class AtomicActionsConfig:
    """Everything that defines a generated dataset (written to ``dataset.json``, ``workers`` aside).

    A knob of one version only must keep its default under the other version (checked).
    """

    seed: int = 0
    num_classes: tuple = (64, 12, 24)          # train, val, test
    videos_per_class: int = 30
    frames_per_video: int = 32
    size: int = 64                             # frame side, pixels
    fps: int = 12
    num_phases: int = 3
    version: str = VERSION                     # "2.0" | "1.0" (reproduces v1)
    min_phase_share: float = 0.2               # v1: every phase lasts at least this share of the video
    phase_variability: float = 0.75            # v2: 0 equal thirds ... 1 two phases of one sampled frame
    clip_frames: int = 8                       # v2: frames a model samples (T): the shortest phase has F/T
    label_level: str = "verb"                  # v2: invented | object | salient | verb | all_verbs
    wording: str = "heldout"                   # v2: wording of anatomy.json: heldout | oracle | unseen
    distractor_motion: float = 0.5             # v2: chance that a distractor moves like an atom
    motion_blur: int = 0                       # v2: faded ghosts of the last n frames (0: sharp, as v1)
    grip_cues: bool = True                     # v2: the subject holds the object from a side per motion
    pair_share: float = 0.5                    # share of classes that belong to a hard pair
    occlusion_prob: float = 0.3
    max_distractors: int = 2
    max_clutter: int = 6
    max_noise: float = 8.0
    only_splits: tuple | None = None           # render only these splits (None: all; for small sweeps)
    workers: int = 2
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.version not in VERSIONS:
            raise ValueError(f"AtomicActionsConfig.version must be one of {VERSIONS}, got {self.version!r}")
        defaults = {f.name: f.default for f in fields(self) if f.name in _V1_ONLY + _V2_ONLY}
        unread = _V2_ONLY if self.version == "1.0" else _V1_ONLY
        changed = [k for k in unread if getattr(self, k) != defaults[k]]
        if changed:
            raise ValueError(f"AtomicActionsConfig: {changed} have no effect in version {self.version}")
        checks = [("label_level", self.label_level in LABEL_LEVELS, f"one of {LABEL_LEVELS}"),
                  ("wording", self.wording in WORDINGS, f"one of {WORDINGS}"),
                  ("phase_variability", 0.0 <= self.phase_variability <= 1.0, "in [0, 1]"),
                  ("distractor_motion", 0.0 <= self.distractor_motion <= 1.0, "in [0, 1]"),
                  ("clip_frames", self.clip_frames >= 1, ">= 1"),
                  ("motion_blur", self.motion_blur >= 0, ">= 0"),
                  ("occlusion_prob", 0.0 <= self.occlusion_prob <= 1.0, "in [0, 1]"),
                  ("pair_share", 0.0 <= self.pair_share <= 1.0, "in [0, 1]"),
                  ("max_distractors", self.max_distractors >= 0, ">= 0"),
                  ("max_clutter", self.max_clutter >= 0, ">= 0"),
                  ("max_noise", self.max_noise >= 0, ">= 0")]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"AtomicActionsConfig.{name} must be {what}, got {getattr(self, name)!r}")
        if self.only_splits is not None:
            splits = (self.only_splits,) if isinstance(self.only_splits, str) else tuple(self.only_splits)
            if not splits or len(set(splits)) != len(splits) or any(s not in layout.SPLITS for s in splits):
                raise ValueError(f"AtomicActionsConfig.only_splits must be None or distinct splits of "
                                 f"{layout.SPLITS}, got {self.only_splits!r}")
            self.only_splits = tuple(s for s in layout.SPLITS if s in splits)

    def renders(self, split: str) -> bool:
        """Whether the dataset holds the videos of ``split`` (every split unless ``only_splits``)."""
        return self.only_splits is None or split in self.only_splits

    def recorded(self) -> dict:
        """The config as ``dataset.json`` records it: JSON types, no ``workers``, the knobs of the
        other version as None, and ``only_splits`` only when set (a complete dataset's record is the
        same as before the option existed)."""
        out = json.loads(json.dumps(asdict(self)))
        out.pop("workers")
        if self.only_splits is None:
            out.pop("only_splits")
        for k in (_V2_ONLY if self.version == "1.0" else _V1_ONLY):
            out[k] = None
        return out


def min_phase_frames(cfg: AtomicActionsConfig) -> int:
    """v2: the shortest a phase can be, in video frames: one sampled frame of a ``clip_frames`` clip,
    ``ceil(frames_per_video / clip_frames)``."""
    return math.ceil(cfg.frames_per_video / cfg.clip_frames)


# ----------------------------------------------------------------------------- class design
def _sibling(base: tuple, kind: str, rng: np.random.Generator) -> tuple | None:
    """A hard-pair partner of ``base = (subject, object, motions)`` of the given kind, or None."""
    subject, obj, motions = base
    motions = list(motions)
    if kind == "order":
        perms = [p for p in ([motions[2], motions[1], motions[0]], [motions[1], motions[0], motions[2]],
                             [motions[0], motions[2], motions[1]]) if p != motions and _valid(p)]
        return (subject, obj, tuple(perms[rng.integers(len(perms))])) if perms else None
    if kind == "mirror":
        idx = [i for i, m in enumerate(motions) if m in MIRROR]
        if not idx:
            return None
        i = idx[rng.integers(len(idx))]
        new = motions.copy()
        new[i] = MIRROR[motions[i]]
        return (subject, obj, tuple(new)) if _valid(new) else None
    if kind == "phase":
        i = int(rng.integers(len(motions)))
        choices = [m for m in MOTIONS if m != motions[i] and m != MIRROR.get(motions[i])]
        new = motions.copy()
        new[i] = choices[rng.integers(len(choices))]
        return (subject, obj, tuple(new)) if _valid(new) else None
    if kind == "object":
        others = [o for o in OBJECTS if o != obj]
        return (subject, others[rng.integers(len(others))], tuple(motions))
    raise ValueError(f"unknown pair kind {kind!r}; known: {PAIR_KINDS}")


def _valid(motions) -> bool:
    """Adjacent phases must differ (else they would merge into one visible phase), and a reach
    needs a subject that is not already touching the object (first phase, or after a withdraw)."""
    return (all(a != b for a, b in zip(motions, motions[1:]))
            and all(m != "reach" or i == 0 or motions[i - 1] == "withdraw" for i, m in enumerate(motions)))


def _random_base(rng: np.random.Generator, num_phases: int, allowed=None) -> tuple:
    while True:
        subject = SUBJECTS[rng.integers(len(SUBJECTS))]
        obj = OBJECTS[rng.integers(len(OBJECTS))]
        motions = tuple(MOTIONS[i] for i in rng.integers(len(MOTIONS), size=num_phases))
        if _valid(motions) and (allowed is None or all((subject, m, obj) in allowed for m in motions)):
            return subject, obj, motions


def _pseudo_verb(rng: np.random.Generator, taken: set) -> str:
    while True:
        w = (_SYLLABLES[rng.integers(len(_SYLLABLES))] + _VOWELS[rng.integers(len(_VOWELS))]
             + _CODAS[rng.integers(len(_CODAS))])
        if w not in taken:
            taken.add(w)
            return w


def design_classes(cfg: AtomicActionsConfig, wording: dict | None = None) -> list[ActionClass]:
    """Design the class set from the seed: families of hard pairs and singles, split train/val/test.

    Training classes are drawn first; val and test classes only use (subject, motion, object)
    atoms that occur in some training class, in sequences no training class has. Both versions draw
    the same classes; v2 then gives them labels at ``cfg.label_level`` and anatomies in every wording
    (from ``wording``, default the shipped wording data; see :func:`label_classes`).
    """
    rng = np.random.default_rng([cfg.seed, 1])
    taken_seqs: set = set()
    verbs: set = set()
    train_atoms: set = set()
    out: list[ActionClass] = []
    family = 0
    for split, count in zip(layout.SPLITS, cfg.num_classes):
        allowed = None if split == "train" else train_atoms
        n_pairs = int(round(count * cfg.pair_share / 2))
        made = 0
        while made < count:
            base = _random_base(rng, cfg.num_phases, allowed)
            if base in taken_seqs:
                continue
            members = [(base, None)]
            if made // 2 < n_pairs and count - made >= 2:
                kind = PAIR_KINDS[(family + len(out)) % len(PAIR_KINDS)]
                sib = _sibling(base, kind, rng)
                if (sib is None or sib in taken_seqs or sib == base
                        or (allowed is not None and not all(a in allowed for a in
                                                            [(sib[0], m, sib[1]) for m in sib[2]]))):
                    continue
                members = [(base, kind), (sib, kind)]
            names = [f"{_pseudo_verb(rng, verbs)} {b[1]}" for b, _ in members]
            for i, (b, kind) in enumerate(members):
                partner = names[1 - i] if len(members) == 2 else None
                out.append(ActionClass(names[i], b[0], b[1], b[2], split, family, kind, partner))
                taken_seqs.add(b)
                if split == "train":
                    train_atoms.update((b[0], m, b[1]) for m in b[2])
            made += len(members)
            family += 1
    if cfg.version == "1.0":
        return out
    return label_classes(out, cfg, atomic_text.load_wording() if wording is None else wording)


def _seed_of(text: str) -> int:
    """A 63-bit seed from ``text`` (sha256), the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def _class_key(cls: ActionClass) -> str:
    """What a class is, independent of its name: ``subject|object|motion-motion-motion``."""
    return f"{cls.subject}|{cls.object}|{'-'.join(cls.motions)}"


def labels_at(classes: list[ActionClass], level: str, wording: dict) -> list[str]:
    """The label text of each v2 class at ``level`` (any of :data:`LABEL_LEVELS`), e.g. to measure a
    label-only baseline against label informativeness on one dataset (the videos do not change)."""
    if level not in LABEL_LEVELS:
        raise ValueError(f"unknown label level {level!r}; known: {LABEL_LEVELS}")
    if any(c.invented is None for c in classes):
        raise ValueError("labels_at needs v2 classes (with their invented labels)")
    if level == "invented":
        return [c.invented.split(" ")[0] for c in classes]
    if level == "object":
        return [c.invented for c in classes]
    return atomic_text.class_labels(wording, [(c.subject, c.motions, c.object) for c in classes], level)


def label_classes(classes: list[ActionClass], cfg: AtomicActionsConfig, wording: dict) -> list[ActionClass]:
    """v2: give designed classes their label (``cfg.label_level``), a unique name (the label, with
    ``#1``, ``#2``, ... where labels coincide) and their steps in every wording (word choices seeded
    by ``cfg.seed`` and the class's atoms, not by its name)."""
    classes = [replace(c, invented=c.name) for c in classes]
    labels = labels_at(classes, cfg.label_level, wording)
    count: dict = {}
    for lab in labels:
        count[lab] = count.get(lab, 0) + 1
    seen: dict = {}
    names = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        names.append(lab if count[lab] == 1 else f"{lab} #{seen[lab]}")
    rename = {c.name: n for c, n in zip(classes, names)}
    out = []
    for c, name, lab in zip(classes, names, labels):
        seed = _seed_of(f"{cfg.seed}|text|{_class_key(c)}")
        anatomies = {w: atomic_text.class_steps(wording, c.atoms(), w, seed) for w in WORDINGS}
        out.append(replace(c, name=name, label=lab, partner=rename.get(c.partner), wording=cfg.wording,
                           anatomies=anatomies))
    dirs = [c.class_dir for c in out]
    if len(set(dirs)) != len(dirs):
        raise RuntimeError("two AtomicActions classes got the same folder name")
    return out


# ----------------------------------------------------------------------------- phase durations
def phase_bounds(rng: np.random.Generator, num_frames: int, num_phases: int, min_share: float) -> list[int]:
    """v1: random phase boundaries ``[0, b1, ..., T]``, each phase at least ``min_share`` of the video."""
    while True:
        shares = rng.dirichlet(np.full(num_phases, 4.0))
        if shares.min() >= min_share:
            break
    cuts = np.round(np.cumsum(shares)[:-1] * num_frames).astype(int)
    return [0] + cuts.tolist() + [num_frames]


def variable_phase_bounds(rng: np.random.Generator, num_frames: int, num_phases: int, variability: float,
                          min_frames: int) -> list[int]:
    """v2: random phase boundaries ``[0, b1, ..., F]`` with every phase at least ``min_frames`` long.

    Each phase gets ``min_frames`` plus a share ``s_i`` of the remaining ``F - L * min_frames``
    frames, ``s ~ Dirichlet(a, ..., a)`` with ``a = (1 - v) / v`` for ``v = variability``: ``v = 0``
    gives equal phases (``a`` infinite), ``v = 0.5`` shares drawn uniformly, ``v = 1`` all the
    remaining frames to one phase (``a = 0``) and ``min_frames`` to the others. Bounds are rounded
    half up, so no phase drops below ``min_frames``.
    """
    free = num_frames - num_phases * min_frames
    if free < 0:
        raise ValueError(f"{num_phases} phases of at least {min_frames} frames do not fit in {num_frames}")
    if variability <= 0:
        shares = np.full(num_phases, 1.0 / num_phases)
    elif variability >= 1:
        shares = np.eye(num_phases)[rng.integers(num_phases)]
    else:
        shares = rng.dirichlet(np.full(num_phases, (1.0 - variability) / variability))
        if not np.isfinite(shares).all():
            raise FloatingPointError(f"Dirichlet draw failed for phase_variability={variability}")
    lengths = min_frames + free * shares
    cuts = np.floor(np.cumsum(lengths)[:-1] + 0.5).astype(int)
    return [0] + cuts.tolist() + [num_frames]


def phase_frame_accuracy(bounds_true, num_frames: int, bounds_pred=None, clip_frames: int = 8) -> np.ndarray:
    """Per video, the share of the ``clip_frames`` test-time frames that a predicted segmentation
    puts in their ground-truth phase.

    Args:
        bounds_true: int ``[V, L+1]`` ground-truth bounds in video frames (``phase_bounds`` of
            ``anatomy.json``).
        num_frames: frames of each video (``num_frames`` of ``anatomy.json``).
        bounds_pred: int ``[V, L+1]`` or ``[L+1]`` bounds over the ``clip_frames`` sampled frames;
            default: uniform thirds (:func:`lga.anatomy.visual.uniform_segment`, "HARD").
        clip_frames: T, frames sampled by :func:`lga.data.sampling.sample_indices` in ``test`` mode.

    Returns float ``[V]`` in [0, 1].
    """
    import torch

    from ..anatomy.visual import bounds_for_sampled_frames, phase_accuracy, uniform_segment

    gt_video = torch.as_tensor(np.asarray(bounds_true, dtype=np.int64))
    if gt_video.ndim != 2:
        raise ValueError(f"bounds_true must be [V, L+1], got shape {tuple(gt_video.shape)}")
    V, L = gt_video.shape[0], gt_video.shape[1] - 1
    idx = torch.as_tensor(sample_indices(num_frames, clip_frames, "test"))
    gt = bounds_for_sampled_frames(idx, gt_video)
    if bounds_pred is None:
        pred = uniform_segment(V, clip_frames, L)
    else:
        pred = torch.as_tensor(np.asarray(bounds_pred, dtype=np.int64))
        pred = pred.expand(V, L + 1) if pred.ndim == 1 else pred
    return phase_accuracy(pred, gt, clip_frames, reduction="none").numpy()


# ----------------------------------------------------------------------------- one video
def sample_look(rng: np.random.Generator, cfg: AtomicActionsConfig, cls: ActionClass) -> Look:
    """Draw the nuisances of one video."""
    bg = tuple(float(v) for v in rng.uniform(20, 90, 3))
    obj_color = _PALETTE[rng.integers(len(_PALETTE))]
    base = _SUBJECT_COLOR[cls.subject]
    subj_color = tuple(float(np.clip(c + rng.uniform(-20, 20), 0, 255)) for c in base)
    clutter = [(float(rng.uniform()), float(rng.uniform()), float(rng.uniform(0.05, 0.2)),
                tuple(float(v) for v in rng.uniform(0, 255, 3)))
               for _ in range(rng.integers(cfg.max_clutter + 1))]
    others = [o for o in OBJECTS if o != cls.object]
    t = cfg.frames_per_video
    distractors = [(others[rng.integers(len(others))], float(rng.uniform(0.1, 0.9)),
                    float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.04, 0.07)),
                    _PALETTE[rng.integers(len(_PALETTE))],
                    float(rng.uniform(-0.15, 0.15) / t), float(rng.uniform(-0.15, 0.15) / t))
                   for _ in range(rng.integers(cfg.max_distractors + 1))]
    occluder = None
    if rng.uniform() < cfg.occlusion_prob:
        occluder = (float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.04, 0.09)),
                    float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.8) / t),
                    tuple(float(v) for v in rng.uniform(40, 200, 3)))
    return Look(obj_size=float(rng.uniform(0.08, 0.12)), subj_size=float(rng.uniform(0.055, 0.075)),
                amplitude=float(rng.uniform(0.2, 0.32)), obj_color=obj_color, subj_color=subj_color,
                background=bg, clutter=clutter, distractors=distractors, occluder=occluder,
                noise=float(rng.uniform(0, cfg.max_noise)))


def distractor_tracks(rng: np.random.Generator, cfg: AtomicActionsConfig, look: Look) -> tuple:
    """v2: the path of every distractor of ``look``, float ``[F, 4]`` (x, y, angle, scale) each.

    With probability ``cfg.distractor_motion`` a distractor performs 2 or 3 object motions
    (:data:`lga.data.scene.OBJECT_MOTIONS`) in phases of its own (``phase_variability`` 0.5), at a
    smaller amplitude than the action; otherwise it drifts in a straight line as in v1.
    """
    F = cfg.frames_per_video
    t = np.arange(F)
    tracks = []
    for shape, x, y, r, col, vx, vy in look.distractors:
        if rng.uniform() < cfg.distractor_motion:
            n = int(rng.integers(2, 4))
            motions = [OBJECT_MOTIONS[rng.integers(len(OBJECT_MOTIONS))]]
            while len(motions) < n:
                m = OBJECT_MOTIONS[rng.integers(len(OBJECT_MOTIONS))]
                if m != motions[-1]:
                    motions.append(m)
            bounds = variable_phase_bounds(rng, F, n, 0.5, 1)
            own = replace(look, obj_size=r, amplitude=float(rng.uniform(0.1, 0.2)))
            tracks.append(object_track(motions, bounds, own, rng))
        else:
            tracks.append(np.stack([x + vx * t, y + vy * t, np.zeros(F), np.ones(F)], axis=1))
    return tuple(tracks)


def _video_rng(cls: ActionClass, cfg: AtomicActionsConfig, video_index: int) -> np.random.Generator:
    if cfg.version == "1.0":
        return np.random.default_rng([cfg.seed, 2, _stable_hash(cls.name), video_index])
    return np.random.default_rng([cfg.seed, 2, _seed_of(_class_key(cls)), video_index])


def _draw_bounds(rng: np.random.Generator, cfg: AtomicActionsConfig) -> list[int]:
    if cfg.version == "1.0":
        return phase_bounds(rng, cfg.frames_per_video, cfg.num_phases, cfg.min_phase_share)
    return variable_phase_bounds(rng, cfg.frames_per_video, cfg.num_phases, cfg.phase_variability,
                                 min_phase_frames(cfg))


def video_phase_bounds(cfg: AtomicActionsConfig, classes: list[ActionClass] | None = None) -> dict:
    """The phase bounds of every video of the dataset ``cfg`` makes, without rendering anything
    (they are the first draw of each video's random stream): ``{"class_dir/video_id": [0, ..., F]}``.
    Cheap enough to sweep a knob: e.g. ``phase_frame_accuracy`` against ``phase_variability``."""
    classes = design_classes(cfg) if classes is None else classes
    return {f"{c.class_dir}/{c.class_dir}_{v:03d}": _draw_bounds(_video_rng(c, cfg, v), cfg)
            for c in classes if cfg.renders(c.split) for v in range(cfg.videos_per_class)}


def render_video(cls: ActionClass, cfg: AtomicActionsConfig, video_index: int):
    """Render one video of ``cls``. Returns (uint8 frames ``[T, S, S, 3]``, phase bounds ``[L+1]``)."""
    rng = _video_rng(cls, cfg, video_index)
    bounds = _draw_bounds(rng, cfg)
    look = sample_look(rng, cfg, cls)
    if cfg.version != "1.0":
        look = replace(look, distractor_tracks=distractor_tracks(rng, cfg, look))
    if cfg.version != "1.0" and cfg.grip_cues:
        look = replace(look, grips=MOTION_GRIPS)
    look, origin = fit_origin(cls.subject, list(cls.motions), bounds, look, rng)
    states = simulate(cls.subject, list(cls.motions), bounds, look, origin)
    background = render_background(cfg.size, look)
    blur = 0 if cfg.version == "1.0" else cfg.motion_blur
    frames = np.stack([render_frame(cfg.size, cls.subject, cls.object, st, look, t, rng, background,
                                    trail=tuple(states[max(0, t - blur):t][::-1]))
                       for t, st in enumerate(states)])
    return frames, bounds


def _stable_hash(text: str) -> int:
    """v1: a hash of ``text`` that, unlike ``hash()``, is the same in every process (first 16 bytes)."""
    return int.from_bytes(text.encode("utf-8")[:16].ljust(16, b"\0"), "little") % (2**63)


def _file_record(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _video_job(args):
    cls, cfg, v, root = args
    video_id = f"{cls.class_dir}_{v:03d}"
    frames, bounds = render_video(cls, cfg, v)
    path = write_video(Path(root) / "videos" / cls.class_dir / f"{video_id}.mp4", frames, fps=cfg.fps)
    return f"{cls.class_dir}/{video_id}", bounds, _file_record(path)


# ----------------------------------------------------------------------------- anatomy
def anatomy_dict(classes: list[ActionClass], videos: dict, cfg: AtomicActionsConfig,
                 wording: str | None = None) -> dict:
    """The ground-truth anatomy in the ``lga-anatomy/1`` schema (see :mod:`lga.data.layout`), in
    ``wording`` (v2; default ``cfg.wording``)."""
    notes = f"generator version {cfg.version}, seed {cfg.seed}"
    if cfg.version != "1.0":
        wording = wording or cfg.wording
        notes += f", wording {wording!r} ({_WORDING_NOTE[wording]}), label level {cfg.label_level!r}"
    return {
        "schema": layout.ANATOMY_SCHEMA,
        "dataset": "atomic_actions",
        "num_steps": cfg.num_phases,
        "provenance": {"method": "ground truth of the AtomicActions generator", "model": None,
                       "prompt_version": None, "date": None, "reviewed": True, "notes": notes},
        "classes": {c.name: {"label": c.label_text, "steps": c.steps(wording)} for c in classes},
        "videos": videos,
    }


_WORDING_NOTE = {"oracle": "sentences the tiny CLIP is trained on",
                 "heldout": "new sentences of words seen in training",
                 "unseen": "synonyms never seen in training"}


def noisy_anatomy(anatomy: dict, rate: float, seed: int = 0, kinds=NOISE_KINDS) -> dict:
    """A copy of ``anatomy`` in which a share ``rate`` of the classes carry one LLM-like mistake.

    Kinds of mistake (one per corrupted class, drawn uniformly from ``kinds``):

    - ``object``: the wrong object is named in every step (a hallucinated object);
    - ``order``: two steps are swapped (the wrong temporal order);
    - ``vague``: one step becomes uninformative ("the hand moves the ball").

    The corrupted classes and kinds are listed under ``provenance.noise``.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"anatomy noise rate must be in [0, 1], got {rate}")
    bad = [k for k in kinds if k not in NOISE_KINDS]
    if bad:
        raise ValueError(f"unknown anatomy noise kinds {bad}; known: {NOISE_KINDS}")
    rng = np.random.default_rng([seed, 3])
    out = {k: v for k, v in anatomy.items() if k != "classes"}
    out["provenance"] = dict(anatomy["provenance"], noise={"rate": rate, "seed": seed, "corrupted": {}})
    out["classes"] = {}
    for name in sorted(anatomy["classes"]):
        entry = anatomy["classes"][name]
        steps = [dict(s) for s in entry["steps"]]
        if rng.uniform() < rate:
            kind = kinds[rng.integers(len(kinds))]
            if kind == "object":
                old = steps[0]["object"]
                new = "the " + [o for o in OBJECTS if f"the {o}" != old][rng.integers(len(OBJECTS) - 1)]
                for s in steps:     # each step's own object word (a wording may vary it per step)
                    s["description"] = s["description"].replace(s["object"], new)
                    s["object"] = new
            elif kind == "order":
                i, j = rng.choice(len(steps), size=2, replace=False)
                steps[i], steps[j] = steps[j], steps[i]
            else:
                i = int(rng.integers(len(steps)))
                s = steps[i]
                steps[i] = dict(s, motion="moves", description=f"{s['subject']} moves {s['object']}")
            out["provenance"]["noise"]["corrupted"][name] = kind
        out["classes"][name] = {"label": entry["label"], "steps": steps}
    return out


# ----------------------------------------------------------------------------- the whole dataset
def generate(out: str | Path, cfg: AtomicActionsConfig | None = None, progress: bool = True, *,
             overwrite: bool = False, anatomy_noise=()) -> dict:
    """Generate AtomicActions into ``out`` (the layout of :mod:`lga.data.layout`).

    The dataset is written into ``<out>.partial`` (removed first if a killed run left it, and removed
    if the run fails: a full disk, an error, Ctrl-C) and renamed to ``out`` only when complete, with
    ``dataset.json`` (config, classes, manifest of every file) written last; so ``out`` is either
    absent, the old dataset, or the complete new one. ``out`` may be
    absent or an empty folder; a non-empty ``out`` is refused unless ``overwrite`` (and even then
    only if it looks like a dataset: it holds ``dataset.json``, ``splits/`` or ``videos/``).
    ``anatomy_noise``: rates; for each, ``anatomy_noise<RATE>.json`` (:func:`noisy_anatomy` of
    ``anatomy.json``, seed ``cfg.seed``) is written too.

    Videos are rendered in ``cfg.workers`` processes, which exit if this process dies; the result does
    not depend on the number of workers. Returns a summary dict (counts and seconds).

    With ``cfg.only_splits`` (e.g. ``("test",)``) only those splits are rendered and listed in
    ``splits/``; the classes are designed as always (``classes.tsv`` and the anatomy hold all of
    them), and every video is a function of the seed, its class and its index, so a test-only dataset
    with fewer ``videos_per_class`` holds exactly the first videos of the full dataset's test classes
    (the same knobs otherwise): a cheap dataset for a sweep of a knob.
    """
    cfg = cfg or AtomicActionsConfig()
    if len(cfg.num_classes) != 3:
        raise ValueError(f"num_classes must give (train, val, test), got {cfg.num_classes}")
    if cfg.size % 2:
        raise ValueError(f"size must be even (video encoding), got {cfg.size}")
    if cfg.version == "1.0":
        if cfg.frames_per_video < cfg.num_phases * 2 / cfg.min_phase_share / cfg.num_phases:
            raise ValueError(f"frames_per_video={cfg.frames_per_video} too short for {cfg.num_phases} phases")
    elif cfg.frames_per_video < max(cfg.clip_frames, cfg.num_phases * min_phase_frames(cfg)):
        raise ValueError(f"frames_per_video={cfg.frames_per_video} too short for {cfg.num_phases} phases of at "
                         f"least {min_phase_frames(cfg)} frames (one of {cfg.clip_frames} sampled frames) each")
    t0 = time.perf_counter()
    out = Path(out)
    _check_target(out, overwrite)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        n_classes, n_videos = _write_dataset(tmp, cfg, progress, anatomy_noise)
    except BaseException:   # a full disk, a bug, Ctrl-C: the unfinished folder is of no use, and takes space
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, out)
    return {"classes": n_classes, "videos": n_videos, "seconds": time.perf_counter() - t0}


def _write_dataset(tmp: Path, cfg: AtomicActionsConfig, progress: bool, anatomy_noise) -> tuple[int, int]:
    """The dataset of ``cfg`` written into the empty folder ``tmp``, ``dataset.json`` last (see
    :func:`generate`). Returns (number of classes, number of videos)."""
    wording_data = None
    if cfg.version != "1.0":
        raw = atomic_text.wording_bytes()
        layout.atomic_write_bytes(tmp / WORDING_COPY, raw)
        wording_data = atomic_text.load_wording(tmp / WORDING_COPY)
    classes = design_classes(cfg, wording_data)
    jobs = [(c, cfg, v, str(tmp)) for c in classes if cfg.renders(c.split) for v in range(cfg.videos_per_class)]
    videos: dict = {}
    files: dict = {}

    def record(result):
        key, bounds, rec = result
        videos[key] = {"num_frames": cfg.frames_per_video, "phase_bounds": bounds}
        files[f"videos/{key}.mp4"] = rec

    with tqdm(total=len(jobs), desc="AtomicActions videos", unit="video", disable=not progress) as bar:
        if cfg.workers > 1:   # workers end with this process, even if killed
            ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
            with ctx.Pool(cfg.workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for result in pool.imap(_video_job, jobs, chunksize=8):
                    record(result)
                    bar.update()
        else:
            for job in jobs:
                record(_video_job(job))
                bar.update()
    entries = []
    for split in layout.SPLITS:
        split_classes = [c for c in classes if c.split == split]
        entries += [layout.ClassEntry(split, i, c.class_dir, c.name) for i, c in enumerate(split_classes)]
        if not cfg.renders(split):
            continue
        layout.write_split_list(tmp, split, [k for c in split_classes for k in
                                             (f"{c.class_dir}/{c.class_dir}_{v:03d}"
                                              for v in range(cfg.videos_per_class))])
    layout.write_classes(tmp, entries)
    anatomy = anatomy_dict(classes, videos, cfg)
    layout.write_json(tmp / "anatomy.json", anatomy)
    if cfg.version != "1.0":
        for w in WORDINGS:
            layout.write_json(tmp / f"anatomy_{w}.json", anatomy_dict(classes, videos, cfg, w))
    for rate in anatomy_noise:
        layout.write_json(tmp / f"anatomy_noise{rate:.2f}.json", noisy_anatomy(anatomy, rate, cfg.seed))
    for path in sorted(tmp.rglob("*")):
        rel = path.relative_to(tmp).as_posix()
        if path.is_file() and rel not in files:
            files[rel] = _file_record(path)
    test_dirs = {c.class_dir for c in classes if c.split == "test"}
    test_bounds = [v["phase_bounds"] for k, v in videos.items() if k.split("/")[0] in test_dirs]
    clip = cfg.clip_frames
    meta = {"name": "atomic_actions", "version": cfg.version, "created_by": "lga.data.atomic_actions",
            "config": cfg.recorded(),
            "num_classes": len(classes),
            "splits": {s: sum(c.split == s for c in classes) for s in layout.SPLITS},
            "stats": {f"uniform_thirds_phase_accuracy_{clip}_frames": {
                "all": float(phase_frame_accuracy([v["phase_bounds"] for v in videos.values()],
                                                  cfg.frames_per_video, clip_frames=clip).mean()),
                "test": float(phase_frame_accuracy(test_bounds, cfg.frames_per_video,
                                                   clip_frames=clip).mean()) if test_bounds else None}},
            "classes": [asdict(c) for c in classes],
            "files": {k: files[k] for k in sorted(files)}}
    layout.write_json(tmp / "dataset.json", meta)        # last: the folder is complete from here on
    return len(classes), len(jobs)


def _looks_like_dataset(folder: Path) -> bool:
    return any((folder / n).exists() for n in ("dataset.json", "splits", "videos"))


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty: choose another folder, or pass overwrite=True "
                              "(--overwrite) to replace the dataset there")
    if not _looks_like_dataset(out):
        raise FileExistsError(f"{out} is not empty and does not look like a dataset (no dataset.json, "
                              "splits/ or videos/): not replacing it; remove it yourself or choose another folder")


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``, replacing whatever is there."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def verify(root: str | Path, deep: bool = False) -> list[str]:
    """What is wrong with the dataset at ``root``, checked against the manifest of its
    ``dataset.json``: a missing file, a file of another size (a video of another frame count or frame
    size), an extra video, or (small files always; videos with ``deep=True``) other content by
    sha256. Returns the problems (empty: complete). Cheap without ``deep``: a ``stat`` per video.
    Symlinked files are followed (this checks content; :func:`lga.data.manifest.verify_dataset`, which
    ``lga train`` and ``lga eval`` run, also refuses files that lead outside the folder)."""
    root = Path(root)
    meta_path = root / "dataset.json"
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{meta_path}: cannot be read ({type(e).__name__})"]
    if meta.get("name") != "atomic_actions":
        return [f"{meta_path}: not an AtomicActions dataset (name={meta.get('name')!r})"]
    files = meta.get("files")
    if not isinstance(files, dict):
        return [f"{meta_path}: no file manifest (made by an older generator)"]
    from .manifest import problems

    return problems(root, files, deep=deep, allow_symlinks=True)[0]


def get_atomic_actions(root: str | Path | None = None, cfg: AtomicActionsConfig | None = None,
                       progress: bool = True) -> Path:
    """The folder of an AtomicActions dataset made with ``cfg``: reused if already there, else generated.

    ``root`` defaults to :func:`default_root` of ``cfg`` under :func:`lga.config.data_dir`: one
    folder per config, so a sweep dataset never replaces the book's default one. A folder whose
    ``dataset.json`` records another generator version or config, or that fails :func:`verify` (a
    missing, extra or resized file), is regenerated, so a chapter never runs on stale data.
    """
    from ..config import data_dir

    cfg = cfg or AtomicActionsConfig()
    root = Path(root) if root is not None else data_dir() / default_root(cfg)
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("version") == cfg.version and meta.get("config") == cfg.recorded() and _is_complete(root):
            return root
    generate(root, cfg, progress=progress, overwrite=True)
    return root


def default_root(cfg: AtomicActionsConfig) -> str:
    """The folder name of ``cfg``'s dataset in the data cache: ``atomic_actions-seed<seed>`` for the
    default config of that seed (the book's dataset), else that name plus the first 10 hex digits of
    the sha256 of the recorded config (``atomic_actions-seed0-3f2a...``)."""
    name = f"atomic_actions-seed{cfg.seed}"
    if cfg.recorded() == AtomicActionsConfig(seed=cfg.seed).recorded():
        return name
    digest = hashlib.sha256(json.dumps(cfg.recorded(), sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:10]}"


def _is_complete(root: Path) -> bool:
    """The dataset at ``root`` matches its manifest (see :func:`verify`)."""
    return not verify(root)


def load_classes(root: str | Path) -> list[ActionClass]:
    """The :class:`ActionClass` list of a generated dataset (from its ``dataset.json``)."""
    path = Path(root) / "dataset.json"
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("name") != "atomic_actions":
        raise ValueError(f"{path}: not an AtomicActions dataset (name={meta.get('name')!r})")
    return [ActionClass(**dict(c, motions=tuple(c["motions"]))) for c in meta["classes"]]


def load_wording(root: str | Path) -> dict:
    """The wording data a v2 dataset was made with (its ``wording.json``)."""
    path = Path(root) / WORDING_COPY
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a v1 dataset has no wording data)")
    return atomic_text.load_wording(path)


def relabel_anatomy(anatomy: dict, root: str | Path, level: str) -> dict:
    """A copy of ``anatomy`` whose class labels are those of ``level`` (:data:`LABEL_LEVELS`) for the
    v2 dataset at ``root``: the label-only baseline against label informativeness, same videos."""
    classes = load_classes(root)
    labels = dict(zip((c.name for c in classes), labels_at(classes, level, load_wording(root))))
    out = dict(anatomy, classes={n: dict(e, label=labels[n]) for n, e in anatomy["classes"].items()})
    out["provenance"] = dict(anatomy["provenance"], label_level=level)
    return out


def _float01(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return v


def main(argv=None) -> int:
    """``python data_scripts/make_atomic_actions.py --out DIR [...]`` (``--help`` lists every knob)."""
    d = AtomicActionsConfig
    p = argparse.ArgumentParser(description="Generate the AtomicActions few-shot benchmark.")
    p.add_argument("--out", required=True, help="output folder (must be absent or empty, or see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace the dataset in a non-empty --out")
    p.add_argument("--version", default=d.version, choices=VERSIONS, help="generator version (1.0: v1 exactly)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--videos-per-class", type=int, default=d.videos_per_class)
    p.add_argument("--frames", type=int, default=d.frames_per_video, help="frames per video")
    p.add_argument("--clip-frames", type=int, default=d.clip_frames,
                   help="frames a model samples per clip; the shortest phase is one of them (v2)")
    p.add_argument("--size", type=int, default=d.size, help="frame side in pixels")
    p.add_argument("--phase-variability", type=_float01, default=d.phase_variability,
                   help="0: equal thirds ... 1: two phases of one sampled frame (v2)")
    p.add_argument("--label-level", default=d.label_level, choices=LABEL_LEVELS, help="label informativeness (v2)")
    p.add_argument("--wording", default=d.wording, choices=WORDINGS, help="wording of anatomy.json (v2)")
    p.add_argument("--distractor-motion", type=_float01, default=d.distractor_motion,
                   help="chance that a distractor moves like an atom (v2)")
    p.add_argument("--motion-blur", type=int, default=d.motion_blur,
                   help="faded ghosts of the last N frames behind everything that moves (v2; 0: sharp)")
    p.add_argument("--grip-cues", default=d.grip_cues, action=argparse.BooleanOptionalAction,
                   help="the subject holds the object from a side that depends on the motion (v2)")
    p.add_argument("--occlusion-prob", type=_float01, default=d.occlusion_prob)
    p.add_argument("--max-distractors", type=int, default=d.max_distractors)
    p.add_argument("--max-clutter", type=int, default=d.max_clutter)
    p.add_argument("--max-noise", type=float, default=d.max_noise, help="pixel noise std, 0..255 scale")
    p.add_argument("--only-splits", nargs="+", choices=layout.SPLITS, default=None,
                   help="render only these splits (default: all), e.g. a small test-only dataset for a sweep")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--anatomy-noise", type=float, nargs="*", default=[],
                   help="also write anatomy_noise<RATE>.json for each rate (LLM-like mistakes)")
    a = p.parse_args(argv)
    try:
        cfg = AtomicActionsConfig(seed=a.seed, version=a.version, videos_per_class=a.videos_per_class,
                                  frames_per_video=a.frames, size=a.size, workers=a.workers,
                                  clip_frames=a.clip_frames, phase_variability=a.phase_variability,
                                  label_level=a.label_level, wording=a.wording,
                                  distractor_motion=a.distractor_motion, motion_blur=a.motion_blur,
                                  grip_cues=a.grip_cues,
                                  occlusion_prob=a.occlusion_prob,
                                  max_distractors=a.max_distractors, max_clutter=a.max_clutter,
                                  max_noise=a.max_noise, only_splits=a.only_splits)
        summary = generate(a.out, cfg, overwrite=a.overwrite, anatomy_noise=a.anatomy_noise)
    except (ValueError, FileExistsError) as e:
        p.error(str(e))
    except OSError as e:   # a full disk, a folder that cannot be written
        p.exit(1, f"error: cannot write the dataset: {e}. {a.out} is unchanged (the dataset is written "
                  "beside it and moved there only when complete). Free some space, or choose an --out on "
                  "another disk, and run the same command again.\n")
    print(f"wrote {summary['classes']} classes, {summary['videos']} videos to {a.out} "
          f"in {summary['seconds']:.1f} s")
    return 0


# ----------------------------------------------------------------------------- (frame, text) pairs
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
      ``anatomy`` if given, e.g. a :func:`noisy_anatomy`);
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
    from .video import read_video

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
    import torch

    stacked = torch.stack(frames) if frames else torch.empty(0, 0, 0, 3, dtype=torch.uint8)
    return PhasePairs(stacked, texts, out_keys, names, phases, fidx, kinds)
