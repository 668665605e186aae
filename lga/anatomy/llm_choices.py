"""Two open chat models a student can run for text anatomy, as data: one for a free Colab T4, one for a CPU.

The book's reference model (Qwen2.5-7B-Instruct in bfloat16) needs a GPU larger than a free Colab T4
(15 GiB). :data:`ANATOMY_MODELS` names two smaller instruction-tuned models that do fit, with what
each costs:

- ``"colab-t4"``: ``microsoft/Phi-3.5-mini-instruct`` (MIT) in float16 on a T4 (a T4 has no
  native bfloat16);
- ``"cpu"``: ``Qwen/Qwen2.5-0.5B-Instruct`` (Apache-2.0) in float32 on a CPU runtime.

Memory is computed, not guessed: weights = parameters x bytes per parameter of the dtype; the KV
cache of a batch = 2 (keys, values) x layers x key-value heads x head size x bytes x batch x tokens;
plus ``allowance_gib`` for the CUDA context, activations and the allocator.
Parameter counts and shapes are those of each model's card and ``config.json``.

Times are **estimates**, not measurements: reading a batch's prompts costs about 2 x parameters x
prompt tokens of compute, and greedy decoding reads every weight once per generated token step, so a
step takes at least weights / memory bandwidth; the estimate divides both by ``efficiency`` and
multiplies by the batches of a run (answers of :func:`answer_tokens` tokens, prompts of
:func:`prompt_tokens`). ``make gpu-check`` runs the T4 model where it can be
loaded and records the real time and peak memory.

No revision is pinned here (it could not be read offline when this table was written): pass
``--revision`` to ``python -m lga anatomy`` to pin the commit you ran.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .prompts import PromptSpec
from .shipped import load_shipped_anatomy

__all__ = ["AnatomyModel", "ANATOMY_MODELS", "BYTES_PER_PARAMETER", "anatomy_model", "pick_anatomy_model",
           "answer_tokens", "prompt_tokens", "CHARS_PER_TOKEN"]

BYTES_PER_PARAMETER = {"float32": 4, "float16": 2, "bfloat16": 2}

#: the usual rule of thumb for English text and BPE tokenizers (used only in estimates)
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class AnatomyModel:
    """One chat model for :class:`~lga.anatomy.transformers_backend.TransformersBackend`, and its cost.

    Args:
        key: the name used by ``python -m lga anatomy --model KEY`` and :func:`anatomy_model`.
        model: the Hugging Face hub id.
        revision: the hub commit, or None when not pinned.
        license: the model's licence (model card).
        parameters: its parameter count (model card).
        layers, kv_heads, head_dim: its shape (``config.json``), for the KV cache.
        dtype: the dtype it is loaded in (``--dtype``).
        device: ``"cuda"`` or ``"cpu"``.
        runtime: the machine it is chosen for, in words.
        memory_gib: that machine's memory (GPU memory, or RAM for a CPU runtime).
        batch_size: labels per ``generate`` call.
        max_new_tokens: the answer length limit used in the memory bound.
        allowance_gib: memory beyond weights and KV cache (CUDA context, activations, allocator).
        bandwidth_gb_s: the machine's memory bandwidth assumed by the time estimate (GB/s).
        compute_tflops: the machine's compute assumed by the time estimate (TFLOPS, in ``dtype``).
        efficiency: the share of bandwidth and compute a run is assumed to reach.
        basis: where ``bandwidth_gb_s``, ``compute_tflops`` and ``efficiency`` come from, in words.
    """

    key: str
    model: str
    revision: str | None
    license: str
    parameters: float
    layers: int
    kv_heads: int
    head_dim: int
    dtype: str
    device: str
    runtime: str
    memory_gib: float
    batch_size: int
    max_new_tokens: int
    allowance_gib: float
    bandwidth_gb_s: float
    compute_tflops: float
    efficiency: float
    basis: str

    @property
    def weight_gib(self) -> float:
        """Weights: parameters x bytes per parameter of ``dtype``, in GiB."""
        return self.parameters * BYTES_PER_PARAMETER[self.dtype] / 2**30

    def kv_cache_gib(self, prompt: int | None = None, batch_size: int | None = None) -> float:
        """The KV cache of one batch of ``prompt`` + ``max_new_tokens`` tokens per answer, in GiB
        (``prompt`` defaults to :func:`prompt_tokens`)."""
        tokens = (prompt_tokens() if prompt is None else prompt) + self.max_new_tokens
        per_token = 2 * self.layers * self.kv_heads * self.head_dim * BYTES_PER_PARAMETER[self.dtype]
        return per_token * tokens * (batch_size or self.batch_size) / 2**30

    @property
    def peak_gib(self) -> float:
        """Weights + KV cache of a full batch + ``allowance_gib``: the memory bound it is chosen by."""
        return self.weight_gib + self.kv_cache_gib() + self.allowance_gib

    @property
    def fits(self) -> bool:
        """Whether :attr:`peak_gib` fits ``memory_gib``."""
        return self.peak_gib <= self.memory_gib

    def seconds_per_step(self) -> float:
        """Estimated seconds of one decoding step (one new token for a whole batch)."""
        return self.parameters * BYTES_PER_PARAMETER[self.dtype] / (self.bandwidth_gb_s * 1e9) / self.efficiency

    def seconds_per_prompt_batch(self, prompt: int | None = None) -> float:
        """Estimated seconds to read one batch of prompts of ``prompt`` tokens (default
        :func:`prompt_tokens`): 2 x parameters x tokens of compute."""
        prompt = prompt_tokens() if prompt is None else prompt
        flops = 2 * self.parameters * prompt * self.batch_size
        return flops / (self.compute_tflops * 1e12) / self.efficiency

    def estimate_seconds(self, labels: int, tokens: float | None = None) -> float:
        """Estimated seconds to answer ``labels`` labels, each in ``tokens`` tokens
        (default :func:`answer_tokens`): batches x (:meth:`seconds_per_prompt_batch` + tokens x
        :meth:`seconds_per_step`). An estimate."""
        tokens = answer_tokens() if tokens is None else tokens
        return math.ceil(labels / self.batch_size) * (self.seconds_per_prompt_batch()
                                                      + tokens * self.seconds_per_step())

    def command(self, dataset: str = "hmdb51") -> str:
        """The ``python -m lga anatomy`` command that regenerates ``dataset``'s anatomy with this model."""
        pin = f" --revision {self.revision}" if self.revision else ""
        return (f"python -m lga anatomy --dataset {dataset} --backend transformers --model {self.key}"
                f" --out runs/anatomy/{dataset}_{self.model.split('/')[-1].lower()}.json{pin}")


ANATOMY_MODELS: dict[str, AnatomyModel] = {m.key: m for m in (
    AnatomyModel(
        key="colab-t4", model="microsoft/Phi-3.5-mini-instruct", revision=None, license="MIT",
        parameters=3.82e9, layers=32, kv_heads=32, head_dim=96, dtype="float16", device="cuda",
        runtime="a free Colab T4 GPU (15 GiB)", memory_gib=15.0, batch_size=8, max_new_tokens=512,
        allowance_gib=1.5, bandwidth_gb_s=320.0, compute_tflops=65.0, efficiency=0.5,
        basis="NVIDIA's T4 datasheet gives 320 GB/s and 65 TFLOPS in mixed precision; half of each is "
              "assumed reached, since small batches of greedy decoding also wait on kernel launches"),
    AnatomyModel(
        key="cpu", model="Qwen/Qwen2.5-0.5B-Instruct", revision=None, license="Apache-2.0",
        parameters=0.494e9, layers=24, kv_heads=2, head_dim=64, dtype="float32", device="cpu",
        runtime="a CPU runtime (a free Colab CPU runtime has about 12 GiB of RAM)", memory_gib=12.0,
        batch_size=4, max_new_tokens=512, allowance_gib=1.0, bandwidth_gb_s=10.0, compute_tflops=0.1,
        efficiency=0.5,
        basis="assumed for two cores of a cloud CPU: about 10 GB/s and 0.1 TFLOPS in float32, half of "
              "each reached. A random-weight model of this shape, timed with one thread on a busy "
              "2-core cloud machine (load average about 9), read four prompts in about two minutes and "
              "then took 1.3 s per step: on a busy machine expect several times the estimate"),
)}


def anatomy_model(key: str) -> AnatomyModel:
    """The :data:`ANATOMY_MODELS` entry ``key``; a clear error listing the keys otherwise."""
    try:
        return ANATOMY_MODELS[key]
    except KeyError:
        raise KeyError(f"no anatomy model {key!r}; known: {', '.join(ANATOMY_MODELS)}") from None


def pick_anatomy_model(gpu_gib: float | None) -> AnatomyModel:
    """The T4 model when a CUDA GPU with at least its :attr:`~AnatomyModel.peak_gib` is there
    (``gpu_gib``: its memory in GiB, None or 0 without one), else the CPU model."""
    t4 = ANATOMY_MODELS["colab-t4"]
    return t4 if gpu_gib and gpu_gib >= t4.peak_gib else ANATOMY_MODELS["cpu"]


def answer_tokens(dataset: str = "hmdb51") -> float:
    """The mean length, in tokens (:data:`CHARS_PER_TOKEN`), of an answer like the shipped anatomy of
    ``dataset``: its JSON ``{"steps": [...]}`` per class. Used only by the time estimate."""
    entries = load_shipped_anatomy(dataset).data["classes"].values()
    chars = [len(json.dumps({"steps": e["steps"]}, indent=1)) for e in entries]
    return sum(chars) / len(chars) / CHARS_PER_TOKEN


def prompt_tokens(label: str = "brush hair") -> int:
    """The length of the default prompt (:class:`~lga.anatomy.prompts.PromptSpec`, worked examples
    included) for ``label``, in tokens (:data:`CHARS_PER_TOKEN`, plus a few per message for the chat
    template). Used only by the memory bound."""
    messages = PromptSpec().messages(label)
    return math.ceil(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 8 * len(messages)
