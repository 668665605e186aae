"""No typed numbers: every number in a chapter's prose comes from the notebook's own outputs.

A markdown cell may show a number only through a glue role (``{glue:text}`name` ``, see
:func:`lga.book.glue_number`) or a substitution (``{{ run_time }}``, written by
``benchmarks/chapters.py``). What is not prose is left out before the digits are counted: code spans
and code blocks, roles (glue, ``{doc}``, ``{cite}``, ``{term}``, ``{py:...}``), link targets,
display math (``$$ ... $$``, ``\\begin{...}``), heading numbers (``## 1.4``) and list markers. In
inline math (``$...$``) a single digit is notation (indices, ``1/2``, ``L-1``) and is allowed; a longer
number or a decimal there is a value like any other. Words are not checked (``three phases``): they are
for definitions, never for results.

What remains must match :data:`ALLOWED`, a short list in which every entry says why. The paper's
numbers are not on it: prose glues them from :mod:`lga.reported` like any other value.

The failure message lists every offending line with its notebook, cell index (as in
``nb.cells[i]``) and line, e.g. ``pytest tests/book/test_book_prose.py -k 01_few_shot``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))

#: (pattern, reason): the only digits prose may type. Keep it short; prefer glue to a new entry.
ALLOWED: list[tuple[str, str]] = [
    (r"(?:\b[Cc]hapter|\b[Ss]ection|§)\s*\d+(?:\.\d+)*|\b(?:[Cc]hapters|[Ss]ections)\s+\d+(?:\.\d+)*"
     r"(?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+to\s+|\s*[–-]\s*)\d+(?:\.\d+)*)*",
     "a cross-reference to a chapter or section of this book (a list after the plural)"),
    (r"\b(?:[Ee]xercises?|[Ss]olutions?)\s+\d+", "exercises and solutions are numbered"),
    (r"\b(?:[Ee]q(?:uation)?s?\.?|[Tt]able|[Ff]ig(?:ure|\.))\s*\(?\d+(?:\.\d+)*\)?",
     "a reference to an equation, table or figure (of this book or of a cited paper)"),
    (r"(?:\(|\bet al\.,?\s|\b(?:[Ii]n|[Ss]ince|ICCV|CVPR|ECCV|NeurIPS|ICML|ICLR|AAAI|WACV|BMVC|TPAMI|IJCV)\s)"
     r"(?:19|20)\d\d\b", "a year: in parentheses, after a venue, 'et al.,' or 'in'/'since'"),
    (r"\barXiv:\s?\d{4}\.\d{4,5}(?:v\d+)?", "an arXiv identifier"),
    (r"(?<=[A-Za-z])[-/]?\d+(?:\.\d+)*", "digits inside a name (HMDB51, UCF101, Kinetics-100, SSv2, "
     "ViT-B/16, Conv-4, L2, top-1, GPT-4o)"),
    (r"\b\d+(?:\.\d+)?[BD]\b", "a name of a kind: 2D, 3D, and model sizes such as 7B"),
    (r"\b2-core\b", "the 2-core laptop the cpu profile is designed for (README, the preface)"),
    (r"\b5-way\b|\b[15]-shot\b", "the benchmarks' standard episodes: 5-way 1-shot and 5-shot"),
    (r"\b10[,\u202f\u2009 ]?000\b", "the standard protocol's 10,000 test episodes"),
    (r"\b95[\u202f\u2009 ]?%|\b1\.96\b", "the 95% confidence level of every interval, and its z = 1.96"),
    (r"\b3 (?:atomic )?(?:phases|steps|atoms|atomic actions)\b",
     "L = 3: the paper defines an action by three atomic steps"),
    (r"\b8 frames\b", "T = 8: the paper samples 8 frames per video"),
    (r"\b64/12/24\b", "the standard train/val/test class split of SSv2 and Kinetics-100"),
]

_ALLOWED = re.compile("|".join(f"(?:{p})" for p, _ in ALLOWED))
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MATH_NUMBER = re.compile(r"\d+(?:\.\d+)?")        # in math a comma separates: \{0,1\}

# spans that are not prose (masked before the digits are counted)
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
_COLON_OPEN = re.compile(r"^:{3,}\{[\w:-]+\}")
_OPTION = re.compile(r"^[ \t]*:[\w-]+:(?:[ \t].*)?$")
_NOT_PROSE = [
    re.compile(r"<!--.*?-->", re.S),                            # HTML comments
    re.compile(r"\$\$.*?\$\$", re.S),                           # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),     # amsmath environments
    re.compile(r"\{\{.*?\}\}", re.S),                           # substitutions ({{ run_time }})
    re.compile(r"\{[\w:+-]+\}(`+).*?\1", re.S),                 # roles: {glue:text}`x`, {doc}`02_data`
    re.compile(r"(`+).+?\1", re.S),                             # code spans
    re.compile(r"\]\([^)\s]*\)"),                               # link and image targets
    re.compile(r"<https?://[^>]+>|https?://\S+"),               # bare and auto links
    re.compile(r"\[\^[^\]]+\]"),                                # footnote references
    re.compile(r"^#{1,6}[ \t]+\d+(?:\.\d+)*\.?", re.M),        # heading numbers: "# 1.", "## 1.4"
    re.compile(r"^[ \t]*\d+[.)](?=[ \t])", re.M),               # ordered-list markers
]
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(?P<body>[^$\n]+?)(?<!\\)\$")


def _blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` replaced by spaces, newlines kept (positions stay the same)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def typed_numbers(source: str) -> list[tuple[int, str, list[str]]]:
    """The typed numbers of one markdown cell: ``[(line number from 1, the line, [numbers])]``."""
    text = source
    # code blocks go whole; directives keep their body (prose) but lose fence, argument and options
    for m in _FENCE.finditer(source):
        if m.group("info").strip().startswith("{"):
            text = _blank(text, m.start(), m.start("body"))
            text = _blank(text, m.end("body"), m.end())
            body_lines = m.group("body").split("\n")
            pos = m.start("body")
            for line in body_lines:
                if not _OPTION.match(line):
                    break
                text = _blank(text, pos, pos + len(line))
                pos += len(line) + 1
        else:
            text = _blank(text, m.start(), m.end())
    # colon-fence directives: their options
    lines, pos, in_options = text.split("\n"), 0, False
    for line in lines:
        if _COLON_OPEN.match(line):
            in_options = True
        elif in_options and _OPTION.match(line):
            text = _blank(text, pos, pos + len(line))
        else:
            in_options = False
        pos += len(line) + 1
    for pattern in _NOT_PROSE:
        for m in pattern.finditer(text):
            text = _blank(text, m.start(), m.end())
    # inline math: single digits are notation; longer numbers stay, to be judged like prose
    for m in _INLINE_MATH.finditer(text):
        kept = [" "] * (m.end() - m.start())
        for n in _MATH_NUMBER.finditer(m.group(0)):
            if len(re.sub(r"\D", "", n.group(0))) > 1:
                kept[n.start():n.end()] = n.group(0)
        text = text[:m.start()] + "".join(kept) + text[m.end():]
    for m in _ALLOWED.finditer(text):
        text = _blank(text, m.start(), m.end())
    found = []
    original = source.split("\n")
    for i, line in enumerate(text.split("\n")):
        numbers = _NUMBER.findall(line)
        if numbers:
            found.append((i + 1, original[i], numbers))
    return found


def offending_cells(path: Path) -> dict[int, list[tuple[int, str, list[str]]]]:
    """Cell index -> typed numbers, for every markdown cell of the notebook at ``path`` that has some."""
    nb = nbformat.read(path, as_version=4)
    out = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = typed_numbers(cell.source)
            if found:
                out[index] = found
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_prose_types_no_numbers(path):
    cells = offending_cells(path)
    report = [f"book/{path.name} cell {index} line {line}: {', '.join(numbers)}\n    {text.strip()}"
              for index, found in cells.items() for line, text, numbers in found]
    assert not cells, (f"{len(cells)} markdown cell(s) of {path.name} type numbers: glue them from the "
                       "notebook's outputs ({glue:text}`name`, lga.book.glue_number) or rephrase; allowed "
                       "exceptions are listed in tests/book/test_book_prose.py ALLOWED\n" + "\n".join(report))


# The scanner itself, on examples of each rule


@pytest.mark.parametrize("prose", [
    "Accuracy is {glue:text}`acc_1shot` % after {glue:text}`steps` steps.",
    "**Run time.** {{ run_time }} with {{ run_threads }} thread(s).",
    "See {doc}`chapter 5 <05_visual_anatomy>` and section 1.4, sections 3.2 and 3.5; Exercise 2.",
    "As chapters 3, 5 and 7 showed, and chapters 1-4 and § 2.1.",
    "## 1.4 Meta-training\n\n1. first item\n2. second item",
    "```python\nx = 400\n```\n\nThe code above.",
    "$$\n\\frac{1}{2B}\\sum_{i=1}^{B} 10^{-3}\n$$\nand $L-1$ cuts, $t_1, \\dots, t_L$.",
    "`steps=400` in code, ``a `3` b``, a [link](https://arxiv.org/abs/2507.16287) and {cite}`qian2025lga`.",
    "LGA (ICCV 2025, arXiv:2507.16287) on HMDB51, UCF101, Kinetics-100 and SSv2 with ViT-B/16.",
    "A 5-way 1-shot or 5-shot episode, 10,000 test episodes, a 95% interval (1.96 standard errors).",
    "Each action has 3 atomic steps over 8 frames; the 64/12/24 split.",
    ":::{admonition} Solution 3\n:class: dropdown\nNothing changes.\n:::",
    "```{figure} _static/fig2.png\n:width: 80%\nA caption.\n```",
    "Snell et al. (2017) and CLIP (Radford et al., 2021) in Table 1 of the paper, eq. (3). Since 2018.",
    "A mask $M_i \\in \\{0,1\\}^T$ in a 2D scene, a 7B model, on a 2-core laptop.",
])
def test_scanner_accepts_what_is_not_a_typed_number(prose):
    assert typed_numbers(prose) == []


@pytest.mark.parametrize("prose, numbers", [
    ("Chance is 20%.", ["20"]),
    ("ProtoNet reaches 59.85 ± 0.41 % after 400 episodes.", ["59.85", "0.41", "400"]),
    ("A learning rate of $2\\cdot10^{-3}$ and $\\tau_{vv}=0.1$.", ["10", "0.1"]),
    ("A 2-way episode of 2000 episodes.", ["2", "2000"]),
    ("The paper reports 86.8 on HMDB51.", ["86.8"]),
    ("Kinetics knows 400 actions.", ["400"]),
    ("In chapter 3, 400 steps and section 2 and 12 runs.", ["400", "12"]),
    ("```{figure} fig.png\n:width: 80%\nAccuracy rose by 12 points.\n```", ["12"]),
    (":::{note}\nIt took 16.5 min.\n:::", ["16.5"]),
])
def test_scanner_finds_typed_numbers(prose, numbers):
    found = typed_numbers(prose)
    assert [n for _, _, ns in found for n in ns] == numbers


def test_scanner_reports_the_line():
    found = typed_numbers("First line.\n\nSecond, with 7 numbers.\nThird.")
    assert found == [(3, "Second, with 7 numbers.", ["7"])]


# No development history: a chapter states what is and shows it; how the book got there belongs in
# CHANGELOG.md. Each pattern is a phrase that only tells a story of the book's own past.

#: (pattern, reason): phrases of development history, refused in the book's prose
HISTORY: list[tuple[str, str]] = [
    (r"\b(?:an?|the)\s+(?:earlier|older|old|previous|first|former)\s+version\s+of\s+(?:this|the)\s+"
     r"(?:chapter|book|section|page|figure|table)", "the book's own past state"),
    (r"\b(?:an?|the)\s+(?:earlier|previous|old)\s+version\s+(?:of\s+(?:this|the)\s+chapter\s+)?"
     r"(?:said|measured|found|showed|claimed|used)", "what an earlier state of the book said or measured"),
    (r"\bv\d+(?:\.\d+)?\s*(?:->|→|=>)\s*v\d+", "a version-to-version story (v1 -> v2)"),
    (r"\bwhat\s+v\d+\s+changed\b|\bv\d+\s+(?:fixed|fixes|changed|replaced)\b", "what a version changed"),
    (r"\b(?:the\s+)?default\s+since\b|\bis\s+now\s+the\s+default\b|\bnow\s+defaults\s+to\b",
     "'now' in the sense of 'after a change'"),
    (r"\bwe\s+used\s+to\b|\bthe\s+book\s+used\s+to\b|\bthis\s+chapter\s+used\s+to\b", "what the book did before"),
    (r"\bwe\s+(?:changed|replaced|rewrote|switched|fixed)\b", "a change the authors made"),
    (r"\btaught\s+the\s+book\s+a\s+lesson\b", "the book's own development as a story"),
]
_HISTORY = [(re.compile(p, re.I), reason) for p, reason in HISTORY]
PAGES = sorted((ROOT / "book").glob("*.md"))


def history_phrases(text: str) -> list[tuple[str, str]]:
    """``[(the phrase found, why it is refused)]`` in ``text`` (code spans and blocks included:
    a comment in prose is prose)."""
    flat = re.sub(r"\s+", " ", text)
    return [(m.group(0), reason) for pattern, reason in _HISTORY for m in pattern.finditer(flat)]


@pytest.mark.parametrize("path", CHAPTERS + PAGES, ids=[p.name for p in CHAPTERS + PAGES])
def test_prose_tells_no_development_history(path):
    if path.suffix == ".md":
        cells = {0: path.read_text()}
    else:
        cells = {i: c.source for i, c in enumerate(nbformat.read(path, as_version=4).cells)
                 if c.cell_type == "markdown"}
    found = [f"book/{path.name} cell {i}: {phrase!r} ({reason})"
             for i, text in cells.items() for phrase, reason in history_phrases(text)]
    assert not found, ("development history in the book (state what is and show it; history goes to "
                       "CHANGELOG.md):\n" + "\n".join(found))


@pytest.mark.parametrize("prose", [
    "An earlier version of this chapter, looking at a single pair, said that Bi-MHM barely separates.",
    "the old version of this chapter\nmeasured that fine-tuning made it worse.",
    "The story of AtomicActions v1 -> v2.",
    "### What v2 changed, and why",
    "v2 (the default since) fixes both.",
    "We used to select on the test split.",
    "We switched to AdamW.",
])
def test_history_scanner_finds_history(prose):
    assert history_phrases(prose)


@pytest.mark.parametrize("prose", [
    "The generator has a `version` knob; its v1 draws phases of at least a fifth of the video.",
    "Now check it against the library.",
    "Without grip cues a frame no longer shows which step is going on.",
    "A revision on that date rewrote some entries of the anatomy file (its provenance says so).",
])
def test_history_scanner_accepts_statements_of_what_is(prose):
    assert history_phrases(prose) == []
