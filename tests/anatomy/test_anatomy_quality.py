"""Quality checks of anatomy documents (lga.anatomy.quality): each problem is flagged, clean passes."""

from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path

import pytest

from lga.anatomy.quality import ISSUE_KINDS, check_anatomy, normalize_text, stem
from lga.data.layout import ANATOMY_SCHEMA, write_json


def step(subject, motion, obj, description):
    return {"subject": subject, "motion": motion, "object": obj, "description": description}


CLEAN = {
    "schema": ANATOMY_SCHEMA, "dataset": "toy", "num_steps": 3, "provenance": {},
    "classes": {
        "jump_into_pool": {"label": "jump into pool", "steps": [
            step("person", "stands", "pool edge", "A person stands at the edge of the pool."),
            step("person", "leaps", "pool edge", "The person pushes off the edge into the air."),
            step("swimmer", "enters", "water", "The swimmer plunges into the water with a splash."),
        ]},
        "brush_hair": {"label": "brush hair", "steps": [
            step("woman", "raises", "brush", "A woman lifts a brush to the top of her head."),
            step("hand", "strokes", "hair", "Her hand pulls the brush down through the hair."),
            step("person", "lowers", "brush", "She lowers the brush and smooths the hair."),
        ]},
        "Pouring [something] into [something]": {
            "label": "Pouring [something] into [something]", "steps": [
                step("hand", "tilts", "container", "A hand tilts a container over an open cup."),
                step("liquid", "flows", "cup", "Liquid streams from the container into the cup."),
                step("hand", "straightens", "container", "The hand sets the container upright."),
            ]},
    },
}


def with_step(doc, name, index, **changes):
    doc = copy.deepcopy(doc)
    doc["classes"][name]["steps"][index].update(changes)
    return doc


def kinds(report):
    return {(i.class_name, i.step, i.kind) for i in report.issues}


def test_clean_document_passes():
    report = check_anatomy(CLEAN, classes=["jump into pool", "brush_hair",
                                           "Pouring something into something"])
    assert report.ok, report.summary()
    assert "all checks passed" in report.summary()
    assert report.num_classes == 3 and report.num_steps == 3


def test_missing_class():
    report = check_anatomy(CLEAN, classes=["brush hair", "kick ball"])
    assert kinds(report) == {("kick ball", None, "missing_class")}


@pytest.mark.parametrize("obj", ["", "none", "None.", "N/A", "n/a", "nothing", "-"])
def test_empty_or_placeholder_object(obj):
    report = check_anatomy(with_step(CLEAN, "brush_hair", 1, object=obj))
    assert ("brush_hair", 2, "empty_object") in kinds(report)


@pytest.mark.parametrize("text", ["Sorry, I cannot describe this action.",
                                  "I can't help with that.", "As an AI, I do not watch videos.",
                                  "I\u2019m unable to provide this."])
def test_refusal(text):
    report = check_anatomy(with_step(CLEAN, "jump_into_pool", 2, description=text))
    assert ("jump_into_pool", 3, "refusal") in kinds(report)


def test_template_descriptions_that_wrap_the_label():
    doc = copy.deepcopy(CLEAN)
    doc["classes"]["brush_hair"]["steps"] = [
        step("person", "starts", "hair", "A person starts to brush hair."),
        step("person", "continues", "hair", "The person continues brushing hair."),
        step("person", "finishes", "hair", "The person finishes brushing their hair."),
    ]
    report = check_anatomy(doc)
    assert {(i.step, i.kind) for i in report.issues if i.class_name == "brush_hair"} == \
        {(1, "template"), (2, "template"), (3, "template")}
    assert all("brush hair" in i.message for i in report.of_kind("template"))


def test_template_pattern_shared_across_classes():
    labels = ["kick ball", "catch ball", "throw ball", "dribble ball", "bounce ball"]
    doc = {"schema": ANATOMY_SCHEMA, "num_steps": 3, "classes": {}}
    for label in labels:
        verb, noun = label.split()
        doc["classes"][label] = {"label": label, "steps": [
            step("player", "looks", noun, f"The player looks at the {noun} on the grass."),
            step("player", verb, noun, f"Quickly the player moves in order to {label} near the goal."),
            step("player", "walks", "field", f"The player walks away across the field ({verb})."),
        ]}
    report = check_anatomy(doc, template_min_classes=5)
    flagged = {(i.class_name, i.step) for i in report.of_kind("template")}
    assert flagged == {(label, 2) for label in labels}
    assert "5 classes share the pattern" in report.of_kind("template")[0].message
    assert not check_anatomy(doc, template_min_classes=6).of_kind("template")


def test_duplicate_descriptions_across_classes_and_within_a_class():
    text = CLEAN["classes"]["jump_into_pool"]["steps"][0]["description"]
    report = check_anatomy(with_step(CLEAN, "brush_hair", 0, description=text, subject="person"))
    dup = report.of_kind("duplicate_description")
    assert {(i.class_name, i.step) for i in dup} == {("brush_hair", 1), ("jump_into_pool", 1)}
    assert "also used by ['jump_into_pool']" in [i for i in dup if i.class_name == "brush_hair"][0].message
    text = CLEAN["classes"]["brush_hair"]["steps"][1]["description"]
    report = check_anatomy(with_step(CLEAN, "brush_hair", 2, description=text, subject="hand"))
    assert ("brush_hair", None, "duplicate_step") in kinds(report)


def test_subject_not_mentioned_is_lenient():
    report = check_anatomy(with_step(CLEAN, "jump_into_pool", 2, subject="diver"))
    assert ("jump_into_pool", 3, "subject_not_mentioned") in kinds(report)
    # head noun with a modifier, plural/inflected forms and person words/pronouns are accepted
    ok = with_step(CLEAN, "jump_into_pool", 0, subject="the swimmer's feet",
                   description="Both feet of a swimmer grip the pool edge.")
    ok = with_step(ok, "brush_hair", 0, subject="man", description="He lifts a brush to his head.")
    assert not check_anatomy(ok).of_kind("subject_not_mentioned")


def test_malformed_entries():
    doc = copy.deepcopy(CLEAN)
    doc["classes"]["brush_hair"]["steps"] = doc["classes"]["brush_hair"]["steps"][:2]
    del doc["classes"]["jump_into_pool"]["steps"][1]["motion"]
    doc["classes"]["Pouring [something] into [something]"]["steps"][0]["subject"] = " "
    doc["classes"]["bad"] = {"label": "bad"}
    doc["classes"]["worse"] = ["not", "a", "dict"]
    report = check_anatomy(doc)
    found = {(i.class_name, i.step) for i in report.of_kind("malformed")}
    assert found == {("brush_hair", None), ("jump_into_pool", 2),
                     ("Pouring [something] into [something]", 1), ("bad", None), ("worse", None)}
    assert "2 steps instead of 3" in report.summary()
    assert "field 'motion' is missing" in report.summary()
    assert check_anatomy(doc, num_steps=2).num_steps == 2


def test_report_structure_and_summary(tmp_path):
    doc = with_step(CLEAN, "brush_hair", 1, object="none")
    path = tmp_path / "a.json"
    write_json(path, doc)
    for source in (path, tmp_path, str(path)):
        if source == tmp_path:
            write_json(tmp_path / "anatomy.json", doc)
        report = check_anatomy(source)
        assert [i.kind for i in report.issues] == ["empty_object"]
        issue = report.issues[0]
        assert (issue.class_name, issue.step) == ("brush_hair", 2)
        assert "[empty_object] 'brush_hair' step 2: object is a placeholder: 'none'" in report.summary()
        assert report.flagged_classes() == {"brush_hair"}
    assert set(ISSUE_KINDS) >= set(report.by_kind())


def test_stemming_joins_inflections():
    for a, b in [("brushing", "brush"), ("dribbling", "dribble"), ("swimming", "swims"),
                 ("fencing", "fence"), ("catches", "catching")]:
        assert stem(a) == stem(b)
    assert stem("ball") != stem("balance")


# ----------------------------------------------------------------------------------------------
# typographic quotes (issue 15, item 7): every check reads normalised text

TYPOGRAPHIC_REFUSALS = [
    "I can\u2019t help with that.",                                 # right single quotation mark
    "I\u2019m unable to describe this.",
    "Sorry, I can\u2019t see the video you\u2019re referring to.",  # from a published method's files
    "I can\u2018t assist with this request.",                       # left single quotation mark
    "I can\u02bct help with that.",                                 # modifier letter apostrophe
    "I\u02bcm unable to watch videos.",
    "I can\uff07t help with that.",                                 # full-width apostrophe
    "I can`t help with that.",
    "I can\u00b4t help with that.",                                 # acute accent
    "I can\uff40t help with that.",                                 # full-width grave (` after NFKC)
    "I\u1fefm unable to see the clip.",                             # Greek varia (` after NFKC)
    "I CAN\u2019T HELP WITH THAT.",
    "I can not describe a video.",
]


@pytest.mark.parametrize("text", TYPOGRAPHIC_REFUSALS)
@pytest.mark.parametrize("field", ["description", "motion"])
def test_typographic_apostrophe_refusals_are_flagged(text, field):
    report = check_anatomy(with_step(CLEAN, "jump_into_pool", 1, **{field: text}))
    refusals = report.of_kind("refusal")
    assert [(i.class_name, i.step) for i in refusals] == [("jump_into_pool", 2)]
    assert text in refusals[0].message  # the message quotes the original text


@pytest.mark.parametrize("obj", ["\u201cnone\u201d", "\u2018N/A\u2019", "'none'", "\uff2e\uff4f\uff4e\uff45"])
def test_quoted_or_full_width_placeholder_object_is_flagged(obj):
    report = check_anatomy(with_step(CLEAN, "brush_hair", 1, object=obj))
    assert ("brush_hair", 2, "empty_object") in kinds(report)


def test_duplicates_differing_only_in_apostrophes_are_found():
    doc = with_step(CLEAN, "brush_hair", 0, subject="person",
                    description="The person\u02bcs foot stands at the edge of the pool.")
    doc = with_step(doc, "jump_into_pool", 0, description="The person's foot stands at the edge of the pool.")
    dup = check_anatomy(doc).of_kind("duplicate_description")
    assert {(i.class_name, i.step) for i in dup} == {("brush_hair", 1), ("jump_into_pool", 1)}


def test_normalize_text():
    assert normalize_text("I Can\u2019t \u201cSee\u201d \uff37ell") == "i can't \"see\" well"
    assert normalize_text("can\u00b4t can\uff40t") == "can't can't"  # quotes mapped before and after NFKC


# Every apostrophe- and quote-like character met in LLM text (full-width forms and accents
# included); a document is respelled with a different one at each place.
APOSTROPHES = "\u2019\u2018\u02bc\uff07\uff40`\u00b4\u2032\u201b\u02bb\u1fef"
DOUBLE_QUOTES = "\u201c\u201d\uff02\u201e\u00ab\u00bb\u201f"


def respelled(texts: list[str], start: int) -> list[str]:
    """``texts`` with the k-th ``'`` / ``"`` (counted over all of them) as the (start+k)-th
    typographic form."""
    count = itertools.count(start)

    def swap(m: re.Match) -> str:
        forms = APOSTROPHES if m.group() == "'" else DOUBLE_QUOTES
        return forms[next(count) % len(forms)]

    return [re.sub("['\"]", swap, t) for t in texts]


def test_every_check_reads_typographic_quotes_as_plain_ones():
    """The same document spelled with ASCII quotes and with typographic ones (a different character
    at each place, shifted through all of them) gets exactly the same issues from every check."""
    ssv2 = "Putting something that can't roll onto a slanted surface"
    doc = copy.deepcopy(CLEAN)
    classes = doc["classes"]
    classes["jump_into_pool"]["steps"][2] = step(  # a refusal, from a published method's files
        "swimmer", "can't", "water", "Sorry, I can't see the video you're referring to.")
    classes["brush_hair"]["steps"][0] = step(  # a quoted placeholder; a subject with an apostrophe
        "O'Neill", "raises", "'none'", "O'Neill lifts the brush to the girl's head.")
    classes["brush_hair"]["steps"][2] = step("person", "lowers", "brush",
                                             'The person\'s hand lowers the "brush".')
    classes[ssv2] = {"label": "put someone's bag down", "steps": [  # a template; duplicates
        step("person", "starts", "bag", "A person starts to put someone's bag down."),
        step("person", "lowers", "bag", 'The person\'s hand lowers the "brush".'),
        step("person", "lowers", "bag", 'The person\'s hand lowers the "brush".')]}
    wanted = ["brush_hair", ssv2, "kick ball"]
    expected = {("jump_into_pool", 3, "refusal"), ("jump_into_pool", 3, "subject_not_mentioned"),
                ("brush_hair", 1, "empty_object"), ("brush_hair", 3, "duplicate_description"),
                (ssv2, 1, "template"), (ssv2, 2, "duplicate_description"),
                (ssv2, 3, "duplicate_description"), (ssv2, None, "duplicate_step"),
                ("kick ball", None, "missing_class")}
    assert kinds(check_anatomy(doc, classes=wanted)) == expected
    texts = [t for entry in classes.values() for t in [entry["label"], *(v for s in entry["steps"]
                                                                         for v in s.values())]]
    for start in range(len(APOSTROPHES) * len(DOUBLE_QUOTES)):
        spelled = iter(respelled(texts, start))
        typo = copy.deepcopy(doc)
        for entry in typo["classes"].values():
            entry["label"] = next(spelled)
            for s in entry["steps"]:
                s.update({k: next(spelled) for k in s})
        typo_wanted = wanted[:1] + respelled([ssv2], start) + wanted[2:]
        assert typo_wanted[1] != ssv2 and not set("'\"") & set("".join(respelled(texts, start)))
        assert kinds(check_anatomy(typo, classes=typo_wanted)) == expected, start


@pytest.mark.parametrize("name, content", [
    ("broken.json", b'{"schema": "lga-anatomy/1", "classes": {'),
    ("latin-1.json", b'{"classes": {"caf\xe9": {}}}'),
    ("huge-number.json", b'{"num_steps": ' + b"9" * 5000 + b"}"),
])
def test_unreadable_anatomy_file_is_named(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=f"{name}: not a readable JSON anatomy file"):
        check_anatomy(tmp_path / name)


# ----------------------------------------------------------------------------------------------
# refusals in plain English, measured on lists (issue 23, item 8)

DATA = Path(__file__).parents[1] / "fixtures"


def data_lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


REFUSALS = data_lines("refusals.txt")
NOT_REFUSALS = data_lines("not_refusals.txt")


def test_the_lists_are_large_and_varied():
    assert len(REFUSALS) >= 40 and len(set(REFUSALS)) == len(REFUSALS)
    assert len(NOT_REFUSALS) >= 20 and len(set(NOT_REFUSALS)) == len(NOT_REFUSALS)
    openings = {" ".join(normalize_text(r).split()[:2]) for r in REFUSALS}
    assert len(openings) >= 25  # not one sentence in many spellings


@pytest.mark.parametrize("field", ["description", "object"])
def test_every_collected_refusal_is_flagged(field):
    missed = [text for text in REFUSALS
              if ("jump_into_pool", 2, "refusal") not in kinds(
                  check_anatomy(with_step(CLEAN, "jump_into_pool", 1, **{field: text})))]
    assert not missed, f"{len(missed)} of {len(REFUSALS)} refusals not flagged: {missed}"


def test_third_person_refusing_and_apologising_is_anatomy():
    flagged = [(text, i.message) for text in NOT_REFUSALS
               for i in check_anatomy(with_step(CLEAN, "jump_into_pool", 1, description=text))
               .of_kind("refusal")]
    assert not flagged, flagged


@pytest.mark.parametrize("dataset", ["hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full"])
def test_no_refusal_is_found_in_the_shipped_anatomy(dataset):
    report = check_anatomy(dataset)
    assert report.num_classes >= 51
    assert not report.of_kind("refusal"), report.of_kind("refusal")[:5]
