"""Few-shot heads on a frozen backbone: encode every video of a split once, then train and compare heads.

This is the protocol of the book's results chapter (9) and of chapter 10's exercises: the CLIP stays
frozen, so a split's frame features are computed once, and a head (ProtoNet, OTAM, the label-only
baseline or any LGA ablation row) trains in seconds on the cached features and is scored on
thousands of episodes that are the same for every head::

    train = SplitFeatures.encode(clip_model, tokenizer, root, "train", per_class=12)
    test = SplitFeatures.encode(clip_model, tokenizer, root, "test")
    head = LGA(test.dim, ABLATION_ROWS["full LGA"])
    history = train_head(head, train, k_shot=1, steps=500)          # TrainHistory (loss, accuracy)
    result = evaluate_episodes(head, test.features, test.labels, test.sampler(5, 1, 1, seed=0),
                               text_bank=test.bank)

Heads without trainable parameters (ProtoNet, OTAM, AB-MHM without fusion, video-text matching)
are returned untouched by :func:`train_head`. What the full engine (:mod:`lga.engine.train`) adds on
top: fine-tuning the backbone, random training frames, schedules, checkpoints and resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.episodes import EpisodeSampler
from .train import TrainHistory

__all__ = ["SplitFeatures", "train_head", "trainable_parameters"]


@dataclass
class SplitFeatures:
    """A split's cached frame features and class texts.

    Attributes:
        features: float32 ``[V, T, D]`` L2-normalised CLIP frame features (deterministic test frames).
        labels: int64 ``[V]`` split-local labels.
        keys: the V videos (``class_dir/video_id``).
        bank: :class:`lga.models.text_bank.TextBank` of the split's classes (steps ``[C, L, D]``,
            labels ``[C, D]``).
    """

    features: torch.Tensor
    labels: np.ndarray
    keys: list
    bank: object
    split: str = ""

    @property
    def dim(self) -> int:
        return int(self.features.shape[-1])

    @property
    def class_names(self) -> list[str]:
        return self.bank.class_names

    @classmethod
    def encode(cls, clip_model, tokenizer, root: str | os.PathLike, split: str, num_frames: int = 8,
               per_class: int | None = None, anatomy=None, label_template: str = "{label}",
               batch_size: int = 64, progress: bool = False) -> "SplitFeatures":
        """Encode a split of a prepared dataset once with a frozen CLIP.

        Args:
            per_class: keep only the first ``per_class`` videos of each class (a smaller training
                pool; None: every video).
            anatomy: the step texts (anything :meth:`TextBank.build` takes); default: the
                dataset's own ``anatomy.json``.
            label_template: how a class label becomes a sentence for the label text.
        Unreadable videos are skipped (see :func:`lga.engine.evaluate.encode_split`).
        """
        from ..data.dataset import VideoDataset
        from ..models.backbone_encoder import ClipFrameEncoder
        from ..models.text_bank import TextBank
        from .evaluate import encode_split

        ds = VideoDataset(root, split, num_frames=num_frames, mode="test")
        if per_class is not None:
            if per_class < 1:
                raise ValueError(f"per_class must be >= 1, got {per_class}")
            seen: dict[int, int] = {}
            keep = []
            for it in ds.items:
                if seen.get(it.label, 0) < per_class:
                    keep.append(it)
                    seen[it.label] = seen.get(it.label, 0) + 1
            ds.items = keep
        encoder = ClipFrameEncoder(clip_model, tokenizer)
        with torch.no_grad():
            feats, labels, keys, _ = encode_split(encoder, ds, batch_size=batch_size, progress=progress)
        bank = TextBank.build(anatomy if anatomy is not None else root, ds.class_names, clip_model, tokenizer,
                              label_template=label_template)
        return cls(feats, labels.numpy(), keys, bank, split)

    def with_text(self, clip_model, tokenizer, anatomy, label_template: str = "{label}") -> "SplitFeatures":
        """The same videos with the class texts of another ``anatomy`` (e.g. a noisy one)."""
        from ..models.text_bank import TextBank
        bank = TextBank.build(anatomy, self.class_names, clip_model, tokenizer, label_template=label_template)
        return replace(self, bank=bank)

    def sampler(self, n_way: int = 5, k_shot: int = 1, queries: int = 1, seed: int = 0,
                num_episodes: int | None = None) -> EpisodeSampler:
        """Episodes over this split's videos (episode i is the same for every head)."""
        return EpisodeSampler(self.labels, n_way, k_shot, queries, seed=seed, num_episodes=num_episodes)


def trainable_parameters(head: torch.nn.Module) -> int:
    """Number of trainable parameters of a head (0: nothing to train)."""
    return sum(p.numel() for p in head.parameters() if p.requires_grad)


def train_head(head: torch.nn.Module, data: SplitFeatures, n_way: int = 5, k_shot: int = 1,
               queries: int = 5, steps: int = 500, lr: float = 1e-3, weight_decay: float = 0.0,
               seed: int = 0, progress: bool = True, desc: str = "training the head") -> TrainHistory:
    """Meta-train a head's parameters on cached features: one episode per step, Adam, cosine LR.

    Episode i comes from ``data.sampler(n_way, k_shot, queries, seed=seed)`` and dropout follows
    ``torch.manual_seed(seed)`` at the call; the initial weights are the head's own (seed torch before
    building it), so the same seeds give the same trained head.
    The head must offer ``loss(support [1,N*K,T,D], support_labels, query [1,N*Q,T,D], query_labels,
    n_way, class_text=[1,N,L,D], label_text=[1,N,D])``. Returns the per-step loss and training
    accuracy (empty lists if the head has nothing to train, or if its loss does not depend on its
    parameters, e.g. an LGA row whose fusion layer never reaches its matching); the head is left in
    eval mode.
    """
    hist = TrainHistory()
    params = [p for p in head.parameters() if p.requires_grad]
    if not params:
        head.eval()
        return hist
    torch.manual_seed(seed)
    sampler = data.sampler(n_way, k_shot, queries, seed=seed)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    head.train()
    for step in tqdm(range(steps), desc=desc, disable=not progress):
        ep = sampler.batch(step, 1)                                    # every field [1, ...]
        s, q = torch.from_numpy(ep.support), torch.from_numpy(ep.query)
        q_lab = torch.from_numpy(ep.query_labels)
        loss, logits = head.loss(data.features[s], torch.from_numpy(ep.support_labels), data.features[q],
                                 q_lab, n_way, **data.bank.for_episodes(ep.classes))
        if step == 0 and not loss.requires_grad:          # parameters that never reach the loss
            break
        if not torch.isfinite(loss):
            raise FloatingPointError(f"train_head: non-finite loss at step {step}; lower lr (now {lr})")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        hist.loss.append(loss.item())
        hist.accuracy.append((logits.argmax(-1) == q_lab).float().mean().item())
    head.eval()
    return hist
