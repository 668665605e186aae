"""The course plan and the instructor notes (book/course_plan.md, book/instructor_notes.md).

The plan's table of student time is computed by ``benchmarks/course_time.py`` from the chapters; the
page must agree with it (within rounding), so the estimate cannot silently go stale when a chapter
changes. The pages are in the table of contents, carry the labels other pages link to, plan every
chapter in exactly one week, and cite only works of the bibliography.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from lga.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "book" / "course_plan.md"
NOTES = ROOT / "book" / "instructor_notes.md"

_spec = importlib.util.spec_from_file_location("lga_course_time", ROOT / "benchmarks" / "course_time.py")
course_time = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course_time)


def page_rows(text: str) -> dict[str, dict]:
    """Chapter stem -> the row of the page's table, as numbers."""
    rows = {}
    for line in course_time.page_table(text).splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        stem = re.fullmatch(r"\{doc\}`(\w+)`", cells[0]).group(1)
        words, code, exercises = (int(c) for c in cells[1:4])
        reading, ex_h, total, machine, first = (float(c) for c in cells[4:9])
        rows[stem] = {"words": words, "code_lines": code, "exercises": exercises, "reading_h": reading,
                      "exercises_h": ex_h, "total_h": total, "machine_min": machine, "first_run_min": first}
    return rows


def stale(page: dict[str, dict]) -> list[str]:
    """What differs between the page's table and the chapters, beyond rounding and small edits."""
    problems = []
    computed = {p.stem: course_time.estimate(p) for p in course_time.chapters()}
    if set(page) != set(computed):
        problems.append(f"chapters: page {sorted(page)}, book {sorted(computed)}")
    for stem in set(page) & set(computed):
        got, want = page[stem], computed[stem]
        if got["exercises"] != want["exercises"]:
            problems.append(f"{stem}: exercises {got['exercises']} != {want['exercises']}")
        for key in ("words", "code_lines"):
            if abs(got[key] - want[key]) > 0.15 * want[key]:
                problems.append(f"{stem}: {key} {got[key]}, the chapter has {want[key]}")
        for key in ("reading_h", "exercises_h", "total_h"):
            if abs(got[key] - want[key]) > 0.5:
                problems.append(f"{stem}: {key} {got[key]}, computed {want[key]}")
        for key in ("machine_min", "first_run_min"):
            if abs(got[key] - want[key]) > max(0.5, 0.5 * want[key]):
                problems.append(f"{stem}: {key} {got[key]} min, the metadata says {want[key]}")
    return problems


def test_the_student_time_table_agrees_with_the_chapters():
    problems = stale(page_rows(PLAN.read_text(encoding="utf-8")))
    assert not problems, ("book/course_plan.md's table is stale; run `python benchmarks/course_time.py --write`:\n"
                          + "\n".join(problems))


def test_a_stale_table_is_caught():
    rows = page_rows(PLAN.read_text(encoding="utf-8"))
    first = sorted(rows)[0]
    rows[first] = dict(rows[first], total_h=rows[first]["total_h"] + 2, exercises=rows[first]["exercises"] + 1)
    del rows[sorted(rows)[-1]]
    problems = stale(rows)
    assert any(f"{first}: total_h" in p for p in problems)
    assert any(f"{first}: exercises" in p for p in problems)
    assert any(p.startswith("chapters:") for p in problems)


def test_the_estimate_counts_what_a_student_does(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["lga"] = {"execution": {"seconds": 90.0}, "first_run": {"seconds": 270.0}}
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. Title\n\n" + "word " * 98),
                nbformat.v4.new_code_cell("import os  # the set-up cell is not counted\nx = 1"),
                nbformat.v4.new_code_cell("a = 1\n# a comment\n\nb = 2"),
                nbformat.v4.new_markdown_cell("## Exercises\n\n1. One.\n2. Two.\n\n"
                                              ":::{admonition} Solution 1\n:class: dropdown\nlong " * 1 + "text\n:::"),
                nbformat.v4.new_code_cell("solution = 1\n" * 50, metadata={"tags": ["solution", "hide-cell"]})]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    c = course_time.census(path)
    assert c == {"words": 3 + 98 + 6, "code_lines": 2, "exercises": 2}, c
    e = course_time.estimate(path)
    assert e["exercises_h"] == 1.5 and e["machine_min"] == 1.5            # 80 min -> 1.5 h; 90 s
    assert e["first_run_min"] == 4.5                                      # 270 s
    assert e["reading_h"] == 0 and e["total_h"] == 1.5                    # 1.07 + 0.4 + 80 min


def test_pages_are_in_the_toc_with_their_labels():
    toc = load_yaml(ROOT / "_toc.yml")
    files = [entry["file"] for entry in toc["chapters"]]
    assert "book/course_plan" in files and "book/instructor_notes" in files
    assert PLAN.read_text().startswith("(course_plan)=\n# ")
    assert NOTES.read_text().startswith("(instructor_notes)=\n# ")


def test_every_chapter_has_exactly_one_week():
    text = PLAN.read_text(encoding="utf-8")
    plan = text.split("## Weekly plan", 1)[1].split("\n## ", 1)[0]
    weeks = [line for line in plan.splitlines() if re.match(r"\|\s*\d+\s*\|", line)]
    assert [int(w.split("|")[1]) for w in weeks] == list(range(1, len(weeks) + 1))
    assert 12 <= len(weeks) <= 14
    for path in course_time.chapters():
        assert sum(f"{{doc}}`{path.stem}`" in w for w in weeks) == 1, path.stem
    assert sum("Project week" in w for w in weeks) == 2


@pytest.mark.parametrize("page", [PLAN, NOTES], ids=lambda p: p.stem)
def test_citations_and_references_resolve(page):
    text = page.read_text(encoding="utf-8")
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    cited = {k.strip() for group in re.findall(r"\{cite\}`([^`]+)`", text) for k in group.split(",")}
    assert cited <= keys, sorted(cited - keys)
    for doc in re.findall(r"\{doc\}`(?:[^`<]*<)?([\w/]+)>?`", text):
        assert (ROOT / "book" / f"{doc}.ipynb").is_file() or (ROOT / "book" / f"{doc}.md").is_file(), doc
