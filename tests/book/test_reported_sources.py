"""Every number the book copies from a paper names its source, and every dash in a table of them says
what it means.

The LGA paper's full text was not available: its numbers come from a third-party summary (and
TS-FSAR's from TS-FSAR's own report). :mod:`lga.reported` records the source of each entry; a chapter
that prints such a table with a dash for a missing number must say, in the markdown that follows the
table, that the dash means "not in our source" (not "not reported by the paper").
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from lga import reported

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))

#: a markdown table cell that holds only a dash: a number the table does not have
_DASH_CELL = re.compile(r"\|\s*[–—-]\s*(?=\|)")
#: the words that explain such a dash
_LABEL = re.compile(r"not in our source", re.I)


def test_every_entry_has_a_known_source():
    assert set(reported.MAIN_TABLE_SOURCE) == set(reported.MAIN_TABLE)
    for key, row in reported.MAIN_TABLE.items():
        assert set(reported.MAIN_TABLE_SOURCE[key]) == set(row), key
        for method in row:
            assert reported.MAIN_TABLE_SOURCE[key][method] in reported.SOURCES, (key, method)
    assert set(reported.ABLATION_HMDB51_SOURCE) == set(reported.ABLATION_HMDB51)
    assert all(s in reported.SOURCES for s in reported.ABLATION_HMDB51_SOURCE.values())


def test_lga_numbers_come_from_the_summary_and_ts_fsar_from_its_own_report():
    assert reported.source_of("HMDB51", 1, "LGA") == reported.SOURCES["summary"]
    assert reported.source_of("SSv2-Full", 5, "TS-FSAR") == reported.SOURCES["ts-fsar"]
    assert reported.source_of("full LGA") == reported.SOURCES["summary"]
    with pytest.raises(KeyError, match="HMDB51"):
        reported.source_of("HMDB51", 2, "LGA")
    with pytest.raises(KeyError, match="no ablation row"):
        reported.source_of("nothing")


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        for mime in ("text/markdown", "text/plain", "text/html"):
            if mime in out.get("data", {}):
                parts.append(out["data"][mime])
    return "\n".join(parts)


def unlabelled_dash_tables(nb) -> list[int]:
    """Indices of the code cells whose output is a table with a dash cell and whose next markdown
    cell does not say what the dash means."""
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        table_lines = [ln for ln in _outputs_text(cell).split("\n") if ln.lstrip().startswith("|")]
        if not any(_DASH_CELL.search(ln) and not set(ln) <= set("|-: ") for ln in table_lines):
            continue
        after = next((c.source for c in nb.cells[i + 1:] if c.cell_type == "markdown"), "")
        if not _LABEL.search(after):
            bad.append(i)
    return bad


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_dashes_in_tables_are_labelled(path):
    bad = unlabelled_dash_tables(nbformat.read(path, as_version=4))
    assert not bad, (f"book/{path.name}: the table printed by cell(s) {bad} has a dash for a missing number; "
                     "the next markdown cell must say that it means 'not in our source'")


def test_the_dash_check_sees_a_dash_and_its_label():
    table = "| dataset | LGA |\n|---|---|\n| UCF101 | – |"
    code = nbformat.v4.new_code_cell("show()", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/markdown": table})])
    unlabelled = nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell("Numbers.")])
    labelled = nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(
        "A dash (–) means: not in our source.")])
    no_dash = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show()", outputs=[
        nbformat.v4.new_output("display_data", data={"text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |"})])])
    assert unlabelled_dash_tables(unlabelled) == [0]
    assert unlabelled_dash_tables(labelled) == []
    assert unlabelled_dash_tables(no_dash) == []
