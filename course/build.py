#!/usr/bin/env python
"""``make course``: the course's notebooks and slides, generated from the executed chapters.

For every chapter ``book/NN_name.ipynb`` it writes

- ``course/student/NN_name.ipynb``, the **code-along** notebook: the chapter without its exercise
  solutions, with the functions of its cells tagged ``stub`` reduced to signature, docstring and
  ``raise NotImplementedError()``, outputs cleared, MyST turned into plain markdown, and a Colab
  badge of its own;
- ``course/student/NN_name_assignment.ipynb``, the **graded assignment**: the exercises of
  ``course/assignments/NN_name.yaml``, each with a solution cell (stubbed) and a test cell whose
  hidden tests the students do not see;
- ``_build/course/nbgrader/``, an nbgrader course directory (``source/`` holds the instructor
  versions, solutions and hidden tests included; ``release/`` what students get): an instructor
  collects submissions there and runs ``nbgrader autograde`` (see ``course/README.md``);
- with ``--slides DIR``, a reveal.js deck ``DIR/NN_name.slides.html`` from the cells' ``slideshow``
  metadata (reveal.js served by the book itself, ``book/_static/reveal.js``).

The source of truth is the chapters: the code students write is the code of the chapter's tagged
cells, and the graded tests compare it with `lga`'s own implementation. Nothing is executed here.
nbgrader (the ``course`` and ``test`` extras) strips solutions and hidden tests and grades.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from myst import ADMONITION, plain_notebook  # noqa: E402

SPECS = ROOT / "course" / "assignments"
STUDENT = ROOT / "course" / "student"
SETUP_CELL = (ROOT / "book" / "_setup_cell.py").read_text().rstrip("\n")
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open in Colab\]\([^)]*\)\]\([^)]*\)")
LEVELS = ("predict", "implement", "investigate")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def repository() -> tuple[str, str]:
    """(owner/name, ref) the badges point at: ``repository`` of _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return repo["url"].removeprefix("https://github.com/").rstrip("/"), str(repo["branch"])


def colab_badge(relpath: str) -> str:
    owner_name, ref = repository()
    return f"[![Open in Colab]({BADGE_IMG})](https://colab.research.google.com/github/{owner_name}/blob/{ref}/{relpath})"


def nbgrader_meta(grade_id: str, *, solution=False, grade=False, locked=False, points=0) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked, "schema_version": 3}
    if grade:
        meta["points"] = points
    return meta


# --- stubs: a function keeps its signature and docstring, nbgrader replaces the rest ----------------

def mark_bodies(source: str, names: list[str], docstrings: dict[str, str] | None = None,
                where: str = "") -> str:
    """``source`` with the body of each top-level function in ``names`` between nbgrader's
    ``### BEGIN SOLUTION`` / ``### END SOLUTION``. The signature, a docstring and the comment lines
    right under the signature stay outside (the stub keeps them); ``docstrings`` adds one to a function
    that has none."""
    tree = ast.parse(source)
    lines = source.split("\n")
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names}
    missing = set(names) - set(found)
    if missing:
        raise ValueError(f"{where}: no top-level function {sorted(missing)} to stub")
    for fn in sorted(found.values(), key=lambda n: n.lineno, reverse=True):   # bottom-up: line numbers hold
        body = fn.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str)
        if has_doc and len(body) == 1:
            raise ValueError(f"{where}: {fn.name} has nothing but a docstring")
        first = body[1] if has_doc else body[0]
        indent = re.match(r"\s*", lines[first.lineno - 1]).group(0)
        start = first.lineno - 1
        lines[fn.end_lineno:fn.end_lineno] = [f"{indent}{END}"]
        new = [f"{indent}{BEGIN}"]
        if not has_doc and docstrings and fn.name in docstrings:
            new.insert(0, f'{indent}"""{docstrings[fn.name].strip()}"""')
        lines[start:start] = new
    return "\n".join(lines)


def function_sources(source: str, names: list[str]) -> str:
    """The top-level definitions of ``names`` in ``source``, in order (decorators included)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    parts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            parts.append("\n".join(lines[start:node.end_lineno]))
    return "\n\n\n".join(parts)


def stub_cells(nb) -> dict[str, tuple[int, list[str]]]:
    """{function: (cell index, names of that cell)} of the chapter's cells tagged ``stub``."""
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "stub" in cell.metadata.get("tags", []):
            names = cell.metadata.get("course", {}).get("stub")
            if not names:
                tree = ast.parse(cell.source)
                names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
            for n in names:
                found[n] = (i, list(names))
    return found


# --- the code-along notebook -----------------------------------------------------------------------

def drop_solutions(markdown: str) -> str:
    """``markdown`` without its solution admonitions (a chapter's Exercises cell may end with
    Solution 1), found by the converter's own admonition pattern (:data:`myst.ADMONITION`)."""
    kept = ADMONITION.sub(lambda m: "" if re.match(r"Solution\b", m.group(1).strip()) else m.group(0), markdown)
    return kept.rstrip("\n")


def is_solution(cell) -> bool:
    if "solution" in cell.metadata.get("tags", []):
        return True
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(":::{admonition} Solution")


def code_along(chapter: Path, docstrings: dict[str, str]) -> nbformat.NotebookNode:
    """The nbgrader source of the code-along notebook of ``chapter`` (solutions still marked)."""
    nb = nbformat.read(chapter, as_version=4)
    where = chapter.name
    stubs = stub_cells(nb)
    cells = []
    for i, cell in enumerate(nb.cells):
        if is_solution(cell) or (cell.cell_type == "markdown" and cell.source.lstrip().startswith("## References")):
            continue
        if cell.cell_type == "markdown":
            cell.source = drop_solutions(cell.source)
        if cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if "stub" in tags:
                names = sorted({n for n, (j, _) in stubs.items() if j == i})
                cell.source = mark_bodies(cell.source, names, docstrings, f"{where} cell {i}")
                cell.metadata["nbgrader"] = nbgrader_meta(f"{chapter.stem}_{'_'.join(names)}", solution=True)
            # the book's folds mean nothing in Jupyter; keep the other tags
            cell.metadata["tags"] = [t for t in tags if t not in ("hide-input", "hide-cell", "hide-output")]
        cells.append(cell)
    nb.cells = cells
    nb = plain_notebook(nb, where)
    header = nb.cells[0]
    relpath = f"course/student/{chapter.name}"
    header.source = BADGE_RE.sub(colab_badge(relpath), header.source, count=1)
    header.source = re.sub(r"^(# .*)$", r"\1 (code-along)", header.source, count=1, flags=re.M)
    header.source += (f"\n\n*Code-along notebook of the chapter: the functions marked for you to write raise "
                      f"`NotImplementedError` until you do, and the exercises' solutions are left out. "
                      f"The graded exercises are in `{chapter.stem}_assignment.ipynb`.*")
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("lga", None)
    return nb


# --- the graded assignment -------------------------------------------------------------------------

def load_spec(path: Path) -> dict:
    spec = yaml.safe_load(path.read_text())
    where = f"course/assignments/{path.name}"
    if not isinstance(spec, dict) or not isinstance(spec.get("exercises"), list) or not spec["exercises"]:
        raise ValueError(f"{where}: needs a list `exercises`")
    ids = set()
    for k, ex in enumerate(spec["exercises"], 1):
        for field in ("id", "level", "points", "prompt", "tests"):
            if field not in ex:
                raise ValueError(f"{where}: exercise {k} has no `{field}`")
        if ex["level"] not in LEVELS:
            raise ValueError(f"{where}: exercise {ex['id']!r}: level {ex['level']!r} is not one of {LEVELS}")
        if ("from_chapter" in ex) == ("solution" in ex):
            raise ValueError(f"{where}: exercise {ex['id']!r} needs exactly one of `from_chapter`, `solution`")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(ex["id"])) or ex["id"] in ids:
            raise ValueError(f"{where}: exercise id {ex['id']!r} is not a new lower-case identifier")
        if "hidden_tests" not in ex:
            raise ValueError(f"{where}: exercise {ex['id']!r} has no `hidden_tests`")
        ids.add(ex["id"])
    return spec


def assignment(chapter: Path, spec: dict) -> nbformat.NotebookNode:
    """The nbgrader source (instructor version) of the assignment of ``chapter``."""
    book = nbformat.read(chapter, as_version=4)
    stubs = stub_cells(book)
    title = re.match(r"# (.*)", book.cells[0].source).group(1)
    v4 = nbformat.v4
    total = sum(ex["points"] for ex in spec["exercises"])
    relpath = f"course/student/{chapter.stem}_assignment.ipynb"
    cells = [v4.new_markdown_cell(
        f"# {title}: graded exercises\n\n{colab_badge(relpath)}\n\n"
        f"{spec.get('intro', '').strip()}\n\n"
        f"Write your code where a cell says `raise NotImplementedError()` (delete that line), then run every "
        f"cell. Each exercise is followed by a test cell: the tests you see are a start, the grader runs "
        f"more (on other inputs). {len(spec['exercises'])} exercises, {total} points. Every cell builds "
        f"what it needs, so the notebook runs in seconds on a CPU.".strip())]
    setup = v4.new_code_cell(SETUP_CELL)
    setup.metadata["nbgrader"] = nbgrader_meta("setup", locked=True)
    cells.append(setup)
    for k, ex in enumerate(spec["exercises"], 1):
        cells.append(v4.new_markdown_cell(
            f"## Exercise {k} ({ex['level']}, {ex['points']} points)\n\n{ex['prompt'].strip()}"))
        if ex.get("given"):
            given = v4.new_code_cell(ex["given"].strip())
            given.metadata["nbgrader"] = nbgrader_meta(f"{ex['id']}_given", locked=True)
            cells.append(given)
        if "from_chapter" in ex:
            names = list(ex["from_chapter"])
            unknown = [n for n in names if n not in stubs]
            if unknown:
                raise ValueError(f"{chapter.name}: {unknown} are in no cell tagged `stub` "
                                 f"(course/assignments/{chapter.stem}.yaml, exercise {ex['id']!r})")
            code = "\n\n\n".join(function_sources(book.cells[i].source, [n]) for n in names
                                 for i in [stubs[n][0]])
            code = mark_bodies(code, names, ex.get("docstrings") or spec.get("docstrings"), f"{chapter.name} {names}")
            code = (ex.get("imports", "").strip() + "\n\n\n" + code).strip()
        else:
            code = ex["solution"].strip()
            if BEGIN not in code:
                raise ValueError(f"{chapter.stem}.yaml: exercise {ex['id']!r}: `solution` must mark the "
                                 f"student's part with {BEGIN!r} ... {END!r}")
        sol = v4.new_code_cell(code)
        sol.metadata["nbgrader"] = nbgrader_meta(ex["id"], solution=True)
        cells.append(sol)
        tests = f"{ex['tests'].strip()}\n{BEGIN_HIDDEN}\n{ex['hidden_tests'].strip()}\n{END_HIDDEN}"
        test = v4.new_code_cell(tests)
        test.metadata["nbgrader"] = nbgrader_meta(f"test_{ex['id']}", grade=True, locked=True,
                                                  points=ex["points"])
        cells.append(test)
    for i, cell in enumerate(cells):     # stable ids: the same spec gives the same file
        cell.id = f"{chapter.stem[:2]}-{i:02d}"
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": book.metadata["kernelspec"],
                                                 "language_info": book.metadata.get("language_info", {})})
    return nb


# --- nbgrader ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _bin_on_path():
    """nbgrader runs ``alembic`` (its database migrations) as a command: this Python's bin first."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def nbgrader_api(course: Path):
    """nbgrader's API on the course directory ``course`` (its own sqlite gradebook there)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    course = course.resolve()
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    config.Execute.timeout = 120
    config.Application.log_level = "WARNING"
    config.ExecutePreprocessor.kernel_name = "python3"
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def generate(out: Path, student: Path | None = STUDENT) -> list[Path]:
    """Write the nbgrader course ``out/nbgrader`` (source and release of every chapter) and copy the
    released notebooks to ``student``. Returns the student notebooks written."""
    course = out.resolve() / "nbgrader"
    if course.exists():
        shutil.rmtree(course)
    written = []
    for chapter in chapters():
        spec_path = SPECS / f"{chapter.stem}.yaml"
        if not spec_path.is_file():
            raise FileNotFoundError(f"{spec_path.relative_to(ROOT)}: every chapter needs its assignment spec")
        spec = load_spec(spec_path)
        src = course / "source" / chapter.stem
        src.mkdir(parents=True)
        nbformat.write(code_along(chapter, spec.get("docstrings", {})), src / chapter.name)
        nbformat.write(assignment(chapter, spec), src / f"{chapter.stem}_assignment.ipynb")
    api = nbgrader_api(course)
    with _bin_on_path():
        for chapter in chapters():
            result = api.generate_assignment(chapter.stem, force=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {chapter.stem}:\n{result['error']}\n{result['log']}")
    if student is not None:
        student.mkdir(parents=True, exist_ok=True)
        for old in student.glob("*.ipynb"):
            old.unlink()
        for chapter in chapters():
            for nb in sorted((course / "release" / chapter.stem).glob("*.ipynb")):
                shutil.copy(nb, student / nb.name)
                written.append(student / nb.name)
    return written


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The released notebook with every solution cell's code taken from the source (the book's
    solution), as a student who got everything right would hand it in."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[gid]
    return nb


def autograde(course: Path, assignment_id: str, student_id: str, notebook: nbformat.NotebookNode) -> dict[str, tuple]:
    """Hand ``notebook`` in as ``student_id`` and run nbgrader's autograder on it: {test cell: (score,
    max score)}. nbgrader puts the hidden tests back into the test cells before it runs them."""
    name = f"{assignment_id}_assignment.ipynb"
    sub = course / "submitted" / student_id / assignment_id
    sub.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, sub / name)
    api = nbgrader_api(course)
    with _bin_on_path():
        result = api.autograde(assignment_id, student_id, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader autograde {assignment_id} {student_id}:\n{result['error']}\n{result['log']}")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(name.removesuffix(".ipynb"), assignment_id, student_id)
        return {g.name: (g.score, g.max_score) for g in sub.grades}


def grade_chapter(course: Path, stem: str) -> dict[str, dict[str, tuple]]:
    """Autograde the released assignment of ``stem`` twice: as released (the stubs) and with the book's
    solutions filled in. {"stubs" | "solutions": {test cell: (score, max score)}}."""
    name = f"{stem}_assignment.ipynb"
    release = nbformat.read(course / "release" / stem / name, as_version=4)
    source = nbformat.read(course / "source" / stem / name, as_version=4)
    return {"stubs": autograde(course, stem, "stubs", release),
            "solutions": autograde(course, stem, "solutions", solved(release, source))}


def grade_all(course: Path, stems: list[str], jobs: int = 2) -> dict[str, dict]:
    """:func:`grade_chapter` for every chapter of ``stems``, in ``jobs`` processes, each working in a
    copy of the course directory of its own (nbgrader's gradebook is one sqlite file)."""
    import json
    import subprocess
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory(prefix="lga-grade-") as tmp:
        procs = []
        for k in range(max(1, min(jobs, len(stems)))):
            copy = Path(tmp) / f"worker{k}"
            shutil.copytree(course, copy, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback"))
            mine = stems[k::jobs]
            procs.append((mine, subprocess.Popen(
                [sys.executable, __file__, "--out", str(copy), *[a for s in mine for a in ("--grade", s)]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        for mine, proc in procs:
            out, err = proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"grading {mine} failed:\n{err[-3000:]}")
            results.update(json.loads(out.strip().splitlines()[-1]))
    return results


# --- slides -----------------------------------------------------------------------------------------

TEMPLATE = ROOT / "course" / "templates"


def slides(out: Path) -> list[Path]:
    """A reveal.js deck per chapter in ``out`` (for ``book/_static/slides``): the cells' ``slideshow``
    metadata, plain markdown, the book's outputs, reveal.js and MathJax from ``../`` (the book's
    ``_static``), nothing from the network."""
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.reveal_url_prefix = "../reveal.js"
    config.SlidesExporter.reveal_theme = "white"        # its fonts are local; "simple" imports web fonts
    config.SlidesExporter.mathjax_url = "../mathjax/tex-mml-chtml.js"
    config.SlidesExporter.extra_template_basedirs = [str(TEMPLATE)]
    config.SlidesExporter.template_name = "lga_reveal"
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    config.TagRemovePreprocessor.remove_cell_tags = ["remove-cell"]
    config.TagRemovePreprocessor.enabled = True
    exporter = SlidesExporter(config=config)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in chapters():
        nb = plain_notebook(nbformat.read(chapter, as_version=4), chapter.name)
        for cell in nb.cells:              # stderr (progress bars) is removed from the book too
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")
                                and not o.get("metadata", {}).get("scrapbook")]      # glued values: in the prose
        nb.cells[0].source = nb.cells[0].source.replace("](_static/colab-badge.svg)", "](../colab-badge.svg)")
        nb.metadata.pop("widgets", None)   # widget state needs the book's widget manager, not shown here
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": chapter.stem}})
        path = out / f"{chapter.stem}.slides.html"
        path.write_text(body)
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "course",
                        help="where the nbgrader course directory goes (default _build/course)")
    parser.add_argument("--student", type=Path, default=STUDENT,
                        help="where the student notebooks go (default course/student, committed: Colab opens them)")
    parser.add_argument("--slides", type=Path, default=None, help="write the slide decks here too")
    parser.add_argument("--only-slides", action="store_true", help="write the slide decks (--slides) only")
    parser.add_argument("--grade", metavar="CHAPTER", action="append", help="(for tests) autograde CHAPTER's assignment in the "
                        "nbgrader course directory --out, as released and with the book's solutions; print JSON")
    args = parser.parse_args(argv)
    if args.grade:
        import json
        import logging
        logging.disable(logging.WARNING)
        print(json.dumps({stem: grade_chapter(args.out.resolve(), stem) for stem in args.grade}))
        return 0
    start = time.perf_counter()
    if not args.only_slides:
        written = generate(args.out, args.student)
        print(f"{len(written)} student notebooks in {args.student}; nbgrader course in {args.out / 'nbgrader'}")
    if args.slides:
        decks = slides(args.slides)
        print(f"{len(decks)} slide decks in {args.slides}")
    print(f"{'slides' if args.only_slides else 'make course'} took {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
