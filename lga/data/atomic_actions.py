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
  different actions; a hint of the phase in one frame, shared by motions with the same grip. In v1
  the subject held everything from its own side.
- ``phase_cue`` (0..1): the subject holds a tool per motion (:data:`lga.data.scene.MOTION_TOOLS`:
  a bar with a knob, its direction and hue set by the motion) at this opacity, so that one frame
  shows which atomic action is going on, mirror motions included (reach and withdraw differ in their
  tool, not only in the way they move). At 0 the frames are those of a dataset without the knob;
  the book sweeps it (chapter 7: order and mirror pairs per matcher against ``phase_cue``).
- ``motion_blur``: faded copies of everything that moved in the last frames (off by default).
- ``pair_share``, ``pair_kinds``: the share of each split's classes that belong to a hard pair
  (default: half of train and val, every test class) and the kinds of successive pairs (default
  :data:`~lga.data.atomic_design.PAIR_CYCLE`: order, mirror, order, mirror, phase, object), so the 24
  test classes hold 4 order, 4 mirror, 2 phase and 2 object pairs.

The dataset is written in the layout of :mod:`lga.data.layout` (encoded videos, split lists,
``classes.tsv``, ``anatomy.json`` with ground-truth steps and per-video phase boundaries), so every
reader and command that serves HMDB51 serves it too. It is generated into ``<out>.partial`` and
renamed when complete; ``dataset.json``, written last, holds a manifest (size and sha256 of every
file) that :func:`verify` checks. Everything is a function of the seed.

The generator is split by job, and this module offers every public name of them (and is the
command line, :func:`main`): :mod:`lga.data.atomic_design` (classes, labels, the config),
:mod:`lga.data.atomic_phases` (phase durations and the phase metric), :mod:`lga.data.atomic_render`
(one video), :mod:`lga.data.atomic_anatomy` (ground-truth and noisy anatomy),
:mod:`lga.data.atomic_generate` (the dataset on disk) and :mod:`lga.data.atomic_pairs` (frame-text
pairs for CLIP training).
"""

from __future__ import annotations

import argparse

from . import layout
from .atomic_design import (LABEL_LEVELS, PAIR_CYCLE, PAIR_KINDS, VERSION, VERSIONS, WORDING_COPY, WORDINGS, ActionClass,
                            AtomicActionsConfig, design_classes, label_classes, labels_at, load_classes, load_wording,
                            min_phase_frames)
from .atomic_phases import phase_bounds, phase_frame_accuracy, variable_phase_bounds, video_phase_bounds
from .atomic_render import distractor_tracks, render_video, sample_look
from .atomic_anatomy import NOISE_KINDS, anatomy_dict, noisy_anatomy, relabel_anatomy
from .atomic_generate import default_root, default_seed, generate, get_atomic_actions, verify
from .atomic_pairs import PhasePairs, phase_pairs

__all__ = ["VERSION", "VERSIONS", "PAIR_KINDS", "PAIR_CYCLE", "WORDINGS", "LABEL_LEVELS", "WORDING_COPY", "ActionClass",
           "AtomicActionsConfig", "min_phase_frames", "design_classes", "labels_at", "label_classes",
           "load_classes", "load_wording", "phase_bounds", "variable_phase_bounds", "phase_frame_accuracy",
           "video_phase_bounds", "sample_look", "distractor_tracks", "render_video", "NOISE_KINDS",
           "anatomy_dict", "noisy_anatomy", "relabel_anatomy", "generate", "verify", "get_atomic_actions",
           "default_root", "default_seed", "PhasePairs", "phase_pairs", "main"]


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
    p.add_argument("--phase-cue", type=_float01, default=d.phase_cue,
                   help="opacity of the tool the subject holds per motion (v2; 0: none)")
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
                                  grip_cues=a.grip_cues, phase_cue=a.phase_cue,
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


if __name__ == "__main__":
    raise SystemExit(main())
