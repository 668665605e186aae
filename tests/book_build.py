"""The rendered HTML book, for the tests that read it (test_packaging.py, test_browser.py).

``rendered_book()`` returns ``$LGA_BOOK_HTML`` when set; else ``_build/html`` when it is newer than
everything it is made from; else it (re)builds ``_build/html`` first, as ``make book`` does but
without executing any chapter (warnings are the business of ``make html``, which builds with
``--all -W``). The static assets the pages load (widget manager, MathJax) must be in
``book/_static`` (``make assets``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from lga.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
ASSETS = [ROOT / "book" / "_static" / "widgets" / "embed.js",
          ROOT / "book" / "_static" / "mathjax" / "tex-mml-chtml.js",
          ROOT / "book" / "_static" / "reveal.js" / "dist" / "reveal.js",       # the slides (make course)
          ROOT / "book" / "_static" / "slides" / "01_few_shot.slides.html"]


def sources() -> list[Path]:
    files = [ROOT / "_config.yml", ROOT / "_toc.yml", *ROOT.joinpath("lga").rglob("*.py")]
    files += [p for p in ROOT.joinpath("book").rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
    return files


def is_fresh(html: Path = HTML) -> bool:
    """Built after the last change to any of its sources (Sphinx rewrites .buildinfo on every build)."""
    stamp = html / ".buildinfo"
    if not (html / "index.html").is_file() or not stamp.is_file():
        return False
    built = stamp.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in sources())


def rendered_book() -> Path:
    if os.environ.get("LGA_BOOK_HTML"):
        return Path(os.environ["LGA_BOOK_HTML"])
    if not is_fresh():
        missing = [str(p.relative_to(ROOT)) for p in ASSETS if not p.is_file()]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} missing: run `make assets` (part of `make test`)")
        # the committed outputs as they are: executing a chapter here would hide a missing output
        # (tests/test_packaging.py checks they are all there) and could take many minutes
        config = load_yaml(ROOT / "_config.yml")
        config.setdefault("execute", {})["execute_notebooks"] = "off"
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "_config.yml"
            cfg.write_text(yaml.safe_dump(config, allow_unicode=True))
            exe = Path(sys.executable).with_name("jupyter-book")
            proc = subprocess.run([str(exe) if exe.is_file() else "jupyter-book", "build", "--config", str(cfg),
                                   "--path-output", str(ROOT), str(ROOT)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the book did not build:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return HTML
