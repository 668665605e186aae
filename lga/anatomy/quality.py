"""Quality checks for anatomy files: coverage, well-formedness, and suspicious descriptions.

LLM anatomy fails in a few recognisable ways. :func:`check_anatomy` looks for each of them and
returns a :class:`QualityReport` (a list of :class:`Issue` with class, step, kind and message,
plus a printable :meth:`~QualityReport.summary`). The kinds:

``missing_class``
    a class of the given list has no entry (names matched as in
    :meth:`lga.anatomy.shipped.Anatomy.lookup`)
``malformed``
    steps missing, not a list, not exactly ``num_steps``, a field missing, not text or empty
``empty_object``
    the object is empty or a placeholder (``none``, ``n/a``, ...)
``refusal``
    the model refused, apologised or spoke of itself (``Sorry``, ``My apologies``, ``I can't``,
    ``I will not describe``, ``Unable to assist``, ``I must decline``, ``As an AI``, ``usage
    policies``), in the first person or about the request; an action that refuses, declines or
    apologises in the third person ("the person refuses the offered cup") is anatomy
``template``
    the description only wraps the label in generic phase words ("a person starts to brush hair",
    "the person finishes brushing hair"), or the same sentence pattern recurs across many classes
    with only the label swapped in
``duplicate_description``
    the same description is used by several classes
``duplicate_step``
    the same description twice within one class
``subject_not_mentioned``
    the description never mentions its subject (lenient: any content word of the subject, with
    simple stemming; people match people and pronouns)

Every check reads the text through :func:`normalize_text` first (every typographic apostrophe or
quote mark as ``'`` or ``"``, before and after Unicode NFKC, then casefolded), so "I can’t help with
that" is the refusal "I can't help with that", and “none” the placeholder "none".

The checks are heuristics for review, not proofs: a flagged entry deserves a look.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .names import loose_class_key, normalize_class_name, plain_quotes
from .parse import Step
from .shipped import SHIPPED_FILES, Anatomy, shipped_anatomy_path

__all__ = ["ISSUE_KINDS", "Issue", "QualityReport", "check_anatomy", "normalize_text"]

ISSUE_KINDS = ("missing_class", "malformed", "empty_object", "refusal", "template",
               "duplicate_description", "duplicate_step", "subject_not_mentioned")

PLACEHOLDER_OBJECTS = {"", "none", "n/a", "na", "nothing", "null", "nil", "-", "--", "\u2014",
                       "no object", "not applicable", "unknown", "?", "...", "none."}
# The forms refusals and non-answers take (read after normalize_text: casefolded, plain quotes),
# measured on tests/fixtures/refusals.txt (each must match) and tests/fixtures/not_refusals.txt plus
# every shipped anatomy file (none may): a refusal speaks in the first person or of the request,
# policies and itself as an AI, while anatomy describes a third person ("the person refuses the
# cup", "says sorry", "cannot help laughing" are anatomy).
_CANNOT = r"(?:can ?not|can't|cant|could not|couldn't)"
_REFUSAL_FORMS = (
    # apologies: opening the text, or in the first person
    r"^\W*(?:sorry|apologies|my apologies|forgive me|pardon me|regrettably|unfortunately, i)\b",
    r"\b(?:i'm|i am|we're|we are)(?: so| very| really| truly| terribly)? sorry\b",
    r"\bsorry,? (?:but|i|we|that|this|can't|cannot)\b",
    r"\b(?:i|we)(?: sincerely| do)? apologi[sz]e\b|\bmy apologies\b|\bapologies,? but\b",
    # the first person declining
    rf"\bi (?:{_CANNOT}|won't|will not|would not|wouldn't|shall not|must not|do not|don't|did not)\b",
    r"\bi(?:'m| am) (?:not|unable|afraid)\b",
    r"\bi(?:'ll|'d| will| would| must| shall| have to| need to)?(?: have to| respectfully| politely"
    r"| must)* (?:decline|refuse|refrain|pass)\b",
    r"\bi(?:'d| would) (?:rather|prefer) not\b",
    r"\bnot something i\b|\bfor me to (?:describe|provide|answer|help|assist|generate|create|"
    r"produce|comply|discuss)\b",
    # what the request cannot get
    r"\bunable to (?:assist|help|comply|fulfil+|provide|generate|produce|describe|create|process|"
    r"answer|respond|complete (?:this|that|the|your) request)\b",
    rf"^\W*{_CANNOT} (?:help|assist|comply|fulfil+|provide|describe)\b",
    rf"\b{_CANNOT} (?:comply|fulfil+)\b",
    rf"\b{_CANNOT} (?:help|assist)(?: you)?(?: with (?:this|that|your|the|such)|$|[.!])",
    r"\b(?:request|task|query|prompt) (?:is |was |has been )?(?:declined|denied|refused|rejected)\b",
    rf"\b(?:request|task|query|prompt) (?:{_CANNOT}|will not|won't) be (?:fulfilled|completed|"
    r"processed|answered|done)\b",
    r"\bbeyond (?:my|the scope of my) (?:capabilities|abilities|scope)\b|\boutside (?:what i|my)\b",
    r"\b(?:help|assist) you with (?:something|anything) else\b",
    # an AI speaking of itself, of its rules
    r"\bas an? (?:\w+ ){0,2}(?:ai|language model|assistant)\b",
    r"\bi(?:'m| am) (?:just |only )?(?:an ai|a language model|an assistant)\b",
    r"\b(?:content|usage|safety) polic(?:y|ies)\b",
    r"\b(?:against|violates?|violating|breach(?:es)?) (?:my|our|openai's) (?:guidelines|polic(?:y|ies)|"
    r"principles|programming|rules|terms)\b",
)
_REFUSAL = re.compile("|".join(f"(?:{form})" for form in _REFUSAL_FORMS))
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_STOPWORDS = set("""a an the this that these those of to in into onto on at by for from with without
 and or but as than then so is are was were be been being it its itself their his her him them
 they he she someone somebody one up down out off over under again while during until till just
 very""".split())
_PERSON_WORDS = set("""person people man men woman women boy girl child kid player athlete
 individual someone somebody he she they his her their him them subject actor performer user
 human adult guy lady""".split())
_GENERIC_WORDS = _STOPWORDS | _PERSON_WORDS | set("""start starts started starting begin begins
 began beginning continue continues continued continuing finish finishes finished finishing end
 ends ended ending complete completes completed completing completion prepare prepares prepared
 preparing preparation perform performs performed performing performance do does did doing done
 keep keeps keeping carry carries carrying proceed proceeds proceeding initiate initiates
 initiating initiation conclude concludes concluding action actions activity motion movement
 phase step stage onset progression middle final finally first second third next now still
 process get gets getting ready about try tries trying attempt attempts action's its""".split())


@dataclass(frozen=True)
class Issue:
    """One finding: ``step`` is 1-based, or None when the issue concerns the whole class."""

    class_name: str
    step: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"{self.class_name!r}" + (f" step {self.step}" if self.step else "")
        return f"[{self.kind}] {where}: {self.message}"


@dataclass
class QualityReport:
    """All issues found in one anatomy document."""

    source: str
    num_classes: int
    num_steps: int
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    def by_kind(self) -> dict[str, list[Issue]]:
        out: dict[str, list[Issue]] = defaultdict(list)
        for issue in self.issues:
            out[issue.kind].append(issue)
        return dict(out)

    def of_kind(self, *kinds: str) -> list[Issue]:
        return [i for i in self.issues if i.kind in kinds]

    def flagged_classes(self, *kinds: str) -> set[str]:
        return {i.class_name for i in self.issues if not kinds or i.kind in kinds}

    def summary(self, max_per_kind: int = 5) -> str:
        """A printable report: counts per kind, then up to ``max_per_kind`` examples of each."""
        head = (f"quality of {self.source}: {self.num_classes} classes, {self.num_steps} steps each, "
                f"{len(self.issues)} issue(s)")
        if not self.issues:
            return head + ": all checks passed"
        lines = [head]
        for kind, issues in sorted(self.by_kind().items(), key=lambda kv: ISSUE_KINDS.index(kv[0])):
            lines.append(f"  {kind}: {len(issues)}")
            lines += [f"    {i}" for i in issues[:max_per_kind]]
            if len(issues) > max_per_kind:
                lines.append(f"    ... and {len(issues) - max_per_kind} more")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# words


def normalize_text(text: str) -> str:
    """``text`` as every check reads it: typographic quotes as ``'`` / ``"``, NFKC, casefolded.

    ``normalize_text("I Can\u2019t")`` is ``"i can't"``; full-width ``\uff07`` becomes ``'`` too
    (:func:`lga.anatomy.names.plain_quotes`, then casefolded).
    """
    return plain_quotes(text).casefold()


def _words(text: str) -> list[str]:
    return _WORD.findall(normalize_text(text))


def stem(word: str) -> str:
    """A crude stem so that ``brushing``/``brush``, ``dribbling``/``dribble`` and
    ``swimming``/``swims`` meet."""
    word = word.casefold().removesuffix("'s")
    for suffix in ("ings", "ing", "ers", "er", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


def _content_stems(text: str) -> set[str]:
    return {stem(w) for w in _words(text) if w not in _STOPWORDS}


def _mentions_subject(subject: str, description: str) -> bool:
    subject_words = [w for w in _words(subject) if w not in _STOPWORDS]
    desc_words = _words(description)
    if not subject_words:
        return True
    desc_stems = {stem(w) for w in desc_words}
    if any(stem(w) in desc_stems for w in subject_words):
        return True
    head = subject_words[-1]
    return head in _PERSON_WORDS and any(w in _PERSON_WORDS for w in desc_words)


def _template_residue(description: str, label: str, subject: str) -> list[str]:
    """Words of the description that are neither label words, subject words nor generic words.

    Empty for "a person starts to brush hair" (label "brush hair"): the sentence adds nothing.
    """
    label_stems = _content_stems(label.replace("_", " "))
    subject_stems = _content_stems(subject)
    return [w for w in _words(description)
            if stem(w) not in label_stems and w not in _GENERIC_WORDS
            and stem(w) not in subject_stems and stem(w) not in _GENERIC_STEMS]


_GENERIC_STEMS = {stem(w) for w in _GENERIC_WORDS}


def _skeleton(description: str, label: str) -> tuple[str, bool]:
    """The description with label words replaced by ``<L>``, and whether it holds every label word."""
    label_stems = _content_stems(label.replace("_", " "))
    out, seen = [], set()
    for w in _words(description):
        s = stem(w)
        if s in label_stems:
            seen.add(s)
            if not out or out[-1] != "<L>":
                out.append("<L>")
        else:
            out.append(w)
    return " ".join(out), bool(label_stems) and seen == label_stems


# ----------------------------------------------------------------------------------------------
# the check


def _load_raw(anatomy) -> tuple[dict, str]:
    if isinstance(anatomy, Anatomy):
        return anatomy.data, anatomy.source
    if isinstance(anatomy, dict):
        return anatomy, "<dict>"
    key = os.fspath(anatomy)
    if key in SHIPPED_FILES and not Path(key).exists():
        return json.loads(shipped_anatomy_path(key).read_text(encoding="utf-8")), \
            f"lga/anatomy/data/{SHIPPED_FILES[key]}"
    path = Path(key)
    if path.is_dir():
        path = path / "anatomy.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), str(path)
    except (ValueError, RecursionError) as e:  # bad UTF-8, bad JSON, a number over int's limit
        raise ValueError(f"{path}: not a readable JSON anatomy file "
                         f"({type(e).__name__}: {str(e)[:200]})") from None


def check_anatomy(anatomy, classes: Iterable[str] | None = None, *, num_steps: int | None = None,
                  template_min_classes: int = 5) -> QualityReport:
    """Check an anatomy document and return every issue found.

    Args:
        anatomy: an :class:`~lga.anatomy.shipped.Anatomy`, a raw ``lga-anatomy/1`` dict, a file
            path, a prepared dataset root, or a shipped dataset name (``"hmdb51"``, ...).
        classes: class names that must be covered (any spelling :meth:`Anatomy.lookup` accepts).
        num_steps: the required number of steps; default: the document's ``num_steps``.
        template_min_classes: a sentence pattern (label words replaced by a placeholder) shared by
            at least this many classes at the same step, each holding its whole label, is flagged
            as a template.
    """
    data, source = _load_raw(anatomy)
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        entries = {}
    expected = num_steps or (data.get("num_steps") if isinstance(data, dict) else None) or 3
    report = QualityReport(source=source, num_classes=len(entries), num_steps=expected)
    add = report.issues.append
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        add(Issue("<file>", None, "malformed", "no 'classes' object in the document"))

    if classes is not None:
        exact = set(entries)
        normal = {normalize_class_name(k) for k in entries}
        loose = {loose_class_key(k) for k in entries}
        for name in classes:
            if not (name in exact or normalize_class_name(name) in normal or loose_class_key(name) in loose):
                add(Issue(name, None, "missing_class", "no anatomy for this class"))

    by_description: dict[str, list[tuple[str, int]]] = defaultdict(list)
    skeletons: dict[tuple[int, str], set[str]] = defaultdict(set)
    for name, entry in entries.items():
        steps = _well_formed_steps(name, entry, expected, add)
        if steps is None:
            continue
        label = entry.get("label") if isinstance(entry.get("label"), str) else name
        seen_here: Counter = Counter()
        for number, step in enumerate(steps, 1):
            _check_step(name, number, step, label, add)
            key = " ".join(_words(step.description))
            by_description[key].append((name, number))
            seen_here[key] += 1
            skeleton, holds_label = _skeleton(step.description, label)
            if holds_label:
                skeletons[(number, skeleton)].add(name)
        for key, count in seen_here.items():
            if count > 1:
                add(Issue(name, None, "duplicate_step", f"the description {key!r} is used {count} times"))

    for key, where in by_description.items():
        owners = sorted({n for n, _ in where})
        if len(owners) > 1:
            for name, number in where:
                others = [o for o in owners if o != name]
                add(Issue(name, number, "duplicate_description",
                          f"description {key!r} is also used by {others[:5]}"))
    for (number, skeleton), owners in skeletons.items():
        if len(owners) >= template_min_classes:
            for name in sorted(owners):
                add(Issue(name, number, "template",
                          f"{len(owners)} classes share the pattern {skeleton!r} with only the "
                          "label swapped in"))
    return report


def _well_formed_steps(name: str, entry, expected: int, add) -> list[Step] | None:
    if not isinstance(entry, dict):
        add(Issue(name, None, "malformed", f"entry is {type(entry).__name__}, not an object"))
        return None
    steps = entry.get("steps")
    if not isinstance(steps, list):
        add(Issue(name, None, "malformed", f"field 'steps' is missing or not a list ({type(steps).__name__})"))
        return None
    if len(steps) != expected:
        add(Issue(name, None, "malformed", f"{len(steps)} steps instead of {expected}"))
    out = []
    for number, step in enumerate(steps, 1):
        if not isinstance(step, dict):
            add(Issue(name, number, "malformed", f"step is {type(step).__name__}, not an object"))
            continue
        values = {}
        for field_name in Step.FIELDS:
            value = step.get(field_name)
            if not isinstance(value, str):
                add(Issue(name, number, "malformed", f"field {field_name!r} is missing or not text ({value!r})"))
            elif not value.strip() and field_name != "object":
                add(Issue(name, number, "malformed", f"field {field_name!r} is empty"))
            values[field_name] = value if isinstance(value, str) else ""
        out.append(Step(**values))
    return out


def _check_step(name: str, number: int, step: Step, label: str, add) -> None:
    obj = normalize_text(step.object).strip().rstrip(".")
    if obj in PLACEHOLDER_OBJECTS or obj.strip("()[]'\" ") in PLACEHOLDER_OBJECTS:
        add(Issue(name, number, "empty_object", f"object is a placeholder: {step.object!r}"))
    for field_name in Step.FIELDS:
        text = normalize_text(getattr(step, field_name))
        m = _REFUSAL.search(text)
        if m:
            add(Issue(name, number, "refusal", f"field {field_name!r} reads like a refusal "
                                               f"({m.group()!r}): {getattr(step, field_name)!r}"))
            break
    if not step.description.strip():
        return
    if not _template_residue(step.description, label, step.subject):
        add(Issue(name, number, "template", f"description only wraps the label {label!r} in "
                                            f"generic words: {step.description!r}"))
    if step.subject.strip() and not _mentions_subject(step.subject, step.description):
        add(Issue(name, number, "subject_not_mentioned",
                  f"subject {step.subject!r} does not appear in {step.description!r}"))
