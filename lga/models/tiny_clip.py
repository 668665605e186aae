"""Training the tiny CLIP of the ``cpu`` profile (book chapter 3).

A real open_clip CLIP, a few million parameters, trained from scratch with CLIP's contrastive
objective on (image, text) pairs; on AtomicActions the pairs are frames of each phase of the
base-class videos with that phase's atomic description. The result is saved as an open_clip
``local-dir`` checkpoint and read back by :func:`lga.models.backbone.load_clip`, the loader that
also reads the OpenAI weights.

The loss is CLIP's symmetric InfoNCE with a learnable temperature, in a form that stays correct
when a batch holds several images of the same text (frames of one phase share a description):
with B images, the U distinct texts among them, and ``s = exp(logit_scale)``,

    L_i2t = mean_i  CE(s * <v_i, t_u>,  u = text of i)                       (one positive text)
    L_t2i = mean_u  -sum_{i: text(i)=u} (1/n_u) log softmax_i(s * <v_i, t_u>)  (n_u positive images)
    L     = (L_i2t + L_t2i) / 2

which is exactly CLIP's loss when every text in the batch is distinct.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
import yaml
from tqdm.auto import tqdm

from ..config import ConfigError, find_config
from ..data.atomic_actions import get_atomic_actions, load_classes, phase_pairs
from ..optim import LRSchedule, build_optimizer, optimizer_step
from ..util.files import atomic_write_text
from ..util.paths import data_dir
from ..yaml_io import DuplicateKeyError, load_yaml
from .tiny_clip_shipped import SHIPPED_DIR, SHIPPED_NAME, SHIPPED_RECORD, install_shipped_tiny_clip, ship_tiny_clip
from .backbone import (
    DEFAULT_TINY_MODEL,
    autocast_for,
    encode_images,
    encode_text,
    get_model_cfg,
    is_clip_checkpoint,
    load_clip,
    prepare_images,
    save_clip_checkpoint,
)

__all__ = ["TRAIN_LOG_FILE", "TINY_CLIP_RECIPE", "TINY_CLIP_RECIPE_FILE", "load_tiny_clip_recipe", "tiny_clip_recipe", "contrastive_loss", "train_tiny_clip",
           "get_or_train_tiny_clip", "read_train_log", "retrieval_accuracy", "TINY_CLIP_PAIRS",
           "get_or_train_atomic_actions_clip", "TINY_CLIP_SEED_ENV", "book_tiny_clip", "book_tiny_clip_seed",
           "book_tiny_clip_dir", "ATOM_PARTS", "atom_retrieval", "retrain_and_ship", "main"]

log = logging.getLogger(__name__)

TRAIN_LOG_FILE = "lga_train_log.json"
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the temperature at 1/100


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    text_index: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE, duplicate-aware.

    Args:
        image_features: [B,D] L2-normalised image embeddings.
        text_features: [U,D] L2-normalised embeddings of the distinct texts of the batch.
        text_index: [B] long, the row of ``text_features`` that describes each image.
        logit_scale: scalar, log of the inverse temperature.
    """
    logits = logit_scale.exp() * image_features @ text_features.T  # [B,U]
    loss_i2t = F.cross_entropy(logits, text_index)
    positives = F.one_hot(text_index, text_features.shape[0]).T.to(logits.dtype)  # [U,B]
    targets = positives / positives.sum(dim=1, keepdim=True)
    loss_t2i = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return (loss_i2t + loss_t2i) / 2


def _materialise(
    pairs: Sequence, image_size: tuple[int, int], interpolation: str, progress: bool
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Read every pair once: images -> uint8 [N,S,S,3] at the model's size; texts -> (distinct
    texts in order of first appearance, [N] index into them)."""
    n = len(pairs)
    if n == 0:
        raise ValueError("no training pairs")
    images = torch.empty(n, image_size[0], image_size[1], 3, dtype=torch.uint8)
    vocab: dict[str, int] = {}
    index = torch.empty(n, dtype=torch.long)
    for i in tqdm(range(n), desc="reading pairs", disable=not progress, leave=False):
        image, text = pairs[i]
        img = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image
        if img.dtype != torch.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"pair {i}: expected an image uint8 [H,W,3], got {img.dtype} {tuple(img.shape)}")
        if tuple(img.shape[:2]) != tuple(image_size):
            x = prepare_images(img.permute(2, 0, 1)[None], image_size, interpolation=interpolation)
            img = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
        images[i] = img
        index[i] = vocab.setdefault(str(text), len(vocab))
    return images, list(vocab), index


def _shift(batch: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``max_shift`` px (edge padding), one offset per image. No flips:
    flipping would turn "to the left" into "to the right"."""
    if max_shift <= 0:
        return batch
    n, _, h, w = batch.shape
    padded = F.pad(batch, (max_shift,) * 4, mode="replicate")
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs.tolist())])


def train_tiny_clip(
    pairs: Sequence,
    config: str | dict = DEFAULT_TINY_MODEL,
    seed: int = 0,
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    weight_decay: float = 0.1,
    warmup_steps: int | None = None,
    max_shift: int | None = None,
    device: str | torch.device = "cpu",
    grad_clip: float = 1.0,
    stop_after: int | None = None,
) -> tuple[nn.Module, list[float]]:
    """Train a CLIP from scratch on ``pairs`` with the contrastive loss; return ``(model, losses)``.

    Args:
        pairs: indexable, ``len(pairs)`` items, each ``(image, text)`` with image uint8 [H,W,3]
            (numpy or torch; resized to the model's size once, up front) and text a string.
        config: a registered open_clip model name (default ``lga-tiny-vit-64``) or a config dict.
        seed: everything random (initial weights, batches, shifts) follows from it; on CPU two runs
            with the same seed give the same loss history.
        steps, batch_size, lr: AdamW steps (betas 0.9/0.98, eps 1e-6, weight decay on matrices
            only), linear warm-up for ``warmup_steps`` (default 10%) then cosine decay to 0.
        out_dir: if given, the trained model is saved there as a ``local-dir`` checkpoint, with the
            settings and loss history in ``lga_train_log.json``.
        max_shift: random translation augmentation in pixels (default image size / 16; 0 = off).
        device: CUDA trains under bf16/fp16 autocast; CPU in fp32.
        stop_after: run only the first ``stop_after`` steps of the ``steps``-step schedule (same
            warm-up and decay, same batches), e.g. to replay the start of a recorded run; nothing is
            saved (``out_dir`` must be None).

    Returns the trained model in eval mode and the loss of every step.
    """
    if stop_after is not None and out_dir is not None:
        raise ValueError("stop_after runs part of a recipe: it saves no checkpoint (give out_dir=None)")
    t0 = time.time()
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        model, info, tokenizer = load_clip(config, device=device)
    gen = torch.Generator().manual_seed(seed)
    images, texts, text_index = _materialise(pairs, info.image_size, info.interpolation, progress)
    tokens = tokenizer(texts)  # [U, context_length]
    n = images.shape[0]
    batch_size = min(batch_size, n)
    warmup = max(1, steps // 10) if warmup_steps is None else max(1, warmup_steps)
    shift = max(1, info.image_size[0] // 16) if max_shift is None else max_shift

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        p.requires_grad_(True)
        is_matrix = p.ndim >= 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(p)
    # the engine's optimizer factory and schedule (lga.optim): AdamW, open_clip's warm-up, cosine
    opt = build_optimizer([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                          "adamw", lr, betas=(0.9, 0.98), eps=1e-6)
    schedule = LRSchedule.in_steps("cosine", steps, warmup, warmup="open_clip")
    params = list(model.parameters())

    dev = next(model.parameters()).device
    model.train()
    losses: list[float] = []
    order = torch.randperm(n, generator=gen)
    cursor = 0
    bar = tqdm(range(steps if stop_after is None else min(steps, stop_after)), desc="training tiny CLIP",
               disable=not progress)
    for step in bar:
        if cursor + batch_size > n:  # a new epoch: reshuffle
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size

        x = _shift(images[idx].permute(0, 3, 1, 2).float() / 255.0, shift, gen)
        x = prepare_images(x.to(dev), info.image_size, info.mean, info.std, info.interpolation, info.resize_mode)
        uniq, inverse = torch.unique(text_index[idx], return_inverse=True)

        def batch_loss(batch):
            x, uniq, inverse = batch
            with autocast_for(model):
                img = F.normalize(model.encode_image(x).float(), dim=-1)
                txt = F.normalize(model.encode_text(tokens[uniq].to(dev)).float(), dim=-1)
            return (contrastive_loss(img, txt, inverse.to(dev), model.logit_scale.float()),)

        (loss,), = optimizer_step(opt, schedule, step, [(x, uniq, inverse)], batch_loss, params=params,
                                  grad_clip=grad_clip).outputs
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        losses.append(float(loss.detach()))
        if progress:
            bar.set_postfix(loss=f"{losses[-1]:.3f}", T=f"{1 / model.logit_scale.exp().item():.3f}")
    bar.close()
    model.eval()
    seconds = time.time() - t0

    if out_dir is not None:
        settings = _settings(config, seed, steps, batch_size, lr, weight_decay, warmup, shift)
        train_log = {"settings": settings, "n_pairs": n, "n_texts": len(texts), "seconds": seconds,
                     "threads": torch.get_num_threads(), "torch": torch.__version__,
                     "tokens_used": sorted(set(int(i) for i in tokens.flatten().tolist())), "losses": losses}
        save_clip_checkpoint(model, out_dir, get_model_cfg(model),
                             extra_files={TRAIN_LOG_FILE: json.dumps(train_log, indent=1)},
                             metadata={"trained_by": "lga.models.tiny_clip.train_tiny_clip",
                                       "settings": settings})
    return model, losses


def _settings(config, seed, steps, batch_size, lr, weight_decay, warmup, shift) -> dict[str, Any]:
    return {"config": config, "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
            "weight_decay": weight_decay, "warmup_steps": warmup, "max_shift": shift}


def read_train_log(out_dir: str | Path) -> dict | None:
    """The settings and loss history saved beside a tiny-CLIP checkpoint (None if absent)."""
    path = Path(out_dir) / TRAIN_LOG_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def get_or_train_tiny_clip(
    out_dir: str | Path,
    make_pairs: Callable[[], Sequence],
    *,
    device: str | torch.device = "cpu",
    retrain: bool = False,
    progress: bool = True,
    **train_kwargs: Any,
) -> tuple[nn.Module, Any, Callable]:
    """Load the tiny CLIP saved in ``out_dir``, or train it (on ``make_pairs()``) and save it there.

    Either way the model comes back through :func:`~lga.models.backbone.load_clip`, so a trained and
    a loaded model are the same object, read from the same file: returns ``(model, transform,
    tokenizer)`` like ``load_clip``. ``train_kwargs`` go to :func:`train_tiny_clip`; a checkpoint
    whose recorded settings differ from the ones given there is retrained (``retrain=True`` forces
    it), so a changed recipe never silently reuses stale weights.
    """
    out_dir = Path(out_dir)
    if is_clip_checkpoint(out_dir) and not retrain:
        stale = _stale_settings(read_train_log(out_dir), train_kwargs)
        if not stale:
            return load_clip(out_dir, device=device)
        log.warning("tiny CLIP in %s was trained with other settings (%s): retraining", out_dir, stale)
    train_tiny_clip(make_pairs(), out_dir=out_dir, progress=progress, device=device, **train_kwargs)
    return load_clip(out_dir, device=device)


def _stale_settings(train_log: dict | None, train_kwargs: dict) -> list[str]:
    if train_log is None:  # a checkpoint without a log (e.g. copied in by hand): trust it
        return []
    saved = train_log.get("settings", {})
    same = lambda a, b: json.loads(json.dumps(a)) == json.loads(json.dumps(b))  # noqa: E731 (tuples vs lists)
    return [k for k, v in train_kwargs.items() if v is not None and k in saved and not same(saved[k], v)]


# ----------------------------------------------------------------------------- the cpu-profile recipe

#: The ``cpu`` profile's tiny CLIP: :func:`train_tiny_clip` arguments. It is trained once by this
#: recipe and shipped with the package (:mod:`lga.models.tiny_clip_shipped`; ``make tiny-clip``
#: retrains it). Measured on the default AtomicActions (seed 0, ``phase_cue`` 1), retrieval of the
#: phase frames of unseen classes against their held-out step descriptions
#: (:func:`atom_retrieval`: "step" = the frame's own description comes first; "motion" = the first
#: description has the right motion):
#:
#: ===============  =====================  ====  ==========  ===========  ============
#: config           steps x B (pairs)      lr    train       val step     test step, motion
#: ===============  =====================  ====  ==========  ===========  ============
#: lga-tiny-rn-64   400 x 128 (2/phase)    2e-3  5 min       59.6 %       41.4 %, 97.0 %
#: lga-tiny-rn-64   3000 x 128 (4/phase)   2e-3  31 min      68.6 %       59.6 %, 99.4 %  <- the recipe
#: ===============  =====================  ====  ==========  ===========  ============
#:
#: "train": wall time of :func:`train_tiny_clip` on 2 threads of a 2-core machine. Of the test frames,
#: 93.7 % get the whole atom (subject, motion, object) right; the step's own sentence can come first
#: for at most 62.0 % (``step_ceiling`` of :func:`atom_retrieval`: two classes that share an atom
#: describe it with different held-out sentences, which one frame cannot tell apart). The shipped
#: model's own figures, training time and machine are in its record (``lga_shipped.json``, read by
#: :func:`lga.models.tiny_clip_shipped.shipped_record`). Without the tool per motion
#: (``phase_cue=0``) one frame barely shows its motion: the 400-step model of the v2 dataset got
#: the motion of 27 % of the val frames right. The ResNet tower learns faster per CPU second than
#: the ViT at 64 px; weight decay 0.1 on matrices, warm-up 10 %, cosine decay, random shifts of 4 px
#: (the :func:`train_tiny_clip` defaults).
#:
#: The recipe is a config file shipped with the package, ``configs/tiny_clip/atomic_actions.yaml``
#: (:func:`load_tiny_clip_recipe`).
TINY_CLIP_RECIPE: dict[str, Any] = {}   # filled from the file below


#: the shipped tiny-CLIP recipe, a name for :func:`lga.config.find_config` (``configs/tiny_clip/``)
TINY_CLIP_RECIPE_FILE = "tiny_clip/atomic_actions"
#: what a recipe file may set: keyword arguments of :func:`train_tiny_clip`
_RECIPE_KEYS = ("config", "seed", "steps", "batch_size", "lr", "weight_decay", "warmup_steps", "max_shift",
                "grad_clip")


def load_tiny_clip_recipe(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """A tiny-CLIP recipe read from YAML: the keyword arguments of :func:`train_tiny_clip` it sets
    (``config``, ``seed``, ``steps``, ``batch_size``, ``lr`` required; ``weight_decay``,
    ``warmup_steps``, ``max_shift``, ``grad_clip`` optional). ``path``: a file, or the name of a
    shipped one (default: :data:`TINY_CLIP_RECIPE_FILE`). A key it does not know, or a missing one,
    raises :class:`~lga.config.ConfigError` naming the file and the key."""
    path = find_config(path if path is not None else TINY_CLIP_RECIPE_FILE)
    try:
        data = load_yaml(path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    except DuplicateKeyError as e:
        raise ConfigError(str(e)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a tiny-CLIP recipe is a mapping of train_tiny_clip arguments, "
                          f"got {type(data).__name__}")
    unknown = sorted(set(data) - set(_RECIPE_KEYS))
    missing = [k for k in _RECIPE_KEYS[:5] if k not in data]
    if unknown or missing:
        raise ConfigError(f"{path}: " + "; ".join(
            ([f"unknown tiny-CLIP recipe keys {unknown} (known: {list(_RECIPE_KEYS)})"] if unknown else []) +
            ([f"missing {missing}"] if missing else [])))
    return data


TINY_CLIP_RECIPE.update(load_tiny_clip_recipe())

#: How the training pairs are made: ``phase_pairs(root, "train", **TINY_CLIP_PAIRS)``.
#:
#: What the tiny CLIP has seen (AtomicActions v2, default dataset): frames of the 64 *train* classes
#: only -- four frames from inside every ground-truth phase of every train video (1,920 videos,
#: 23,040 frames) -- each paired with one of the *training* sentences of its phase's atom, drawn
#: afresh for every frame (``wording="train"``: 4 verb phrases per motion, e.g. "the hand pushes the
#: ball to the left", "the hand shoves the ball leftwards", ...; see
#: :mod:`lga.data.atomic_text`). So it has seen every atom of the val and test classes (they are made
#: of train atoms) with all of its training sentences, and every word of the held-out wording.
#:
#: What it has not seen: any frame of a val or test video; any val or test class as a sequence; any
#: sentence of the held-out wording (``anatomy.json``, ``anatomy_heldout.json``: new combinations of
#: trained words) or of the unseen wording (``anatomy_unseen.json``: synonyms, words it never saw);
#: and no class label (no whole-video label pairs, ``label_frames=0``), so a label-only baseline
#: reads labels whose verb forms ("push ball left") the text tower met only inside sentences
#: ("pushes the ball to the left"). Label pairs were measured and left out: two label frames per
#: video (15,360 pairs) lowered the label-only baseline (37.2 -> 33.8 %, 5-way 1-shot) as well as
#: the video-text branch (68.3 -> 54.8 %) at 200 steps. The oracle anatomy (``anatomy_oracle.json``)
#: gives each step one of the sentences it was trained on: an upper bound, not a realistic text.
TINY_CLIP_PAIRS: dict[str, Any] = {"frames_per_phase": 4, "seed": 0, "label_frames": 0, "wording": "train"}

#: written beside a tiny CLIP trained by :func:`get_or_train_atomic_actions_clip`: the pairs it was
#: trained on (:data:`TINY_CLIP_PAIRS` and the dataset's version and config)
_PAIRS_FILE = "lga_train_pairs.json"


def _pairs_record(root: Path) -> dict:
    """The pairs a tiny CLIP for the dataset at ``root`` is trained on (a v1 dataset has one wording:
    its anatomy's)."""
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    pairs = dict(TINY_CLIP_PAIRS, wording="anatomy") if meta.get("version") == "1.0" else dict(TINY_CLIP_PAIRS)
    return json.loads(json.dumps({"pairs": pairs, "dataset": {k: meta.get(k) for k in ("name", "version", "config")}}))


def get_or_train_atomic_actions_clip(root: str | Path, out_dir: str | Path, *, device: str | torch.device = "cpu",
                                     retrain: bool = False, progress: bool = True, **overrides: Any):
    """The ``cpu`` profile's tiny CLIP for the AtomicActions dataset at ``root``: loaded from ``out_dir``
    or trained there with :func:`tiny_clip_recipe` (``overrides`` applied) on its train phase pairs
    (:data:`TINY_CLIP_PAIRS`). A checkpoint made on other pairs or another dataset version or config
    (recorded in ``lga_train_pairs.json`` beside it) is retrained.
    Returns ``(model, transform, tokenizer)`` like :func:`~lga.models.backbone.load_clip`."""

    root, out_dir = Path(root), Path(out_dir)
    wanted = _pairs_record(root)
    pairs_file = out_dir / _PAIRS_FILE
    if is_clip_checkpoint(out_dir) and not retrain:
        try:
            saved = json.loads(pairs_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            saved = None
        if saved != wanted:
            log.warning("tiny CLIP in %s was trained on other pairs or another dataset: retraining", out_dir)
            retrain = True

    def make_pairs():
        return phase_pairs(root, "train", progress=progress, **wanted["pairs"])

    out = get_or_train_tiny_clip(out_dir, make_pairs, device=device, retrain=retrain, progress=progress,
                                 **tiny_clip_recipe(**overrides))
    atomic_write_text(pairs_file, json.dumps(wanted, indent=1) + "\n")
    return out


#: Environment variable naming another seed for the book's tiny CLIP (:func:`book_tiny_clip`). The
#: book's claims are checked against tiny CLIPs of other seeds, the way a reader's machine, whose
#: float rounding differs, trains a slightly different one (see the README, "Writing a chapter").
TINY_CLIP_SEED_ENV = "LGA_TINY_CLIP_SEED"


def book_tiny_clip(root: str | Path | None = None, *, device: str | torch.device = "cpu",
                   progress: bool = True):
    """The ``cpu`` profile's tiny CLIP as every chapter uses it: the one shipped with the package
    (:mod:`lga.models.tiny_clip_shipped`), copied into ``<data dir>/tiny_clip/atomic_actions`` on first
    use (its sha256 checked) and loaded from there. ``root``: the AtomicActions dataset the chapter uses
    (default: none checked); a dataset made with another config than the one the shipped CLIP was
    trained on gets a warning, since its frames are not those the CLIP learned from.

    With ``$LGA_TINY_CLIP_SEED`` set, the recipe is trained from scratch with that seed instead (on the
    default AtomicActions, generated on first use; about half an hour on 2 cores) into
    ``tiny_clip/atomic_actions-seed<N>``, and reused from there: ``LGA_TINY_CLIP_SEED=0`` retrains the
    shipped model. Returns ``(model, transform, tokenizer)``.
    """
    seed = book_tiny_clip_seed()
    if seed is None:
        out = install_shipped_tiny_clip(book_tiny_clip_dir())
        if root is not None:
            trained_on = json.loads((out / _PAIRS_FILE).read_text(encoding="utf-8"))
            if _pairs_record(Path(root))["dataset"] != trained_on["dataset"]:
                log.warning("the dataset at %s was made with another config than the one the shipped tiny CLIP "
                            "was trained on (%s)", root, out / _PAIRS_FILE)
        return load_clip(out, device=device)
    root = Path(root) if root is not None else get_atomic_actions(progress=progress)
    return get_or_train_atomic_actions_clip(root, book_tiny_clip_dir(), device=device, progress=progress, seed=seed)


def book_tiny_clip_seed() -> int | None:
    """The seed ``$LGA_TINY_CLIP_SEED`` asks for (None: the recipe's)."""
    seed = os.environ.get(TINY_CLIP_SEED_ENV, "").strip()
    if seed and not seed.isdigit():
        raise ValueError(f"${TINY_CLIP_SEED_ENV} must be a non-negative integer, got {seed!r}")
    return int(seed) if seed else None


def book_tiny_clip_dir() -> Path:
    """Where :func:`book_tiny_clip` keeps its model (and its train log): ``<data dir>/tiny_clip/atomic_actions``
    (the shipped one, :data:`~lga.models.tiny_clip_shipped.SHIPPED_NAME`), or
    ``.../atomic_actions-seed<N>`` under ``$LGA_TINY_CLIP_SEED``."""
    seed = book_tiny_clip_seed()
    return data_dir() / (SHIPPED_NAME if seed is None else f"{SHIPPED_NAME}-seed{seed}")


def tiny_clip_recipe(**overrides: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`train_tiny_clip` for the ``cpu`` profile's tiny CLIP
    (:data:`TINY_CLIP_RECIPE`), with ``overrides`` applied. The training pairs are
    ``lga.data.atomic_actions.phase_pairs(root, "train", **TINY_CLIP_PAIRS)``."""
    unknown = set(overrides) - set(TINY_CLIP_RECIPE) - {"out_dir", "progress", "device", "grad_clip",
                                                       "warmup_steps", "max_shift"}
    if unknown:
        raise TypeError(f"unknown tiny-CLIP recipe keys {sorted(unknown)}")
    return {**TINY_CLIP_RECIPE, **overrides}


@torch.no_grad()
def retrieval_accuracy(model: nn.Module, tokenizer: Callable, pairs: Sequence, texts: Sequence[str] | None = None,
                       chunk_size: int = 256) -> float:
    """Image-to-text retrieval accuracy: the share of ``pairs`` whose image is closest (cosine) to its
    own text among ``texts`` (default: the distinct texts of ``pairs``). Chance is ``1 / len(texts)``.

    ``pairs`` is indexable with ``(image uint8 [H,W,3], text)`` items, or has ``frames`` / ``texts``
    attributes (e.g. :class:`lga.data.atomic_actions.PhasePairs`), which is faster.
    """
    if hasattr(pairs, "frames") and hasattr(pairs, "texts"):
        images, own = pairs.frames, list(pairs.texts)
    else:
        items = [pairs[i] for i in range(len(pairs))]
        images = torch.stack([torch.as_tensor(np.asarray(im)) for im, _ in items])
        own = [str(t) for _, t in items]
    texts = list(dict.fromkeys(own)) if texts is None else list(texts)
    lookup = {t: i for i, t in enumerate(texts)}
    truth = torch.tensor([lookup[t] for t in own])
    img = encode_images(model, images, chunk_size=chunk_size)
    txt = encode_text(model, tokenizer, texts, chunk_size=chunk_size)
    return float(((img @ txt.T).argmax(dim=1).cpu() == truth).float().mean())


#: the parts of an atom, in the order of ``ActionClass.atoms()`` (:mod:`lga.data.atomic_design`)
ATOM_PARTS = ("subject", "motion", "object")


@torch.no_grad()
def atom_retrieval(model: nn.Module, tokenizer: Callable, pairs, classes: dict) -> dict[str, float]:
    """How well frames find their phase's description, and which part of it they get right.

    ``pairs``: :class:`lga.data.atomic_actions.PhasePairs` (frames ``[P,S,S,3]``, ``texts``,
    ``class_names``, ``phases``); ``classes``: class name -> :class:`~lga.data.atomic_actions.ActionClass`.
    Every frame is matched (cosine) against the distinct descriptions of ``pairs``. Returns:

    - ``step``: the share of frames whose top-1 description is their own (chance ``1 / candidates``);
    - ``subject`` / ``motion`` / ``object``: the share whose top-1 description has the right part, and
      ``atom``: all three right;
    - ``step_ceiling``: the ``step`` of a model that always gets the atom right and picks at random
      among the descriptions of that atom. Two classes that share an atom may describe it with
      different sentences (the wording is drawn per class), and one frame cannot tell which class's
      sentence is its own, so ``step`` is capped by it;
    - ``candidates``: the number of distinct descriptions.
    """
    texts = [str(t) for t in pairs.texts]
    cands = list(dict.fromkeys(texts))
    truth = torch.as_tensor([cands.index(t) for t in texts])
    atom = {t: tuple(classes[n].atoms()[p]) for t, n, p in zip(texts, pairs.class_names, pairs.phases)}
    sim = encode_images(model, pairs.frames) @ encode_text(model, tokenizer, cands).T   # [P, U]
    pred = sim.argmax(1).tolist()
    out = {"step": float((torch.as_tensor(pred) == truth).float().mean()), "candidates": len(cands)}
    for k, part in enumerate(ATOM_PARTS):
        out[part] = float(np.mean([atom[cands[p]][k] == atom[cands[t]][k] for p, t in zip(pred, truth.tolist())]))
    out["atom"] = float(np.mean([atom[cands[p]] == atom[cands[t]] for p, t in zip(pred, truth.tolist())]))
    sentences_of = {}
    for c in cands:
        sentences_of[atom[c]] = sentences_of.get(atom[c], 0) + 1
    out["step_ceiling"] = float(np.mean([1 / sentences_of[atom[t]] for t in texts]))
    return out


def retrain_and_ship(out: str | Path | None = None, work: str | Path | None = None, *,
                     device: str | torch.device = "cpu", progress: bool = True) -> dict:
    """Train the ``cpu`` profile's tiny CLIP from scratch by the recipe on the default AtomicActions
    (generated if needed), in ``work`` (default ``<data dir>/tiny_clip/atomic_actions-recipe``), then
    ship it into ``out`` (default: the package's, :data:`~lga.models.tiny_clip_shipped.SHIPPED_DIR`)
    with its retrieval figures on the val and test frames (held-out wording), measured on the shipped
    weights. Returns the shipped record. This is ``make tiny-clip``."""
    out = Path(out) if out is not None else SHIPPED_DIR
    work = Path(work) if work is not None else data_dir() / f"{SHIPPED_NAME}-recipe"
    root = get_atomic_actions(progress=progress)
    get_or_train_atomic_actions_clip(root, work, device=device, retrain=True, progress=progress)
    train_log = read_train_log(work)
    about = {"recipe": dict(TINY_CLIP_RECIPE), "pairs": dict(TINY_CLIP_PAIRS), "seconds": train_log["seconds"],
             "threads": train_log.get("threads"), "device": str(device), "torch": torch.__version__,
             "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    record = ship_tiny_clip(work, train_log["tokens_used"], {}, out=out, about=about)
    model, _, tokenizer = load_clip(out, device=device)
    classes = {c.name: c for c in load_classes(root)}
    record["figures"] = {split: atom_retrieval(model, tokenizer, phase_pairs(root, split, progress=progress), classes)
                         for split in ("val", "test")}
    atomic_write_text(out / SHIPPED_RECORD, json.dumps(record, indent=1) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lga tiny-clip``: retrain the shipped tiny CLIP from scratch (:func:`retrain_and_ship`)."""
    p = argparse.ArgumentParser(prog="python -m lga tiny-clip",
                                description="Train the cpu profile's tiny CLIP from scratch by the recipe "
                                            "(configs/tiny_clip/atomic_actions.yaml) on the default AtomicActions "
                                            "and ship it (rewrites lga/models/tiny_clip_weights).")
    p.add_argument("--out", default=None, help="where to write the shipped model (default: the package's)")
    p.add_argument("--work", default=None, help="where to train (default <data dir>/tiny_clip/atomic_actions-recipe)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    record = retrain_and_ship(a.out, a.work, device=a.device)
    about, fig = record["about"], record["figures"]
    print(f"shipped tiny CLIP sha256 {record['sha256']}: trained in {about['seconds'] / 60:.1f} min "
          f"({about['threads']} threads)")
    for split, f in fig.items():
        print(f"  {split}: step top-1 {f['step']:.1%} of {f['candidates']} descriptions; subject {f['subject']:.1%}, "
              f"motion {f['motion']:.1%}, object {f['object']:.1%}")
    return 0
