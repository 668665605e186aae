"""lga.book: glued numbers for the prose, claims and bands checked in the chapters' code cells.

(The glue output itself, as myst-nb renders it, is checked in a real kernel by
tests/book/test_chapters_script.py.)
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lga.book as book


def test_glue_number_formats_and_glues_without_displaying(monkeypatch):
    calls = []
    monkeypatch.setattr(book, "_glue", lambda name, value, display: calls.append((name, value, display)))
    assert book.glue_number("acc", 84.1234) == "84.1"
    assert book.glue_number("episodes", 10000, ",") == "10,000"
    assert book.glue_number("share", 0.256, ".0%") == "26%"
    assert book.glue_number("acc_pct", 84.16, "{:.1f} %") == "84.2 %"
    assert calls == [("acc", "84.1", False), ("episodes", "10,000", False), ("share", "26%", False),
                     ("acc_pct", "84.2 %", False)]


def test_glue_number_without_myst_nb_still_returns_the_text(monkeypatch):
    monkeypatch.setattr(book, "_glue", None)
    assert book.glue_number("loss", 0.83749, ".3f") == "0.837"


def test_claim_prints_what_holds_and_fails_on_what_does_not(capsys):
    book.claim("LGA beats the label-only baseline", 0.05 > 0.01, "+5.00 ± 1.00 points")
    assert capsys.readouterr().out == "claim checked: LGA beats the label-only baseline (+5.00 ± 1.00 points)\n"
    with pytest.raises(AssertionError, match=r"does not hold: uniform beats CLUSTER \(-0.3 ± 0.5\)"):
        book.claim("uniform beats CLUSTER", False, "-0.3 ± 0.5")


@pytest.mark.parametrize("value", [0.6, 0.85, 1.1])
def test_check_band_accepts_values_inside_the_band(value, capsys):
    assert book.check_band("final loss", value, 0.6, 1.1) == value
    assert "final loss = " in capsys.readouterr().out


@pytest.mark.parametrize("value", [0.59, 1.2, math.nan, math.inf])
def test_check_band_rejects_values_outside_the_band(value):
    with pytest.raises(AssertionError, match=r"final loss = .* outside its expected band \[0.6, 1.1\]"):
        book.check_band("final loss", value, 0.6, 1.1)


def test_check_band_rejects_an_empty_band():
    with pytest.raises(ValueError, match="empty band"):
        book.check_band("x", 1.0, 2.0, 1.0)


def test_scratch_dir_is_new_and_removed_when_the_interpreter_exits(tmp_path):
    script = ("import sys; from lga.book import scratch_dir\n"
              "a, b = scratch_dir('lga-test-'), scratch_dir('lga-test-')\n"
              "assert a != b and a.is_dir() and not any(a.iterdir()) and a.name.startswith('lga-test-')\n"
              "(a / 'run').mkdir(); (a / 'run' / 'ckpt.pt').write_bytes(b'x')\n"
              "print(a); print(b)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    made = [Path(line) for line in out.stdout.split()]
    assert len(made) == 2 and all(p.parent == tmp_path for p in made)
    assert not any(p.exists() for p in made)


def test_report_mode_prints_failing_claims_and_bands_instead_of_raising(monkeypatch, capsys):
    monkeypatch.setenv(book.CLAIMS_ENV, "report")
    book.claim("two is less than one", 2 < 1, "2 vs 1")
    assert book.check_band("x", 5.0, 0.0, 1.0) == 5.0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("CLAIM FAILS: the chapter's claim does not hold: two is less than one (2 vs 1)")
    assert out[1].startswith("CLAIM FAILS: x = 5 is outside its expected band [0, 1]")
    monkeypatch.setenv(book.CLAIMS_ENV, "raise")
    with pytest.raises(AssertionError):
        book.claim("two is less than one", False)
    monkeypatch.setenv(book.CLAIMS_ENV, "warn")
    with pytest.raises(ValueError, match="LGA_BOOK_CLAIMS"):
        book.claim("two is less than one", False)
