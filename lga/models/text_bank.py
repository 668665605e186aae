"""The text features of a split's classes, encoded once and gathered per episode.

A :class:`TextBank` holds, for the C classes of one split (in the split's label order, the order of
``class_names`` of :class:`lga.data.dataset.VideoDataset`):

- ``steps``  ``[C, L, D]``  the text features of each class's L anatomy step descriptions;
- ``labels`` ``[C, D]``     the text feature of each class's label prompt.

:meth:`TextBank.for_episodes` turns the dataset labels of a batch of episodes (``Episode.classes``,
``[E, N]``) into the ``class_text`` / ``label_text`` keywords every head accepts.

Label prompt: ``label_template.format(label=...)``; the default ``"a video of a person {label}."`` is
the CLIP-style prompt of the action-recognition literature (CLIP-FSAR prompts "a photo of {}"; for
videos of people acting "a video of a person ..." reads as a sentence for most HMDB51/UCF101/Kinetics
labels). For AtomicActions, whose labels are invented verbs plus an object, ``"{label}"`` is the
honest choice. The label is the anatomy file's ``label`` field of the class (its display name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..anatomy.shipped import Anatomy, load_anatomy

__all__ = ["DEFAULT_LABEL_TEMPLATE", "TextBank"]

DEFAULT_LABEL_TEMPLATE = "a video of a person {label}."


def _as_anatomy(anatomy):
    if isinstance(anatomy, Anatomy):
        return anatomy
    if isinstance(anatomy, dict):
        return Anatomy(anatomy)
    return load_anatomy(anatomy)  # a path, a dataset root, or a shipped dataset name


class TextBank:
    """Class text features of one split (see the module docstring)."""

    def __init__(self, steps: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                 step_texts: Sequence[Sequence[str]] | None = None,
                 label_texts: Sequence[str] | None = None,
                 label_template: str = DEFAULT_LABEL_TEMPLATE):
        if steps.ndim != 3 or labels.ndim != 2 or steps.shape[0] != labels.shape[0] \
                or steps.shape[-1] != labels.shape[-1] or len(class_names) != steps.shape[0]:
            raise ValueError(f"inconsistent bank: steps {tuple(steps.shape)}, labels {tuple(labels.shape)}, "
                             f"{len(class_names)} class names")
        self.steps, self.labels = steps, labels
        self.class_names = list(class_names)
        self.step_texts = [list(s) for s in step_texts] if step_texts is not None else None
        self.label_texts = list(label_texts) if label_texts is not None else None
        self.label_template = label_template

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, anatomy, class_names: Sequence[str], model=None, tokenizer=None, *,
              encode: Callable[[list[str]], torch.Tensor] | None = None,
              label_template: str = DEFAULT_LABEL_TEMPLATE) -> "TextBank":
        """Encode the anatomy steps and label prompts of ``class_names``.

        Args:
            anatomy: an :class:`lga.anatomy.shipped.Anatomy`, an ``lga-anatomy/1`` dict, a path to
                one, a prepared dataset root (its ``anatomy.json``), or a shipped dataset name.
            class_names: the split's classes in label order; looked up tolerantly in the anatomy.
            model, tokenizer: a CLIP and its tokenizer, encoded with
                :func:`lga.models.backbone.encode_text` (L2-normalised features); or
            encode: any ``list[str] -> [n, D]`` text encoder instead.
        """
        if encode is None:
            if model is None or tokenizer is None:
                raise ValueError("TextBank.build needs a text encoder: model and tokenizer, or encode=")
            from .backbone import encode_text  # heavy: open_clip, only without encode=

            def encode(texts):
                return encode_text(model, tokenizer, texts)
        anatomy = _as_anatomy(anatomy)
        missing = anatomy.missing(class_names)
        if missing:
            raise KeyError(f"{anatomy.source}: no anatomy for classes {missing}")
        entries = [anatomy.lookup(n) for n in class_names]
        step_texts = [e.descriptions for e in entries]
        L = len(step_texts[0]) if step_texts else 0
        label_texts = [label_template.format(label=e.label) for e in entries]
        with torch.no_grad():
            flat = encode([t for s in step_texts for t in s]).float()
            labels = encode(label_texts).float()
        steps = flat.view(len(entries), L, -1)
        return cls(steps.cpu(), labels.cpu(), class_names, step_texts, label_texts, label_template)

    # ------------------------------------------------------------------ use
    @property
    def num_steps(self) -> int:
        return self.steps.shape[1]

    @property
    def dim(self) -> int:
        return self.steps.shape[-1]

    def to(self, device) -> "TextBank":
        """Move the tensors (in place) and return self."""
        self.steps, self.labels = self.steps.to(device), self.labels.to(device)
        return self

    def for_episodes(self, classes) -> dict[str, torch.Tensor]:
        """Class texts of a batch of episodes.

        classes: LongTensor (or array) ``[E, N]`` (or ``[N]``) of split labels ->
        ``{"class_text": [E, N, L, D], "label_text": [E, N, D]}`` on the bank's device.
        """
        idx = torch.as_tensor(classes, dtype=torch.long, device=self.steps.device)
        squeeze = idx.ndim == 1
        if squeeze:
            idx = idx[None]
        out = {"class_text": self.steps[idx], "label_text": self.labels[idx]}
        return {k: v[0] for k, v in out.items()} if squeeze else out

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank as one safetensors file (tensors, plus class names and texts as metadata)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": "lga-text-bank/1", "class_names": json.dumps(self.class_names),
                "step_texts": json.dumps(self.step_texts), "label_texts": json.dumps(self.label_texts),
                "label_template": self.label_template}
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"steps": self.steps.detach().cpu().contiguous(),
                   "labels": self.labels.detach().cpu().contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device="cpu") -> "TextBank":
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if meta.get("format") != "lga-text-bank/1":
                raise ValueError(f"{path}: not an lga text bank (format={meta.get('format')!r})")
            steps, labels = f.get_tensor("steps"), f.get_tensor("labels")
        return cls(steps, labels, json.loads(meta["class_names"]), json.loads(meta["step_texts"]),
                   json.loads(meta["label_texts"]), meta.get("label_template", DEFAULT_LABEL_TEMPLATE))

    def __repr__(self) -> str:
        return (f"TextBank(classes={len(self.class_names)}, steps={self.num_steps}, dim={self.dim}, "
                f"label_template={self.label_template!r})")
