#!/usr/bin/env python
"""Keep the chapters' Colab plumbing in step with the book: ``make stamp`` (or this script with paths).

For every chapter notebook given (default: every ``book/*.ipynb``):

- its first code cell becomes exactly the text of ``book/_setup_cell.py``, tagged ``hide-input`` (the
  rendered page shows its one line of output, the code folded behind a toggle; outputs are kept);
- its "Open in Colab" badge (in the first, header cell) is pointed at this notebook in the
  repository and release of ``_config.yml``; a header without a badge gets one after its title.

The release is ``repository.branch`` of ``_config.yml``: "v" + the version in pyproject.toml.
tests/test_packaging.py checks everything this script writes, so a failing check there is fixed by
running it. It changes notebooks in place and touches no cell but those two.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from lga.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP_CELL = ROOT / "book" / "_setup_cell.py"
SETUP_TAGS = ["hide-input"]          # code folded in the HTML, its one line of output shown
BADGE_RE = re.compile(r"\[!\[Open in Colab\]\(_static/colab-badge\.svg\)\]\([^)]*\)")


def colab_url(notebook: Path) -> str:
    repo = load_yaml(ROOT / "_config.yml")["repository"]
    owner_name = repo["url"].removeprefix("https://github.com/").rstrip("/")
    path = notebook.resolve().relative_to(ROOT).as_posix()
    return f"https://colab.research.google.com/github/{owner_name}/blob/{repo['branch']}/{path}"


def badge(notebook: Path) -> str:
    return f"[![Open in Colab](_static/colab-badge.svg)]({colab_url(notebook)})"


def stamp(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    changed = False
    setup = SETUP_CELL.read_text().rstrip("\n")
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is None:
        raise SystemExit(f"{path}: a chapter needs a set-up cell (its first code cell)")
    if first_code.source != setup:
        first_code.source = setup
        changed = True
    if first_code.metadata.get("tags") != SETUP_TAGS:
        first_code.metadata["tags"] = list(SETUP_TAGS)
        changed = True
    header = nb.cells[0]
    if header.cell_type != "markdown" or not header.source.lstrip().startswith("# "):
        raise SystemExit(f"{path}: the first cell must be the chapter's header, starting with its '# ' title")
    new = BADGE_RE.sub(badge(path), header.source) if BADGE_RE.search(header.source) else \
        re.sub(r"^(# .*\n)", lambda m: m.group(1) + "\n" + badge(path) + "\n", header.source + "\n",
               count=1, flags=re.M).rstrip("\n")
    if new != header.source:
        header.source = new
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "book").glob("*.ipynb"))
    for path in paths:
        print(f"{path}: {'updated' if stamp(path) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
