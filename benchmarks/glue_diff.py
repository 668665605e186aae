#!/usr/bin/env python
"""Count the glued values that differ between two executions of the book's chapters.

    python benchmarks/glue_diff.py book /tmp/two        # committed chapters vs. copies executed elsewhere
    python benchmarks/glue_diff.py A.ipynb B.ipynb

Every ``{glue:text}`` value a chapter shows is read from its outputs (myst-nb glue: a display output
whose metadata names it) in both executions, and the values that differ are listed, chapter by chapter,
with the count. Run the two executions with different thread counts (``benchmarks/chapters.py --threads
2 --out DIR``) to see which numbers of the book depend on the machine's float rounding: what involves no
training should not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat


def glued(path: Path) -> dict[str, str]:
    """``name -> text`` of every value the notebook at ``path`` glued."""
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                data = o.get("data", {})      # keyed by mime type, under the glue's mime prefix
                out[name] = " | ".join(str(data[k]) for k in sorted(data))
    return out


def pairs(a: Path, b: Path) -> list[tuple[Path, Path]]:
    if a.is_dir() != b.is_dir():
        raise SystemExit("give two folders or two notebooks")
    if not a.is_dir():
        return [(a, b)]
    return [(p, b / p.name) for p in sorted(a.glob("*.ipynb")) if (b / p.name).is_file()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    a = p.parse_args(argv)
    total = differ = 0
    for x, y in pairs(a.a, a.b):
        gx, gy = glued(x), glued(y)
        names = sorted(set(gx) | set(gy))
        diff = [n for n in names if gx.get(n) != gy.get(n)]
        total += len(names)
        differ += len(diff)
        print(f"{x.name}: {len(names)} glued values, {len(diff)} differ")
        for n in diff:
            print(f"    {n}: {gx.get(n, '(absent)')} vs {gy.get(n, '(absent)')}")
    print(f"total: {total} glued values, {differ} differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
