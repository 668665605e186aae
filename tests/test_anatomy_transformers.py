"""The transformers backend, end to end, with a tiny random-weight chat model built offline.

The model (a 1-layer Llama) and its tokenizer (a word-level ``tokenizers`` vocabulary with a chat
template) are built and saved by the test, then loaded back by path with ``local_files_only``;
nothing is downloaded. Random weights produce garbage, which must take the parse-error path and
be reported, not crash.
"""

from __future__ import annotations

import pytest
import torch

from lga.anatomy.backends import generate_anatomy, make_backend
from lga.anatomy.prompts import PromptSpec

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "system", "user", "assistant", ":", "{", "}", "[", "]",
         '"', ",", "subject", "motion", "object", "description", "person", "ball", "kick", "the",
         "a", "hand", "steps"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}assistant : {% endif %}")


def build_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 pad_token="<pad>", unk_token="<unk>")
    hf.chat_template = chat_template
    return hf


@pytest.fixture(scope="module")
def tiny_model_dir(one_thread, tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=2048, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)
    path = tmp_path_factory.mktemp("tiny-chat-lm")
    LlamaForCausalLM(config).save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path


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

    from lga.anatomy.transformers_backend import TransformersBackend

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        TransformersBackend(model, device="cpu")
    with pytest.raises(ValueError, match="no chat template"):
        TransformersBackend(model, build_tokenizer(chat_template=None), device="cpu")
    b = TransformersBackend(model, build_tokenizer(), device="cpu", max_new_tokens=2)
    assert "TransformersBackend(" in repr(b)
