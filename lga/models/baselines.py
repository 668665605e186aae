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
- :class:`LabelOnlyHead`  CLIP-FSAR's recipe: OTAM on text-modulated frames plus video-to-*label*-text
                          matching, fused like LGA, with no anatomy at all.

With K > 1 shots, the heads that match frame sequences combine the shots by a ``shot_rule``
(:data:`SHOT_RULES`): average the K distances, or average the K shots into one prototype sequence.

The LGA head itself lives in :mod:`lga.models.lga`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from . import matching
from .fusion import PhaseFusion

__all__ = ["class_means", "per_class_mean_distance", "merge_shots", "SHOT_RULES", "logit_scale", "scaled",
           "FewShotHead", "ProtoNet", "OTAMHead", "LabelOnlyHead"]


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
    This is the K-shot rule ``"mean_distance"`` of :data:`SHOT_RULES`, the one of
    few-shot-action-recognition (Perrett et al.) for OTAM/TRX-style heads: each shot is matched on
    its own and the K distances are averaged. The other rule, ``"prototype"``, averages the shots'
    frame features into one prototype sequence first (:func:`merge_shots`).
    """
    return class_means(dist.transpose(1, 2), support_labels, n_way).transpose(1, 2)


#: How K > 1 support videos of a class become one class score (a head's ``shot_rule``):
#: ``"mean_distance"``: match the query with each shot and average the K distances
#: (:func:`per_class_mean_distance`); ``"prototype"``: average the K shots frame by frame into one
#: prototype sequence and match the query with it once (:func:`merge_shots`; CLIP-FSAR's 5-shot configs
#: and HyRSM do this: frame r of the prototype is the mean of frame r of the shots). Every head here
#: defaults to "prototype", the rule chosen by measurement (the module docstring of :mod:`lga.models.lga`).
SHOT_RULES = ("mean_distance", "prototype")


def merge_shots(support: torch.Tensor, support_labels: torch.Tensor, n_way: int):
    """The ``"prototype"`` K-shot rule: each class's K support videos averaged frame by frame.

    support ``[E, N*K, T, D]``, support_labels ``[E, N*K]`` -> ``(prototypes [E, N, T, D],
    labels [E, N] = 0..N-1)``: one support "video" per class, which a head then matches as a 1-shot
    episode. Frame r of a prototype is the mean of frame r of the shots: the sampled frames of every
    video cover its whole length in order, so frame r of each shot lies at the same relative time.
    """
    protos = class_means(support, support_labels, n_way)
    labels = torch.arange(n_way, device=support_labels.device).expand(support.shape[0], n_way)
    return protos, labels


def _check_shot_rule(rule: str) -> str:
    if rule not in SHOT_RULES:
        raise ValueError(f"shot_rule must be one of {SHOT_RULES}, got {rule!r}")
    return rule


def logit_scale(temperature: float, learn: bool) -> nn.Parameter:
    """CLIP's logit scale: a parameter ``log(1 / temperature)``, trained when ``learn`` (logits are
    ``similarity * exp(scale)``, see :func:`scaled`)."""
    if not temperature > 0:
        raise ValueError(f"a temperature must be > 0, got {temperature}")
    return nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learn)


def scaled(similarity: torch.Tensor, scale: torch.Tensor, max_scale: float = 100.0) -> torch.Tensor:
    """``similarity * exp(scale)`` with ``exp(scale)`` at most ``max_scale`` (CLIP clamps its logit
    scale at 100: a temperature of at least 0.01)."""
    return similarity * scale.clamp(max=math.log(max_scale)).exp().to(similarity.dtype)


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

    Each query is aligned to each support video with :func:`lga.models.matching.otam_distance`
    (soft-DTW over frame cosine distances, bidirectional by default; ``lbda`` its soft-min
    temperature: 0.1 in few-shot-action-recognition, 0.5 in CLIP-FSAR). With K > 1 shots,
    ``shot_rule`` (:data:`SHOT_RULES`) averages either the K distances or the K shots' frames. The
    logits are ``-distance / temperature``.
    """

    def __init__(self, lbda: float = 0.1, bidirectional: bool = True, temperature: float = 1.0,
                 shot_rule: str = "prototype"):
        super().__init__()
        self.lbda, self.bidirectional, self.temperature = lbda, bidirectional, temperature
        self.shot_rule = _check_shot_rule(shot_rule)

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int, **text) -> torch.Tensor:
        if self.shot_rule == "prototype":
            support, support_labels = merge_shots(support, support_labels, n_way)
        d = matching.otam_distance(query, support, self.lbda, self.bidirectional)   # [E, N*Q, S]
        return -per_class_mean_distance(d, support_labels, n_way) / self.temperature


class LabelOnlyHead(FewShotHead):
    """CLIP-FSAR's recipe with the class *label* as the only text: no anatomy (the baseline LGA beats).

    Two branches, fused like LGA (:func:`lga.models.matching.fuse_log_probabilities`):

    - video-video: ``vv="otam"`` (default, CLIP-FSAR's matching) aligns the query's frames with each
      support's by OTAM (soft-min temperature ``otam_lbda``: 0.5, the value of CLIP-FSAR's
      ``OTAM_cum_dist_v2`` in its public ``models/base/few_shot.py``) and combines the K shots by
      ``shot_rule``; ``logit = -distance / vv_temperature``. ``vv="mean"`` compares mean-pooled videos
      with the class means by cosine (``logit = cos / vv_temperature``).
    - video-text: the mean-pooled query against each class's ``label_text`` by cosine, times a
      CLIP-style logit scale (``1 / vt_temperature`` at the start, trained when
      ``learn_vt_temperature``), as CLIP zero-shot classification does.

    ``log p = alpha * log p_vv + (1 - alpha) * log p_vt`` (renormalised) is what ``forward``
    returns. With ``dim`` (the registry passes the encoder's), support frames are first modulated
    by their label text with one :class:`lga.models.fusion.PhaseFusion` layer over the *frames*
    (``Q_r = f_r + label``, keys and values the frames) -- CLIP-FSAR's prototype modulation, in the
    same block LGA uses for phases -- and each frame is replaced by the fused frame rescaled to its
    norm. Queries pass through the same layer without text. With ``shot_rule="prototype"`` the K
    shots of a class are averaged frame by frame *before* the modulation, as CLIP-FSAR's 5-shot
    configs do (``MERGE_BEFORE: true``); ``"mean_distance"`` modulates every shot and averages the
    K OTAM distances.

    ``loss``: ``ce_weight`` x cross-entropy of the ``train_with`` logits ("vv": the video-video
    branch only, as LGA; "fused") + ``vt_weight`` x the video-text cross-entropy of the query *and*
    support videos against the episode's label texts: the loss LGA trains with, on the label.

    Differences from CLIP-FSAR's code, all [choose] ours, to train exactly like LGA: its text token
    joins the frames in a self-attention transformer (here a cross-attention block), its
    video-text loss (weight 1.2) runs over all training classes (here the episode's) with a logit
    scale starting at 1 (here 1/0.07), and its default inference uses the modulated OTAM alone
    (``alpha=1``; its COMBINE option weighs the text 0.9). Defaults: ``alpha=0.5`` like LGA.
    """

    def __init__(self, vv: str = "otam", alpha: float = 0.5, vv_temperature: float | None = None,
                 vt_temperature: float = 0.07, otam_lbda: float = 0.5, dim: int | None = None,
                 num_heads: int = 8, ce_weight: float = 1.0, vt_weight: float = 1.0,
                 train_with: str = "vv", shot_rule: str = "prototype", learn_vt_temperature: bool = True,
                 learn_vv_temperature: bool = False, max_logit_scale: float = 100.0):
        super().__init__()
        if vv not in ("mean", "otam"):
            raise ValueError(f"vv must be 'mean' or 'otam', got {vv!r}")
        if train_with not in ("vv", "fused"):
            raise ValueError(f"train_with must be 'vv' or 'fused', got {train_with!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if vv_temperature is None:      # OTAM: CLIP-FSAR's logits are minus the *sum* of the two directions
            vv_temperature = 0.5 if vv == "otam" else 0.1
        self.vv, self.alpha, self.otam_lbda = vv, alpha, otam_lbda
        self.shot_rule = _check_shot_rule(shot_rule)
        self.vv_scale = logit_scale(vv_temperature, learn_vv_temperature)
        self.vt_scale = logit_scale(vt_temperature, learn_vt_temperature)
        self.max_logit_scale = max_logit_scale
        self.ce_weight, self.vt_weight, self.train_with = ce_weight, vt_weight, train_with
        self.fusion = None
        if dim is not None:
            self.fusion = PhaseFusion(dim, num_heads=num_heads)

    @classmethod
    def from_config(cls, args: dict, dim: int | None = None, **context) -> "LabelOnlyHead":
        """Built by the registry (:mod:`lga.engine.build`): with the encoder's ``dim`` (so with the
        label modulation) unless ``head_args`` says ``dim: null``."""
        return cls(**{"dim": dim, **args})

    def temperatures(self) -> dict:
        """The current ``{"vv": tau_vv, "vt": tau_vt}`` (after the clamp at ``max_logit_scale``)."""
        cap = self.max_logit_scale
        return {k: 1.0 / min(cap, float(p.detach().exp())) for k, p in (("vv", self.vv_scale), ("vt", self.vt_scale))}

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
        s, s_labels = support, support_labels
        if self.vv == "otam" and self.shot_rule == "prototype":   # CLIP-FSAR's MERGE_BEFORE (its 5-shot configs)
            s, s_labels = merge_shots(support, support_labels, n_way)
        s_text = label_text.gather(1, s_labels[..., None].expand(-1, -1, label_text.shape[-1]))
        s = self._modulate(s, s_text)
        q = self._modulate(query, None)
        if self.vv == "mean":
            protos = class_means(F.normalize(s.mean(2), dim=-1), s_labels, n_way)         # [E, N, D]
            sim = F.normalize(q.mean(2), dim=-1) @ F.normalize(protos, dim=-1).transpose(1, 2)
            vv = scaled(sim, self.vv_scale, self.max_logit_scale)
        else:
            d = matching.otam_distance(q, s, self.otam_lbda)                              # [E, N*Q, S]
            vv = scaled(-per_class_mean_distance(d, s_labels, n_way), self.vv_scale, self.max_logit_scale)
        vt = self._vt(query, label_text)
        return vv, vt

    def _vt(self, videos: torch.Tensor, label_text: torch.Tensor) -> torch.Tensor:
        v = F.normalize(videos.mean(2), dim=-1)                                           # [E, B, D]
        sim = v @ F.normalize(label_text, dim=-1).transpose(1, 2)                         # [E, B, N]
        return scaled(sim, self.vt_scale, self.max_logit_scale)

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
