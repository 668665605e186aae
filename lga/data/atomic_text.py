"""The words of AtomicActions v2: class labels and step descriptions, from data.

Everything AtomicActions says is generated from one data file, ``atomic_actions_wording.json`` (beside
this module, shipped as package data): per motion a label verb and verb phrases in three
*wordings*, per subject and object the words that name them, a sentence template and a salience
order of the motions. A generated dataset keeps a copy (``wording.json``), so its texts never depend
on the installed package.

**Wordings** of a step description (``the {subject} {verb phrase}``):

============  =============================================================================  ===================
wording       sentences                                                                      anatomy file
============  =============================================================================  ===================
``oracle``    one of the *training* sentences (the tiny CLIP is trained on all of them)      ``anatomy_oracle.json``
``heldout``   new sentences: other combinations of words that all occur in training          ``anatomy_heldout.json``
              sentences (what a realistic, LLM-written anatomy is to the tiny CLIP)
``unseen``    sentences with synonyms that never occur in training (the hard end)            ``anatomy_unseen.json``
============  =============================================================================  ===================

No sentence of one wording equals a sentence of another (checked when the file is read).

**Label levels** (how informative the class label is; what a label-only baseline reads):

=============  ==========================================================  ==========================
level          label                                                       example
=============  ==========================================================  ==========================
``invented``   an invented verb only                                       ``blick``
``object``     an invented verb and the object (v1)                        ``blick ball``
``salient``    a real verb for the class's most salient motion + object    ``toss ball``
``verb``       real verbs, most salient first, as few as make the label    ``toss ball and lift it``
               unique among classes with other motions or objects
               (like a curated dataset's labels)
``all_verbs``  a real verb for every motion, most salient first            ``toss ball, lift it and
                                                                           touch it``
=============  ==========================================================  ==========================

Labels never reveal the order of the phases or their timing (verbs come in salience order, not in
temporal order), nor the agent; so at the ``verb`` and ``all_verbs`` levels classes that differ only
in the order of their phases (or only in the agent) share a label, and at ``salient`` many classes
do. Label *texts* may thus coincide; class *names* stay unique (see
:func:`lga.data.atomic_actions.design_classes`).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .scene import MOTIONS, OBJECTS, SUBJECTS

WORDING_FILE = "atomic_actions_wording.json"
WORDING_SCHEMA = "lga-atomic-wording/1"
WORDINGS = ("oracle", "heldout", "unseen")
#: which list of the wording file each anatomy wording draws from
_SOURCE = {"oracle": "train", "heldout": "heldout", "unseen": "unseen"}
LABEL_LEVELS = ("invented", "object", "salient", "verb", "all_verbs")


def wording_bytes(path: str | Path | None = None) -> bytes:
    """The raw wording file: ``path``, or the one shipped with the package."""
    if path is not None:
        return Path(path).read_bytes()
    return resources.files("lga.data").joinpath(WORDING_FILE).read_bytes()


def wording_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=8)
def _parse(data: bytes, source: str) -> dict:
    try:
        w = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source}: invalid JSON: {e}") from None
    if not isinstance(w, dict) or w.get("schema") != WORDING_SCHEMA:
        raise ValueError(f"{source}: field 'schema' must be {WORDING_SCHEMA!r}")
    if "{s}" not in w.get("sentence", "") or "{vp}" not in w.get("sentence", ""):
        raise ValueError(f"{source}: field 'sentence' must contain '{{s}}' and '{{vp}}'")
    for key, names in (("subjects", SUBJECTS), ("objects", OBJECTS), ("motions", MOTIONS)):
        table = w.get(key)
        if not isinstance(table, dict) or set(table) != set(names):
            raise ValueError(f"{source}: field {key!r} must name exactly {sorted(names)}")
        for name, entry in table.items():
            for part in ("train", "heldout", "unseen"):
                words = entry.get(part) if isinstance(entry, dict) else None
                if not words or not all(isinstance(x, str) and x.strip() for x in words):
                    raise ValueError(f"{source}: {key}.{name}.{part} must be a non-empty list of strings")
                if key == "motions" and not all("{o}" in x for x in words):
                    raise ValueError(f"{source}: every verb phrase of motions.{name}.{part} needs '{{o}}'")
        if key == "motions":
            for name, entry in table.items():
                if "{o}" not in entry.get("label", ""):
                    raise ValueError(f"{source}: motions.{name}.label must be a string with '{{o}}'")
    if sorted(w.get("salience", [])) != sorted(MOTIONS):
        raise ValueError(f"{source}: field 'salience' must order every motion once")
    seen: dict[str, str] = {}
    for part in ("train", "heldout", "unseen"):
        for s in SUBJECTS:
            for o in OBJECTS:
                for m in MOTIONS:
                    for text in _sentences(w, s, m, o, part):
                        if seen.setdefault(text, part) != part:
                            raise ValueError(f"{source}: sentence {text!r} is both a {seen[text]!r} "
                                             f"and a {part!r} wording")
    return w


def load_wording(path: str | Path | None = None) -> dict:
    """The wording data (validated): ``path`` (e.g. a dataset's ``wording.json``) or the shipped file.

    Raises ``ValueError`` naming the file and the field when something is missing or when a sentence
    belongs to two wordings."""
    return _parse(wording_bytes(path), str(path) if path is not None else f"lga/data/{WORDING_FILE}")


def _sentences(w: dict, subject: str, motion: str, obj: str, part: str) -> list[str]:
    return [w["sentence"].format(s=s, vp=vp.format(o=o))
            for s in w["subjects"][subject][part] for vp in w["motions"][motion][part]
            for o in w["objects"][obj][part]]


def sentences(w: dict, atom: tuple[str, str, str], part: str) -> list[str]:
    """Every description of ``atom = (subject, motion, object)`` in list ``part`` of the wording data
    (``"train"``, ``"heldout"`` or ``"unseen"``), in file order."""
    subject, motion, obj = atom
    return _sentences(w, subject, motion, obj, part)


def step(w: dict, atom: tuple[str, str, str], part: str, rng: np.random.Generator) -> dict:
    """One anatomy step of ``atom`` in list ``part``, its words drawn from ``rng``:
    ``{"subject", "motion", "object", "description"}`` (the ``lga-anatomy/1`` step fields)."""
    subject, motion, obj = atom
    s_words, o_words = w["subjects"][subject][part], w["objects"][obj][part]
    vps = w["motions"][motion][part]
    s = s_words[rng.integers(len(s_words))]
    vp = vps[rng.integers(len(vps))]
    o = o_words[rng.integers(len(o_words))]
    motion_phrase = vp.replace(" the {o}", "").replace("{o}", "it")
    return {"subject": f"the {s}", "motion": motion_phrase, "object": f"the {o}",
            "description": w["sentence"].format(s=s, vp=vp.format(o=o))}


def class_steps(w: dict, atoms: list[tuple[str, str, str]], wording: str, seed: int) -> list[dict]:
    """The L anatomy steps of a class with these atoms in ``wording`` (see the module docstring).
    The choice of words is a function of ``seed`` (a class's own seed), independent per wording."""
    if wording not in WORDINGS:
        raise ValueError(f"unknown wording {wording!r}; known: {WORDINGS}")
    rng = np.random.default_rng([seed, WORDINGS.index(wording)])
    return [step(w, a, _SOURCE[wording], rng) for a in atoms]


# ----------------------------------------------------------------------------- labels
def salience_order(w: dict, motions) -> list[str]:
    """The distinct ``motions``, most salient first (the wording file's ``salience``)."""
    return sorted(set(motions), key=w["salience"].index)


def verb_label(w: dict, motions: list[str], obj: str) -> str:
    """A label naming ``motions`` (in the given order) and the object: ``"toss ball and lift it"``."""
    parts = [w["motions"][m]["label"].format(o=obj if i == 0 else "it") for i, m in enumerate(motions)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def class_labels(w: dict, classes: list[tuple[str, tuple, str]], level: str) -> list[str]:
    """The label of each class ``(subject, motions, object)`` at a real-verb ``level``
    (``salient``, ``verb`` or ``all_verbs``; see the module docstring).

    ``verb``: class c uses the k most salient of its motions, k the smallest number for which no class
    with another set of motions or another object starts with the same k verbs and object; two
    classes then share a label only if they have the same motions and object.
    """
    if level not in ("salient", "verb", "all_verbs"):
        raise ValueError(f"class_labels makes real-verb labels (salient, verb, all_verbs), not {level!r}")
    ordered = [salience_order(w, m) for _, m, _ in classes]
    out = []
    for i, (_, motions, obj) in enumerate(classes):
        verbs = ordered[i]
        if level == "salient":
            k = 1
        elif level == "all_verbs":
            k = len(verbs)
        else:
            key = (frozenset(motions), obj)
            k = next((k for k in range(1, len(verbs) + 1)
                      if not any(c[2] == obj and (frozenset(c[1]), c[2]) != key and ordered[j][:k] == verbs[:k]
                                 for j, c in enumerate(classes))), len(verbs))
        out.append(verb_label(w, verbs[:k], obj))
    return out
