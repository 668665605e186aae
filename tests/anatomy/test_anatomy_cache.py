"""The anatomy cache, the cache backend and the resumable driver (lga.anatomy.backends)."""

from __future__ import annotations

import json

import pytest

from lga.anatomy.backends import (AnatomyCache, BackendError, CacheBackend, generate_anatomy,
                                  make_backend)
from lga.anatomy.parse import AnatomyError, Step
from lga.anatomy.prompts import PromptSpec
from lga.data.layout import ANATOMY_SCHEMA, write_json

LABELS = ["brush hair", "kick ball", "ride bike", "throw", "wave"]


def steps_for(label: str) -> list[dict]:
    return [{"subject": "person", "motion": f"{verb}s", "object": "body",
             "description": f"The person {verb}s the body ({label}, phase {i})."}
            for i, verb in enumerate(["prepare", "move", "stop"], 1)]


@pytest.fixture
def source(tmp_path):
    """A reviewed anatomy file covering LABELS, keyed by folder-style names."""
    data = {"schema": ANATOMY_SCHEMA, "dataset": "toy", "num_steps": 3,
            "provenance": {"method": "manual", "model": "hand-written", "prompt_version": "none",
                           "date": "2025-01-01", "reviewed": True, "notes": ""},
            "classes": {label.replace(" ", "_"): {"label": label, "steps": steps_for(label)}
                        for label in LABELS}}
    path = tmp_path / "source.json"
    write_json(path, data)
    return path


class CountingBackend(CacheBackend):
    """The real cache backend, counting the labels it is asked for; optionally stops mid-run."""

    batch_size = 1

    def __init__(self, source, stop_after: int | None = None):
        super().__init__(source)
        self.asked: list[str] = []
        self.stop_after = stop_after

    def generate(self, labels, spec, attempt=0):
        if self.stop_after is not None and len(self.asked) >= self.stop_after:
            raise KeyboardInterrupt  # the user pressed Ctrl-C
        self.asked += list(labels)
        return super().generate(labels, spec, attempt)


def test_interrupted_run_resumes_with_only_the_missing_classes(source, tmp_path):
    out = tmp_path / "out.json"
    first = CountingBackend(source, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        generate_anatomy(LABELS, first, out)
    assert first.asked == LABELS[:2]
    saved = json.loads(out.read_text())  # a complete, valid file after the interruption
    assert saved["schema"] == ANATOMY_SCHEMA and list(saved["classes"]) == LABELS[:2]
    assert not list(tmp_path.glob(".out.json.*"))  # no temporary file left behind

    second = CountingBackend(source)
    report = generate_anatomy(LABELS, second, out)
    assert second.asked == LABELS[2:]
    assert report.cached == LABELS[:2] and report.ok == LABELS[2:] and not report.failed
    assert report.queried == LABELS[2:]
    assert list(json.loads(out.read_text())["classes"]) == LABELS

    third = CountingBackend(source)
    report = generate_anatomy(LABELS, third, out)
    assert third.asked == [] and report.covered == LABELS
    assert "5/5 classes covered (0 generated, 5 already cached)" in report.summary()


def test_class_names_and_labels_are_kept_apart(source, tmp_path):
    out = tmp_path / "out.json"
    report = generate_anatomy({"kick_ball": "kick ball", "BrushHair": "brush hair"},
                              make_backend("cache", source=source), out, dataset="toy")
    assert report.ok == ["kick_ball", "BrushHair"]
    data = json.loads(out.read_text())
    assert data["classes"]["BrushHair"]["label"] == "brush hair"
    assert data["classes"]["BrushHair"]["steps"] == steps_for("brush hair")
    assert data["dataset"] == "toy" and data["num_steps"] == 3
    prov = data["provenance"]
    assert prov["model"] == "hand-written" and "Copied from" in prov["notes"]
    assert set(prov) >= {"method", "model", "prompt_version", "date", "reviewed", "notes"}


def test_missing_label_in_cache_source_is_reported(source, tmp_path):
    report = generate_anatomy(["kick ball", "juggle"], CacheBackend(source), tmp_path / "o.json")
    assert report.ok == ["kick ball"]
    assert "no anatomy for class 'juggle'" in report.failed["juggle"]
    assert "source.json" in report.failed["juggle"]


def test_backend_error_for_a_whole_batch_is_reported(source, tmp_path):
    class Broken(CacheBackend):
        def generate(self, labels, spec, attempt=0):
            raise BackendError("out of memory")

    report = generate_anatomy(LABELS[:3], Broken(source), tmp_path / "o.json")
    assert report.failed == {label: "out of memory" for label in LABELS[:3]}


def test_cache_refuses_mismatched_files(source, tmp_path):
    with pytest.raises(ValueError, match="num_steps=3, but num_steps=4"):
        AnatomyCache(source, num_steps=4)
    with pytest.raises(ValueError, match="for dataset 'toy', not 'hmdb51'"):
        AnatomyCache(source, dataset="hmdb51")
    cache = AnatomyCache(source)
    with pytest.raises(ValueError, match="model='hand-written', not 'gpt-x'"):
        cache.set_provenance({"model": "gpt-x", "prompt_version": "none"})
    with pytest.raises(ValueError, match="has 2 steps, expected 3"):
        cache.put("x", "x", [Step("a", "b", "c", "d")] * 2)
    assert cache.get("kick_ball") == [Step(**s) for s in steps_for("kick ball")]
    assert cache.get("nothing") is None and "kick_ball" in cache and len(cache) == 5


def test_corrupt_cache_file_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": ANATOMY_SCHEMA, "num_steps": 3,
                               "classes": {"kick": {"label": "kick", "steps": [{"subject": "a"}] * 3}}}))
    with pytest.raises(AnatomyError, match=r"bad.json: class 'kick', step 1: missing field 'motion'"):
        AnatomyCache(bad)


def test_driver_argument_checks(source, tmp_path):
    with pytest.raises(ValueError, match="spec.num_steps=2 but num_steps=3"):
        generate_anatomy(["x"], CacheBackend(source), tmp_path / "o.json", spec=PromptSpec(num_steps=2))
    with pytest.raises(ValueError, match="empty label"):
        generate_anatomy({"x": " "}, CacheBackend(source), tmp_path / "o.json")
    with pytest.raises(ValueError, match="unknown anatomy backend"):
        make_backend("llama")


def test_progress_bar_runs(source, tmp_path, capsys):
    report = generate_anatomy(LABELS, CacheBackend(source), tmp_path / "o.json", progress=True)
    assert len(report.ok) == 5
    assert "anatomy (cache)" in capsys.readouterr().err


def test_cli_copies_from_a_cache_file_and_reads_class_tables(source, tmp_path, capsys):
    from lga.anatomy.cli import main, read_class_table

    table = tmp_path / "classes_val.tsv"
    table.write_text("label_index\tclass_name\tclipfsar_text_name\tn_videos\n"
                     "0\tkick_ball\t-\t10\n1\t(unknown)\t-\t5\n2\tBrushHair\tbrush hair\t7\n")
    items, skipped = read_class_table(table)
    assert items == {"kick_ball": "kick ball", "BrushHair": "brush hair"}
    assert skipped == [f"{table}:3"]
    out = tmp_path / "out.json"
    code = main(["--dataset", "toy", "--classes", str(tmp_path), "--backend", "cache",
                 "--source", str(source), "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0
    assert "2/2 classes covered" in printed.out
    assert "skipped a class named '(unknown)'" in printed.err
    assert "quality of" in printed.out
    assert sorted(json.loads(out.read_text())["classes"]) == ["BrushHair", "kick_ball"]

    prepared = tmp_path / "root"
    prepared.mkdir()
    (prepared / "classes.tsv").write_text("split\tlabel_index\tclass_dir\tclass_name\n"
                                          "train\t0\tjuggle\tjuggle\ntest\t0\tthrow\tthrow\n")
    code = main(["--dataset", "toy", "--root", str(prepared), "--backend", "cache",
                 "--source", str(source), "--out", str(tmp_path / "o2.json"), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1 and "1/2 classes covered" in printed and "FAILED 'juggle'" in printed


def test_cli_usage_errors(tmp_path):
    from lga.anatomy.cli import main

    with pytest.raises(SystemExit):
        main(["--backend", "cache", "--out", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit):
        main(["--dataset", "x", "--backend", "openai", "--out", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit):
        main(["--labels", "l.txt", "--backend", "nope", "--out", "o.json"])


# ----------------------------------------------------------------------------------------------
# one bad answer never stops a run (issue 15, item 6)

HUGE = "9" * 5000  # over Python's int-string conversion limit (4300 digits)


def test_huge_integer_answer_fails_only_its_class(source, tmp_path):
    class Hostile(CacheBackend):
        def generate(self, labels, spec, attempt=0):
            out = super().generate(labels, spec, attempt)
            if "kick ball" in out:
                out["kick ball"] = out["kick ball"].replace('"body"', HUGE, 1)
            return out

    report = generate_anatomy(LABELS, Hostile(source), tmp_path / "o.json", retries_on_parse_error=1)
    assert report.ok == [label for label in LABELS if label != "kick ball"]
    assert list(report.failed) == ["kick ball"]
    assert "unparsable answer after 2 attempt(s)" in report.failed["kick ball"]
    assert "the answer holds a number of more than 4300 digits" in report.failed["kick ball"]
    assert "FAILED 'kick ball'" in report.summary() and len(report.summary()) < 2000
    assert sorted(json.loads((tmp_path / "o.json").read_text())["classes"]) == \
        sorted(label for label in LABELS if label != "kick ball")


def test_unexpected_parse_failure_is_reported_per_class(source, tmp_path, monkeypatch):
    """Even a ValueError that is not an AnatomyError (the old int-limit crash) stays per class."""
    from lga.anatomy import backends
    real = backends.parse_anatomy

    def parse(answer, num_steps):
        if "kick ball" in answer:
            raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")
        return real(answer, num_steps)

    monkeypatch.setattr(backends, "parse_anatomy", parse)
    report = generate_anatomy(LABELS, CacheBackend(source), tmp_path / "o.json", retries_on_parse_error=0)
    assert list(report.failed) == ["kick ball"] and len(report.ok) == len(LABELS) - 1
    assert "ValueError: Exceeds the limit" in report.failed["kick ball"]


def test_unreadable_class_files_are_named(tmp_path, capsys):
    from lga.anatomy.cli import main, read_class_table, read_label_file

    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"labels\.txt: not a UTF-8 label file"):
        read_label_file(labels)
    table = tmp_path / "classes_test.tsv"
    table.write_bytes(b"label_index\tclass_name\n0\tcaf\xe9\n")
    with pytest.raises(ValueError, match=r"classes_test\.tsv: not a UTF-8 tab-separated class table"):
        read_class_table(table)
    code = main(["--labels", str(labels), "--backend", "cache", "--source", str(labels),
                 "--out", str(tmp_path / "o.json"), "--no-progress"])
    assert code == 2 and "labels.txt: not a UTF-8 label file" in capsys.readouterr().err


def test_cli_says_nothing_was_written_when_every_class_failed(source, tmp_path, capsys):
    """No class answered: the command must not claim to have written the file (issue 23, item 10)."""
    from lga.anatomy.cli import main

    labels = tmp_path / "labels.txt"
    labels.write_text("juggle\nfly\n")  # neither is in the source: both fail
    out = tmp_path / "out.json"
    argv = ["--labels", str(labels), "--backend", "cache", "--source", str(source), "--out", str(out),
            "--no-progress"]
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert not out.exists()
    assert "wrote" not in printed.out + printed.err
    assert f"nothing written: every class asked for failed (2, reasons above), so {out} was not " \
           "created" in printed.err
    assert "FAILED 'juggle'" in printed.out

    # with a file from an earlier run: it is kept as it was, and the message says so
    labels.write_text("throw\n")
    assert main(argv) == 0
    assert f"wrote {out}: 1 new class(es), 1 covered in all" in capsys.readouterr().out
    before = out.read_bytes()
    labels.write_text("throw\njuggle\n")
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert "wrote" not in printed.out + printed.err and out.read_bytes() == before
    assert f"nothing new written to {out}: every class asked for failed (1, reasons above); it keeps " \
           "the classes it held" in printed.err
    labels.write_text("throw\n")
    assert main(argv) == 0
    assert f"nothing new to write: {out} already holds every class asked for (1)" in capsys.readouterr().err
