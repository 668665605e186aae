"""Parsing LLM answers into anatomy steps (lga.anatomy.parse): repaired and refused answers."""

from __future__ import annotations

import json

import pytest

from lga.anatomy import parse as parse_module
from lga.anatomy.parse import (MAX_ANSWER_CHARS, MAX_JSON_STARTS, MAX_NESTING, MAX_REPAIR_CHARS,
                               AnatomyError, Step, parse_anatomy, steps_from_json)

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


APOSTROPHES = {"subject": "the person's hand", "object": "the dog's ball",
               "description": "The person's hand grips the cup."}
PLAIN = {"subject": "person", "motion": "grips", "object": "cup",
         "description": "The person grips the cup."}


def python_style(steps: list[dict], layout: str) -> str:
    items = ", ".join("{" + ", ".join(f"'{k}': '{v}'" for k, v in s.items()) + "}" for s in steps)
    return {"list": "[" + items + "]", "object": "{'steps': [" + items + "]}",
            "indented": "{\n  'steps': [\n    " + items.replace("}, {", "},\n    {") + "\n  ]\n}"}[layout]


@pytest.mark.parametrize("layout", ["list", "object", "indented"])
@pytest.mark.parametrize("field", list(APOSTROPHES))
@pytest.mark.parametrize("index", [0, 1, 2])
def test_apostrophe_inside_single_quoted_string_is_kept(index, field, layout):
    """The 27 placements measured in lga.anatomy.parse's docstring (json-repair alone: 9 wrong)."""
    steps = [dict(PLAIN) for _ in range(3)]
    steps[index][field] = APOSTROPHES[field]
    assert parse_anatomy(python_style(steps, layout)) == [Step(**s) for s in steps]


def test_single_quote_rewriting_leaves_prose_alone():
    text = "Here's the anatomy: 'onset' first. " + python_style([APOSTROPHES | {"motion": "grips"}], "list")
    (step,) = parse_anatomy(text, num_steps=1)
    assert step.description == "The person's hand grips the cup."
    assert parse_module._requote("It's 'fine': [\"it's\", 'a']") == 'It\'s \'fine\': ["it\'s", "a"]'


def test_relaxed_json_is_read():
    """Comments, escapes and Python literals, as the hand-written reader read them."""
    steps = [dict(s) for s in STEPS]
    text = ("{'steps': [ // the three phases\n" + ", ".join(
        "{" + ", ".join(f"'{k}': '{v}'" for k, v in s.items()) + ", 'ok': True, 'score': None}"
        for s in steps) + " /* done */ ],}").replace("plunges", "plunges\\u00e9")
    parsed = parse_anatomy(text)
    assert parsed[:2] == EXPECTED[:2]
    assert parsed[2].description == STEPS[2]["description"].replace("plunges", "plunges\u00e9")


def test_cut_answer_is_refused_not_completed():
    """An answer cut inside its last step is never completed by guessing (json-repair would)."""
    start = GOOD.rindex('{"subject"')
    accepted = []
    for cut in range(start + 1, len(GOOD)):
        try:
            steps = parse_anatomy(GOOD[:cut])
        except AnatomyError as e:
            assert "it was cut off" in str(e), str(e)
        else:
            assert steps == EXPECTED, GOOD[:cut]
            accepted.append(cut)
    assert accepted == [len(GOOD) - 1]  # only the cut of the final "}" leaves every step intact
    with pytest.raises(AnatomyError, match=r"stops with 3 bracket\(s\) still open, so it was cut off"):
        parse_anatomy(GOOD[:-30])


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
    "unterminated json": ('{"steps": [{"subject": "person", "motion": "sta', "it was cut off"),
    "number as a field": (GOOD.replace('"water"', '"12345"'), "step 3: field 'object' must be text, "
                                                             "got the number '12345'"),
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


# ----------------------------------------------------------------------------------------------
# bounded work and hostile answers (issue 15, item 6)


def test_answers_over_the_size_cap_are_refused_before_parsing(monkeypatch):
    calls = []
    monkeypatch.setattr(parse_module.json_repair, "loads", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(parse_module, "_strict_candidates", lambda *a, **k: calls.append(a) or iter(()))
    with pytest.raises(AnatomyError, match=f"more than MAX_ANSWER_CHARS={MAX_ANSWER_CHARS}"):
        parse_anatomy("[" * 50000)
    with pytest.raises(AnatomyError, match=f"more than MAX_NESTING={MAX_NESTING}"):
        parse_anatomy("[" * (MAX_ANSWER_CHARS - 1))
    with pytest.raises(AnatomyError, match="brackets 33 deep"):
        parse_anatomy('{"steps": ' + "[" * 32 + "]" * 32 + "}")
    assert calls == []  # neither the decoders nor json-repair ever saw these answers


def test_a_long_think_block_does_not_count_against_the_cap():
    assert parse_anatomy("<think>" + "hmm " * MAX_ANSWER_CHARS + "</think>" + GOOD) == EXPECTED


HOSTILE = {
    "open brackets": lambda n: "[" * n,
    "brackets in prose": lambda n: "see [1] and {2} " * (n // 16),
    "many small values": lambda n: "[1] " * (n // 4),
    "unclosed strings": lambda n: '{"a": "' * (n // 7),
    "quotes": lambda n: "'" * n,
    "single-quoted keys": lambda n: "{'a': 'b's " * (n // 11),
    "field names and spaces": lambda n: "subject" + " " * n + "x",
    "numbers": lambda n: "[" + "1," * (n // 2) + "]",
    "small objects (json-repair is quadratic here)": lambda n: "{2} " * (n // 4),
}


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_parse_work_is_bounded(shape, monkeypatch):
    """Whatever the answer, the strict decoder starts at most MAX_JSON_STARTS times and json-repair
    (quadratic on some inputs) runs at most once, on at most MAX_REPAIR_CHARS characters: work
    linear in the answer's length plus a constant (the old reader started at every bracket,
    quadratic: 20 s for ``"[" * 50000``)."""
    counts = {"raw_decode": 0, "repair": 0, "repaired_chars": 0}

    class CountingDecoder:
        def raw_decode(self, s, idx=0):
            counts["raw_decode"] += 1
            return json.JSONDecoder().raw_decode(s, idx)

    def repair(text, *args, **kwargs):
        counts["repair"] += 1
        counts["repaired_chars"] += len(text)
        return real_repair(text, *args, **kwargs)

    real_repair = parse_module.json_repair.loads
    monkeypatch.setattr(parse_module, "_DECODER", CountingDecoder())
    monkeypatch.setattr(parse_module.json_repair, "loads", repair)
    for n in (MAX_ANSWER_CHARS // 8, MAX_ANSWER_CHARS // 4, MAX_ANSWER_CHARS - 16):
        counts.update(raw_decode=0, repair=0, repaired_chars=0)
        with pytest.raises(AnatomyError):
            parse_anatomy(HOSTILE[shape](n))
        assert counts["raw_decode"] <= MAX_JSON_STARTS and counts["repair"] <= 1
        assert counts["repaired_chars"] <= 2 * MAX_REPAIR_CHARS  # _requote only adds escapes


def test_long_answers_are_read_strictly_and_repaired_only_when_short():
    long_steps = [dict(s, description=s["description"] + " Slowly." * 120) for s in STEPS]
    valid = json.dumps({"steps": long_steps})
    assert len(valid) > MAX_REPAIR_CHARS
    assert [s.description for s in parse_anatomy(valid)] == [s["description"] for s in long_steps]
    with pytest.raises(AnatomyError, match=f"too long to repair \\(MAX_REPAIR_CHARS={MAX_REPAIR_CHARS}\\)"):
        parse_anatomy(python_style(long_steps, "list"))
    assert parse_anatomy(python_style(STEPS, "object")) == EXPECTED  # a short one is repaired


def test_field_label_scan_is_linear():
    """The list reader's pattern cannot split a run of spaces between two ``\\s*``."""
    pattern = parse_module._FIELD_LABEL.pattern
    assert r"\s*(?:\*\*|__)?\s*" not in pattern
    assert parse_anatomy("Subject   :  a | Motion: b | Object: c | Description: d", num_steps=1) == \
        [Step("a", "b", "c", "d")]


HUGE = "1" + "0" * 4999  # over Python's int-string conversion limit (4300 digits)


@pytest.mark.parametrize("where", ["object", "motion value", "whole answer", "single quotes", "list"])
def test_huge_integer_is_an_anatomy_error(where):
    text = {"object": GOOD.replace('"water"', HUGE),
            "motion value": GOOD.replace('"leaps"', "-" + HUGE + ".5e3"),
            "whole answer": HUGE,
            "single quotes": GOOD.replace('"', "'").replace("'water'", HUGE),
            "list": f"1. Subject: person | Motion: {HUGE} | Object: x | Description: y"}[where]
    with pytest.raises(AnatomyError) as info:
        parse_anatomy(text)
    assert len(str(info.value)) < 1000
    if where == "object":  # valid JSON but for the integer: said so
        assert "holds a number of more than 4300 digits" in str(info.value)
    if where == "motion value":  # a float that long is read, as infinity: not text
        assert "step 2: field 'motion' must be text, got '-Infinity'" in str(info.value)


def test_huge_integer_in_an_extra_key_does_not_spoil_the_steps():
    answer = json.dumps({"steps": STEPS, "confidence": 0}).replace('"confidence": 0', f'"confidence": {HUGE}')
    assert parse_anatomy(answer) == EXPECTED
    with pytest.raises(AnatomyError, match="step 1 is int '<int too large to show>'"):
        steps_from_json([int(HUGE[:4000]) ** 2], 3)
