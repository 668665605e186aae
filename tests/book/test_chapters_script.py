"""benchmarks/chapters.py, the script that executes the chapters for committing, on a two-cell notebook.

It must give the kernel the thread count it records (so that `make nbval` can check with another
one), run it in an empty data cache when asked, and write how the notebook was executed into its
metadata, where the chapter's header reads it (``{{ run_time }}``).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]


def load_chapters_script():
    spec = importlib.util.spec_from_file_location("lga_chapters_script", ROOT / "benchmarks" / "chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chapters = load_chapters_script()


@pytest.mark.parametrize("seconds, text", [(4.4, "4 s"), (99.4, "99 s"), (100, "1.7 min"), (990, "16.5 min")])
def test_format_duration(seconds, text):
    assert chapters.format_duration(seconds) == text


@pytest.mark.slow          # runs a notebook in a fresh kernel through the script
def test_a_notebook_runs_with_the_threads_and_empty_cache_it_records(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")            # the caller's value must not leak in
    nb = new_notebook(cells=[
        new_markdown_cell("# A chapter\n\n**Run time.** {{ run_time }}"),
        new_code_cell("import json, os, torch\n"
                      "print(json.dumps({'omp': os.environ['OMP_NUM_THREADS'], 'torch': torch.get_num_threads(),\n"
                      "                  'data': os.environ['LGA_DATA_DIR'],\n"
                      "                  'empty': not os.listdir(os.environ['LGA_DATA_DIR'])}))"),
        new_code_cell("from lga.book import glue_number\nglue_number('answer', 41.96, '.1f')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["myst"] = {"substitutions": {"other": "kept"}}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)

    assert chapters.main([str(path), "--write", "--threads", "1", "--fresh-cache"]) == 0

    done = nbformat.read(path, as_version=4)
    seen = json.loads(done.cells[1].outputs[0]["text"])
    assert seen["omp"] == "1" and seen["torch"] == 1     # torch takes its thread count from the variable
    assert seen["empty"] and "lga-chapters." in seen["data"]
    assert not Path(seen["data"]).exists(), "the fresh data cache must be removed afterwards"
    glued = done.cells[2].outputs[0]
    assert glued["metadata"]["scrapbook"]["name"] == "answer"
    assert glued["data"] == {"application/papermill.record/text/plain": "'42.0'"}

    run = done.metadata["lga"]["execution"]
    assert run["threads"] == 1 and run["fresh_cache"] is True and run["seconds"] > 0
    assert datetime.datetime.fromisoformat(run["date"]).tzinfo is not None
    assert run["machine"]["cores"] >= 1 and run["torch"]
    subs = done.metadata["myst"]["substitutions"]
    assert subs["run_time"] == chapters.format_duration(run["seconds"])
    assert subs["run_threads"] == "1" and subs["other"] == "kept"


def test_without_write_nothing_is_saved(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    before = path.read_text()
    assert chapters.execute(path, write=False, timeout=60, threads=1) > 0
    assert path.read_text() == before


def test_report_mode_lists_every_failing_claim_and_refuses_to_write(tmp_path, monkeypatch, capsys):
    nb = new_notebook(cells=[
        new_code_cell("from lga.book import claim, check_band\n"
                      "claim('one is more than two', 1 > 2, '1 vs 2')\nclaim('two is more than one', 2 > 1)"),
        new_code_cell("from lga.book import check_band\ncheck_band('loss', 3.0, 0.0, 1.0)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("LGA_BOOK_CLAIMS", "report")
    with pytest.raises(SystemExit):
        chapters.main([str(path), "--write"])
    capsys.readouterr()
    assert chapters.main([str(path)]) == 0                  # both cells ran to the end
    out = capsys.readouterr().out
    assert "cell 0: CLAIM FAILS: the chapter's claim does not hold: one is more than two (1 vs 2)" in out
    assert "cell 1: CLAIM FAILS: loss = 3 is outside its expected band [0, 1]" in out
    assert "two is more than one" not in out


@pytest.mark.slow          # runs a notebook in a fresh kernel through the script
def test_first_run_times_a_run_from_an_empty_cache_and_keeps_the_notebook(tmp_path, monkeypatch):
    """--first-run: each chapter in an empty data cache of its own (removed afterwards); only its time
    is recorded (metadata.lga.first_run, {{ first_run_time }}); cells, outputs and the warm run's
    record stay as they were."""
    seen = tmp_path / "seen.json"
    nb = new_notebook(cells=[
        new_markdown_cell("# A chapter\n\n**Run time.** {{ run_time }}, first run {{ first_run_time }}"),
        new_code_cell("import json, os\n"
                      f"open({str(seen)!r}, 'w').write(json.dumps({{'data': os.environ['LGA_DATA_DIR'],\n"
                      "    'empty': not os.listdir(os.environ['LGA_DATA_DIR']), 'omp': os.environ['OMP_NUM_THREADS']}))\n"
                      "print('run')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["lga"] = {"execution": {"seconds": 3.0, "fresh_cache": False}}
    nb.metadata["myst"] = {"substitutions": {"run_time": "3 s"}}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    cells_before = nbformat.read(path, as_version=4).cells

    assert chapters.main([str(path), "--first-run"]) == 0

    done = nbformat.read(path, as_version=4)
    assert done.cells == cells_before                                 # no output saved
    run = json.loads(seen.read_text())
    assert run["empty"] and "lga-first-run." in run["data"] and run["omp"] == "1"
    assert not Path(run["data"]).exists(), "the chapter's empty data cache must be removed afterwards"
    first = done.metadata["lga"]["first_run"]
    assert first["fresh_cache"] is True and first["threads"] == 1 and first["seconds"] > 0
    assert done.metadata["lga"]["execution"] == {"seconds": 3.0, "fresh_cache": False}
    subs = done.metadata["myst"]["substitutions"]
    assert subs["first_run_time"] == chapters.format_duration(first["seconds"]) and subs["run_time"] == "3 s"
    assert subs["first_run_date"] == first["date"][:10]
    assert subs["run_dates"] == chapters.run_dates(subs)
    with pytest.raises(SystemExit):
        chapters.main([str(path), "--first-run", "--write"])


def test_run_dates_name_the_first_run_only_when_its_date_differs():
    assert chapters.run_dates({"run_date": "2026-12-08", "first_run_date": "2026-12-08"}) == "2026-12-08"
    assert chapters.run_dates({"run_date": "2026-12-08"}) == "2026-12-08"
    assert chapters.run_dates({"run_date": "2026-12-08", "first_run_date": "2026-12-09"}) == \
        "2026-12-08 (warm) and 2026-12-09 (first run)"
