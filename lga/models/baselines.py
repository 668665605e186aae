"""Baselines behind the small-head interface shared by every method.

A *head* turns per-frame features of an episode into query-by-class logits::

    logits = head(support [E, N*K, T, D], support_labels [E, N*K], query [E, N*Q, T, D], n_way,
                  **text)                                              # -> [E, N*Q, N]
    loss, logits = head.loss(support, support_labels, query, query_labels [E, N*Q], n_way, **text)

``E`` is the number of episodes scored at once; features may come from any backbone (see
:class:`lga.models.backbone_encoder.ClipFrameEncoder`). ``text`` holds the episode's class texts,
as gathered by :meth:`lga.models.text_bank.TextBank.for_episodes`:

- ``class_text``  ``[E, N, L, D]``  the text features of each class's L anatomy steps;
- ``label_text``  ``[E, N, D]``     the text feature of each class's label prompt.

Heads that need no text accept these keywords and ignore them. :class:`FewShotHead` supplies the
default :meth:`~FewShotHead.loss` (cross-entropy on the logits); heads with auxiliary losses
override it. Heads in this file:

- :class:`ProtoNet`       mean-pooled frames, class mean, (squared) Euclidean or cosine. Order-blind.
- :class:`OTAMHead`       OTAM (Cao et al., CVPR 2020): soft-DTW alignment of frame sequences.
- :class:`LabelOnlyHead`  CLIP-FSAR-style: video-video matching plus video-to-*label*-text
                          matching, fused like LGA, with no anatomy at all.

The LGA head itself lives in :mod:`lga.models.lga`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from . import matching

__all__ = ["class_means", "per_class_mean_distance", "FewShotHead", "ProtoNet", "OTAMHead",
           "LabelOnlyHead"]


def class_means(feats: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Mean of the support features of each class.

    feats ``[E, S, ...]``, labels int64 ``[E, S]`` in 0..n_way-1 -> ``[E, n_way, ...]``.
    """
    onehot = F.one_hot(labels, n_way).to(feats.dtype)              # [E, S, N]
    flat = feats.flatten(2)                                        # [E, S, F]
    sums = onehot.transpose(1, 2) @ flat                           # [E, N, F]
    means = sums / onehot.sum(1).clamp_min(1).unsqueeze(-1)
    return means.view(feats.shape[0], n_way, *feats.shape[2:])


def per_class_mean_distance(dist: torch.Tensor, support_labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Average query-to-support distances over the K support videos of each class.

    dist ``[E, Nq, S]`` (one distance per support *video*), support_labels ``[E, S]`` -> ``[E, Nq, N]``.
    This is how few-shot-action-recognition (Perrett et al.) turns OTAM/TRX-style per-video scores
    into class scores when K > 1: frame sequences of different shots cannot be averaged into one
    prototype sequence (their phases are not aligned), so each shot is scored on its own.
    """
    return class_means(dist.transpose(1, 2), support_labels, n_way).transpose(1, 2)


class FewShotHead(nn.Module):
    """Base class of the heads: ``forward`` gives logits; ``loss`` defaults to cross-entropy on them."""

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int, **text) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
             query_labels: torch.Tensor, n_way: int, **text) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cross-entropy of the logits averaged over every query of every episode, logits)``."""
        logits = self(support, support_labels, query, n_way, **text)          # [E, N*Q, N]
        return F.cross_entropy(logits.flatten(0, 1), query_labels.flatten()), logits


class ProtoNet(FewShotHead):
    """Prototypical networks (Snell et al., 2017) on mean-pooled frame features.

    A video is the mean of its frame features, a class is the mean of its support videos, and a
    query is scored by the negative squared Euclidean distance to each prototype (divided by
    ``temperature``). Mean pooling forgets frame order: classes that differ only in the order of
    their phases look the same to it, which is the failure later chapters fix.
    """

    def __init__(self, metric: str = "euclidean", temperature: float = 1.0):
        super().__init__()
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"ProtoNet metric must be 'euclidean' or 'cosine', got {metric!r}")
        self.metric, self.temperature = metric, temperature

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int, **text) -> torch.Tensor:
        s = support.mean(dim=2)                                    # [E, N*K, D]
        q = query.mean(dim=2)                                      # [E, N*Q, D]
        if self.metric == "cosine":
            s, q = F.normalize(s, dim=-1), F.normalize(q, dim=-1)
        protos = class_means(s, support_labels, n_way)             # [E, N, D]
        if self.metric == "cosine":
            return q @ F.normalize(protos, dim=-1).transpose(1, 2) / self.temperature
        return -torch.cdist(q, protos).pow(2) / self.temperature   # [E, N*Q, N]


class OTAMHead(FewShotHead):
    """OTAM (Cao et al., CVPR 2020): ordered temporal alignment of query and support frames.

    Each query is aligned to each support *video* with :func:`lga.models.matching.otam_distance`
    (soft-DTW over frame cosine distances, bidirectional by default); with K > 1 shots the K
    distances of a class are averaged (:func:`per_class_mean_distance`, the K-shot rule of the FSAR
    code base) and the logits are ``-distance / temperature``.
    """

    def __init__(self, lbda: float = 0.1, bidirectional: bool = True, temperature: float = 1.0):
        super().__init__()
        self.lbda, self.bidirectional, self.temperature = lbda, bidirectional, temperature

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int, **text) -> torch.Tensor:
        d = matching.otam_distance(query, support, self.lbda, self.bidirectional)   # [E, N*Q, N*K]
        return -per_class_mean_distance(d, support_labels, n_way) / self.temperature


class LabelOnlyHead(FewShotHead):
    """CLIP-FSAR-style matching with the class *label* as the only text: no anatomy.

    Two branches, fused like LGA (:func:`lga.models.matching.fuse_log_probabilities`):

    - video-video: ``vv="mean"`` compares mean-pooled videos to class prototypes by cosine
      (``logit = cos / vv_temperature``); ``vv="otam"`` aligns frames with OTAM per support video
      and averages over shots (``logit = -distance / vv_temperature``).
    - video-text: the mean-pooled query against each class's ``label_text`` by cosine
      (``logit = cos / vt_temperature``), as CLIP zero-shot classification does.

    ``log p = alpha * log p_vv + (1 - alpha) * log p_vt`` (renormalised) is what ``forward``
    returns. With ``dim`` given, support frames are first modulated by their label text with one
    :class:`lga.models.fusion.PhaseFusion` layer over the *frames* (``Q_t = f_t + label``, keys and
    values the frames) -- CLIP-FSAR's prototype modulation, in the same block LGA uses for phases
    -- and the frames of the supports are replaced by ``f_t + (normalize(f~_t) * |f_t| - f_t)``
    (i.e. by the fused frame rescaled to the original norm). Queries pass through the same layer
    without text.

    ``loss``: ``ce_weight`` x cross-entropy on the logits chosen by ``train_with`` ("vv": the
    video-video branch only, as LGA; "fused") + ``vt_weight`` x the video-text cross-entropy of the
    query *and* support videos against the episode's label texts (CLIP-FSAR's video-text loss,
    restricted to the episode's classes).
    """

    def __init__(self, vv: str = "mean", alpha: float = 0.5, vv_temperature: float = 0.1,
                 vt_temperature: float = 0.07, otam_lbda: float = 0.1, dim: int | None = None,
                 num_heads: int = 4, ce_weight: float = 1.0, vt_weight: float = 1.0,
                 train_with: str = "vv"):
        super().__init__()
        if vv not in ("mean", "otam"):
            raise ValueError(f"vv must be 'mean' or 'otam', got {vv!r}")
        if train_with not in ("vv", "fused"):
            raise ValueError(f"train_with must be 'vv' or 'fused', got {train_with!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.vv, self.alpha, self.otam_lbda = vv, alpha, otam_lbda
        self.vv_temperature, self.vt_temperature = vv_temperature, vt_temperature
        self.ce_weight, self.vt_weight, self.train_with = ce_weight, vt_weight, train_with
        self.fusion = None
        if dim is not None:
            from .fusion import PhaseFusion
            self.fusion = PhaseFusion(dim, num_heads=num_heads)

    @staticmethod
    def _label_text(label_text, support) -> torch.Tensor:
        if label_text is None:
            raise ValueError("LabelOnlyHead needs label_text [E, N, D] (see TextBank.for_episodes)")
        return label_text.to(support.dtype)

    def _modulate(self, frames: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """frames [E, B, T, D], text [E, B, D] or None -> frames with the fused frame feature swapped in."""
        if self.fusion is None:
            return frames
        E, B, T, D = frames.shape
        f = frames.reshape(E * B, T, D)
        t = None if text is None else text.reshape(E * B, 1, D).expand(E * B, T, D)
        fused = self.fusion(f, t)
        fused = F.normalize(fused, dim=-1) * f.norm(dim=-1, keepdim=True)
        return fused.view(E, B, T, D)

    def branch_logits(self, support, support_labels, query, n_way, label_text):
        """``(vv logits, vt logits)``, each ``[E, N*Q, N]``."""
        label_text = self._label_text(label_text, support)
        s_text = label_text.gather(1, support_labels[..., None].expand(-1, -1, label_text.shape[-1]))
        s = self._modulate(support, s_text)
        q = self._modulate(query, None)
        if self.vv == "mean":
            protos = class_means(F.normalize(s.mean(2), dim=-1), support_labels, n_way)   # [E, N, D]
            vv = F.normalize(q.mean(2), dim=-1) @ F.normalize(protos, dim=-1).transpose(1, 2)
            vv = vv / self.vv_temperature
        else:
            d = matching.otam_distance(q, s, self.otam_lbda)                              # [E, N*Q, N*K]
            vv = -per_class_mean_distance(d, support_labels, n_way) / self.vv_temperature
        vt = self._vt(query, label_text)
        return vv, vt

    def _vt(self, videos: torch.Tensor, label_text: torch.Tensor) -> torch.Tensor:
        v = F.normalize(videos.mean(2), dim=-1)                                           # [E, B, D]
        return v @ F.normalize(label_text, dim=-1).transpose(1, 2) / self.vt_temperature  # [E, B, N]

    def forward(self, support, support_labels, query, n_way, *, label_text=None, **text):
        vv, vt = self.branch_logits(support, support_labels, query, n_way, label_text)
        return matching.fuse_log_probabilities(vv.log_softmax(-1), vt.log_softmax(-1), self.alpha)

    def loss(self, support, support_labels, query, query_labels, n_way, *, label_text=None, **text):
        vv, vt = self.branch_logits(support, support_labels, query, n_way, label_text)
        fused = matching.fuse_log_probabilities(vv.log_softmax(-1), vt.log_softmax(-1), self.alpha)
        train_logits = vv if self.train_with == "vv" else fused
        loss = self.ce_weight * F.cross_entropy(train_logits.flatten(0, 1), query_labels.flatten())
        if self.vt_weight:
            lt = self._label_text(label_text, support)
            vt_s = self._vt(support, lt)
            logits = torch.cat([vt, vt_s], dim=1).flatten(0, 1)
            target = torch.cat([query_labels, support_labels], dim=1).flatten()
            loss = loss + self.vt_weight * F.cross_entropy(logits, target)
        return loss, fused
