r"""LGA: Language-Guided Action Anatomy (Qian et al., ICCV 2025) as a few-shot head.

The head follows the small-head interface of :mod:`lga.models.baselines`::

    head = LGA(dim=512)                                           # LGAConfig() = full LGA
    logits = head(support [E,N*K,T,D], support_labels [E,N*K], query [E,N*Q,T,D], n_way,
                  class_text=[E,N,L,D], label_text=[E,N,D])        # -> [E,N*Q,N] (log-probabilities)
    loss, logits = head.loss(support, support_labels, query, query_labels, n_way, **text)

What happens, per episode (symbols of the book's notation page; every step is a switch of :class:`LGAConfig`):

1. **Visual anatomy.** Support and query frame features f_1..f_T are cut into L phases
   (``segmenter``: CLUSTER-Segment by default, :mod:`lga.anatomy.visual`; ``"given"``: the
   ground-truth phases, passed as ``support_bounds`` / ``query_bounds``), each widened by
   ``overlap`` boundary frames, and mean-pooled into phase features f_{S_i}. With
   ``use_visual_anatomy=False`` the video is not segmented: ``plain_phases="whole"`` makes it one
   phase (all frames), ``"uniform"`` cuts it into L equal parts with no overlap (the paper's "HARD",
   the content-blind way to give L step texts something to attach to).
2. **Text anatomy + fine-grained fusion.** With ``use_text_anatomy``, each *support* video's phases
   attend to each other guided by its class's step texts (:class:`lga.models.fusion.PhaseFusion`,
   ``Q_i = t_i + f_{S_i}``); queries, which have no label, go through the same layer without text
   (``query_text="none"``) or with the episode-mean text (``"shared"``). A one-phase video gets the
   mean of the L step texts. Without text anatomy there is no fusion (nothing to fuse).
3. **Video-video matching** (``use_video_video``), distance -> logits ``-d / tau_vv``:

   * ``vv_metric="frames"`` (default): AB-MHM over *frames*. Fused phase features are phase-level
     vectors while AB-MHM compares frame sets, so the fused feature enters each phase's frames as
     a residual: frame r of phase i becomes ``f_r + (f~_i - f_{S_i})``, i.e. the phase mean is
     swapped for the fused phase (``f~_i`` rescaled to the norm of ``f_{S_i}``, because the fusion
     ends with a LayerNorm whose scale is not CLIP's), and each frame keeps its own deviation from
     the mean. Phase i of the query is compared with phase i of a support by Bi-MHM (a frame in
     the overlap of two phases carries each phase's residual in that phase's comparison) and the
     L terms are summed: :func:`lga.models.matching.ab_mhm_distance` with these residuals as its
     per-phase offsets (:meth:`LGA.fused_residual`; without fusion, no offsets).
   * ``vv_metric="phases"``: phase-level matching, ``d = sum_i (1 - cos(q~_i, p_i))`` where the
     prototype p_i is the mean over the K shots of the (L2-normalised) fused support phase i.
     Cheaper, uses the paper's per-phase prototypes directly, and ignores the frames inside phases.

   K shots (``shot_rule``, [choose]): ``"mean_distance"`` scores the query against each support
   video and averages the K distances of a class (few-shot-action-recognition's rule for OTAM and
   TRX); ``"prototype"`` (default) first averages the K shots of a class frame by frame into one
   prototype video (CLIP-FSAR's and HyRSM's rule), which is then segmented, fused and matched once.
   The default is CLIP-FSAR's and HyRSM's rule and costs 1/K of the matching; chapter 7, section
   7.6 measures both rules (5-way 5-shot, frozen tiny CLIP, paired intervals on shared episodes).
4. **Video-text matching** (``use_video_text``): each query phase (mean-pooled CLIP features,
   ``vt_features="pooled"``, which live in the text space; or the fused ones) against the same
   step of each class's text anatomy, cosine averaged over phases -> logits ``cos / tau_vt``.
   Without text anatomy, the whole (mean-pooled) query is compared with the class's ``label_text``.
5. **Fusion of the branches** at inference: ``p ~ p_vv^alpha * p_vt^(1-alpha)``; ``forward`` returns
   these log-probabilities (or one branch's logits when the other is off).

**Temperatures.** ``tau = 1 / exp(s)`` with ``s`` a parameter initialised at
``log(1 / vt_temperature)`` (``log(1 / 0.07)``, CLIP's initial logit scale) and trained when
``learn_vt_temperature`` (default), the scale ``exp(s)`` clamped at ``max_logit_scale`` = 100 as in
CLIP; likewise ``tau_vv`` from ``vv_temperature`` when ``learn_vv_temperature``. The two
temperatures set how sharp ``p_vv`` and ``p_vt`` are, hence their weight in the fused prediction.

**The training loss** (:meth:`LGA.loss`, one episode of N classes, K shots and Q queries per class;
query j has label ``y_j``, support video k label ``y_k``):

.. math::

   \mathcal{L} = w_{ce}\,\frac{1}{NQ}\sum_{j=1}^{NQ} -\log \operatorname{softmax}\big(z_j\big)_{y_j}
   \;+\; w_{vt}\,\frac{1}{N(Q+K)}\sum_{v\,\in\,\text{queries}\,\cup\,\text{supports}}
   -\log \operatorname{softmax}\big(z^{vt}_v\big)_{y_v}

- :math:`z_j` are the logits of the ``train_with`` branch: ``"vv"`` (default, the paper's "for
  stability") :math:`z_j = z^{vv}_j = -d_{vv}(q_j, c) / \tau_{vv}` over the N classes c;
  ``"fused"`` the fused log-probabilities :math:`\alpha \log p_{vv} + (1-\alpha)\log p_{vt}`
  (renormalised); ``"vt"`` :math:`z^{vt}_j`. A row without video-video matching trains on
  :math:`z^{vt}`.
- :math:`z^{vt}_v = \frac{1}{\tau_{vt}}\,\frac{1}{L}\sum_{i=1}^{L}\cos\big(\bar f^{\,v}_{S_i},\, t^{c}_i\big)`
  for each of the episode's N classes c: the video's pooled phase i (``vt_features``) against
  step i of the class's text anatomy (the label prompt when there is no text anatomy). The sum
  runs over the N*Q queries *and* the N*K support videos, each against the episode's N class
  texts (not all training classes): a contrastive video-text loss.
- :math:`w_{ce}` = ``ce_weight`` (1), :math:`w_{vt}` = ``vt_weight`` (1); the second term is
  dropped when ``use_video_text`` is off or ``vt_weight`` is 0. Both means run over the
  ``E`` episodes of a batch too (the engine trains one episode per task).

:data:`ABLATION_ROWS` holds one config per row of the paper's ablation table, :data:`ABLATION_CHAIN`
adds our rows that change one thing at a time (:data:`ABLATION_STEPS`);
:meth:`LGA.explain` returns phases, attention weights and distance matrices for figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from ..anatomy.visual import SEGMENTERS, phase_masks, phase_pool, uniform_segment
from ..anatomy.visual import segment as segment_frames
from ..config.ablations import ABLATION_CONFIG_NAMES, ABLATION_FIELDS, ABLATION_SWITCHES, ablation_head_args
from . import matching
from .baselines import SHOT_RULES, FewShotHead, class_means, logit_scale, merge_shots, per_class_mean_distance, scaled
from .fusion import PhaseFusion, shared_query_text

__all__ = ["LGAConfig", "LGA", "ABLATION_ROWS", "ABLATION_CHAIN", "ABLATION_STEPS", "ABLATION_CONFIG_NAMES",
           "ABLATION_FIELDS", "PAPER_ABLATION_ROWS", "ablation_config", "ablation_head_args"]


@dataclass
class LGAConfig:
    """Every switch of the LGA head. Defaults: full LGA as the summary of the paper describes it ([choose] values
    documented in the module docstring and the book's page *The paper, and how we know it*)."""

    num_phases: int = 3                 # L; must match the number of anatomy steps of class_text
    segmenter: str = "cluster"          # "cluster" | "uniform" | "changepoint" | "given" (ground-truth bounds)
    overlap: int = 1                    # boundary frames borrowed from each neighbouring phase
    use_visual_anatomy: bool = True     # segment the frames into phases
    plain_phases: str = "whole"         # without visual anatomy: "whole" (1 phase) | "uniform" (L, no overlap)
    use_text_anatomy: bool = True       # fuse support phases with their step texts (PhaseFusion)
    use_video_video: bool = True
    use_video_text: bool = True
    alpha: float = 0.5                  # p = p_vv^alpha * p_vt^(1-alpha)
    vv_temperature: float = 0.1         # logits_vv = -d_vv / tau_vv (the initial value when learned)
    vt_temperature: float = 0.07        # logits_vt = cos / tau_vt (CLIP's initial 1/14.3)
    learn_vt_temperature: bool = True   # tau_vt = 1 / exp(s_vt), s_vt a parameter (CLIP's logit scale)
    learn_vv_temperature: bool = False  # the same for tau_vv
    max_logit_scale: float = 100.0      # 1/tau is clamped at this (CLIP: 100)
    shot_rule: str = "prototype"        # K shots, video-video branch: "prototype" | "mean_distance"
    vv_metric: str = "frames"           # "frames" (AB-MHM with fused residuals) | "phases"
    vt_features: str = "pooled"         # "pooled" (CLIP space) | "fused"
    ce_weight: float = 1.0
    vt_weight: float = 1.0              # contrastive video-text loss
    train_with: str = "vv"              # "vv" (paper) | "fused" | "vt"
    num_heads: int = 8                  # fusion attention heads (dim must be divisible)
    fusion_dropout: float = 0.0
    fusion_residual: str = "query"      # "query": LayerNorm(t_i + f_i + a_i) | "visual": LayerNorm(f_i + a_i)
    query_text: str = "none"            # "none" | "shared" (see lga.models.fusion)

    def __post_init__(self):
        checks = [("segmenter", SEGMENTERS + ("given",)), ("plain_phases", ("whole", "uniform")),
                  ("vv_metric", ("frames", "phases")), ("vt_features", ("pooled", "fused")),
                  ("train_with", ("vv", "fused", "vt")), ("query_text", ("none", "shared")),
                  ("fusion_residual", ("visual", "query")), ("shot_rule", SHOT_RULES)]
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"LGAConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not (self.use_video_video or self.use_video_text):
            raise ValueError("LGAConfig: at least one of use_video_video / use_video_text must be on")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"LGAConfig.alpha must be in [0, 1], got {self.alpha}")
        if self.num_phases < 1 or self.overlap < 0:
            raise ValueError("LGAConfig: need num_phases >= 1 and overlap >= 0")
        for name in ("vv_temperature", "vt_temperature", "max_logit_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LGAConfig.{name} must be > 0, got {getattr(self, name)}")

    @property
    def phases_used(self) -> int:
        """How many phases the videos are cut into under this config."""
        if self.use_visual_anatomy or self.plain_phases == "uniform":
            return self.num_phases
        return 1

    def effective(self) -> dict:
        """What this config computes, one entry per component of the ablation table:

        ``segments`` (``"whole"`` video, ``"uniform"`` cuts, or the segmenter that finds the phases),
        ``overlap`` (boundary frames shared by neighbouring phases), ``text_fusion`` (step texts
        fused into the support phases), ``video_video`` and ``video_text`` (the matching branches).
        Two configs with the same entries (and the same other fields) compute the same thing,
        whichever switches spell it (``use_visual_anatomy=False, plain_phases="uniform"`` is
        ``segmenter="uniform", overlap=0``).
        """
        if self.phases_used == 1:
            segments, overlap = "whole", 0
        elif self.use_visual_anatomy:
            segments, overlap = self.segmenter, self.overlap
        else:
            segments, overlap = "uniform", 0
        return {"segments": segments, "overlap": overlap, "text_fusion": self.use_text_anatomy,
                "video_video": self.use_video_video, "video_text": self.use_video_text}

    def to_dict(self) -> dict:
        return asdict(self)


#: The rows of the paper's ablation (HMDB51, Table "components"), as configs. Reported 1/5-shot:
#: 75.8/87.7, 79.9/86.0, 79.6/87.2, 80.8/88.2, 83.1/86.2, 86.8/89.3. Each row's switches, and what it
#: computes, are data in :data:`lga.config.ablations.ABLATION_SWITCHES`.
PAPER_ABLATION_ROWS = ("video-video", "+ visual anatomy", "+ textual anatomy", "both anatomies",
                       "both anatomies, video-text only", "full LGA")

#: The paper's rows plus the three rows (ours) that make every comparison change one thing only
#: (:data:`lga.config.ablations.ABLATION_SWITCHES` says why). Every pair of :data:`ABLATION_STEPS`
#: differs in one entry of :meth:`LGAConfig.effective`.
ABLATION_CHAIN: dict[str, LGAConfig] = {row: LGAConfig(**switches) for row, switches in ABLATION_SWITCHES.items()}
#: the paper's rows of :data:`ABLATION_CHAIN`
ABLATION_ROWS: dict[str, LGAConfig] = {row: ABLATION_CHAIN[row] for row in PAPER_ABLATION_ROWS}

#: ``(row, neighbour, what differs)``: the comparisons of the ablation table, each isolating one
#: entry of :meth:`LGAConfig.effective` (video-text only and full LGA also differ in the branch the
#: cross-entropy trains, which follows from the branches: a row without video-video matching can
#: only train its video-text branch).
ABLATION_STEPS: list[tuple[str, str, str]] = [
    ("uniform thirds", "video-video", "segments"),
    ("uniform thirds + overlap", "uniform thirds", "overlap"),
    ("+ visual anatomy", "uniform thirds + overlap", "segments"),
    ("+ textual anatomy", "uniform thirds", "text_fusion"),
    ("+ textual anatomy + overlap", "+ textual anatomy", "overlap"),
    ("+ textual anatomy + overlap", "uniform thirds + overlap", "text_fusion"),
    ("both anatomies", "+ textual anatomy + overlap", "segments"),
    ("both anatomies", "+ visual anatomy", "text_fusion"),
    ("full LGA", "both anatomies", "video_text"),
    ("full LGA", "both anatomies, video-text only", "video_video"),
]


def ablation_config(name: str, **overrides) -> LGAConfig:
    """A copy of ``ABLATION_CHAIN[name]`` (the paper's rows and ours) with ``overrides`` applied
    (e.g. ``alpha=0.7``)."""
    if name not in ABLATION_CHAIN:
        raise KeyError(f"unknown ablation row {name!r}; rows: {list(ABLATION_CHAIN)}")
    return replace(ABLATION_CHAIN[name], **overrides)


def _given_bounds(bounds: Tensor | None, B: int, T: int, L: int, device) -> Tensor:
    """Ground-truth bounds [B, L+1] checked, on ``device``, every phase holding at least one frame
    (an empty phase takes the nearest frame of a neighbour)."""
    if bounds is None:
        raise ValueError('LGAConfig.segmenter="given" needs the videos\' phase bounds: pass support_bounds / '
                         "query_bounds [E, B, L+1] (the engine gives them from features with phase_bounds)")
    if tuple(bounds.shape) != (B, L + 1):
        raise ValueError(f"phase bounds of shape {tuple(bounds.shape)}, expected {(B, L + 1)} for {L} phases")
    b = bounds.to(device=device, dtype=torch.long).clone()
    b[:, 0], b[:, -1] = 0, T
    for i in range(1, L):                        # at least one frame before bound i, and L - i after it
        b[:, i] = torch.minimum(torch.maximum(b[:, i], b[:, i - 1] + 1), torch.full_like(b[:, i], T - (L - i)))
    return b


class LGA(FewShotHead):
    """The LGA head (see the module docstring). ``dim``: feature size D of frames and texts; the other
    arguments are the fields of :class:`LGAConfig` (:attr:`args_schema`, which configs' ``model.head_args``
    are checked against).

    Book: chapter 6 (fusion), chapter 7 (matching: the head calls :mod:`lga.models.matching`'s
    functions, section 7.3 onwards), chapter 8 (training), chapter 9 (the ablation rows).
    """

    #: the dataclass whose fields are this head's arguments (``model.head_args``), see
    #: :func:`lga.engine.build.check_components`
    args_schema = LGAConfig

    def __init__(self, dim: int, config: LGAConfig | None = None, **overrides):
        super().__init__()
        config = replace(config or LGAConfig(), **overrides)
        self.config, self.dim = config, dim
        self.fusion = None
        if config.use_text_anatomy:
            self.fusion = PhaseFusion(dim, num_heads=config.num_heads, dropout=config.fusion_dropout,
                                      query_text=config.query_text, residual=config.fusion_residual)
        # CLIP-style log-scales s = log(1 / tau): a parameter each, trained when the config says so
        self.vv_scale = logit_scale(config.vv_temperature, config.learn_vv_temperature and config.use_video_video)
        self.vt_scale = logit_scale(config.vt_temperature, config.learn_vt_temperature and config.use_video_text)

    def temperatures(self) -> dict:
        """The current ``{"vv": tau_vv, "vt": tau_vt}`` (after the clamp at ``max_logit_scale``)."""
        cap = self.config.max_logit_scale
        return {k: 1.0 / min(cap, float(p.detach().exp())) for k, p in (("vv", self.vv_scale), ("vt", self.vt_scale))}

    # ------------------------------------------------------------------ steps
    def segment(self, frames: Tensor, bounds: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """frames [B, T, D] -> (bounds [B, L'+1], masks bool [B, L', T]) under the config.

        ``bounds`` [B, L+1]: the videos' phase bounds over their T frames, used by
        ``segmenter="given"`` (ground truth: oracle phases) and ignored otherwise. A given phase
        without a frame (shorter than the sampling stride) takes one frame from a neighbour.
        """
        c = self.config
        B, T, _ = frames.shape
        if c.use_visual_anatomy:
            if c.segmenter == "given":
                bounds = _given_bounds(bounds, B, T, c.num_phases, frames.device)
            else:
                bounds = segment_frames(frames.detach(), c.segmenter, c.num_phases)
            return bounds, phase_masks(bounds, T, c.overlap)
        L = c.phases_used
        bounds = uniform_segment(B, T, L, device=frames.device)
        return bounds, phase_masks(bounds, T, 0)

    @staticmethod
    def _phase_text(class_text: Tensor, L: int) -> Tensor:
        """class_text [..., L_text, D] -> [..., L, D]: as is, or the mean of the steps for one phase."""
        if class_text.shape[-2] == L:
            return class_text
        if L == 1:
            return F.normalize(class_text.mean(dim=-2, keepdim=True), dim=-1)
        raise ValueError(f"class_text has {class_text.shape[-2]} steps but the videos are cut into {L} "
                         "phases: set LGAConfig.num_phases to the anatomy's number of steps")

    def _fuse(self, pooled: Tensor, text: Tensor | None, shared: Tensor | None, want_att: bool):
        """pooled [E, B, L, D], text [E, B, L, D] or None -> fused [E, B, L, D] (and attention)."""
        E, B, L, D = pooled.shape
        flat = pooled.reshape(E * B, L, D)
        if text is not None:
            t = text.reshape(E * B, L, D)
        elif shared is not None:                              # "shared": [E, L, D] per episode
            t = shared[:, None].expand(E, B, L, D).reshape(E * B, L, D)
        else:
            t = None
        out = self.fusion(flat, t, return_attention=want_att)
        fused, att = out if want_att else (out, None)
        fused = fused.view(E, B, L, D)
        return fused, (att.view(E, B, *att.shape[1:]) if att is not None else None)

    def _encode_side(self, frames: Tensor, text: Tensor | None, shared: Tensor | None, want_att: bool,
                     bounds: Tensor | None = None):
        """Segment, pool and (maybe) fuse one side. frames [E, B, T, D], bounds [E, B, L+1] or None."""
        E, B, T, D = frames.shape
        bounds, masks = self.segment(frames.reshape(E * B, T, D),
                                     None if bounds is None else bounds.reshape(E * B, -1))
        L = masks.shape[1]
        pooled = phase_pool(frames.reshape(E * B, T, D), masks).view(E, B, L, D)
        out = {"bounds": bounds.view(E, B, -1), "masks": masks.view(E, B, L, T), "pooled": pooled,
               "fused": pooled, "attention": None}
        if self.fusion is not None:
            out["fused"], out["attention"] = self._fuse(pooled, text, shared, want_att)
        return out

    def fused_residual(self, side: dict) -> Tensor | None:
        """The per-phase offsets ``f~_i - f_{S_i}`` [E, B, L, D] that AB-MHM adds to a video's frames
        (``f~_i`` rescaled to the norm of ``f_{S_i}``); None without fusion. ``side``: the dict of
        :meth:`_encode_side` (``pooled`` and ``fused`` phases [E, B, L, D])."""
        if self.fusion is None:
            return None
        scale = side["pooled"].norm(dim=-1, keepdim=True)
        return F.normalize(side["fused"], dim=-1) * scale - side["pooled"]

    def _vv_frames(self, q: dict, s: dict, q_frames: Tensor, s_frames: Tensor, want: bool):
        """AB-MHM over frames with the fused-phase residual, by :func:`lga.models.matching.ab_mhm_distance`
        (book: chapter 7, section 7.3). Returns d [E, Nq, Ns], its L terms [E, Nq, Ns, L], and (when
        ``want``) the L frame distance matrices [E, Nq, Ns, T, U] it read."""
        rq, rs = self.fused_residual(q), self.fused_residual(s)
        per_phase = matching.ab_mhm_distance(q_frames, q["masks"], s_frames, s["masks"], q_offsets=rq,
                                             s_offsets=rs, per_phase=True)                # [E, Nq, Ns, L]
        mats = (list(matching.phase_distance_matrices(q_frames, s_frames, per_phase.shape[-1], rq, rs))
                if want else [])
        return per_phase.sum(-1), per_phase, mats

    def branches(self, support: Tensor, support_labels: Tensor, query: Tensor, n_way: int,
                 class_text: Tensor | None = None, label_text: Tensor | None = None,
                 details: bool = False, support_bounds: Tensor | None = None,
                 query_bounds: Tensor | None = None) -> dict:
        """Everything the head computes; ``vv`` / ``vt`` logits ``[E, N*Q, N]`` (None when off).

        ``support_bounds`` [E, N*K, L+1] / ``query_bounds`` [E, N*Q, L+1]: phase bounds over the T
        frames (``segmenter="given"``)."""
        c = self.config
        E, S, T, D = support.shape
        L = c.phases_used
        steps = None
        if c.use_text_anatomy:
            if class_text is None:
                raise ValueError("this LGA config uses text anatomy: pass class_text [E, N, L, D] "
                                 "(TextBank.for_episodes)")
            steps = self._phase_text(class_text.to(support.dtype), L)                 # [E, N, L, D]
        out: dict = {"vv": None, "vt": None, "support_side": None}

        if c.use_video_video:
            s_frames, s_labels, s_bounds = support, support_labels, support_bounds
            if c.shot_rule == "prototype" and S > n_way:     # K > 1: one frame-averaged video per class
                s_frames, s_labels = merge_shots(support, support_labels, n_way)
                if s_bounds is not None:                     # [choose]: the shots' bounds, averaged
                    s_bounds = class_means(s_bounds.to(support.dtype), support_labels, n_way).round().long()
            S_vv = s_frames.shape[1]
            s_text = None
            shared = None
            if self.fusion is not None:
                s_text = steps.gather(1, s_labels[:, :, None, None].expand(E, S_vv, L, D))
                if c.query_text == "shared":
                    shared = shared_query_text(steps)                                 # [E, L, D]
            sd = self._encode_side(s_frames, s_text, None, details, s_bounds)
            qd = self._encode_side(query, None, shared, details, query_bounds)
            if c.vv_metric == "frames":
                d, per_phase, mats = self._vv_frames(qd, sd, query, s_frames, details)
                d_cls = per_class_mean_distance(d, s_labels, n_way)
            else:
                sf = F.normalize(sd["fused"], dim=-1).flatten(2)                      # [E, S, L*D]
                protos = class_means(sf, s_labels, n_way).view(E, n_way, L, D)        # mean over K shots
                qn = F.normalize(qd["fused"], dim=-1)                                 # [E, Nq, L, D]
                per_phase = 1 - torch.einsum("eqld,enld->eqnl", qn, F.normalize(protos, dim=-1))
                d = d_cls = per_phase.sum(-1)
                mats = []
            out["vv"] = scaled(-d_cls, self.vv_scale, c.max_logit_scale)
            out["d_vv"] = d_cls
            out["support_side"] = sd                       # per support video, or per prototype when merged
            out["support_merged"] = S_vv != S
            if details:
                out.update(query_side=qd, vv_per_phase=per_phase, vv_video_distance=d,
                           frame_distances=mats)
        else:
            qd = None
            if details:                                    # query phases, for figures only
                shared = shared_query_text(steps) if self.fusion is not None and c.query_text == "shared" else None
                qd = out["query_side"] = self._encode_side(query, None, shared, True, query_bounds)

        if c.use_video_text:
            out["vt"] = self._vt_logits(query, qd, steps, label_text, L, query_bounds)
            if details:
                out["vt_similarity"] = out["vt"] * self.temperatures()["vt"]
        return out

    def _vt_logits(self, videos: Tensor, side: dict | None, steps: Tensor | None,
                   label_text: Tensor | None, L: int, bounds: Tensor | None = None) -> Tensor:
        """Video-text logits [E, B, N] of videos [E, B, T, D] (bounds [E, B, L+1] or None)."""
        c = self.config
        if c.use_text_anatomy:
            if c.vt_features == "fused" and self.fusion is not None:
                if side is None or side["fused"] is side["pooled"]:
                    shared = shared_query_text(steps) if c.query_text == "shared" else None
                    side = self._encode_side(videos, None, shared, False, bounds)
                phases = side["fused"]
            elif side is not None:
                phases = side["pooled"]
            else:
                E, B, T, D = videos.shape
                _, masks = self.segment(videos.reshape(E * B, T, D),
                                        None if bounds is None else bounds.reshape(E * B, -1))
                phases = phase_pool(videos.reshape(E * B, T, D), masks).view(E, B, L, D)
            return scaled(matching.video_text_similarity(phases, steps), self.vt_scale, c.max_logit_scale)
        if label_text is None:
            raise ValueError("video-text matching without text anatomy needs label_text [E, N, D]")
        # the whole video is one phase, the label prompt its one step text
        sim = matching.video_text_similarity(videos.mean(dim=2, keepdim=True),            # [E, B, 1, D]
                                             label_text.to(videos.dtype)[:, :, None])     # [E, N, 1, D]
        return scaled(sim, self.vt_scale, c.max_logit_scale)

    def combine(self, vv: Tensor | None, vt: Tensor | None) -> Tensor:
        """Inference scores: fused log-probabilities, or the one branch that is on."""
        if vv is None:
            return vt
        if vt is None:
            return vv
        return matching.fuse_log_probabilities(vv.log_softmax(-1), vt.log_softmax(-1), self.config.alpha)

    # ------------------------------------------------------------------ interface
    def forward(self, support: Tensor, support_labels: Tensor, query: Tensor, n_way: int, *,
                class_text: Tensor | None = None, label_text: Tensor | None = None,
                return_details: bool = False, support_bounds: Tensor | None = None,
                query_bounds: Tensor | None = None, **text):
        b = self.branches(support, support_labels, query, n_way, class_text, label_text, return_details,
                          support_bounds, query_bounds)
        logits = self.combine(b["vv"], b["vt"])
        return (logits, b) if return_details else logits

    def loss(self, support: Tensor, support_labels: Tensor, query: Tensor, query_labels: Tensor,
             n_way: int, *, class_text: Tensor | None = None, label_text: Tensor | None = None,
             support_bounds: Tensor | None = None, query_bounds: Tensor | None = None, **text):
        c = self.config
        b = self.branches(support, support_labels, query, n_way, class_text, label_text,
                          support_bounds=support_bounds, query_bounds=query_bounds)
        logits = self.combine(b["vv"], b["vt"])
        if c.train_with == "vv" and b["vv"] is not None:
            train = b["vv"]
        elif c.train_with == "vt" or b["vv"] is None:
            train = b["vt"]
        else:
            train = logits
        loss = c.ce_weight * F.cross_entropy(train.flatten(0, 1), query_labels.flatten())
        if c.use_video_text and c.vt_weight:
            steps = None
            if c.use_text_anatomy:
                steps = self._phase_text(class_text.to(support.dtype), c.phases_used)
            # the support side of the video-video branch, when it has one entry per support video
            # ("fused" phases carry their class's text: support video-text logits are made without it)
            reuse = c.vt_features == "pooled" and not b.get("support_merged", False)
            side = b["support_side"] if reuse else None
            vt_s = self._vt_logits(support, side, steps, label_text, c.phases_used, support_bounds)
            vt_all = torch.cat([b["vt"], vt_s], dim=1).flatten(0, 1)
            target = torch.cat([query_labels, support_labels], dim=1).flatten()
            loss = loss + c.vt_weight * F.cross_entropy(vt_all, target)
        return loss, logits

    @torch.no_grad()
    def explain(self, support: Tensor, support_labels: Tensor, query: Tensor, n_way: int,
                class_text: Tensor | None = None, label_text: Tensor | None = None,
                support_bounds: Tensor | None = None, query_bounds: Tensor | None = None) -> dict:
        """Everything behind one prediction, for figures (no gradients).

        Keys: ``logits`` [E,Nq,N]; ``vv`` / ``vt`` branch logits (None when off); ``d_vv`` class
        distances [E,Nq,N]; ``vv_video_distance`` [E,Nq,Ns] (per support video); ``vv_per_phase``
        [E,Nq,Ns,L] ("frames") or [E,Nq,N,L] ("phases"); ``frame_distances``: a list with, per
        phase, the frame cosine-distance matrices [E,Nq,Ns,T,U] AB-MHM read (with the fused
        residual added; one shared matrix without fusion); ``support_side`` (one entry per support
        video, or per class prototype under ``shot_rule="prototype"`` with K > 1) / ``query_side``:
        dicts with ``bounds`` [E,B,L+1], ``masks`` [E,B,L,T], ``pooled`` / ``fused`` phases
        [E,B,L,D] and ``attention`` [E,B,H,L,L] (None without fusion); ``vt_similarity`` [E,Nq,N].
        """
        logits, b = self(support, support_labels, query, n_way, class_text=class_text,
                         label_text=label_text, return_details=True, support_bounds=support_bounds,
                         query_bounds=query_bounds)
        b["logits"] = logits
        return b

    def extra_repr(self) -> str:
        return f"dim={self.dim}, config={self.config}"
