"""AtomicActions, the class set: each class an ordered sequence of L = 3 (subject, motion, object)
atoms, designed from the seed in families of hard pairs (``order``, ``mirror``, ``phase``,
``object``) and split train / val / test; their labels and step descriptions (v2: at a label level
and in every wording, :mod:`lga.data.atomic_text`); and the generator config,
:class:`AtomicActionsConfig`. :func:`load_classes` and :func:`load_wording` read them back from a
generated dataset. Part of :mod:`lga.data.atomic_actions`, which offers every name.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from . import atomic_text, layout
from .scene import MIRROR, MOTIONS, OBJECTS, SUBJECTS


VERSION = "2.0"                 # the default version
VERSIONS = ("1.0", "2.0")
PAIR_KINDS = ("order", "mirror", "phase", "object")
#: the kinds of successive hard pairs of a split: order and mirror pairs, which only a model that
#: reads each phase in its place can tell apart, twice as often as phase and object pairs
PAIR_CYCLE = ("order", "mirror", "order", "mirror", "phase", "object")
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
            "grip_cues", "phase_cue", "pair_kinds")


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
    phase_cue: float = 1.0                     # v2: opacity of the tool held per motion (0: none, as before)
    pair_share: tuple | float | None = None   # share of classes in a hard pair: train, val, test, or one float
    #                                            (None: v2 (0.5, 0.5, 1.0), v1 0.5)
    pair_kinds: tuple = PAIR_CYCLE             # the kinds of a split's hard pairs, in turn
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
        if self.pair_share is None:
            self.pair_share = 0.5 if self.version == "1.0" else (0.5, 0.5, 1.0)
        self.pair_kinds = tuple(self.pair_kinds) if isinstance(self.pair_kinds, (list, tuple)) else (self.pair_kinds,)
        if isinstance(self.pair_share, list):
            self.pair_share = tuple(self.pair_share)
        checks = [("label_level", self.label_level in LABEL_LEVELS, f"one of {LABEL_LEVELS}"),
                  ("wording", self.wording in WORDINGS, f"one of {WORDINGS}"),
                  ("phase_variability", 0.0 <= self.phase_variability <= 1.0, "in [0, 1]"),
                  ("distractor_motion", 0.0 <= self.distractor_motion <= 1.0, "in [0, 1]"),
                  ("clip_frames", self.clip_frames >= 1, ">= 1"),
                  ("motion_blur", self.motion_blur >= 0, ">= 0"),
                  ("occlusion_prob", 0.0 <= self.occlusion_prob <= 1.0, "in [0, 1]"),
                  ("phase_cue", 0.0 <= self.phase_cue <= 1.0, "in [0, 1]"),
                  ("pair_share", len(self.pair_shares()) == len(layout.SPLITS)
                   and all(0.0 <= v <= 1.0 for v in self.pair_shares()),
                   f"in [0, 1], one value or one per split {layout.SPLITS}"),
                  ("pair_kinds", len(self.pair_kinds) >= 1 and all(k in PAIR_KINDS for k in self.pair_kinds),
                   f"a non-empty sequence of {PAIR_KINDS}"),
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

    def pair_shares(self) -> tuple:
        """The share of classes in a hard pair per split (train, val, test)."""
        share = self.pair_share
        if isinstance(share, (int, float)):
            return (float(share),) * len(layout.SPLITS)
        try:
            return tuple(float(v) for v in share)
        except (TypeError, ValueError):
            return ()

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
    for split, count, share in zip(layout.SPLITS, cfg.num_classes, cfg.pair_shares()):
        allowed = None if split == "train" else train_atoms
        n_pairs = int(round(count * share / 2))
        made = pairs_made = 0
        while made < count:
            base = _random_base(rng, cfg.num_phases, allowed)
            if base in taken_seqs:
                continue
            members = [(base, None)]
            if pairs_made < n_pairs and count - made >= 2:
                kind = (PAIR_KINDS[(family + len(out)) % len(PAIR_KINDS)] if cfg.version == "1.0"   # v1's rule
                        else cfg.pair_kinds[pairs_made % len(cfg.pair_kinds)])
                sib = _sibling(base, kind, rng)
                if (sib is None or sib in taken_seqs or sib == base
                        or (allowed is not None and not all(a in allowed for a in
                                                            [(sib[0], m, sib[1]) for m in sib[2]]))):
                    continue
                members = [(base, kind), (sib, kind)]
                pairs_made += 1
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
