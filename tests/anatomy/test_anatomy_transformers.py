"""The transformers backend, end to end, with a tiny random-weight chat model built offline.

The model (a 1-layer Llama) and its tokenizer (a word-level ``tokenizers`` vocabulary with a chat
template) are built and saved by :mod:`lga.anatomy.tiny_lm`, then loaded back by path with
``local_files_only``; nothing is downloaded. Random weights produce garbage, which must take the
parse-error path and be reported, not crash.
"""

from __future__ import annotations

import pytest
import torch

from lga.anatomy.backends import generate_anatomy, make_backend
from lga.anatomy.prompts import PromptSpec

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tiny_model_dir(one_thread, tmp_path_factory):
    from lga.anatomy.tiny_lm import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat-lm"), seed=0)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return make_backend("transformers", model=str(tiny_model_dir), device="cpu", dtype="float32",
                        batch_size=2, max_new_tokens=6, seed=3, local_files_only=True)


def test_loads_offline_with_left_padding(backend):
    assert backend.tokenizer.padding_side == "left"
    assert backend.lm.dtype == torch.float32
    assert "tiny-chat-lm" in backend.model
    prompts = backend.prompts(["kick ball"], PromptSpec())
    assert prompts[0].startswith("system : ") and prompts[0].endswith("assistant : ")


def test_garbage_answers_take_the_parse_error_path(backend, tmp_path):
    labels = {"kick_ball": "kick ball", "hug": "hug", "wave": "wave hand"}
    report = generate_anatomy(labels, backend, tmp_path / "out.json", retries_on_parse_error=1)
    assert not report.ok
    assert sorted(report.failed) == sorted(labels)
    assert all("unparsable answer after 2 attempt(s)" in r for r in report.failed.values())
    assert report.parse_errors == 6
    assert len(report.queried) == 6  # 3 labels x 2 attempts, in batches of 2
    assert not (tmp_path / "out.json").exists()  # nothing valid, nothing written
    assert "0/3 classes covered" in report.summary()


def test_generation_is_seeded_and_leaves_global_rng_alone(backend):
    spec = PromptSpec(examples=())
    labels = ["kick ball", "a much longer label for padding"]
    state = torch.get_rng_state()
    greedy = backend.generate(labels, spec, attempt=0)
    sampled = backend.generate(labels, spec, attempt=1)
    assert torch.equal(state, torch.get_rng_state())
    assert backend.generate(labels, spec, attempt=0) == greedy
    assert backend.generate(labels, spec, attempt=1) == sampled
    assert set(greedy) == set(labels) and all(isinstance(v, str) for v in greedy.values())


def test_left_padding_does_not_change_an_answer(backend):
    spec = PromptSpec(examples=())
    alone = backend.generate(["kick ball"], spec)["kick ball"]
    batched = backend.generate(["kick ball", "a much longer label to force padding"], spec)
    assert batched["kick ball"] == alone


def test_model_object_and_missing_chat_template(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from lga.anatomy.tiny_lm import build_tiny_tokenizer
    from lga.anatomy.transformers_backend import TransformersBackend

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        TransformersBackend(model, device="cpu")
    with pytest.raises(ValueError, match="no chat template"):
        TransformersBackend(model, build_tiny_tokenizer(chat_template=None), device="cpu")
    b = TransformersBackend(model, build_tiny_tokenizer(), device="cpu", max_new_tokens=2)
    assert "TransformersBackend(" in repr(b)


def test_one_command_regenerates_a_shipped_benchmark(tiny_model_dir, tmp_path, capsys):
    """``python -m lga anatomy --dataset hmdb51 --backend transformers --model M`` needs no class list:
    the classes and labels of the shipped anatomy are asked (the book's regeneration command)."""
    from lga.anatomy.cli import main
    from lga.anatomy.shipped import load_shipped_anatomy

    status = main(["--dataset", "hmdb51", "--backend", "transformers", "--model", str(tiny_model_dir),
                   "--local-files-only", "--device", "cpu", "--dtype", "float32", "--max-new-tokens", "2",
                   "--batch-size", "32", "--retries", "0", "--no-progress", "--out", str(tmp_path / "a.json")])
    out = capsys.readouterr()
    assert status == 1                                   # garbage answers: every class fails, reported
    n = len(load_shipped_anatomy("hmdb51").classes)
    assert f"the {n} classes of the shipped anatomy" in out.err
    assert f"0/{n} classes covered" in out.out, out.out
