"""Shipped anatomy files and tolerant class-name lookup (lga.anatomy.shipped, lga.anatomy.names).

The last two tests are the acceptance tests of the shipped content: every class of every split
in the standard split lists (the ``shared_splits`` fixture) must have an anatomy, and the quality checks must raise no template,
refusal, empty-object, malformed or missing-class flag.
"""

from __future__ import annotations

import csv
import json
import warnings

import pytest

from lga.anatomy.names import humanize_label, loose_class_key, normalize_class_name
from lga.anatomy.parse import AnatomyError
from lga.anatomy.quality import check_anatomy
from lga.anatomy.shipped import (SHIPPED_FILES, Anatomy, load_anatomy, load_shipped_anatomy,
                                 shipped_anatomy_path)
from lga.data.layout import ANATOMY_SCHEMA, write_json

DATASETS = ["hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full"]
UNKNOWN = "(unknown)"


def step(i: int, label: str) -> dict:
    return {"subject": "hand", "motion": f"moves{i}", "object": "object",
            "description": f"The hand moves the object, phase {i} of {label}."}


def doc(names, num_steps=3) -> dict:
    return {"schema": ANATOMY_SCHEMA, "dataset": "ssv2", "num_steps": num_steps, "provenance": {},
            "classes": {n: {"label": n, "steps": [step(i, n) for i in range(num_steps)]} for n in names}}


@pytest.mark.parametrize("a, b", [
    ("Pouring [something] into [something]", "Pouring something into something"),
    ("Pouring [something] into [something]", "pouring  SOMETHING into something "),
    ("Poking a hole into [something soft]", "Poking a hole into something soft"),
    ("brush_hair", "brush hair"),
    ("ApplyEyeMakeup", "Apply Eye Makeup"),
    ("YoYo", "yo yo"),
    ("air drumming", "Air_Drumming"),
    ("(inferred) Scooping something up with something", "Scooping [something] up with [something]"),
])
def test_normal_forms_agree(a, b):
    assert normalize_class_name(a) == normalize_class_name(b)


def test_loose_key_and_humanize():
    assert loose_class_key("Putting [something], [something] and [something] on the table") == \
        loose_class_key("Putting something something and something on the table")
    assert humanize_label("brush_hair") == "brush hair"
    assert humanize_label("ApplyEyeMakeup") == "Apply Eye Makeup"
    assert humanize_label("Pouring [something] into [something]") == "Pouring [something] into [something]"


def test_lookup_resolves_every_spelling_of_ssv2_names():
    names = ["Pouring [something] into [something]",
             "Pouring [something] into [something] until it overflows",
             "Putting [something], [something] and [something] on the table",
             "Twisting (wringing) [something] wet until water comes out"]
    anatomy = Anatomy(doc(names), source="ssv2.json")
    cases = {
        "Pouring something into something": names[0],  # SSv2-Small split lists
        "Pouring [something] into [something]": names[0],  # SSv2-Full split tables
        "pouring something into something until it overflows": names[1],  # recovered val names
        "Putting something, something and something on the table": names[2],
        "Putting something something and something on the table": names[2],
        "Twisting (wringing) something wet until water comes out": names[3],
    }
    for query, key in cases.items():
        assert anatomy.lookup(query).name == key
        assert anatomy.resolve(query) == key and query in anatomy
        assert anatomy[query].descriptions == anatomy.descriptions(key)
    assert len(anatomy) == 4 and list(anatomy) == names
    assert anatomy.lookup("Pouring something in to something").name == names[0]  # loose key
    with pytest.raises(KeyError, match=r"ssv2.json: no anatomy for class 'Pouring something onto "
                                       r"something'; closest: \['Pouring \[something\] into"):
        anatomy.lookup("Pouring something onto something")
    assert anatomy.missing(["Pouring something into something", "Juggling"]) == ["Juggling"]


def test_ambiguous_names_are_refused():
    anatomy = Anatomy(doc(["brush_hair", "brush hair"]))
    assert anatomy.lookup("brush_hair").name == "brush_hair"  # exact match wins
    with pytest.raises(KeyError, match="ambiguous"):
        anatomy.lookup("Brush Hair")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="other/2"), "field 'schema' must be 'lga-anatomy/1'"),
    (lambda d: d.update(num_steps=0), "field 'num_steps' must be a positive integer"),
    (lambda d: d.update(classes=[]), "field 'classes' must be an object"),
    (lambda d: d["classes"]["a"]["steps"].pop(), "class 'a': has 2 steps, the file's num_steps is 3"),
    (lambda d: d["classes"]["a"]["steps"][1].pop("object"), "class 'a', step 2: missing field 'object'"),
    (lambda d: d["classes"]["a"].update(steps="x"), "class 'a': field 'steps' must be a list"),
    (lambda d: d["classes"]["a"].update(label=""), "class 'a': field 'label' must be a non-empty"),
])
def test_invalid_documents_name_file_class_and_field(mutate, message, tmp_path):
    data = doc(["a", "b"])
    mutate(data)
    path = tmp_path / "bad.json"
    write_json(path, data)
    with pytest.raises((AnatomyError, ValueError)) as info:
        load_anatomy(path)
    assert message in str(info.value) and "bad.json" in str(info.value)


def test_load_anatomy_by_path_by_root_and_by_name(tmp_path):
    write_json(tmp_path / "a.json", doc(["x"]))
    write_json(tmp_path / "anatomy.json", doc(["y"]))
    assert list(load_anatomy(tmp_path / "a.json")) == ["x"]
    assert list(load_anatomy(str(tmp_path))) == ["y"]  # a prepared dataset root
    with pytest.raises(FileNotFoundError, match="not one of the shipped datasets"):
        load_anatomy(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="no shipped anatomy for dataset 'atomic_actions'"):
        load_shipped_anatomy("atomic_actions")
    assert SHIPPED_FILES["ssv2_small"] == SHIPPED_FILES["ssv2_full"] == "ssv2.json"
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        load_anatomy(tmp_path / "broken.json")


# ----------------------------------------------------------------------------------------------
# acceptance tests of the shipped content


def split_class_names(shared_splits, dataset) -> tuple[list[str], int]:
    """Class names of train/val/test (in order, without repeats) and the number of (unknown) rows."""
    names, unknown = [], 0
    for split in ("train", "val", "test"):
        with open(shared_splits / dataset / f"classes_{split}.tsv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row["class_name"] == UNKNOWN:
                    unknown += 1
                elif row["class_name"] not in names:
                    names.append(row["class_name"])
    return names, unknown


@pytest.mark.parametrize("dataset", DATASETS)
def test_shipped_anatomy_covers_every_split_class(dataset, shared_splits):
    names, unknown = split_class_names(shared_splits, dataset)
    assert names, f"no class names read for {dataset}"
    if unknown:
        warnings.warn(f"{dataset}: {unknown} class(es) named {UNKNOWN!r} in the split tables "
                      "are not checked (their names are not public)")
    if not shipped_anatomy_path(dataset).is_file():
        pytest.fail(f"lga/anatomy/data/{SHIPPED_FILES[dataset]} is not there yet")
    anatomy = load_shipped_anatomy(dataset)  # validates schema, steps and fields
    assert anatomy.num_steps == 3
    missing = anatomy.missing(names)
    assert not missing, (f"{anatomy.source} lacks {len(missing)}/{len(names)} {dataset} "
                         f"classes: {missing[:10]}")
    raw = json.loads(shipped_anatomy_path(dataset).read_text(encoding="utf-8"))
    prov = raw.get("provenance", {})
    assert {"method", "model", "prompt_version", "date"} <= set(prov), f"{anatomy.source}: provenance"


BLOCKING = ("missing_class", "malformed", "template", "refusal", "empty_object")


@pytest.mark.parametrize("dataset", DATASETS)
def test_shipped_anatomy_passes_quality_checks(dataset, shared_splits):
    if not shipped_anatomy_path(dataset).is_file():
        pytest.fail(f"lga/anatomy/data/{SHIPPED_FILES[dataset]} is not there yet")
    names, _ = split_class_names(shared_splits, dataset)
    report = check_anatomy(dataset, classes=names, num_steps=3)
    blocking = report.of_kind(*BLOCKING)
    assert not blocking, report.summary(max_per_kind=10)
    others = [i for i in report.issues if i.kind not in BLOCKING]
    if others:
        warnings.warn(f"{dataset}: {len(others)} advisory quality flag(s):\n" + report.summary())


SHIPPED_JSON = sorted(set(SHIPPED_FILES.values()))


@pytest.mark.parametrize("filename", SHIPPED_JSON)
def test_shipped_provenance_tells_how_the_text_was_made(filename):
    """The files were written by an LLM agent and revised by reading, not generated by lga:
    their provenance must say so, date every revision and name only classes of the file."""
    dataset = next(d for d, f in SHIPPED_FILES.items() if f == filename)
    anatomy = load_shipped_anatomy(dataset)
    prov = anatomy.provenance
    assert prov["generated_with_lga"] is False
    assert "Not generated by running `python -m lga anatomy`" in prov["method"]
    assert prov["prompt_version"] == "lga-anatomy-v1"
    dates = [r["date"] for r in prov["revisions"]]
    assert dates == sorted(dates) and dates[-1] == prov["date"], dates
    for revision in prov["revisions"]:
        assert revision["by"] and revision["what"]
        unknown = [n for n in revision.get("changed_classes", []) if n not in anatomy.classes]
        assert not unknown, (f"{anatomy.source}: revision {revision['date']} names unknown "
                             f"classes {unknown}")


@pytest.mark.parametrize("filename", SHIPPED_JSON)
def test_shipped_steps_are_not_near_copies_of_each_other(filename):
    """Within a class, no two steps may say nearly the same (token F1 of the descriptions
    >= 0.8) or name the same motion on the same object."""
    from lga.anatomy.agreement import content_tokens, token_f1

    dataset = next(d for d, f in SHIPPED_FILES.items() if f == filename)
    bad = []
    for name, entry in load_shipped_anatomy(dataset).classes.items():
        steps = entry.steps
        for i in range(len(steps)):
            for j in range(i + 1, len(steps)):
                a, b = steps[i], steps[j]
                f1 = token_f1(content_tokens(a.description), content_tokens(b.description))
                same_action = (set(content_tokens(a.motion)) == set(content_tokens(b.motion))
                               and set(content_tokens(a.object)) == set(content_tokens(b.object)))
                if f1 >= 0.8 or same_action:
                    bad.append(f"{name!r} steps {i + 1} and {j + 1} (F1 {f1:.2f})")
    assert not bad, f"{filename}: {bad}"
