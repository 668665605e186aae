"""Versioned prompts that ask an LLM for the text anatomy of one action class.

The paper's text anatomy decomposes an action label into ``L`` ordered atomic actions (default
``L = 3``: onset, progression, completion), each naming a subject, a motion and an object.
LGA's prompt is not published; this is ours. It asks for JSON (parsed by
:func:`lga.anatomy.parse.parse_anatomy`)::

    {"steps": [{"subject": "...", "motion": "...", "object": "...", "description": "..."}, ...]}

Change the wording, and you must change :data:`PROMPT_VERSION`: the version is written into
every anatomy file's provenance, so a cache built with one prompt is never mistaken for another.

Usage::

    spec = PromptSpec(num_steps=3, dataset_hint=DATASET_HINTS["hmdb51"])
    messages = spec.messages("brush hair")   # [{"role": "system", ...}, {"role": "user", ...}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .parse import Step

__all__ = ["PROMPT_VERSION", "PromptExample", "PromptSpec", "DEFAULT_EXAMPLES", "DATASET_HINTS",
           "phase_names", "build_messages"]

PROMPT_VERSION = "lga-anatomy-v1"

SYSTEM_PROMPT = (
    "You are an expert in human motion and video understanding. You decompose an action into "
    "the short sequence of atomic actions a camera would see, in temporal order. You answer "
    "with JSON only."
)

DATASET_HINTS: dict[str, str] = {
    "hmdb51": "HMDB51: short clips of human actions from movies and web videos.",
    "ucf101": "UCF101: YouTube videos of sports, musical instruments and everyday human actions.",
    "kinetics100": "Kinetics: 10-second YouTube clips of human actions and human-object interactions.",
    "ssv2_small": ("Something-Something v2: a person's hand manipulating everyday objects in front "
                   "of a camera. Words in brackets such as [something] stand for any object."),
    "ssv2_full": ("Something-Something v2: a person's hand manipulating everyday objects in front "
                  "of a camera. Words in brackets such as [something] stand for any object."),
    "atomic_actions": "AtomicActions: a synthetic 2D scene where an agent acts on simple objects.",
}


def phase_names(num_steps: int) -> tuple[str, ...]:
    """Names of the ``num_steps`` phases: ``("onset", "progression", "completion")`` for 3.

    1 -> ``("whole action",)``; 2 -> onset, completion; ``L > 3`` -> onset, progression 1..L-2,
    completion.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if num_steps == 1:
        return ("whole action",)
    if num_steps == 2:
        return ("onset", "completion")
    if num_steps == 3:
        return ("onset", "progression", "completion")
    middle = tuple(f"progression {i}" for i in range(1, num_steps - 1))
    return ("onset",) + middle + ("completion",)


@dataclass(frozen=True)
class PromptExample:
    """One worked example shown to the model (few-shot prompting): a label and its steps."""

    label: str
    steps: tuple[Step, ...]

    def answer_json(self) -> str:
        """The example's answer, in exactly the JSON format the model is asked to produce."""
        return json.dumps({"steps": [s.to_dict() for s in self.steps]}, ensure_ascii=False)


# The paper's own example ("jump into pool") plus one object-centred action, for L = 3.
DEFAULT_EXAMPLES: tuple[PromptExample, ...] = (
    PromptExample("jump into pool", (
        Step("person", "stands", "pool edge", "A person stands at the edge of the pool."),
        Step("person", "leaps", "pool edge", "The person leaps off the edge into the air."),
        Step("person", "enters", "water", "The person plunges into the water with a splash."),
    )),
    PromptExample("Putting [something] on a surface", (
        Step("hand", "grasps", "object", "A hand grasps an object and lifts it slightly."),
        Step("hand", "moves", "object", "The hand carries the object down towards a table."),
        Step("hand", "releases", "object", "The hand lets go, leaving the object on the table."),
    )),
)


@dataclass(frozen=True)
class PromptSpec:
    """Everything that decides the prompt text, except the label.

    Args:
        num_steps: ``L``, the number of ordered steps asked for.
        dataset_hint: one sentence about the dataset's videos (see :data:`DATASET_HINTS`), or None.
        examples: few-shot examples; ``None`` means :data:`DEFAULT_EXAMPLES` when ``num_steps == 3``
            and none otherwise; ``()`` means zero-shot. Every example must have ``num_steps`` steps.
    """

    num_steps: int = 3
    dataset_hint: str | None = None
    examples: tuple[PromptExample, ...] | None = None
    version: str = field(default=PROMPT_VERSION)

    def __post_init__(self) -> None:
        phase_names(self.num_steps)  # validates num_steps
        for ex in self.resolved_examples():
            if len(ex.steps) != self.num_steps:
                raise ValueError(f"prompt example {ex.label!r} has {len(ex.steps)} steps, "
                                 f"but num_steps is {self.num_steps}")

    def resolved_examples(self) -> tuple[PromptExample, ...]:
        if self.examples is None:
            return DEFAULT_EXAMPLES if self.num_steps == 3 else ()
        return tuple(self.examples)

    def user_prompt(self, label: str) -> str:
        """The user message for ``label``."""
        return _user_prompt(label, self)

    def messages(self, label: str) -> list[dict[str, str]]:
        """Chat messages ``[system, user]`` for ``label``, ready for a chat template or an API."""
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.user_prompt(label)}]


def _user_prompt(label: str, spec: PromptSpec) -> str:
    label = label.strip()
    if not label:
        raise ValueError("the class label is empty")
    names = phase_names(spec.num_steps)
    phases = ", ".join(f"{i}. {n}" for i, n in enumerate(names, 1))
    lines = []
    if spec.dataset_hint:
        lines.append(f"Dataset: {spec.dataset_hint}")
    lines += [
        f'Action class: "{label}"',
        "",
        f"Decompose this action into exactly {spec.num_steps} atomic actions in temporal order "
        f"({phases}). For each one give:",
        '- "subject": who or what acts (a short noun phrase, e.g. "person", "hand");',
        '- "motion": the movement, as a verb (e.g. "grasps", "swings", "leaps");',
        '- "object": what the motion acts on or towards (an object, body part or place; never '
        '"none");',
        '- "description": one concrete, visual sentence that names the subject and says what a '
        "camera would see in this phase, without repeating the label word for word.",
        "",
        'Answer with JSON only, no prose: {"steps": [{"subject": "...", "motion": "...", '
        '"object": "...", "description": "..."}, ...]} with exactly '
        f"{spec.num_steps} steps.",
    ]
    examples = spec.resolved_examples()
    if examples:
        lines += ["", "Examples:"]
        for ex in examples:
            lines += [f'Action class: "{ex.label}"', ex.answer_json()]
    return "\n".join(lines)


def build_messages(label: str, num_steps: int = 3, dataset_hint: str | None = None,
                   examples: tuple[PromptExample, ...] | None = None) -> list[dict[str, str]]:
    """Chat messages (system + user) asking for the ``num_steps``-step anatomy of ``label``."""
    return PromptSpec(num_steps=num_steps, dataset_hint=dataset_hint,
                      examples=examples).messages(label)
