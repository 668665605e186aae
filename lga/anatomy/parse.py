"""Parse an LLM's answer into ``L`` anatomy steps, or say exactly what is wrong with it.

The prompt (:mod:`lga.anatomy.prompts`) asks for JSON, but real models answer in many shapes.
:func:`parse_anatomy` accepts, in this order of preference:

1. JSON anywhere in the answer: inside a code fence, after or before prose, as a top-level list of
   steps, as ``{"steps": [...]}`` (also ``anatomy``/``phases``), as one object per phase
   (``{"onset": {...}, "progression": {...}, ...}``) or wrapped in ``{"<label>": ...}``;
   read strictly with :mod:`json` first and then repaired with `json-repair
   <https://github.com/mangiucugna/json_repair>`_ (single quotes, trailing commas, unquoted keys,
   comments, Python literals, missing brackets);
2. a numbered or bulleted list that names the fields::

       1. Subject: a person | Motion: stands | Object: pool edge | Description: ...
       - **Subject:** ...

Extra keys are ignored. ``<think>...</think>`` blocks of reasoning models are dropped first.
A wrong number of steps is repaired only when the repair is unambiguous (exact duplicate steps
are removed); any other problem raises :class:`AnatomyError` with a message that names the step
and field and quotes the offending text. Nothing in the answer is ever evaluated as code.

**Bounded work.** An answer is untrusted input, so the work it can cause is bounded: an answer
longer than :data:`MAX_ANSWER_CHARS` (outside ``<think>`` blocks) or with brackets nested deeper
than :data:`MAX_NESTING` is refused before any parsing; the strict decoder (linear) is tried at no
more than :data:`MAX_JSON_STARTS` places; json-repair runs once, and only on a JSON part of at
most :data:`MAX_REPAIR_CHARS` characters, because it takes quadratic time on some inputs
(``"{2} " * n``: 0.4 s for 1250 characters, 1.5 s for 2500, 7.9 s for 5000 on a 2-core CPU; the
worst answer at the cap takes 1.3 s to refuse). A number too long for Python (``int`` refuses
more than 4300 digits) is an :class:`AnatomyError` like any other bad answer.

**Two checks json-repair does not make** (json-repair 0.64.4, measured by the tests named here):

- *An apostrophe inside a single-quoted string* (``'description': 'The person's hand ...'``):
  json-repair keeps the wrong quote when the string is the last value of an object, and returns
  ``"The person's hand grips the cup.'}"`` without a word of warning: 9 of the 27 placements in
  ``test_apostrophe_inside_single_quoted_string_is_kept`` came back wrong. ``_requote`` first
  rewrites single-quoted strings inside brackets as JSON strings, with the rule that a quote closes
  a string only when ``, : } ]`` or the end of a line follows it (27 of 27 right).
- *A cut answer* (the model hit its token limit): json-repair closes the open string and brackets,
  so a last step cut mid-sentence comes back as a complete step (``"The person p"``): of the 128
  places where ``test_cut_answer_is_refused_not_completed`` cuts the last step of its example,
  json-repair alone returns 3 steps for 51, 47 of them with a cut or missing field. An answer
  whose ``{`` / ``[`` do not all close is therefore not repaired, only read strictly (the one cut
  that leaves the whole list of steps intact is still read; the others are refused and the driver
  asks again).
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import json_repair

__all__ = ["Step", "AnatomyError", "parse_anatomy", "steps_from_json", "MAX_ANSWER_CHARS",
           "MAX_NESTING", "MAX_JSON_STARTS", "MAX_REPAIR_CHARS"]

MAX_ANSWER_CHARS = 20_000
"""Longest answer read (characters outside ``<think>`` blocks); ~8x a 512-token answer."""
MAX_NESTING = 32
"""Deepest bracket nesting read (``{ [ (`` counted together); an anatomy answer needs 4."""
MAX_JSON_STARTS = 16
"""How many ``{`` / ``[`` of an answer the strict JSON decoder starts from."""
MAX_REPAIR_CHARS = 2_000
"""Longest JSON part (first ``{``/``[`` to last ``}``/``]``) handed to json-repair, which takes
quadratic time on some inputs; a 3-step answer needs about 500."""

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
# (the optional bold marker is matched together with its own spaces, so a long run of spaces
# after a field name cannot be split between two ``\s*`` in quadratically many ways)
_FIELD_LABEL = re.compile(
    r"(?:\*\*|__)?\b(subject|motion|object|description)s?\b\s*(?:(?:\*\*|__)\s*)?[:=]\s*(?:\*\*|__)?",
    re.I)
_OPENER = re.compile(r"[\[{]")
_BRACKET = re.compile(r"[\[\]{}()]")
# (one way to match each character: a long run of digits cannot backtrack quadratically)
_NUMBER_TEXT = re.compile(r"[-+]?(?:\d[\d_,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


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
    if len(body) > MAX_ANSWER_CHARS:
        raise AnatomyError(f"the answer has {len(body)} characters, more than MAX_ANSWER_CHARS="
                           f"{MAX_ANSWER_CHARS} (refused before parsing): {_quote(body)}")
    deepest, still_open = _bracket_depths(body)
    if deepest > MAX_NESTING:
        raise AnatomyError(f"the answer nests brackets {deepest} deep, more than MAX_NESTING="
                           f"{MAX_NESTING} (refused before parsing): {_quote(body)}")

    first_error: AnatomyError | None = None
    saw_json = False
    span = "" if still_open else _json_span(body)
    problems: list[str] = []
    candidates = _strict_candidates(body, problems)
    if len(span) <= MAX_REPAIR_CHARS:
        candidates = itertools.chain(candidates, _repaired_candidates(span))
    for value in candidates:
        saw_json = True
        try:
            return steps_from_json(value, num_steps)
        except AnatomyError as e:
            first_error = first_error or e
    if still_open:  # the likeliest reason, rather than what a fragment of the answer gave
        first_error = AnatomyError(f"the answer stops with {still_open} bracket(s) still open, so "
                                   "it was cut off (token limit?) and is not completed by guessing")
    elif problems:  # the reason the whole JSON did not read, over what a fragment of it gave
        first_error = AnatomyError(problems[0])
    elif len(span) > MAX_REPAIR_CHARS and first_error is None:
        first_error = AnatomyError(f"the answer's JSON is not valid, and at {len(span)} characters "
                                   f"it is too long to repair (MAX_REPAIR_CHARS={MAX_REPAIR_CHARS})")
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


def _bracket_depths(body: str) -> tuple[int, int]:
    """``(deepest, still_open)``: the deepest nesting of ``{ [ (`` and how many ``{ [`` never close.

    One pass, blind to quotes (a bracket inside a string counts too): cheap, and an anatomy answer
    is far from either limit.
    """
    depth = deepest = square_curly = 0
    for m in _BRACKET.finditer(body):
        ch = m.group()
        if ch in "[{(":
            depth += 1
            deepest = max(deepest, depth)
            square_curly += ch != "("
        else:
            depth = max(0, depth - 1)
            if ch != ")":
                square_curly = max(0, square_curly - 1)
    return deepest, square_curly


def _is_container(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


_DECODER = json.JSONDecoder()


def _strict_candidates(body: str, problems: list[str]):
    """Yield the JSON values :mod:`json` reads from the ``{`` / ``[`` of ``body``.

    Each start not inside a value already read is tried, at most :data:`MAX_JSON_STARTS` of them.
    A number too long for Python's ``int`` is noted in ``problems``.
    """
    covered_until, tried = -1, 0
    for m in _OPENER.finditer(body):
        if m.start() < covered_until:
            continue
        if tried == MAX_JSON_STARTS:
            break
        tried += 1
        try:
            value, end = _DECODER.raw_decode(body, m.start())
        except (json.JSONDecodeError, RecursionError):  # not JSON from here
            continue
        except ValueError:  # valid JSON, but a number longer than int reads
            if not problems:
                problems.append(f"the answer holds a number of more than {sys.get_int_max_str_digits()} "
                                "digits (more than Python reads)")
            continue
        covered_until = end
        if _is_container(value):
            yield value


def _json_span(body: str) -> str:
    """``body`` from its first ``{`` / ``[`` to its last ``}`` / ``]`` (``""`` if there is none)."""
    first = _OPENER.search(body)
    last = max(body.rfind("}"), body.rfind("]"))
    return body[first.start():last + 1] if first and last > first.start() else ""


def _repaired_candidates(span: str):
    """Yield json-repair's reading of ``span`` (at most :data:`MAX_REPAIR_CHARS` long).

    json-repair returns several top-level values as one list, so the items of that list that are
    not single steps are yielded too (``"Pouring [something]: {...}"`` gives
    ``[["something"], {...}]``).
    """
    try:
        value = json_repair.loads(_requote(span))
    except (ValueError, RecursionError):
        return
    if not _is_container(value):
        return
    yield value
    if isinstance(value, list):
        for item in value[:MAX_JSON_STARTS]:
            if _is_container(item) and not (isinstance(item, dict) and _looks_like_step(item)):
                yield item


_VALUE_START = frozenset("{[,:")


def _requote(text: str) -> str:
    """``text`` with every single-quoted string inside brackets rewritten as a JSON string.

    A ``'`` opens a string only inside ``{...}`` / ``[...]`` and after ``{ [ , :``; it closes one
    only when ``, : } ]``, a line end or the end of the text follows, so the apostrophe of
    ``'the person's hand'`` stays in the string. Double-quoted strings are copied unchanged, prose
    outside brackets is never touched, and an unterminated string is left for json-repair. One
    pass: linear in ``len(text)``.
    """
    out: list[str] = []
    i, n, depth, prev = 0, len(text), 0, ""
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i, prev = j + 1, '"'
            continue
        if ch == "'" and depth and prev in _VALUE_START:
            j = _closing_quote(text, i + 1)
            if j < 0:
                out.append(text[i:])
                break
            out.append(_json_string(text[i + 1:j]))
            i, prev = j + 1, '"'
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        out.append(ch)
        prev = prev if ch.isspace() else ch
        i += 1
    return "".join(out)


_TO_ESCAPE = re.compile(r'(\\.)|"|[\x00-\x1f]', re.S)


def _json_string(content: str) -> str:
    """The body of a single-quoted string as a JSON string: its backslash escapes (``\\n``,
    ``\\u00e9``) kept, ``\\'`` made ``'``, bare ``"`` and control characters escaped."""
    def escape(m: re.Match) -> str:
        if m.group(1):
            return "'" if m.group(1) == "\\'" else m.group(1)
        return json.dumps(m.group())[1:-1]

    return '"' + _TO_ESCAPE.sub(escape, content) + '"'


def _closing_quote(text: str, start: int) -> int:
    """Index of the ``'`` that closes a single-quoted string opened before ``start``, or -1."""
    j, n = start, len(text)
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "'":
            k = j + 1
            while k < n and text[k] in " \t\r":
                k += 1
            if k == n or text[k] in ",:}]\n":
                return j
        j += 1
    return -1


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
    if _NUMBER_TEXT.fullmatch(value):  # json-repair turns a number too long for int into text
        raise AnatomyError(f"{where}: field {field!r} must be text, got the number {_quote(value, 60)}")
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
    """``repr`` of ``value`` as JSON text, at most ``limit`` characters; never raises."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, RecursionError):  # e.g. an int over Python's int-string limit
            text = f"<{type(value).__name__} too large to show>"
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return repr(text)
