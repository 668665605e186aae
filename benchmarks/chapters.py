#!/usr/bin/env python
"""Execute the book's chapters in fresh kernels and print the run time of each.

    python benchmarks/chapters.py                 # every chapter of _toc.yml, outputs discarded
    python benchmarks/chapters.py --write         # ... and save the executed notebooks in place
    python benchmarks/chapters.py book/01_few_shot.ipynb --write
    python benchmarks/chapters.py --missing --write   # only chapters that have no outputs at all

This is how the committed outputs are produced (``--write``), and how the CPU-profile run time of
the whole book is measured. Times depend on the machine and its load: they are figures, not tests.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def chapters_from_toc() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def has_outputs(path: Path) -> bool:
    """Whether any code cell of the notebook at ``path`` has an output (it was executed)."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and c.outputs for c in nb.cells)


def execute(path: Path, write: bool, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    if write:
        nbformat.write(nb, path)
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter in _toc.yml")
    p.add_argument("--write", action="store_true", help="save the executed notebooks in place")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.add_argument("--missing", action="store_true", help="only notebooks without any output")
    a = p.parse_args()
    paths = [n.resolve() for n in a.notebooks] or chapters_from_toc()
    if a.missing:
        paths = [p for p in paths if not has_outputs(p)]
        if not paths:
            print("every chapter has committed outputs: nothing to execute")
            return 0
    total = 0.0
    for path in paths:
        seconds = execute(path, a.write, a.timeout)
        total += seconds
        print(f"{path.relative_to(ROOT)}  {seconds:7.1f} s", flush=True)
    print(f"{'total':{max(len(str(p.relative_to(ROOT))) for p in paths)}s}  {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
