"""Fine-grained fusion: let each visual phase attend to all phases, guided by its text step.

For a video with phase features f_1..f_L (from visual anatomy) and, for a support video, the text
features t_1..t_L of its class's L atomic-action descriptions (from text anatomy):

    Q_i = t_i + f_i          K_j = V_j = f_j          (j = 1..L)
    a_i = MultiHeadAttention(Q_i, K, V)
    f~_i = LayerNorm(Q_i + a_i)

Choices the paper leaves open (each a constructor option, so a reader can ablate it):

- ``query_text``: query videos have no label, hence no text.
    * "none"   (default): queries use ``Q_i = f_i``; call ``forward(phases)`` with ``text=None``.
    * "shared": queries use one text shared by every class, which the caller passes; for example
      :func:`shared_query_text` (the mean over the episode's classes of t_i, per phase). The query
      then sees the same kind of input as the supports without peeking at any label.
- ``residual``: what the attention output is added to.
    * "query" (default): ``Q_i + a_i``, the textbook cross-attention block; the text is added into
      the support features (support and query differ by t_i when queries have no text).
    * "visual": ``f_i + a_i``. Text only steers *where* each phase looks, through the attention
      weights. With L = 3 phases and L2-normalised CLIP features the attention logits start near
      0, the weights near 1/3, and in our runs training did not move them: the text then changes
      nothing (book chapters 6 and 9 measure this). Kept for the ablation.
- Post-norm (LayerNorm after the residual), as in the original Transformer, so the output scale
  is fixed whatever the input scale. One attention layer, no feed-forward block.

Shapes: B videos, L phases, D feature size, H heads.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

QUERY_TEXT_MODES = ("none", "shared")
RESIDUAL_MODES = ("visual", "query")


class PhaseFusion(nn.Module):
    """Multi-head cross-attention over the L phases of each video (one layer, residual, LayerNorm)."""

    def __init__(self, dim: int, num_heads: int = 8, dropout: float = 0.0,
                 query_text: str = "none", residual: str = "query"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        if query_text not in QUERY_TEXT_MODES:
            raise ValueError(f"query_text must be one of {QUERY_TEXT_MODES}, got {query_text!r}")
        if residual not in RESIDUAL_MODES:
            raise ValueError(f"residual must be one of {RESIDUAL_MODES}, got {residual!r}")
        self.dim, self.num_heads, self.query_text, self.residual = dim, num_heads, query_text, residual
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, phases: Tensor, text: Tensor | None = None, return_attention: bool = False):
        """Fuse phases, optionally guided by text.

        Args:
            phases: ``[B, L, D]`` visual phase features f_i.
            text: ``[B, L, D]`` text features t_i (supports), or ``[L, D]`` broadcast to every
                video (the "shared" query text), or None (queries under ``query_text="none"``).
            return_attention: also return the attention weights.

        Returns:
            fused ``[B, L, D]``, and attention weights ``[B, H, L, L]`` (rows sum to 1) when
            ``return_attention``.
        """
        B, L, D = phases.shape
        H = self.num_heads
        if text is None and self.query_text == "shared":
            raise ValueError('query_text="shared" needs text for query videos too: pass '
                             "shared_query_text(class_text) (shape [L, D]) as text")
        q_in = phases if text is None else phases + text          # [B, L, D]  Q_i = t_i + f_i

        def heads(x: Tensor) -> Tensor:                            # [B, L, D] -> [B, H, L, D/H]
            return x.view(B, L, H, D // H).transpose(1, 2)

        q, k, v = heads(self.q_proj(q_in)), heads(self.k_proj(phases)), heads(self.v_proj(phases))
        att = (q @ k.transpose(-2, -1)) * (D // H) ** -0.5         # [B, H, L, L] query phase i, key phase j
        att = att.softmax(dim=-1)
        out = self.attn_drop(att) @ v                               # [B, H, L, D/H]
        out = out.transpose(1, 2).reshape(B, L, D)                  # [B, L, D] heads side by side
        out = self.out_drop(self.out_proj(out))
        base = phases if self.residual == "visual" else q_in
        fused = self.norm(base + out)                               # [B, L, D]
        return (fused, att) if return_attention else fused


def prototypes(fused_support: Tensor) -> Tensor:
    """Class prototypes: mean over the K shots, phase by phase.

    fused_support: [N, K, L, D] (or [E, N, K, L, D] for E episodes) -> [N, L, D] ([E, N, L, D]).
    """
    return fused_support.mean(dim=-3)


def shared_query_text(class_text: Tensor) -> Tensor:
    """The text given to queries under ``query_text="shared"``: the mean over classes, per phase.

    class_text: [N, L, D] (the episode's N classes) -> [L, D].
    """
    return class_text.mean(dim=-3)


def attention_stats(attention: Tensor) -> dict:
    """How far attention weights are from uniform: a figure for "did the fusion learn where to look".

    attention: ``[..., L, L]`` (rows sum to 1; e.g. ``LGA.explain(...)["support_side"]["attention"]``,
    ``[E, B, H, L, L]``). Returns floats averaged over every row: ``entropy`` normalised by
    ``log L`` (1: uniform, 0: one-hot), ``max_weight`` (1/L when uniform), ``diagonal``
    (the weight a phase gives itself; 1/L when uniform) and ``uniform`` = 1/L.
    """
    L = attention.shape[-1]
    a = attention.detach().float()
    entropy = -(a * a.clamp_min(1e-12).log()).sum(-1) / max(torch.log(torch.tensor(float(L))).item(), 1e-12)
    return {"entropy": float(entropy.mean()), "max_weight": float(a.amax(-1).mean()),
            "diagonal": float(a.diagonal(dim1=-2, dim2=-1).mean()), "uniform": 1.0 / L}
