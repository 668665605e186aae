#!/usr/bin/env python
"""Execute the book's chapters in fresh kernels, print the run time of each, and record it.

    python benchmarks/chapters.py                 # every chapter of _toc.yml, outputs discarded
    python benchmarks/chapters.py --write         # ... and save the executed notebooks in place
    python benchmarks/chapters.py --write --fresh-cache      # the whole book from an empty data cache
    python benchmarks/chapters.py --first-run     # each chapter from an empty cache of its own: record
                                                  # only its time (the header's {{ first_run_time }})
    python benchmarks/chapters.py book/01_few_shot.ipynb --write
    python benchmarks/chapters.py --missing --write   # only chapters that have no outputs at all
    python benchmarks/chapters.py --threads 2 --out /tmp/two --keep-going
                                                  # executed copies elsewhere (compare them with
                                                  # benchmarks/glue_diff.py book /tmp/two)
    LGA_BOOK_CLAIMS=report LGA_TINY_CLIP_SEED=1 python benchmarks/chapters.py book/04_text_anatomy.ipynb
                                                  # list every claim another tiny CLIP breaks

This is how the committed outputs are produced (``--write``). Each kernel runs with ``--threads``
threads (1 by default: ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` in its
environment), and ``make nbval`` checks the chapters with another thread count (2 by default).

With ``--write`` each notebook also records how it was executed, after the run, in its metadata:

- ``metadata.lga.execution``: ``threads``, ``seconds`` (wall time of the whole notebook, kernel start
  included), ``date``, ``fresh_cache`` (whether this run started from an empty data cache), ``machine``
  and the versions of Python and torch;
- ``metadata.myst.substitutions``: ``run_time`` ("16.5 min"), ``run_threads``, ``run_date`` and
  ``run_machine``, the text the chapter's header shows with ``{{ run_time }}`` (a MyST substitution,
  resolved when the book is built: the time stated is the time of the run whose outputs are shown).

With ``--first-run`` each chapter is executed from an empty data cache of its own, as by a reader who
opens only this chapter on a fresh machine (it generates AtomicActions, encodes the frame features,
... before its own work); the outputs are discarded and only the time is recorded, in
``metadata.lga.first_run`` (``threads``, ``seconds``, ``date``, ``machine``) and the substitutions
``first_run_time`` and ``first_run_date``. The chapters' headers give both times, and
``{{ run_dates }}``: the warm run's date, and the first run's when it differs.

Times depend on the machine and its load: they are figures, not tests.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from lga.book import CLAIMS_ENV, FAIL_PREFIX
from lga.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def chapters_from_toc() -> list[Path]:
    toc = load_yaml(ROOT / "_toc.yml")
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def has_outputs(path: Path) -> bool:
    """Whether any code cell of the notebook at ``path`` has an output (it was executed)."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and c.outputs for c in nb.cells)


def format_duration(seconds: float) -> str:
    """``"45 s"`` under 100 s, else minutes with one decimal (``"16.5 min"``)."""
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def machine() -> dict:
    """The CPU that ran the chapters: model name (Linux), logical cores, system."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "system": platform.system()}


def version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def kernel_env(threads: int, data_dir: str | None) -> dict:
    """The kernel's environment: ours, with the thread count (and the data cache) set."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    if data_dir is not None:
        env["LGA_DATA_DIR"] = data_dir
    return env


def run_record(threads: int, seconds: float, fresh_cache: bool) -> dict:
    """How a run went, as the notebook's metadata keeps it: ``threads``, ``seconds`` (rounded to the
    tenth the header shows), ``date`` (UTC), ``fresh_cache``, ``machine`` and the Python and torch versions."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"threads": threads, "seconds": round(seconds, 1), "date": now.isoformat(), "fresh_cache": fresh_cache,
            "machine": machine(), "python": platform.python_version(), "torch": version("torch")}


def record(nb, threads: int, seconds: float, fresh_cache: bool) -> None:
    """Write how the notebook was executed into its metadata (see the module docstring)."""
    run = nb.metadata.setdefault("lga", {})["execution"] = run_record(threads, seconds, fresh_cache)
    cpu = run["machine"]
    subs = nb.metadata.setdefault("myst", {}).setdefault("substitutions", {})
    subs.update({"run_time": format_duration(run["seconds"]), "run_threads": str(threads),
                 "run_date": run["date"][:10], "run_machine": f"{cpu['cores']}-core {cpu['cpu']}"})
    subs["run_dates"] = run_dates(subs)


def run_dates(subs: dict) -> str:
    """The header's ``{{ run_dates }}``: the date of the warm run, and of the first run when it differs."""
    warm, first = subs.get("run_date"), subs.get("first_run_date")
    return warm if first in (None, warm) else f"{warm} (warm) and {first} (first run)"


def record_first_run(path: Path, threads: int, seconds: float) -> None:
    """Write the time of a run from an empty data cache into the notebook at ``path`` (its metadata
    only: cells and outputs are kept as they are)."""
    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.setdefault("lga", {})["first_run"] = run_record(threads, seconds, fresh_cache=True)
    subs = nb.metadata.setdefault("myst", {}).setdefault("substitutions", {})
    subs.update({"first_run_time": format_duration(run["seconds"]), "first_run_date": run["date"][:10]})
    subs["run_dates"] = run_dates(subs)
    nbformat.write(nb, path)


def execute(path: Path, write: bool, timeout: int, threads: int = 1, data_dir: str | None = None,
            fresh_cache: bool = False, out: Path | None = None, keep_going: bool = False) -> float:
    """Execute the notebook at ``path`` in a fresh kernel with ``threads`` threads; return seconds.

    ``data_dir`` becomes the kernel's ``LGA_DATA_DIR`` (default: the caller's). With ``write`` the
    executed notebook, and how it was executed, are saved in place; with ``out`` (a folder) they are
    saved there under the same file name instead. With ``keep_going`` a failing cell is reported and
    the notebook saved as far as it ran (to ``out`` only), instead of raising.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    try:
        client.execute(env=kernel_env(threads, data_dir))
        failed = None
    except (CellExecutionError, DeadKernelError) as e:
        if not keep_going:
            raise
        failed = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        print(f"{shown(path)}: FAILED: {failed}", flush=True)
    seconds = time.perf_counter() - t0
    for index, line in failed_claims(nb):
        print(f"{shown(path)}: cell {index}: {line}", flush=True)
    if out is not None:
        record(nb, threads, seconds, fresh_cache)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
    elif write and failed is None:
        record(nb, threads, seconds, fresh_cache)
        nbformat.write(nb, path)
    return seconds


def failed_claims(nb) -> list[tuple[int, str]]:
    """``(cell index, line)`` of each line the cells printed for a failing claim or band (report mode,
    :data:`lga.book.CLAIMS_ENV`)."""
    out = []
    for index, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = o.get("text", "") if o.get("output_type") == "stream" else ""
            out += [(index, line) for line in text.splitlines() if line.startswith(FAIL_PREFIX)]
    return out


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter in _toc.yml")
    p.add_argument("--write", action="store_true", help="save the executed notebooks in place")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.add_argument("--missing", action="store_true", help="only notebooks without any output")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of each kernel (default 1; make nbval checks with another count)")
    p.add_argument("--out", type=Path, default=None,
                   help="save the executed notebooks into this folder (not in place); allowed in report mode")
    p.add_argument("--keep-going", action="store_true",
                   help="a chapter whose cell fails is reported and the run goes on with the next one")
    p.add_argument("--fresh-cache", action="store_true",
                   help="run with a new, empty LGA_DATA_DIR (removed afterwards), as make test does")
    p.add_argument("--first-run", action="store_true",
                   help="each chapter from an empty data cache of its own; record only its time")
    a = p.parse_args(argv)
    if a.first_run and (a.write or a.out is not None or a.fresh_cache or a.keep_going):
        p.error("--first-run records only the time: give it without --write, --out, --fresh-cache, --keep-going")
    if a.first_run and os.environ.get(CLAIMS_ENV, "raise") != "raise":
        p.error(f"--first-run with {CLAIMS_ENV} set: the time recorded is that of a passing run (unset it)")
    if a.threads < 1:
        p.error("--threads must be at least 1")
    if a.write and a.out is not None:
        p.error("--write saves in place, --out elsewhere: give one of them")
    if a.write and os.environ.get(CLAIMS_ENV, "raise") != "raise":
        p.error(f"--write with {CLAIMS_ENV} set: a committed chapter must pass its claims (unset it)")
    paths = [n.resolve() for n in a.notebooks] or chapters_from_toc()
    if a.missing:
        paths = [p for p in paths if not has_outputs(p)]
        if not paths:
            print("every chapter has committed outputs: nothing to execute")
            return 0
    data_dir = tempfile.mkdtemp(prefix="lga-chapters.") if a.fresh_cache else None
    width = max(len(shown(p)) for p in paths)
    cache = (data_dir + " (empty, removed afterwards)" if data_dir else "a new, empty one per chapter" if a.first_run
             else os.environ.get("LGA_DATA_DIR", "~/.cache/lga"))
    print(f"{len(paths)} notebook(s), {a.threads} thread(s) each, data cache: {cache}",
          flush=True)
    total = 0.0
    try:
        for path in paths:
            if a.first_run:
                own = tempfile.mkdtemp(prefix="lga-first-run.")
                try:
                    seconds = execute(path, False, a.timeout, a.threads, own)
                finally:
                    shutil.rmtree(own, ignore_errors=True)
                record_first_run(path, a.threads, seconds)
            else:
                seconds = execute(path, a.write, a.timeout, a.threads, data_dir, fresh_cache=a.fresh_cache,
                                  out=a.out, keep_going=a.keep_going)
            total += seconds
            print(f"{shown(path):{width}s}  {seconds:7.1f} s  ({format_duration(seconds)})", flush=True)
    finally:
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{'total':{width}s}  {total:7.1f} s  ({format_duration(total)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
