"""Agreement of a regenerated anatomy with a reference one (lga.anatomy.agreement)."""

from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest

from lga.anatomy.agreement import MEASURES, anatomy_agreement, content_tokens, token_f1
from lga.anatomy.shipped import load_shipped_anatomy
from lga.data.atomic_actions import noisy_anatomy
from lga.data.layout import ANATOMY_SCHEMA, write_json

# three classes whose steps share no content word with each other
CLASSES = {
    "Pouring [something] into [something]": [
        ("hand", "grasps", "jug", "A hand grasps a full jug beside an empty glass."),
        ("hand", "tilts", "jug", "The hand tilts the jug so water streams into the glass."),
        ("hand", "sets down", "jug", "The hand sets the jug upright on the table again."),
    ],
    "kick ball": [
        ("player", "runs up", "ball", "A player runs up to a football resting on grass."),
        ("player", "swings leg", "ball", "The player swings one leg hard into the football."),
        ("player", "follows through", "ball",
         "The kicking leg follows through while the football flies away."),
    ],
    "brush hair": [
        ("person", "raises brush", "hairbrush", "A person lifts a hairbrush toward long hair."),
        ("person", "pulls brush", "hair", "The person pulls bristles down through tangled strands."),
        ("person", "lowers brush", "hairbrush", "The person lowers the brush beside smooth hair."),
    ],
}


def doc(classes=CLASSES, num_steps=3) -> dict:
    return {"schema": ANATOMY_SCHEMA, "dataset": "toy", "num_steps": num_steps, "provenance": {},
            "classes": {name: {"label": name, "steps": [
                {"subject": s, "motion": m, "object": o, "description": d} for s, m, o, d in steps]}
                for name, steps in classes.items()}}


def hashing_encoder(texts, dim=64):
    """A deterministic bag-of-words text encoder: each content word adds one hashed direction."""
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        for w in content_tokens(text):
            out[i, zlib.crc32(w.encode()) % dim] += 1.0
    return out


def test_normalisation_and_token_f1():
    assert content_tokens("raising the brush") == content_tokens("raises brush") == ["rais", "brush"]
    assert content_tokens("Pours it into the cup") == ["pour", "into", "cup"]  # prepositions stay
    assert token_f1([], []) == 1.0 and token_f1(["a"], []) == 0.0 and token_f1([], ["a"]) == 0.0
    assert token_f1(["x", "y"], ["y", "z"]) == pytest.approx(0.5)
    assert token_f1(["x", "x", "y"], ["x", "y"]) == pytest.approx(0.8)  # multisets, not sets


def test_identical_anatomies_agree_fully():
    report = anatomy_agreement(doc(), doc(), encode=hashing_encoder)
    assert report.measures == MEASURES + ("cosine",)
    for m in report.measures:
        assert report.overall[m] == pytest.approx(1.0)
        assert report.chance[m] < 0.5, m  # other classes score far lower
    assert report.overall["identified"] == 1.0
    assert report.chance["identified"] == pytest.approx(1 / 3)
    assert report.missing == [] and report.unmatched == []
    brush = next(c for c in report.classes if c.name == "brush hair")
    assert brush.steps["description"] == [1.0, 1.0, 1.0] and brush.cosine == pytest.approx(1.0)
    assert "3 classes compared step by step" in report.summary()


def test_shuffled_steps_score_lower():
    rotated = {n: steps[1:] + steps[:1] for n, steps in CLASSES.items()}
    same = anatomy_agreement(doc(), doc(), encode=hashing_encoder)
    shuffled = anatomy_agreement(doc(rotated), doc(), encode=hashing_encoder)
    assert shuffled.overall["motion"] == 0.0  # every step now carries another step's motion
    for m in ("description", "cosine"):
        assert shuffled.overall[m] < same.overall[m] - 0.3, m
    # order-aware: the same three sentences in another order are not the same anatomy
    pour = next(c for c in shuffled.classes if c.name.startswith("Pouring"))
    assert max(pour.steps["description"]) < 0.7


def test_another_class_steps_score_lower_and_are_not_identified():
    swapped = copy.deepcopy(CLASSES)
    swapped["kick ball"] = CLASSES["brush hair"]
    report = anatomy_agreement(doc(swapped), doc(), encode=hashing_encoder)
    kick = next(c for c in report.classes if c.name == "kick ball")
    pour = next(c for c in report.classes if c.name.startswith("Pouring"))
    for m in ("motion", "object", "description", "cosine"):
        assert getattr(kick, m) < getattr(pour, m) - 0.5, m
    assert not kick.identified and pour.identified
    assert report.overall["identified"] == pytest.approx(2 / 3)
    assert [c.name for c in report.worst(1)] == ["kick ball"]


def test_names_match_in_any_spelling_and_gaps_are_reported():
    generated = doc({"Pouring something into something": CLASSES["Pouring [something] into [something]"],
                     "Juggling": CLASSES["kick ball"]})
    report = anatomy_agreement(generated, doc())
    assert [(c.generated_name, c.name) for c in report.classes] == \
        [("Pouring something into something", "Pouring [something] into [something]")]
    assert report.unmatched == ["Juggling"] and report.missing == ["kick ball", "brush hair"]
    only = anatomy_agreement(doc(), doc(), classes=["Brush Hair"])
    assert [c.name for c in only.classes] == ["brush hair"] and only.missing == []


def test_bad_inputs_are_refused_with_the_reason(tmp_path):
    two_steps = doc({n: s[:2] for n, s in CLASSES.items()}, num_steps=2)
    with pytest.raises(ValueError, match="has 2 steps per class but .* has 3"):
        anatomy_agreement(two_steps, doc())
    with pytest.raises(ValueError, match="share no class"):
        anatomy_agreement(doc({"Juggling": CLASSES["kick ball"]}), doc())
    write_json(tmp_path / "gen.json", doc())
    with pytest.raises(KeyError, match="gen.json: no anatomy for class 'Juggling'"):
        anatomy_agreement(tmp_path / "gen.json", doc(), classes=["Juggling"])
    with pytest.raises(ValueError, match="shape"):
        anatomy_agreement(doc(), doc(), encode=lambda texts: np.zeros(len(texts)))
    with pytest.raises(TypeError, match="generated: expected an Anatomy"):
        anatomy_agreement(42, doc())
    with pytest.raises(ValueError, match="unknown measure"):
        anatomy_agreement(doc(), doc()).worst(by="cosine")


def test_shipped_anatomy_against_itself_and_a_corrupted_copy():
    shipped = load_shipped_anatomy("hmdb51")
    same = anatomy_agreement("hmdb51", "hmdb51")
    assert same.overall["description"] == 1.0 and same.overall["identified"] == 1.0
    assert same.chance["description"] < 0.2  # HMDB51's classes are written in different words
    for kind in ("order", "vague"):
        noisy = anatomy_agreement(noisy_anatomy(shipped.data, rate=1.0, seed=0, kinds=(kind,)), shipped)
        assert len(noisy.classes) == len(shipped)
        assert noisy.chance["description"] < noisy.overall["description"] < 0.9, kind
        assert noisy.overall["motion"] <= 2 / 3 + 1e-9, kind  # at least one step's motion changed
