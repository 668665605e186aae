"""Parse an LLM's answer into ``L`` anatomy steps, or say exactly what is wrong with it.

The prompt (:mod:`lga.anatomy.prompts`) asks for JSON, but real models answer in many shapes.
:func:`parse_anatomy` accepts, in this order of preference:

1. JSON anywhere in the answer: inside a code fence, after or before prose, as a top-level list of
   steps, as ``{"steps": [...]}`` (also ``anatomy``/``phases``), as one object per phase
   (``{"onset": {...}, "progression": {...}, ...}``) or wrapped in ``{"<label>": ...}``;
   read strictly with :mod:`json` first and then with the tolerant reader
   :mod:`lga.anatomy.lenient_json` (single quotes, trailing commas, unquoted keys);
2. a numbered or bulleted list that names the fields::

       1. Subject: a person | Motion: stands | Object: pool edge | Description: ...
       - **Subject:** ...

Extra keys are ignored. ``<think>...</think>`` blocks of reasoning models are dropped first.
A wrong number of steps is repaired only when the repair is unambiguous (exact duplicate steps
are removed); any other problem raises :class:`AnatomyError` with a message that names the step
and field and quotes the offending text. Nothing in the answer is ever evaluated as code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .lenient_json import LenientJSONError, loads_prefix

__all__ = ["Step", "AnatomyError", "parse_anatomy", "steps_from_json"]

# Accepted spellings of each field (keys are compared casefolded, with spaces/dashes as "_").
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "agent", "actor", "who"),
    "motion": ("motion", "action", "verb", "movement"),
    "object": ("object", "objects", "target", "object_s"),
    "description": ("description", "desc", "sentence", "caption", "text"),
}
_STEP_LIST_KEYS = ("steps", "anatomy", "phases", "atomic_actions", "actions", "sequence",
                   "stages", "action_anatomy")
_PHASE_ORDER = ("onset", "start", "beginning", "preparation", "progression", "middle", "execution",
                "completion", "end", "finish", "ending")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_FIELD_LABEL = re.compile(
    r"(?:\*\*|__)?\b(subject|motion|object|description)s?\b\s*(?:\*\*|__)?\s*[:=]\s*(?:\*\*|__)?",
    re.I)


class AnatomyError(ValueError):
    """An LLM answer (or an anatomy file) that cannot be read as ``L`` well-formed steps."""


@dataclass(frozen=True)
class Step:
    """One atomic action of a class: who does what to what, and one sentence that says it.

    ``description`` is the text fed to the text encoder; the other three fields are the
    (subject, motion, object) triple the paper asks the LLM to name.
    """

    subject: str
    motion: str
    object: str
    description: str

    FIELDS: ClassVar[tuple[str, ...]] = ("subject", "motion", "object", "description")

    def to_dict(self) -> dict[str, str]:
        """The ``lga-anatomy/1`` form: ``{"subject", "motion", "object", "description"}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "step") -> "Step":
        """Build a step from a ``lga-anatomy/1`` dict, strictly (exact field names, non-empty text).

        ``where`` names the step in error messages, e.g. ``"hmdb51.json: class 'kick', step 2"``.
        Extra keys are ignored.
        """
        if not isinstance(data, dict):
            raise AnatomyError(f"{where}: expected an object with fields {list(cls.FIELDS)}, "
                               f"got {type(data).__name__} {_quote(data)}")
        values = {}
        for name in cls.FIELDS:
            if name not in data:
                raise AnatomyError(f"{where}: missing field {name!r} (has {sorted(data)})")
            value = data[name]
            if not isinstance(value, str) or not value.strip():
                raise AnatomyError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
            values[name] = value.strip()
        return cls(**values)


def parse_anatomy(text: str, num_steps: int = 3) -> list[Step]:
    """Parse an LLM answer into exactly ``num_steps`` steps, in temporal order.

    Raises :class:`AnatomyError` whose message names what was wrong (no JSON or list found,
    a missing field and its step, the wrong number of steps) and quotes the answer.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not isinstance(text, str):
        raise AnatomyError(f"expected the answer as text, got {type(text).__name__}")
    body = _THINK.sub("", text).strip()
    if not body:
        raise AnatomyError(f"empty answer: {_quote(text)}")

    first_error: AnatomyError | None = None
    saw_json = False
    for value in _json_candidates(body):
        saw_json = True
        try:
            return steps_from_json(value, num_steps)
        except AnatomyError as e:
            first_error = first_error or e
    try:
        listed = _steps_from_list_text(body)
    except AnatomyError as e:
        if first_error is not None:
            raise AnatomyError(f"{first_error} (answer: {_quote(body)})") from None
        raise AnatomyError(f"{e} (answer: {_quote(body)})") from None
    if listed is None:
        if first_error is not None:
            raise AnatomyError(f"{first_error} (answer: {_quote(body)})")
        what = "JSON that could be read" if saw_json else "JSON object or list"
        raise AnatomyError(f"no {what} and no list with Subject/Motion/Object/Description fields "
                           f"in the answer: {_quote(body)}")
    try:
        return _fix_count(listed, num_steps)
    except AnatomyError as e:
        raise AnatomyError(f"{e} (answer: {_quote(body)})") from None


def steps_from_json(value: Any, num_steps: int) -> list[Step]:
    """Interpret an already-decoded JSON value (list, ``{"steps": ...}``, per-phase dict, ...)."""
    items = _step_items(value, depth=0)
    steps = [_step_from_item(item, i) for i, item in enumerate(items, 1)]
    return _fix_count(steps, num_steps)


# --------------------------------------------------------------------------------------------
# finding JSON in prose


def _json_candidates(body: str):
    """Yield every decodable JSON value that starts at a '{' or '[' of ``body``, outermost first."""
    decoder = json.JSONDecoder()
    covered_until = -1
    for i, ch in enumerate(body):
        if ch not in "{[" or i < covered_until:
            continue
        try:
            value, end = decoder.raw_decode(body, i)
        except (json.JSONDecodeError, RecursionError):
            try:
                value, end = loads_prefix(body, i)
            except (LenientJSONError, RecursionError):
                continue
        if not isinstance(value, (dict, list)) or not value:
            continue
        covered_until = end
        yield value


# --------------------------------------------------------------------------------------------
# interpreting decoded JSON


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().casefold())


def _step_number(key: str) -> int | None:
    m = re.fullmatch(r"(?:step|phase|stage)?_?(\d+)", _norm_key(key))
    return int(m.group(1)) if m else None


def _looks_like_step(d: dict) -> bool:
    keys = {_norm_key(k) for k in d}
    return sum(any(a in keys for a in aliases) for aliases in FIELD_ALIASES.values()) >= 2


def _step_items(value: Any, depth: int) -> list:
    if depth > 4:
        raise AnatomyError("no list of steps found (nested too deeply)")
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        raise AnatomyError(f"expected a list of steps or an object with 'steps', got {_quote(value)}")
    by_key = {_norm_key(k): v for k, v in value.items()}
    for key in _STEP_LIST_KEYS:
        if key in by_key and isinstance(by_key[key], (list, dict)):
            return _step_items(by_key[key], depth + 1)
    if _looks_like_step(value):
        return [value]
    dict_values = [v for v in value.values() if isinstance(v, dict)]
    if len(value) >= 2 and len(dict_values) == len(value) and all(map(_looks_like_step, dict_values)):
        keys = list(value)
        numbers = [_step_number(k) for k in keys]
        if all(n is not None for n in numbers):
            keys = [k for _, k in sorted(zip(numbers, keys))]
        elif all(_norm_key(k) in _PHASE_ORDER for k in keys):
            keys = sorted(keys, key=lambda k: _PHASE_ORDER.index(_norm_key(k)))
        return [value[k] for k in keys]
    if len(value) == 1:
        (only,) = value.values()
        if isinstance(only, (list, dict)):
            return _step_items(only, depth + 1)
    raise AnatomyError(f"no 'steps' list found in the JSON object (its keys: {list(value)[:8]})")


def _field_text(value: Any, field: str, where: str) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = " and ".join(v.strip() for v in value if v.strip())
    if not isinstance(value, str):
        raise AnatomyError(f"{where}: field {field!r} must be text, got {_quote(value)}")
    value = value.strip()
    if not value:
        raise AnatomyError(f"{where}: field {field!r} is empty")
    return value


def _step_from_item(item: Any, number: int) -> Step:
    where = f"step {number}"
    if not isinstance(item, dict):
        raise AnatomyError(f"{where} is {type(item).__name__} {_quote(item)}, not an object with "
                           f"fields {list(Step.FIELDS)}")
    if len(item) == 1 and isinstance(next(iter(item.values())), dict):
        inner = next(iter(item.values()))  # [{"onset": {...}}, {"progression": {...}}, ...]
        if _looks_like_step(inner):
            item = inner
    by_key = {_norm_key(k): v for k, v in item.items()}
    values = {}
    for field, aliases in FIELD_ALIASES.items():
        key = next((a for a in aliases if a in by_key), None)
        if key is None:
            raise AnatomyError(f"{where}: missing field {field!r} (has {list(item)}) in {_quote(item)}")
        values[field] = _field_text(by_key[key], field, where)
    return Step(**values)


# --------------------------------------------------------------------------------------------
# numbered / bulleted lists


def _clean_value(chunk: str) -> str:
    line = next((ln for ln in chunk.splitlines() if ln.strip()), "")
    line = line.strip().rstrip(",;|").strip()
    line = re.sub(r"^(?:\*\*|__)|(?:\*\*|__)$", "", line).strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    return line


def _steps_from_list_text(body: str) -> list[Step] | None:
    """Read "Subject: ... Motion: ... Object: ... Description: ..." groups; None if there are none."""
    matches = list(_FIELD_LABEL.finditer(body))
    if not matches:
        return None
    groups: list[dict[str, str]] = []
    for m, nxt in zip(matches, matches[1:] + [None]):
        field = m.group(1).casefold()
        chunk = body[m.end():nxt.start() if nxt else len(body)]
        if not groups or field in groups[-1]:
            groups.append({})
        groups[-1][field] = _clean_value(chunk)
    steps = []
    for number, group in enumerate(groups, 1):
        for field in Step.FIELDS:
            if field not in group:
                raise AnatomyError(f"step {number}: missing field {field!r} in the list answer "
                                   f"(found {list(group)})")
            if not group[field]:
                raise AnatomyError(f"step {number}: field {field!r} is empty in the list answer")
        steps.append(Step(**{f: group[f] for f in Step.FIELDS}))
    return steps


# --------------------------------------------------------------------------------------------
# step count


def _fix_count(steps: list[Step], num_steps: int) -> list[Step]:
    if len(steps) == num_steps:
        return steps
    if len(steps) > num_steps:
        unique = list(dict.fromkeys(steps))
        if len(unique) == num_steps:
            return unique
        if len(unique) < len(steps):
            raise AnatomyError(f"expected {num_steps} steps, got {len(steps)} "
                               f"({len(unique)} after removing exact duplicates)")
    shown = "; ".join(_quote(s.description, 60) for s in steps)
    raise AnatomyError(f"expected {num_steps} steps, got {len(steps)}: {shown}")


def _quote(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return repr(text)
