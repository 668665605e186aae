"""A tiny random-weight chat model, built offline, for smoke tests of the transformers backend.

:func:`build_tiny_chat_model` writes a one-layer Llama with a word-level tokenizer and a chat template
to a folder, which :class:`lga.anatomy.transformers_backend.TransformersBackend` then loads by path
with ``local_files_only=True``. Nothing is downloaded. Its answers are garbage, which is the point:
they must take the parse-error path of :func:`lga.anatomy.backends.generate_anatomy` and be reported,
never crash a run. Used by the unit tests (CPU) and by ``make gpu-check`` (the same backend on CUDA).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TINY_WORDS", "TINY_CHAT_TEMPLATE", "build_tiny_tokenizer", "build_tiny_chat_model"]

#: the whole vocabulary (index = token id)
TINY_WORDS = ["<pad>", "<s>", "</s>", "<unk>", "system", "user", "assistant", ":", "{", "}", "[", "]",
              '"', ",", "subject", "motion", "object", "description", "person", "ball", "kick", "the",
              "a", "hand", "steps"]
#: a minimal chat template: ``role : content </s>`` per message, then ``assistant :``
TINY_CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
                      "{% if add_generation_prompt %}assistant : {% endif %}")


def build_tiny_tokenizer(chat_template: str | None = TINY_CHAT_TEMPLATE):
    """A ``PreTrainedTokenizerFast`` over :data:`TINY_WORDS` (whitespace-split, word level)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers   # heavy: transformers and tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(TINY_WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 pad_token="<pad>", unk_token="<unk>")
    hf.chat_template = chat_template
    return hf


def build_tiny_chat_model(path: str | os.PathLike, seed: int = 0) -> Path:
    """Save a one-layer random Llama (hidden size 16) and its tokenizer to ``path``; returns the path."""
    import torch   # heavy: torch and transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=len(TINY_WORDS), hidden_size=16, intermediate_size=32,
                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=2048, pad_token_id=0, bos_token_id=1, eos_token_id=2)
        LlamaForCausalLM(config).save_pretrained(path)
    build_tiny_tokenizer().save_pretrained(path)
    return path
