"""The course generated from the chapters (`make course`, course/build.py).

- the student notebooks in course/student are what the generator makes from the chapters now, and
  hold no solution, hidden test or output; every stub keeps its signature and docstring;
- nbgrader's autograder gives 0 points to every graded test of the notebooks as released (stubs)
  and full points with the book's solutions filled in, for every chapter (two or more graded
  exercises each, at the three levels);
- every Colab badge points at a ref the repository has (a branch or a tag).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "course"))
import build  # noqa: E402

pytest.importorskip("nbgrader", reason="nbgrader is in the `test` and `course` extras")
CHAPTERS = [p.stem for p in build.chapters()]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    build.generate(out, out / "student")
    return out


def comparable(path: Path) -> dict:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.pop("id", None)
    return nb


def test_student_notebooks_are_generated_from_the_chapters(course):
    made = sorted(p.name for p in (course / "student").glob("*.ipynb"))
    committed = sorted(p.name for p in build.STUDENT.glob("*.ipynb"))
    assert made == committed, "course/student is out of date: run `make course`"
    stale = [n for n in made if comparable(course / "student" / n) != comparable(build.STUDENT / n)]
    assert not stale, f"course/student is out of date ({stale}): run `make course`"
    assert made == sorted([f"{c}.ipynb" for c in CHAPTERS] + [f"{c}_assignment.ipynb" for c in CHAPTERS])


def test_student_notebooks_hold_no_solution_and_stubs_keep_signature_and_docstring(course):
    owner_name, ref = build.repository()
    for path in sorted((course / "student").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "{glue:text}", "{term}", ":::{admonition} Solution",
                       "**Solution"):
            assert marker not in text, f"{path.name} contains {marker!r}"
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells), path.name
        badge = f"https://colab.research.google.com/github/{owner_name}/blob/{ref}/course/student/{path.name}"
        assert badge in nb.cells[0].source, f"{path.name}: no Colab badge of its own ({badge})"
        stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert stubs, f"{path.name}: nothing for the student to write"
        for cell in stubs:
            assert "raise NotImplementedError()" in cell.source, (path.name, cell.source)
    # the chapters' stubbed functions keep their signature and docstring, and lose their body
    matching = nbformat.read(course / "student" / "07_matching.ipynb", as_version=4)
    otam = next(c.source for c in matching.cells if "def my_otam" in c.source)
    assert "def my_otam(d, lbda=0.1):" in otam and "One-way OTAM" in otam and "logsumexp" not in otam


def test_plain_markdown_keeps_an_admonitions_body_and_the_code_along_drops_solutions_inside_a_cell():
    """An admonition with options (``:class: dropdown``) becomes its bold title and its whole body; a
    solution admonition at the end of an Exercises cell is removed from the code-along notebook."""
    from myst import plain
    note = ":::{admonition} Note\n:class: tip\nFirst {glue:text}`x` line.\nSecond line.\n:::\n\nAfter."
    assert plain(note, {"x": "42"}, {}) == "**Note.** First 42 line.\nSecond line.\n\n\nAfter."
    cell = "## Exercises\n\n1. Why?\n\n:::{admonition} Solution 1\n:class: dropdown\nBecause.\n:::\n"
    assert build.drop_solutions(cell) == "## Exercises\n\n1. Why?"


def test_every_chapter_has_graded_exercises_at_every_level():
    levels = set()
    for chapter in CHAPTERS:
        spec = build.load_spec(build.SPECS / f"{chapter}.yaml")
        assert len(spec["exercises"]) >= 2, f"{chapter}: fewer than two graded exercises"
        levels |= {ex["level"] for ex in spec["exercises"]}
    assert levels == set(build.LEVELS)


def test_the_autograder_fails_the_stubs_and_passes_the_books_solutions(course):
    grades = build.grade_all(course / "nbgrader", CHAPTERS, jobs=2)
    assert sorted(grades) == CHAPTERS
    for chapter, g in grades.items():
        assert g["stubs"] and set(g["stubs"]) == set(g["solutions"])
        passed = [t for t, (score, _) in g["stubs"].items() if score > 0]
        assert not passed, f"{chapter}: the stubs pass {passed}"
        failed = [t for t, (score, top) in g["solutions"].items() if score != top]
        assert not failed, f"{chapter}: the book's solutions fail {failed}"


def test_a_spec_with_a_missing_field_is_refused_by_name(tmp_path):
    bad = tmp_path / "01_few_shot.yaml"
    bad.write_text(yaml.safe_dump({"exercises": [{"id": "x", "level": "guess", "points": 1, "prompt": "p",
                                                  "tests": "", "hidden_tests": "", "solution": ""}]}))
    with pytest.raises(ValueError, match="01_few_shot.yaml.*level 'guess'"):
        build.load_spec(bad)


def git_refs() -> set[str] | None:
    try:
        out = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {re.sub(r"^refs/(heads|tags|remotes/[^/]+)/", "", r) for r in out}


def test_every_colab_badge_points_at_a_ref_that_exists():
    refs = git_refs()
    if refs is None:
        pytest.skip("not a git checkout")
    owner_name, ref = build.repository()
    assert ref in refs, (f"_config.yml repository.branch {ref!r} is no branch or tag of this repository: "
                         "the badges and launch buttons would open nothing (main until `make release`)")
    pattern = re.compile(rf"colab\.research\.google\.com/github/{re.escape(owner_name)}/blob/([^/]+)/")
    notebooks = sorted((ROOT / "book").glob("*.ipynb")) + sorted(build.STUDENT.glob("*.ipynb"))
    used = {(p.name, m) for p in notebooks for m in pattern.findall(p.read_text())}
    assert used and {r for _, r in used} == {ref}, sorted(u for u in used if u[1] != ref)
