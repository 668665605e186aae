"""Parsing LLM answers into anatomy steps (lga.anatomy.parse): repaired and refused answers."""

from __future__ import annotations

import json

import pytest

from lga.anatomy.lenient_json import LenientJSONError, loads
from lga.anatomy.parse import AnatomyError, Step, parse_anatomy

STEPS = [
    {"subject": "person", "motion": "stands", "object": "pool edge",
     "description": "A person stands at the edge of the pool."},
    {"subject": "person", "motion": "leaps", "object": "pool edge",
     "description": "The person leaps off the edge into the air."},
    {"subject": "person", "motion": "enters", "object": "water",
     "description": "The person plunges into the water with a splash."},
]
EXPECTED = [Step(**s) for s in STEPS]
GOOD = json.dumps({"steps": STEPS})


def single_quoted(steps) -> str:
    items = ", ".join("{" + ", ".join(f"'{k}': '{v}'" for k, v in s.items()) + ",}" for s in steps)
    return "[" + items + ",]"


REPAIRED = {
    "plain object": GOOD,
    "top-level list": json.dumps(STEPS),
    "code fence with prose": f"Sure! Here is the anatomy:\n```json\n{GOOD}\n```\nLet me know if you need more.",
    "fence without language": f"```\n{json.dumps(STEPS, indent=2)}\n```",
    "prose before and after": f"The action has three phases. {GOOD} These are ordered in time.",
    "single quotes and trailing commas": single_quoted(STEPS),
    "trailing comma in object": GOOD[:-2] + ",]}",
    "unquoted keys": "{steps: [" + ", ".join(
        "{" + ", ".join(f'{k}: "{v}"' for k, v in s.items()) + "}" for s in STEPS) + "]}",
    "extra keys ignored": json.dumps({"label": "jump into pool", "reasoning": "x", "steps": [
        dict(s, phase=p, confidence=0.9) for s, p in zip(STEPS, ["onset", "progression", "completion"])]}),
    "wrapped by label": json.dumps({"jump into pool": STEPS}),
    "nested anatomy key": json.dumps({"anatomy": {"steps": STEPS}}),
    "capitalised keys": json.dumps({"Steps": [{k.capitalize(): v for k, v in s.items()} for s in STEPS]}),
    "per-phase object": json.dumps({"completion": STEPS[2], "onset": STEPS[0], "progression": STEPS[1]}),
    "list of one-key phase objects": json.dumps(
        [{p: s} for p, s in zip(["onset", "progression", "completion"], STEPS)]),
    "numbered step keys": json.dumps({"step 2": STEPS[1], "step 1": STEPS[0], "step 3": STEPS[2]}),
    "think block first": "<think>maybe {\"steps\": []} or not</think>\n" + GOOD,
    "exact duplicate removed": json.dumps({"steps": [STEPS[0], STEPS[1], STEPS[1], STEPS[2]]}),
    "numbered list, inline fields": "\n".join(
        f"{i}. Subject: {s['subject']}, Motion: {s['motion']}, Object: {s['object']}, "
        f"Description: {s['description']}" for i, s in enumerate(STEPS, 1)),
    "bulleted list, markdown bold": "Here you go:\n" + "\n".join(
        f"**Step {i}**\n- **Subject:** {s['subject']}\n- **Motion:** {s['motion']}\n"
        f"- **Object:** {s['object']}\n- **Description:** {s['description']}\n"
        for i, s in enumerate(STEPS, 1)),
    "pipe-separated list": "\n".join(
        f"- Subject: {s['subject']} | Motion: {s['motion']} | Object: {s['object']} | "
        f"Description: {s['description']}" for s in STEPS),
}


@pytest.mark.parametrize("name", list(REPAIRED))
def test_malformed_but_readable_answers_are_repaired(name):
    assert parse_anatomy(REPAIRED[name]) == EXPECTED


def test_apostrophe_inside_single_quoted_string_is_kept():
    text = ("[{'subject': 'the person's hand', 'motion': 'grips', 'object': 'cup', "
            "'description': 'The person's hand grips the cup.'}]")
    (step,) = parse_anatomy(text, num_steps=1)
    assert step.subject == "the person's hand"
    assert step.description == "The person's hand grips the cup."


def test_object_list_is_joined():
    steps = [dict(s) for s in STEPS]
    steps[1]["object"] = ["pool edge", "air"]
    assert parse_anatomy(json.dumps(steps))[1].object == "pool edge and air"


def test_step_round_trip():
    for step in EXPECTED:
        assert Step.from_dict(step.to_dict()) == step
    with pytest.raises(AnatomyError, match=r"class 'x', step 2: missing field 'object'"):
        Step.from_dict({"subject": "a", "motion": "b", "description": "c"}, where="class 'x', step 2")


def without(i: int, field: str):
    steps = [dict(s) for s in STEPS]
    del steps[i][field]
    return json.dumps({"steps": steps})


REFUSED = {
    "empty": ("   ", "empty answer"),
    "refusal prose": ("I'm sorry, but I can't help with that request.",
                      "no JSON object or list and no list with Subject/Motion/Object/Description"),
    "missing object in step 2": (without(1, "object"), "step 2: missing field 'object'"),
    "missing description in step 3": (without(2, "description"), "step 3: missing field 'description'"),
    "empty field": (GOOD.replace('"leaps"', '""'), "step 2: field 'motion' is empty"),
    "null field": (GOOD.replace('"water"', "null"), "step 3: field 'object' must be text"),
    "too few steps": (json.dumps(STEPS[:2]), "expected 3 steps, got 2"),
    "too many distinct steps": (json.dumps(STEPS + [dict(STEPS[0], motion="waves")]),
                                "expected 3 steps, got 4"),
    "duplicates but still too many": (json.dumps(STEPS + [STEPS[0], dict(STEPS[1], motion="x")]),
                                      "expected 3 steps, got 5 (4 after removing exact duplicates)"),
    "steps are strings": (json.dumps({"steps": [s["description"] for s in STEPS]}),
                          "step 1 is str"),
    "no steps key": (json.dumps({"result": "ok", "count": 3}), "no 'steps' list found"),
    "list without fields": ("1. A person stands.\n2. The person leaps.\n3. The person lands.",
                            "no JSON object or list"),
    "list missing a field": ("1. Subject: person, Motion: stands, Description: A person stands.",
                             "step 1: missing field 'object' in the list answer"),
    "unterminated json": ('{"steps": [{"subject": "person", "motion": "sta', "no JSON object or list"),
    "only a think block": ("<think>let me think about {\"steps\": ...", "empty answer"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_unreadable_answers_are_refused_with_a_precise_message(name):
    text, expected = REFUSED[name]
    with pytest.raises(AnatomyError) as info:
        parse_anatomy(text)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_quotes_the_answer():
    with pytest.raises(AnatomyError) as info:
        parse_anatomy("As an AI language model I cannot do that.")
    assert "'As an AI language model I cannot do that.'" in str(info.value)
    long = "x" * 1000
    with pytest.raises(AnatomyError) as info:
        parse_anatomy(long)
    assert len(str(info.value)) < 400


def test_num_steps_parameter():
    assert parse_anatomy(json.dumps(STEPS[:2]), num_steps=2) == EXPECTED[:2]
    with pytest.raises(ValueError, match="num_steps"):
        parse_anatomy(GOOD, num_steps=0)


def test_code_in_answer_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for text in (evil, "[" + evil + "]", "{'steps': " + evil + "}"):
        with pytest.raises(AnatomyError):
            parse_anatomy(text)
    assert not marker.exists()


def test_lenient_json_reader():
    assert loads("{'a': [1, 2.5, True, None,], b: 'it''s',}".replace("''", "'")) == \
        {"a": [1, 2.5, True, None], "b": "it's"}
    assert loads('{"a": "x" /* note */, // line\n "b": "y"}') == {"a": "x", "b": "y"}
    assert loads('{"a": "\\u00e9\\n"}') == {"a": "\u00e9\n"}
    with pytest.raises(LenientJSONError, match="at character"):
        loads("{'a': }")
    with pytest.raises(LenientJSONError, match="unterminated string"):
        loads("['abc")
