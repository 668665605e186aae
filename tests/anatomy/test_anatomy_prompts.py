"""Prompt construction for text anatomy (lga.anatomy.prompts)."""

from __future__ import annotations

import json

import pytest

from lga.anatomy.parse import Step, parse_anatomy
from lga.anatomy.prompts import (DATASET_HINTS, DEFAULT_EXAMPLES, PROMPT_VERSION, PromptExample,
                                 PromptSpec, build_messages, phase_names)


def test_prompt_version_is_a_versioned_name():
    assert PROMPT_VERSION.startswith("lga-anatomy-v")


def test_messages_are_system_then_user_and_name_the_label():
    messages = build_messages("jump into pool")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(isinstance(m["content"], str) and m["content"] for m in messages)
    user = messages[1]["content"]
    assert '"jump into pool"' in user
    assert "exactly 3" in user
    for word in ("onset", "progression", "completion", '"subject"', '"motion"', '"object"',
                 '"description"', "JSON"):
        assert word in user


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 5])
def test_number_of_steps_is_a_parameter(num_steps):
    names = phase_names(num_steps)
    assert len(names) == num_steps
    user = build_messages("kick ball", num_steps=num_steps)[1]["content"]
    assert f"exactly {num_steps} atomic actions" in user
    for name in names:
        assert name in user


def test_phase_names_rejects_zero():
    with pytest.raises(ValueError, match="num_steps"):
        phase_names(0)


def test_default_examples_only_for_three_steps_and_zero_shot_option():
    with_examples = PromptSpec().user_prompt("kick ball")
    assert "Examples:" in with_examples
    for ex in DEFAULT_EXAMPLES:
        assert ex.label in with_examples
    assert "Examples:" not in PromptSpec(examples=()).user_prompt("kick ball")
    assert "Examples:" not in PromptSpec(num_steps=4).user_prompt("kick ball")


def test_custom_example_is_shown_and_must_match_num_steps():
    ex = PromptExample("wave", (Step("person", "raises", "hand", "A person raises a hand."),
                                Step("person", "waves", "hand", "The person waves the hand.")))
    user = PromptSpec(num_steps=2, examples=(ex,)).user_prompt("clap")
    assert '"wave"' in user and "The person waves the hand." in user
    with pytest.raises(ValueError, match="'wave' has 2 steps, but num_steps is 3"):
        PromptSpec(num_steps=3, examples=(ex,))


def test_example_answers_are_in_the_requested_format_and_parse_back():
    for ex in DEFAULT_EXAMPLES:
        data = json.loads(ex.answer_json())
        assert list(data) == ["steps"]
        assert parse_anatomy(ex.answer_json()) == list(ex.steps)


def test_dataset_hint_is_included():
    user = build_messages("Pouring [something] into [something]",
                          dataset_hint=DATASET_HINTS["ssv2_small"])[1]["content"]
    assert user.startswith("Dataset: Something-Something v2")
    assert "[something]" in user
    assert "Dataset:" not in build_messages("kick ball")[1]["content"]


def test_empty_label_is_refused():
    with pytest.raises(ValueError, match="empty"):
        build_messages("   ")
