"""AtomicActions, the ground-truth anatomy (``anatomy.json``, schema ``lga-anatomy/1``), LLM-like
mistakes put into it (:func:`noisy_anatomy`) and its labels at another level (:func:`relabel_anatomy`).
Part of :mod:`lga.data.atomic_actions`, which offers every name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout
from .atomic_design import ActionClass, AtomicActionsConfig, labels_at, load_classes, load_wording
from .scene import OBJECTS


NOISE_KINDS = ("object", "order", "vague")


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


def relabel_anatomy(anatomy: dict, root: str | Path, level: str) -> dict:
    """A copy of ``anatomy`` whose class labels are those of ``level`` (:data:`LABEL_LEVELS`) for the
    v2 dataset at ``root``: the label-only baseline against label informativeness, same videos."""
    classes = load_classes(root)
    labels = dict(zip((c.name for c in classes), labels_at(classes, level, load_wording(root))))
    out = dict(anatomy, classes={n: dict(e, label=labels[n]) for n, e in anatomy["classes"].items()})
    out["provenance"] = dict(anatomy["provenance"], label_level=level)
    return out
