"""Anatomy from a local or hub causal language model through Hugging Face ``transformers``.

Any causal LM whose tokenizer has a chat template works (Qwen2.5-Instruct, Llama-3-Instruct,
Mistral-Instruct, ...). Labels are answered in batches with left padding (decoder-only models
continue from the right end of the prompt). The first attempt is greedy; re-asks after a parse
error sample with ``retry_temperature`` under the seed ``seed + attempt``. The global torch RNG is
left as it was (:func:`torch.random.fork_rng`).

Written against transformers v5 (``dtype=`` rather than the old ``torch_dtype=``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .backend_base import AnatomyBackend, BackendError
from .prompts import PromptSpec

__all__ = ["TransformersBackend"]

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


class TransformersBackend(AnatomyBackend):
    """A chat LM run locally.

    Args:
        model: a hub id or local folder (loaded with ``AutoModelForCausalLM``), or a model object.
        tokenizer: a tokenizer object; default: loaded from ``model`` (must then be a name/path).
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        dtype: ``"auto"`` (the checkpoint's), ``"float32"``, ``"bfloat16"``, ``"float16"`` or a
            ``torch.dtype``; used only when the model is loaded here.
        batch_size: labels per ``generate`` call.
        max_new_tokens: answer length limit.
        seed: sampling seed of re-asks (``seed + attempt``).
        retry_temperature, top_p: sampling parameters of re-asks.
        local_files_only: never touch the network when loading.
        revision: the hub revision (branch, tag or commit) to load, so a named model also names its
            exact weights; default: the hub's default branch.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any = None, *, device: str | None = None,
                 dtype: str | torch.dtype = "auto", batch_size: int = 8, max_new_tokens: int = 512,
                 seed: int = 0, retry_temperature: float = 0.7, top_p: float = 0.95,
                 local_files_only: bool = False, trust_remote_code: bool = False,
                 revision: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer   # heavy: transformers

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(model, str):
            name = model
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only,
                                                          trust_remote_code=trust_remote_code,
                                                          revision=revision)
            torch_dtype = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
            model = AutoModelForCausalLM.from_pretrained(
                name, dtype=torch_dtype, local_files_only=local_files_only,
                trust_remote_code=trust_remote_code, revision=revision)
        else:
            name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
            if tokenizer is None:
                raise ValueError("a model object needs its tokenizer: pass tokenizer=...")
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"the tokenizer of {name!r} has no chat template; use an instruction-"
                             "tuned model or set tokenizer.chat_template")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ValueError(f"the tokenizer of {name!r} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self.model = name
        self.lm = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.retry_temperature = retry_temperature
        self.top_p = top_p

    def __repr__(self) -> str:
        return (f"TransformersBackend(model={self.model!r}, device={str(self.device)!r}, "
                f"batch_size={self.batch_size})")

    def prompts(self, labels: Sequence[str], spec: PromptSpec) -> list[str]:
        """The chat-templated prompt text of each label (generation prompt appended)."""
        return [self.tokenizer.apply_chat_template(spec.messages(label), tokenize=False,
                                                   add_generation_prompt=True) for label in labels]

    @torch.inference_mode()
    def generate(self, labels: Sequence[str], spec: PromptSpec,
                 attempt: int = 0) -> dict[str, str | BackendError]:
        labels = list(labels)
        if not labels:
            return {}
        enc = self.tokenizer(self.prompts(labels, spec), return_tensors="pt", padding=True,
                             add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]  # input_ids: (B, P), left-padded
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if attempt == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=self.retry_temperature, top_p=self.top_p)
        devices = []
        if self.device.type == "cuda":
            devices = [self.device.index if self.device.index is not None else torch.cuda.current_device()]
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed + attempt)
                out = self.lm.generate(**enc, **kwargs)  # (B, P + new)
        except (RuntimeError, ValueError) as e:
            raise BackendError(f"generation failed for {len(labels)} label(s) "
                               f"({labels[0]!r}, ...): {e}") from e
        texts = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        return dict(zip(labels, texts))
