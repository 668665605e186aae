"""How the chapters were executed, and how nbval checks them (README, "Writing a chapter").

- Every chapter was executed by ``benchmarks/chapters.py --write``, which records in the notebook the
  thread count and the run time; its header states that run time (``{{ run_time }}``), and the time
  of a run from an empty data cache (``{{ first_run_time }}``, ``chapters.py --first-run``).
- ``make nbval`` checks the chapters with a thread count other than the one each was executed
  with, so a result that depends on the thread count cannot pass by accident.
- nbval's markers: every cell runs (no ``NBVAL_SKIP``); a cell marked ``NBVAL_CHECK_OUTPUT`` has
  outputs to compare and is not also marked to ignore them.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
import warnings
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import find_comment_markers, find_metadata_tags

from lga.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in CHAPTERS]


_spec = importlib.util.spec_from_file_location("lga_chapters_script", ROOT / "benchmarks" / "chapters.py")
chapters_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chapters_script)


def nbval_threads() -> int:
    """The thread count `make nbval` uses unless the caller sets one (``nbval: export OMP_NUM_THREADS ?= N``)."""
    found = re.search(r"^nbval:\s*export\s+OMP_NUM_THREADS\s*\?=\s*(\d+)\s*$", (ROOT / "Makefile").read_text(),
                      flags=re.M)
    assert found, "the Makefile must set `nbval: export OMP_NUM_THREADS ?= N`"
    return int(found.group(1))


def execution(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.get("lga", {}).get("execution")
    assert run, (f"{path.name} has no metadata.lga.execution: execute it with "
                 f"`python benchmarks/chapters.py book/{path.name} --write`")
    return run


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_chapter_records_how_it_was_executed(path):
    run = execution(path)
    assert isinstance(run["threads"], int) and run["threads"] >= 1, run
    assert run["seconds"] > 0, run
    datetime.datetime.fromisoformat(run["date"])
    assert run["machine"]["cores"] >= 1, run
    subs = nbformat.read(path, as_version=4).metadata["myst"]["substitutions"]
    assert subs["run_time"] == chapters_script.format_duration(run["seconds"]) and subs["run_threads"] == str(run["threads"]), \
        f"{path.name}: metadata.myst.substitutions disagree with metadata.lga.execution; re-run chapters.py"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_nbval_checks_with_another_thread_count_than_the_chapter_ran_with(path):
    threads, default = execution(path)["threads"], nbval_threads()
    assert threads != default, (f"{path.name} was executed with {threads} thread(s), the count `make nbval` "
                                "checks with: execute it with `benchmarks/chapters.py --threads 1` (the default)")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_header_states_its_measured_run_time(path):
    header = nbformat.read(path, as_version=4).cells[0].source
    paragraph = re.search(r"\*\*Run time\.?\*\*(.*?)(?:\n\n|\Z)", header, flags=re.S)
    assert paragraph, f"{path.name}: the header has no '**Run time.**' paragraph"
    assert "{{ run_time }}" in paragraph.group(1), (
        f"{path.name}: the run time must be the measured one, `{{{{ run_time }}}}` (written by "
        "benchmarks/chapters.py --write), not typed")
    assert "{{ first_run_time }}" in paragraph.group(1) and "a few minutes more" not in paragraph.group(1), (
        f"{path.name}: the header must also give the measured time from an empty data cache, "
        "`{{ first_run_time }}` (written by benchmarks/chapters.py --first-run), not an estimate")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_chapter_records_its_first_run_from_an_empty_cache(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.metadata.get("lga", {}).get("first_run")
    assert first, f"{path.name}: no metadata.lga.first_run: run `python benchmarks/chapters.py book/{path.name} --first-run`"
    assert first["fresh_cache"] is True and first["seconds"] > 0 and first["threads"] == execution(path)["threads"], first
    subs = nb.metadata["myst"]["substitutions"]
    assert subs["first_run_time"] == chapters_script.format_duration(first["seconds"]), \
        f"{path.name}: first_run_time disagrees with metadata.lga.first_run; re-run chapters.py --first-run"
    assert subs["first_run_date"] == first["date"][:10]
    assert subs["run_dates"] == chapters_script.run_dates(subs), f"{path.name}: run_dates is stale; re-run chapters.py"
    assert "{{ run_dates }}" in nb.cells[0].source, f"{path.name}: the header must date its times with {{{{ run_dates }}}}"


def test_the_book_resolves_the_run_time_substitution():
    """Without MyST's `substitution` extension `{{ run_time }}` would be printed as it is, silently."""
    config = load_yaml(ROOT / "_config.yml")
    assert "substitution" in config["parse"]["myst_enable_extensions"], \
        "_config.yml: add `substitution` to parse.myst_enable_extensions (the headers' {{ run_time }})"


def markers(cell) -> set[tuple[str, bool]]:
    """nbval's own reading of a code cell's markers (comments and tags): ``("check", True)`` for
    ``NBVAL_CHECK_OUTPUT``, ``("check", False)`` for ``NBVAL_IGNORE_OUTPUT``, ``("skip", True)``, ..."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # nbval warns about conflicting markers; we report them
        return set(find_comment_markers(cell.source)) | set(find_metadata_tags(cell.metadata))


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_nbval_markers_follow_the_rule(path):
    problems = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        m = markers(cell)
        if ("skip", True) in m:
            problems.append(f"cell {index}: NBVAL_SKIP (every cell must run)")
        if {("check", True), ("check", False)} <= m:
            problems.append(f"cell {index}: both NBVAL_CHECK_OUTPUT and NBVAL_IGNORE_OUTPUT")
        if ("check", True) in m and not cell.outputs:
            problems.append(f"cell {index}: NBVAL_CHECK_OUTPUT on a cell without outputs")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_marker_parsing():
    cell = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", metadata={"tags": ["nbval-skip"]})
    assert markers(cell) == {("check", True), ("skip", True)}
    assert markers(nbformat.v4.new_code_cell("x = '# NBVAL_SKIP'")) == set()
    both = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\n# NBVAL_IGNORE_OUTPUT\nprint(1)")
    assert markers(both) == {("check", True), ("check", False)}
