"""AtomicActions: a synthetic few-shot action benchmark with ground-truth anatomy.

Every class is an ordered sequence of L = 3 atomic actions (onset, progression, completion), each a
(subject, motion, object) triple such as ("hand", "push_left", "ball"): *"the hand pushes the ball
to the left"*. Videos show the three phases with random durations, so uniform thirds are wrong and
visual segmentation has something to find, under nuisances (position, speed, size, colour, clutter,
distractors, occlusion, noise). Labels are short and uninformative like a real dataset's: an
invented verb and the object ("blick ball"), so only an anatomy says how the action unfolds.

The class set contains *hard pairs* like SSv2's: the same atoms in another order (``order``), a
direction mirrored (``mirror``), one phase different (``phase``), the object different
(``object``). The 100 classes split 64 / 12 / 24 (train / val / test) like Kinetics-100 and SSv2;
val and test classes are new sequences of atoms that all occur in training classes, so what must
generalise is composition.

The dataset is written in the layout of :mod:`lga.data.layout` (encoded videos, split lists,
``classes.tsv``, ``anatomy.json`` with ground-truth steps and per-video phase boundaries), so every
reader and command that serves HMDB51 serves it too. Everything is a function of the seed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import layout
from .scene import (MIRROR, MOTIONS, OBJECTS, SUBJECTS, Look, fit_origin, render_background,
                    render_frame, simulate)
from .video import write_video

VERSION = "1.0"
PAIR_KINDS = ("order", "mirror", "phase", "object")
NOISE_KINDS = ("object", "order", "vague")

#: how each motion is said in a step description ({s}: subject, {o}: object)
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
    """One class: who does what to which object, in which order, and its hard-pair partner."""

    name: str                  # the label ("blick ball")
    subject: str
    object: str
    motions: tuple             # L motions, in temporal order
    split: str
    family: int                # classes of one family were made from one another
    pair_kind: str | None = None      # how it differs from its partner (PAIR_KINDS)
    partner: str | None = None        # the partner's name

    @property
    def class_dir(self) -> str:
        return self.name.replace(" ", "_")

    def atoms(self) -> list[tuple[str, str, str]]:
        return [(self.subject, m, self.object) for m in self.motions]

    def steps(self) -> list[dict]:
        """The ground-truth anatomy: one step per phase (subject, motion, object, description)."""
        return [{"subject": f"the {self.subject}", "motion": _MOTION_PHRASE[m],
                 "object": f"the {self.object}",
                 "description": _SENTENCE[m].format(s=self.subject, o=self.object)}
                for m in self.motions]


@dataclass
class AtomicActionsConfig:
    """Everything that defines a generated dataset (written to ``dataset.json``)."""

    seed: int = 0
    num_classes: tuple = (64, 12, 24)          # train, val, test
    videos_per_class: int = 30
    frames_per_video: int = 32
    size: int = 64                             # frame side, pixels
    fps: int = 12
    num_phases: int = 3
    min_phase_share: float = 0.2               # every phase lasts at least this share of the video
    pair_share: float = 0.5                    # share of classes that belong to a hard pair
    occlusion_prob: float = 0.3
    max_distractors: int = 2
    max_clutter: int = 6
    max_noise: float = 8.0
    workers: int = 2
    extra: dict = field(default_factory=dict)


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


def design_classes(cfg: AtomicActionsConfig) -> list[ActionClass]:
    """Design the class set from the seed: families of hard pairs and singles, split train/val/test.

    Training classes are drawn first; val and test classes only use (subject, motion, object)
    atoms that occur in some training class, in sequences no training class has.
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
    return out


# ----------------------------------------------------------------------------- one video
def phase_bounds(rng: np.random.Generator, num_frames: int, num_phases: int, min_share: float) -> list[int]:
    """Random phase boundaries ``[0, b1, ..., T]``, each phase at least ``min_share`` of the video."""
    while True:
        shares = rng.dirichlet(np.full(num_phases, 4.0))
        if shares.min() >= min_share:
            break
    cuts = np.round(np.cumsum(shares)[:-1] * num_frames).astype(int).tolist()
    return [0] + cuts + [num_frames]


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


def render_video(cls: ActionClass, cfg: AtomicActionsConfig, video_index: int):
    """Render one video of ``cls``. Returns (uint8 frames ``[T, S, S, 3]``, phase bounds ``[L+1]``)."""
    rng = np.random.default_rng([cfg.seed, 2, _stable_hash(cls.name), video_index])
    bounds = phase_bounds(rng, cfg.frames_per_video, cfg.num_phases, cfg.min_phase_share)
    look = sample_look(rng, cfg, cls)
    look, origin = fit_origin(cls.subject, list(cls.motions), bounds, look, rng)
    states = simulate(cls.subject, list(cls.motions), bounds, look, origin)
    background = render_background(cfg.size, look)
    frames = np.stack([render_frame(cfg.size, cls.subject, cls.object, st, look, t, rng, background)
                       for t, st in enumerate(states)])
    return frames, bounds


def _stable_hash(text: str) -> int:
    """A hash of ``text`` that, unlike ``hash()``, is the same in every process."""
    return int.from_bytes(text.encode("utf-8")[:16].ljust(16, b"\0"), "little") % (2**63)


def _video_job(args):
    cls, cfg, v, root = args
    video_id = f"{cls.class_dir}_{v:03d}"
    frames, bounds = render_video(cls, cfg, v)
    write_video(Path(root) / "videos" / cls.class_dir / f"{video_id}.mp4", frames, fps=cfg.fps)
    return f"{cls.class_dir}/{video_id}", bounds


# ----------------------------------------------------------------------------- anatomy
def anatomy_dict(classes: list[ActionClass], videos: dict, cfg: AtomicActionsConfig) -> dict:
    """The ground-truth anatomy in the ``lga-anatomy/1`` schema (see :mod:`lga.data.layout`)."""
    return {
        "schema": layout.ANATOMY_SCHEMA,
        "dataset": "atomic_actions",
        "num_steps": cfg.num_phases,
        "provenance": {"method": "ground truth of the AtomicActions generator", "model": None,
                       "prompt_version": None, "date": None, "reviewed": True,
                       "notes": f"generator version {VERSION}, seed {cfg.seed}"},
        "classes": {c.name: {"label": c.name, "steps": c.steps()} for c in classes},
        "videos": videos,
    }


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
                for s in steps:
                    s["object"] = new
                    s["description"] = s["description"].replace(old, new)
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
def generate(out: str | Path, cfg: AtomicActionsConfig | None = None, progress: bool = True) -> dict:
    """Generate AtomicActions into ``out`` (the layout of :mod:`lga.data.layout`).

    Returns a summary dict (counts and seconds). Videos are rendered in ``cfg.workers`` processes;
    the result does not depend on the number of workers.
    """
    cfg = cfg or AtomicActionsConfig()
    if len(cfg.num_classes) != 3:
        raise ValueError(f"num_classes must give (train, val, test), got {cfg.num_classes}")
    if cfg.size % 2:
        raise ValueError(f"size must be even (video encoding), got {cfg.size}")
    min_frames = cfg.num_phases * 2
    if cfg.frames_per_video < min_frames / cfg.min_phase_share / cfg.num_phases:
        raise ValueError(f"frames_per_video={cfg.frames_per_video} too short for {cfg.num_phases} phases")
    t0 = time.perf_counter()
    out = Path(out)
    classes = design_classes(cfg)
    jobs = [(c, cfg, v, str(out)) for c in classes for v in range(cfg.videos_per_class)]
    videos: dict = {}
    with tqdm(total=len(jobs), desc="AtomicActions videos", unit="video", disable=not progress) as bar:
        if cfg.workers > 1:
            ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
            with ctx.Pool(cfg.workers) as pool:
                for key, bounds in pool.imap(_video_job, jobs, chunksize=8):
                    videos[key] = {"num_frames": cfg.frames_per_video, "phase_bounds": bounds}
                    bar.update()
        else:
            for job in jobs:
                key, bounds = _video_job(job)
                videos[key] = {"num_frames": cfg.frames_per_video, "phase_bounds": bounds}
                bar.update()
    entries = []
    for split in layout.SPLITS:
        split_classes = [c for c in classes if c.split == split]
        entries += [layout.ClassEntry(split, i, c.class_dir, c.name) for i, c in enumerate(split_classes)]
        layout.write_split_list(out, split, [k for c in split_classes for k in
                                             (f"{c.class_dir}/{c.class_dir}_{v:03d}"
                                              for v in range(cfg.videos_per_class))])
    layout.write_classes(out, entries)
    layout.write_json(out / "anatomy.json", anatomy_dict(classes, videos, cfg))
    meta = {"name": "atomic_actions", "version": VERSION, "created_by": "lga.data.atomic_actions",
            "config": {k: v for k, v in asdict(cfg).items() if k != "workers"},
            "num_classes": len(classes),
            "splits": {s: sum(c.split == s for c in classes) for s in layout.SPLITS},
            "classes": [asdict(c) for c in classes]}
    layout.write_json(out / "dataset.json", meta)
    return {"classes": len(classes), "videos": len(jobs), "seconds": time.perf_counter() - t0}


def get_atomic_actions(root: str | Path | None = None, cfg: AtomicActionsConfig | None = None,
                       progress: bool = True) -> Path:
    """The folder of an AtomicActions dataset made with ``cfg``: reused if already there, else generated.

    ``root`` defaults to ``<data_dir>/atomic_actions-seed<seed>`` (see :func:`lga.config.data_dir`).
    A folder whose ``dataset.json`` records another generator version or config, or that misses a
    video, is regenerated, so a chapter never runs on stale data.
    """
    import json
    import shutil

    from ..config import data_dir

    cfg = cfg or AtomicActionsConfig()
    root = Path(root) if root is not None else data_dir() / f"atomic_actions-seed{cfg.seed}"
    wanted = {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items() if k != "workers"}
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("version") == VERSION and meta.get("config") == wanted and _is_complete(root):
            return root
    tmp = root.with_name(root.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    generate(tmp, cfg, progress=progress)
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _is_complete(root: Path) -> bool:
    """Every split list and every video it names is present."""
    try:
        for split in layout.SPLITS:
            for entry in layout.read_split_list(root, split):
                layout.find_video(root, entry)
    except FileNotFoundError:
        return False
    return True


def load_classes(root: str | Path) -> list[ActionClass]:
    """The :class:`ActionClass` list of a generated dataset (from its ``dataset.json``)."""
    import json

    path = Path(root) / "dataset.json"
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("name") != "atomic_actions":
        raise ValueError(f"{path}: not an AtomicActions dataset (name={meta.get('name')!r})")
    return [ActionClass(**dict(c, motions=tuple(c["motions"]))) for c in meta["classes"]]


def main(argv=None) -> int:
    """``python data_scripts/make_atomic_actions.py --out DIR [...]``"""
    p = argparse.ArgumentParser(description="Generate the AtomicActions few-shot benchmark.")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--videos-per-class", type=int, default=AtomicActionsConfig.videos_per_class)
    p.add_argument("--frames", type=int, default=AtomicActionsConfig.frames_per_video,
                   help="frames per video")
    p.add_argument("--size", type=int, default=AtomicActionsConfig.size, help="frame side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--anatomy-noise", type=float, nargs="*", default=[],
                   help="also write anatomy_noise<RATE>.json for each rate (LLM-like mistakes)")
    a = p.parse_args(argv)
    cfg = AtomicActionsConfig(seed=a.seed, videos_per_class=a.videos_per_class,
                              frames_per_video=a.frames, size=a.size, workers=a.workers)
    summary = generate(a.out, cfg)
    anatomy = layout.read_anatomy(Path(a.out) / "anatomy.json")
    for rate in a.anatomy_noise:
        layout.write_json(Path(a.out) / f"anatomy_noise{rate:.2f}.json", noisy_anatomy(anatomy, rate, a.seed))
    print(f"wrote {summary['classes']} classes, {summary['videos']} videos to {a.out} "
          f"in {summary['seconds']:.1f} s")
    return 0


# ----------------------------------------------------------------------------- (frame, text) pairs
class PhasePairs:
    """(frame, text) pairs for training and probing a CLIP on AtomicActions (book chapter 3).

    ``pairs[i]`` is ``(frame uint8 [H, W, 3], text)``. Built by :func:`phase_pairs`; every frame comes
    from inside one ground-truth phase of one video and is paired with that phase's ground-truth
    description (``kind == "phase"``), or, optionally, from anywhere in the video and paired with the
    class label prompt (``kind == "label"``).

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
                progress: bool = False) -> PhasePairs:
    """The (frame, phase description) pairs of one split of an AtomicActions dataset.

    For every video of ``split`` (all of them, or the first ``max_videos_per_class`` per class), and
    every ground-truth phase ``[b_i, b_{i+1})`` of it (``phase_bounds`` in ``anatomy.json``),
    ``frames_per_phase`` distinct frames are drawn at random from inside the phase, keeping ``margin``
    frames away from each phase boundary (where the motion is changing and the frame is ambiguous;
    the margin is dropped for phases too short to afford it). Each frame is paired with the
    description of that phase's step of the class anatomy (``anatomy`` overrides the file's, e.g.
    a :func:`noisy_anatomy`). With ``label_frames > 0``, that many frames per video, drawn from the
    whole video, are also paired with ``label_template.format(label=...)`` (whole-video label pairs).

    Videos are decoded once each with :func:`lga.data.video.read_video` (every frame, so the indices
    of ``phase_bounds`` are the decoded frames). Which frames are drawn depends on ``seed`` only.
    """
    from .video import read_video

    root = Path(root)
    data = layout.read_anatomy(root / "anatomy.json")
    classes = (anatomy or data)["classes"]
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
            for t in _frames_inside(rng, bounds[i], bounds[i + 1], frames_per_phase, margin):
                frames.append(clip[t])
                texts.append(step["description"])
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
