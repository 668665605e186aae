"""The model of a run: a frame encoder and a few-shot head as one module, built from a config.

:class:`EpisodicModel` is what the engine trains, checkpoints and (under torchrun) wraps in DDP.
Given an episode's videos it returns the head's ``(loss, logits)``: clips are encoded first, cached
features (a frozen backbone, :mod:`lga.engine.features`) go to the head as they are. Without an
encoder it is a head alone, which is all a frozen-backbone run trains and checkpoints.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import nn

from .build import build_encoder, build_head, encoder_dim, head_loss

__all__ = ["EpisodicModel", "build_model", "backbone_mode", "derive_seed", "encoder_key", "trainable_parameters"]


class EpisodicModel(nn.Module):
    """Encoder + head: an episode's videos in, ``(loss, logits)`` out.

    Args:
        encoder: clips uint8 ``[B, T, H, W, 3]`` -> features ``[B, T, D]``; None for a head that only
            sees cached features (the module, and its checkpoints, then hold the head alone).
        head: a few-shot head (:mod:`lga.models.baselines`).
    """

    def __init__(self, encoder: nn.Module | None, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, videos: torch.Tensor, support_labels: torch.Tensor, query_labels: torch.Tensor,
                n_way: int, text: dict | None = None, bounds: torch.Tensor | None = None):
        """``(loss, logits [E, N*Q, N])`` of one episode (E = 1) or of E episodes at once.

        Args:
            videos: the N*K support videos then the N*Q queries of one episode: uint8 clips
                ``[N*K + N*Q, T, H, W, 3]`` or float features ``[N*K + N*Q, T, D]`` (3-D: already
                encoded, given to the head as they are); or the features of E episodes,
                ``[E, N*K + N*Q, T, D]``.
            support_labels: ``[N*K]`` (``[E, N*K]``); query_labels: ``[N*Q]`` (``[E, N*Q]``): episode
                labels 0..N-1.
            text: the class texts (``class_text [E, N, L, D]``, ``label_text [E, N, D]``).
            bounds: the videos' ground-truth phase bounds over their T frames, ``[N*K + N*Q, L+1]``
                (``[E, N*K + N*Q, L+1]``), given to the head as ``support_bounds`` / ``query_bounds``.
        The loss is the head's, averaged over every query (and video) of the E episodes.
        """
        if support_labels.dim() == 1:
            videos, support_labels, query_labels = videos[None], support_labels[None], query_labels[None]
            bounds = None if bounds is None else bounds[None]
            if videos.dim() == 6:                                          # one episode's clips
                if self.encoder is None:
                    raise ValueError("this model has no encoder (a head on a frozen backbone's cached "
                                     f"features): give it features [B, T, D], not clips of shape "
                                     f"{tuple(videos.shape[1:])}")
                videos = self.encoder(videos[0])[None]                     # [1, N*K + N*Q, T, D]
        n_s = support_labels.shape[-1]
        if bounds is not None:
            text = dict(text or {}, support_bounds=bounds[:, :n_s], query_bounds=bounds[:, n_s:])
        return head_loss(self.head, videos[:, :n_s], support_labels, videos[:, n_s:], query_labels, n_way, text)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a function of ``parts`` (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def build_model(cfg, device=None, dim: int | None = None) -> EpisodicModel:
    """The :class:`EpisodicModel` of a config, its weights a function of ``train.seed``.

    The encoder is built after ``torch.manual_seed(train.seed)``, the head after a seed derived from
    it: a head starts from the same weights whether or not an encoder was built before it (a
    frozen-backbone run and a fine-tuning run of the same config start alike).

    Args:
        dim: build no encoder, only a head on cached features of this size.
    """
    encoder = None
    if dim is None:
        torch.manual_seed(cfg.train.seed)
        encoder = build_encoder(cfg.model, device=device)
        dim = encoder_dim(encoder)
    torch.manual_seed(derive_seed(cfg.train.seed, 1))
    return EpisodicModel(encoder, build_head(cfg.model, dim))


def trainable_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a module (0: nothing to train)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def backbone_mode(cfg, encoder: nn.Module | None = None) -> str:
    """``train.backbone`` resolved: ``"frozen"`` or ``"finetune"`` (``auto``: frozen exactly when
    ``encoder`` has no trainable parameter; without an encoder, ``auto`` means frozen)."""
    mode = cfg.train.backbone
    if mode != "auto":
        return mode
    return "frozen" if encoder is None or trainable_parameters(encoder) == 0 else "finetune"


def encoder_key(encoder: nn.Module) -> str:
    """A hash of what an encoder computes: its class, every tensor of its state (names, dtypes, shapes,
    values) and, for a CLIP, its preprocessing. It keys a frozen backbone's cached features: another
    checkpoint, or the same one after fine-tuning, never reads stale features."""
    h = hashlib.sha256(type(encoder).__qualname__.encode())
    for name, t in encoder.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    visual = getattr(getattr(encoder, "model", None), "visual", None)
    extra = {"preprocess": getattr(visual, "preprocess_cfg", None), "normalize": getattr(encoder, "normalize", None)}
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()
