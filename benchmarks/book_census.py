#!/usr/bin/env python
"""How each chapter is checked: cells compared exactly by nbval, cells that assert, values glued.

    python benchmarks/book_census.py

For the README's rule ("Writing a chapter"): nbval compares only the outputs of cells marked
``# NBVAL_CHECK_OUTPUT`` (read here with nbval's own parser); numeric results are checked by
assertions in code cells (``claim``, ``check_band`` of :mod:`lga.book`, or ``assert``); numbers in the
prose are glued (``glue_number`` or myst-nb's ``glue``).
"""

import re
import sys
import warnings
from pathlib import Path

import nbformat
from nbval.plugin import find_comment_markers, find_metadata_tags

ROOT = Path(__file__).resolve().parents[1]
ASSERTS = re.compile(r"\b(?:claim|check_band)\(|^\s*assert\b", re.M)
GLUES = re.compile(r"\b(?:glue_number|glue)\(")


def census(path: Path) -> dict:
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compared = sum(("check", True) in set(find_comment_markers(c.source)) | set(find_metadata_tags(c.metadata))
                       for c in code)
    return {"code cells": len(code), "compared exactly": compared,
            "with assertions": sum(bool(ASSERTS.search(c.source)) for c in code),
            "glue calls": sum(len(GLUES.findall(c.source)) for c in code)}


def main() -> int:
    rows = {p.stem: census(p) for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))}
    columns = list(next(iter(rows.values())))
    print(f"{'chapter':20s}" + "".join(f"{c:>18s}" for c in columns))
    for name, row in rows.items():
        print(f"{name:20s}" + "".join(f"{row[c]:18d}" for c in columns))
    print(f"{'total':20s}" + "".join(f"{sum(r[c] for r in rows.values()):18d}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
