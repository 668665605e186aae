"""The two chat models chapter 4 offers a student (``lga.anatomy.llm_choices``): they fit where they are
said to fit, the command line and ``make gpu-check`` use them, and an unavailable model is reported."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import pytest

from lga.anatomy.llm_choices import (ANATOMY_MODELS, BYTES_PER_PARAMETER, anatomy_model, answer_tokens,
                                     pick_anatomy_model, prompt_tokens)

ROOT = Path(__file__).resolve().parents[2]
T4_GIB = 15.0          # a free Colab T4


def test_the_t4_default_fits_a_free_colab_t4_in_float16():
    t4 = anatomy_model("colab-t4")
    assert t4.dtype == "float16" and t4.device == "cuda"        # a T4 has no native bfloat16
    assert t4.weight_gib == pytest.approx(t4.parameters * 2 / 2**30)
    assert t4.allowance_gib >= 1.0                               # a stated overhead, not zero
    assert t4.kv_cache_gib() > 0
    assert t4.weight_gib + t4.kv_cache_gib() + t4.allowance_gib == pytest.approx(t4.peak_gib)
    assert t4.peak_gib <= T4_GIB and t4.memory_gib <= T4_GIB and t4.fits
    # the 7B model of the book's GPU path would not: its float16 weights alone nearly fill the card
    seven_b = dataclasses.replace(t4, parameters=7.6e9, layers=28, kv_heads=4, head_dim=128)
    assert not seven_b.fits


def test_the_cpu_model_is_small():
    cpu = anatomy_model("cpu")
    assert cpu.device == "cpu" and cpu.parameters <= 1e9
    assert cpu.weight_gib == pytest.approx(cpu.parameters * BYTES_PER_PARAMETER[cpu.dtype] / 2**30)
    assert cpu.weight_gib < 4 and cpu.fits
    assert cpu.weight_gib < anatomy_model("colab-t4").weight_gib


def test_the_kv_cache_grows_with_the_batch_and_the_answer():
    t4 = anatomy_model("colab-t4")
    assert t4.kv_cache_gib(batch_size=2 * t4.batch_size) == pytest.approx(2 * t4.kv_cache_gib())
    longer = dataclasses.replace(t4, max_new_tokens=2 * t4.max_new_tokens)
    assert longer.kv_cache_gib() > t4.kv_cache_gib()


def test_estimates_count_batches_and_tokens():
    m = anatomy_model("colab-t4")
    assert m.estimate_seconds(m.batch_size, tokens=100) == pytest.approx(m.seconds_per_prompt_batch()
                                                                         + 100 * m.seconds_per_step())
    assert m.seconds_per_prompt_batch(prompt=2 * prompt_tokens()) == pytest.approx(2 * m.seconds_per_prompt_batch())
    assert m.estimate_seconds(m.batch_size + 1, tokens=100) == pytest.approx(2 * m.estimate_seconds(1, tokens=100))
    assert anatomy_model("cpu").seconds_per_step() > m.seconds_per_step()
    tokens = answer_tokens("hmdb51")                 # from the shipped answers' length
    assert 30 < tokens < m.max_new_tokens            # the answer limit leaves room for a real answer
    assert prompt_tokens() > 100                     # the worked examples are part of every prompt


# each model's config.json (hidden and MLP sizes, vocabulary), for the parameter count of its shape
SHAPES = {
    "colab-t4": ("Phi3Config", dict(hidden_size=3072, intermediate_size=8192, num_attention_heads=32,
                                    vocab_size=32064, tie_word_embeddings=False)),
    "cpu": ("Qwen2Config", dict(hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                                vocab_size=151936, tie_word_embeddings=True)),
}


@pytest.mark.parametrize("key", list(ANATOMY_MODELS))
def test_parameters_and_shape_agree(key):
    """The table's parameter count is that of a model of its shape (built on the meta device, no memory)."""
    transformers = pytest.importorskip("transformers")
    import torch

    m = anatomy_model(key)
    config_class, shape = SHAPES[key]
    config = getattr(transformers, config_class)(num_hidden_layers=m.layers, num_key_value_heads=m.kv_heads, **shape)
    assert shape["hidden_size"] // shape["num_attention_heads"] == m.head_dim
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(m.parameters, rel=0.01)


def test_pick_and_lookup():
    t4 = anatomy_model("colab-t4")
    assert pick_anatomy_model(T4_GIB) is t4
    assert pick_anatomy_model(80.0) is t4
    assert pick_anatomy_model(None) is anatomy_model("cpu")
    assert pick_anatomy_model(0.0) is anatomy_model("cpu")
    assert pick_anatomy_model(t4.peak_gib - 0.5) is anatomy_model("cpu")
    with pytest.raises(KeyError, match="known: colab-t4, cpu"):
        anatomy_model("gpt-5")
    for key, m in ANATOMY_MODELS.items():
        assert m.key == key and "/" in m.model and m.license and m.basis
        assert f"--model {key}" in m.command("ucf101")


@pytest.mark.parametrize("key", list(ANATOMY_MODELS))
def test_the_command_line_names_each_choice(key, monkeypatch):
    from lga.anatomy import backends, cli

    seen = {}
    monkeypatch.setattr(backends, "make_backend", lambda name, **kw: seen.update(kw, backend=name))
    args = cli.build_parser().parse_args(["--dataset", "hmdb51", "--backend", "transformers",
                                          "--model", key, "--out", "x.json"])
    cli._backend(args)
    choice = ANATOMY_MODELS[key]
    assert seen["backend"] == "transformers" and seen["model"] == choice.model
    assert seen["dtype"] == choice.dtype and seen["device"] == choice.device
    assert seen["revision"] == choice.revision
    # an explicit dtype or device wins
    args = cli.build_parser().parse_args(["--dataset", "hmdb51", "--backend", "transformers", "--model", key,
                                          "--dtype", "bfloat16", "--device", "meta", "--out", "x.json"])
    cli._backend(args)
    assert seen["dtype"] == "bfloat16" and seen["device"] == "meta"


# ----------------------------------------------------------------------------- make gpu-check's step
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_reports_a_model_it_cannot_load_as_skipped(tmp_path):
    t4 = anatomy_model("colab-t4")
    try:
        from huggingface_hub import try_to_load_from_cache
        if isinstance(try_to_load_from_cache(t4.model, "config.json"), str):
            pytest.skip(f"{t4.model} is in this machine's Hugging Face cache")
    except ImportError:
        pass
    out = gpu_check().student_anatomy_model(tmp_path, "cpu", allow_download=False)
    assert out["model"] == t4.model and "not available offline" in out["skipped"], out
    assert out["weights_gib"] == round(t4.weight_gib, 2)


@pytest.mark.usefixtures("one_thread")
def test_gpu_check_runs_a_chat_model_and_reports_time_and_estimate(tmp_path):
    pytest.importorskip("transformers")
    from lga.anatomy.tiny_lm import build_tiny_chat_model

    path = build_tiny_chat_model(tmp_path / "tiny-chat-lm")
    choice = dataclasses.replace(anatomy_model("cpu"), model=str(path), max_new_tokens=4, batch_size=16)
    out = gpu_check().student_anatomy_model(tmp_path, "cpu", choice=choice, allow_download=False)
    assert "skipped" not in out, out
    assert out["labels"] >= 1 and out["covered"] + out["failed"] == out["labels"]
    assert out["seconds"] >= 0 and out["estimate_s"] > 0 and out["peak_memory_gib"] is None
