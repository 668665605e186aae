"""A CLIP vision tower as a frame encoder: clips uint8 ``[B, T, H, W, 3]`` -> features ``[B, T, D]``.

The encoder interface of :mod:`lga.engine` (the same as :class:`lga.models.frame_encoder.FrameEncoder`),
wrapping any CLIP that :func:`lga.models.backbone.load_clip` returns, frozen or partly fine-tuned
through :func:`lga.models.backbone.set_trainable`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .backbone import encode_frames, encode_text, load_clip, set_trainable

__all__ = ["ClipFrameEncoder"]


class ClipFrameEncoder(nn.Module):
    """Per-frame CLIP image features (L2-normalised by default), ``[B, T, H, W, 3] -> [B, T, D]``.

    Args:
        model: an open_clip CLIP (from :func:`~lga.models.backbone.load_clip`).
        tokenizer: its tokenizer (kept for :meth:`encode_text`; optional).
        train_last_blocks, train_text, train_logit_scale: what to fine-tune, see
            :func:`~lga.models.backbone.set_trainable` (default: everything frozen).
        chunk_size: frames encoded per forward pass of the vision tower.
        normalize: L2-normalise the features (CLIP's convention; the heads use cosine distances).
        grad_checkpointing: recompute the vision transformer's block activations in the backward
            pass instead of storing them (open_clip's ``set_grad_checkpointing``): far less GPU
            memory when blocks are trained, for one extra forward pass of those blocks. ViT towers
            only (a ResNet tower would silently ignore it, so it is refused there).

    A fully frozen vision tower always stays in eval mode (``train()`` does not switch it: batch
    statistics of the ResNet tower and dropout stay off), and is run without building a graph.
    """

    def __init__(self, model: nn.Module, tokenizer=None, train_last_blocks: int = 0,
                 train_text: bool | int = False, train_logit_scale: bool = False,
                 chunk_size: int = 64, normalize: bool = True, grad_checkpointing: bool = False):
        super().__init__()
        if grad_checkpointing:
            if not hasattr(model.visual, "transformer"):
                raise ValueError(f"grad_checkpointing needs a vision transformer tower; "
                                 f"{type(model.visual).__name__} has none")
            model.visual.set_grad_checkpointing(True)
        self.grad_checkpointing = bool(grad_checkpointing)
        self.model = model
        self.tokenizer = tokenizer
        self.chunk_size, self.normalize = chunk_size, normalize
        self.trainable = set_trainable(model, train_last_blocks, train_text, train_logit_scale)
        self.frozen_visual = not any(p.requires_grad for p in model.visual.parameters())
        if self.frozen_visual:
            model.visual.eval()

    @classmethod
    def from_pretrained(cls, name_or_path, pretrained: str | None = None, device="cpu",
                        precision: str | None = "auto", **kwargs) -> "ClipFrameEncoder":
        """``load_clip(name_or_path, pretrained, device, precision)`` wrapped in an encoder."""
        model, _, tokenizer = load_clip(name_or_path, pretrained=pretrained, device=device, precision=precision)
        return cls(model, tokenizer, **kwargs)

    @property
    def dim(self) -> int:
        cfg = getattr(self.model, "lga_model_cfg", None)
        return int(cfg["embed_dim"]) if cfg else int(self.model.visual.output_dim)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_visual:
            self.model.visual.eval()
        return self

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self.frozen_visual:
            with torch.no_grad():
                return encode_frames(self.model, clips, self.chunk_size, self.normalize)
        return encode_frames(self.model, clips, self.chunk_size, self.normalize)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Text features ``[n, D]`` from the same CLIP (for :meth:`lga.models.text_bank.TextBank.build`)."""
        if self.tokenizer is None:
            raise ValueError("this encoder was built without a tokenizer")
        return encode_text(self.model, self.tokenizer, texts, normalize=self.normalize)
