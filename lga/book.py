"""Helpers for the book's chapters: numbers for the prose, and claims that are checked.

A chapter never types a measured number into its prose (``tests/book/test_book_prose.py`` fails on it):
a code cell computes the number and *glues* it, and the markdown refers to it by name::

    glue_number("acc_1shot", 100 * result.mean, ".1f")      # in a code cell

    ProtoNet reaches {glue:text}`acc_1shot` % on 5-way 1-shot.  <- in a markdown cell

and every sentence that states a result has its check in the cell beside it::

    claim("LGA beats the label-only baseline", cmp.diff > cmp.ci95, str(cmp))
    check_band("final training loss", history.losses[-25:].mean(), 0.6, 1.1)

A claim or a band that fails stops the chapter (nbval reports the cell), so a result that stops
holding on another machine, thread count or seed cannot go unnoticed. The bands are sized from the
spread measured over seeds and thread counts (README, "Writing a chapter").

Glued values are recorded by myst-nb's ``glue`` (the ``book`` extra) and shown only where the prose
refers to them; without myst-nb (a reader's ``pip install lga``) nothing is recorded and the
functions still return and check their values. ``glue_number`` and ``check_band`` return their value, so
a cell that ends with one of them ends it with ``;`` (a bare value would be displayed under the cell).

Importing this module also applies :func:`lga.viz.use_book_style` (the figures' minimum font sizes),
so every chapter's figures, also those drawn before the chapter imports :mod:`lga.viz`, are legible.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

from lga.viz import use_book_style

use_book_style()

try:
    from myst_nb import glue as _glue
except ImportError:  # a plain install: nothing renders glued values there
    _glue = None


def glue_number(name: str, value, fmt: str = ".1f") -> str:
    """Format ``value`` and glue the text as ``name``, for ``{glue:text}`name``` in the prose.

    Args:
        name: the glue key, unique in the chapter.
        value: a number (or any value ``format`` accepts).
        fmt: a format spec (``".1f"``, ``","``, ``".0%"``) or a format string with one field
            (``"{:.1f} %"``); glue two numbers (a mean and its interval) as two names.

    Returns:
        The text glued, e.g. ``"84.1"``. It is not displayed in the cell.
    """
    if "{" in fmt:
        text = fmt.format(value)
    else:
        text = format(value, fmt)
    if _glue is not None:
        _glue(name, text, display=False)
    return text


def claim(sentence: str, holds: bool, evidence: str = "") -> None:
    """Check a sentence of the prose: print it with its evidence, or fail the cell.

    Args:
        sentence: the result as the prose states it ("uniform beats CLUSTER-Segment here").
        holds: whether the numbers support it, e.g. ``cmp.diff > cmp.ci95`` for a paired
            comparison (:class:`lga.engine.evaluate.Comparison`).
        evidence: the numbers behind it, printed with the sentence (e.g. ``str(cmp)``).

    Raises:
        AssertionError: when ``holds`` is false; the message holds the sentence and the evidence.
    """
    detail = f" ({evidence})" if evidence else ""
    if not bool(holds):
        _fail(f"the chapter's claim does not hold: {sentence}{detail}. Rewrite the "
              "sentence to what the numbers support, with their spread.")
        return
    print(f"claim checked: {sentence}{detail}")


#: ``LGA_BOOK_CLAIMS=report``: a failing claim or band is printed (``CLAIM FAILS: ...``) instead of
#: raised, so that one run of a chapter under a variant (another thread count, ``$LGA_TINY_CLIP_SEED``)
#: lists every claim that variant breaks. For authors sizing claims; never set in tests or CI.
CLAIMS_ENV = "LGA_BOOK_CLAIMS"
#: how a failing claim or band starts its printed line in report mode (benchmarks/chapters.py finds it)
FAIL_PREFIX = "CLAIM FAILS:"


def _fail(message: str) -> None:
    mode = os.environ.get(CLAIMS_ENV, "raise")
    if mode == "report":
        print(f"{FAIL_PREFIX} {message}")
        return
    if mode != "raise":
        raise ValueError(f"${CLAIMS_ENV} must be 'raise' (the default) or 'report', got {mode!r}")
    raise AssertionError(message)


def check_band(name: str, value: float, lo: float, hi: float) -> float:
    """Check that a measured ``value`` lies in its expected band ``[lo, hi]``, print it, return it.

    The band is what the chapter promises a reader: wide enough for the spread measured over
    seeds and thread counts, narrow enough that a broken method falls outside it.

    Raises:
        ValueError: when ``lo > hi``.
        AssertionError: when ``value`` is outside ``[lo, hi]`` or is not a finite number.
    """
    if lo > hi:
        raise ValueError(f"check_band({name!r}): empty band [{lo}, {hi}]")
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        _fail(f"{name} = {value:.6g} is outside its expected band [{lo:g}, {hi:g}]. "
              "If the method changed on purpose, re-measure the spread and the band.")
        return value
    print(f"{name} = {value:.4g}, inside its expected band [{lo:g}, {hi:g}]")
    return value


def scratch_dir(prefix: str = "lga-") -> Path:
    """A new empty folder for a chapter's runs (checkpoints, logs), removed when the kernel exits.

    ``tempfile.mkdtemp`` alone would leave one folder per run of the chapter in the temp dir.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
