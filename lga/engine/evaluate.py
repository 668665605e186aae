"""Few-shot evaluation: features once, then thousands of episodes scored in batches.

Each test video is encoded once (deterministic test frames, :mod:`lga.engine.features`); an
episode then only indexes the cached features, so 10,000 episodes cost little more than one pass
over the test videos. Accuracy is reported as the mean over episodes with a 95% confidence interval
(1.96 standard errors); :func:`compare` gives the paired interval of a difference between two
methods scored on the same episodes. :func:`evaluate_split` scores a head on one split's cached
features (its class texts and phase bounds included) and is what the book, the protocol and training
call; :func:`evaluate_episodes` is the same with every input spelled out.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.episodes import EpisodeSampler
from ..util.files import atomic_write_text
from ..data.manifest import verify_dataset
from .augment import Crops
from .build import anatomy_source, build_text_bank, resolve_dataset_root
from .checkpoint import file_hash, load_model_weights, read_metadata
from .device import model_device, resolve_device, to_device
from .features import cache_dir, cached_features, sampled_bounds, split_key
from .model import EpisodicModel, backbone_mode, build_model, encoder_key


@dataclass
class EvalResult:
    """Per-episode accuracies and their summary.

    ``episodes`` fingerprints the episodes scored (sampler seed, N, K, Q, the videos' labels): two
    results with the same fingerprint were scored on exactly the same episodes, so :func:`compare`
    can pair them. ``meta`` holds anything worth keeping (checkpoint, dataset, config name, ...).
    """

    accuracies: np.ndarray     # [num_episodes], each in 0..1
    episodes: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of the mean (normal approximation)."""
        n = len(self.accuracies)
        return float(1.96 * self.accuracies.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f} % ({len(self.accuracies)} episodes)"

    def to_dict(self, with_accuracies: bool = True) -> dict:
        out = {"mean": self.mean, "ci95": self.ci95, "num_episodes": int(len(self.accuracies)),
               "episodes": self.episodes, "meta": self.meta}
        if with_accuracies:
            out["accuracies"] = [round(float(a), 6) for a in self.accuracies]
        return out

    def to_json(self, path=None) -> str:
        """JSON text (summary and every episode's accuracy); written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_text) -> "EvalResult":
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        d = json.loads(text)
        return cls(np.asarray(d["accuracies"], dtype=np.float64), d.get("episodes"), d.get("meta", {}))


@dataclass
class Comparison:
    """Paired comparison of two methods on the same episodes: mean of ``a - b`` and its 95% CI."""

    mean_a: float
    mean_b: float
    diff: float
    ci95: float
    num_episodes: int

    @property
    def significant(self) -> bool:
        """True when the 95% interval of the difference excludes 0."""
        return abs(self.diff) > self.ci95

    def __str__(self) -> str:
        return (f"{100 * self.mean_a:.2f} vs {100 * self.mean_b:.2f} %: difference "
                f"{100 * self.diff:+.2f} ± {100 * self.ci95:.2f} points (paired, {self.num_episodes} episodes)")


#: two-sided 95 % quantiles of Student's t by degrees of freedom 1..30 (beyond 30, the normal 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (a 95 % two-sided interval)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass
class GroupResult:
    """A mean over groups (e.g. the class pairs of one kind) with the group as the unit.

    ``values`` holds one number per group (its mean accuracy over its episodes, or a paired
    difference); ``ci95`` is the half-width of the 95 % Student-t interval of their mean (``groups - 1``
    degrees of freedom): it grows when the groups disagree, however many episodes each had, which an
    interval over pooled episodes hides. With one group it is nan: an anecdote, not a measurement.
    """

    values: dict

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values())))

    @property
    def ci95(self) -> float:
        v = np.asarray(list(self.values.values()), np.float64)
        return float(t_quantile_975(len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f} ± {100 * self.ci95:.1f} % ({len(self.values)} groups)"


def group_result(results: dict) -> GroupResult:
    """Groups as the unit: ``results`` maps a group (a class pair) to its :class:`EvalResult`."""
    return GroupResult({k: r.mean for k, r in results.items()})


def compare_groups(a: dict, b: dict) -> GroupResult:
    """Paired by group: the mean over groups of ``a - b`` (each group's two results scored on the same
    episodes, :func:`compare`) and its 95 % Student-t interval over groups."""
    if set(a) != set(b):
        raise ValueError(f"cannot pair groups {sorted(map(str, a))} with {sorted(map(str, b))}")
    return GroupResult({k: compare(a[k], b[k]).diff for k in a})


def compare(a: EvalResult, b: EvalResult) -> Comparison:
    """Paired 95% interval of ``a - b`` over the same episodes.

    Per-episode differences ``d_i = acc_a(i) - acc_b(i)`` share the episode's difficulty, so their
    spread is much smaller than that of either method: ``diff ± 1.96 * std(d) / sqrt(n)``.
    Raises ValueError when the two results were not scored on the same episodes.
    """
    if len(a.accuracies) != len(b.accuracies):
        raise ValueError(f"cannot pair {len(a.accuracies)} episodes with {len(b.accuracies)}")
    if a.episodes is not None and b.episodes is not None and a.episodes != b.episodes:
        raise ValueError("the two results were scored on different episodes "
                         f"({a.episodes[:12]} vs {b.episodes[:12]}); use the same split, seed, N, K and Q")
    d = np.asarray(a.accuracies, np.float64) - np.asarray(b.accuracies, np.float64)
    n = len(d)
    ci = float(1.96 * d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Comparison(float(np.mean(a.accuracies)), float(np.mean(b.accuracies)), float(d.mean()), ci, n)


def episodes_fingerprint(sampler: EpisodeSampler, labels, num_episodes: int) -> str:
    """A hash naming the exact episodes a sampler gives on these labels."""
    h = hashlib.sha256()
    h.update(json.dumps([sampler.seed, sampler.n_way, sampler.k_shot, sampler.q_query, int(num_episodes)]).encode())
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


@torch.no_grad()
def encode_clips(encoder, clips: torch.Tensor, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Run ``encoder`` over ``clips [V, T, H, W, 3]`` in batches -> features ``[V, T, D]``."""
    was_training = encoder.training
    encoder.eval()
    out = [encoder(clips[i:i + batch_size])
           for i in tqdm(range(0, len(clips), batch_size), desc="encoding videos", disable=not progress)]
    encoder.train(was_training)
    return torch.cat(out)


def score_episodes(head, features: torch.Tensor, episodes, n_way: int, text_bank=None,
                   device=None, phase_bounds: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of a batch of episodes, computed on the head's device (:mod:`lga.engine.device`).

    ``features [V, T, D]`` may live anywhere; ``episodes`` is an
    :class:`~lga.data.episodes.Episode` batch from :meth:`~lga.data.episodes.EpisodeSampler.batch` (indices
    into ``features``, labels, classes ``[E, N]``).
    The support/query features, labels and the class texts of ``text_bank`` are moved to
    ``device`` (default: the head's, else the features') before the head runs.
    ``phase_bounds [V, L+1]``: the videos' ground-truth phase bounds over their T frames, given to
    the head as ``support_bounds`` / ``query_bounds`` (LGA's ``segmenter="given"``).
    Returns ``[E, N*Q, N]`` on that device.
    """
    dev = device if device is not None else model_device(head, default=features.device)
    s_idx, q_idx = torch.as_tensor(episodes.support), torch.as_tensor(episodes.query)
    classes = torch.as_tensor(episodes.classes)
    text = text_bank.for_episodes(classes) if text_bank is not None else {}
    if phase_bounds is not None:
        text = dict(text, support_bounds=phase_bounds[s_idx.to(phase_bounds.device)],
                    query_bounds=phase_bounds[q_idx.to(phase_bounds.device)])
    support, query = features[s_idx.to(features.device)], features[q_idx.to(features.device)]
    args = to_device((support, torch.as_tensor(episodes.support_labels), query, text), dev)
    return head(args[0], args[1], args[2], n_way, **args[3])


@torch.no_grad()
def evaluate_episodes(head, features: torch.Tensor, labels, sampler: EpisodeSampler,
                      num_episodes: int | None = None, batch_episodes: int = 500,
                      progress: bool = True, text_bank=None, device=None,
                      phase_bounds: torch.Tensor | None = None) -> EvalResult:
    """Score ``num_episodes`` episodes of ``sampler`` with ``head`` on cached ``features [V, T, D]``.

    ``head(support [E,N*K,T,D], support_labels [E,N*K], query [E,N*Q,T,D], n_way) -> [E,N*Q,N]``.
    ``labels`` are the dataset labels the sampler was built on (used only to check consistency).
    ``text_bank``: its ``for_episodes(classes [E, N])`` mapping is passed to the head as keywords.
    ``phase_bounds``: ``[V, L+1]`` ground-truth phase bounds of the videos (:func:`score_episodes`).
    Every batch is scored on the head's device, wherever ``features`` and ``text_bank`` live
    (:func:`score_episodes`); put the features on that device once to avoid a copy per batch.
    """
    labels = torch.as_tensor(labels).cpu()
    n = num_episodes or len(sampler)
    accs = []
    for start in tqdm(range(0, n, batch_episodes), desc="episodes", disable=not progress):
        ep = sampler.batch(start, min(batch_episodes, n - start))
        classes = torch.from_numpy(ep.classes)
        if not torch.equal(labels[torch.from_numpy(ep.support)],
                           classes.gather(1, torch.from_numpy(ep.support_labels))):
            raise RuntimeError("the sampler was built on other labels than these features")
        logits = score_episodes(head, features, ep, sampler.n_way, text_bank, device, phase_bounds)
        correct = (logits.argmax(-1).cpu() == torch.from_numpy(ep.query_labels)).double().mean(-1)
        accs.append(correct.numpy())
    return EvalResult(np.concatenate(accs), episodes_fingerprint(sampler, labels.numpy(), n))


def evaluate_split(head, split, sampler: EpisodeSampler | None = None, num_episodes: int | None = None, *,
                   n_way: int = 5, k_shot: int = 1, queries: int = 1, seed: int = 0,
                   batch_episodes: int = 500, progress: bool = False, device=None) -> EvalResult:
    """Score ``head`` on episodes of one split's cached features: the evaluation call of the book,
    the protocol and training.

    ``split`` is a :class:`~lga.engine.features.SplitFeatures` (or anything with ``features [V, T, D]``,
    ``labels [V]`` and, optionally, ``bank`` (a text bank, or None) and ``phase_bounds [V, L+1]``);
    its class texts and phase bounds go to the head, so this is exactly::

        evaluate_episodes(head, split.features.to(dev), split.labels, sampler, num_episodes,
                          batch_episodes, progress=progress, text_bank=split.bank, device=device,
                          phase_bounds=split.phase_bounds)

    with ``dev`` the scoring device (``device``, else the head's, else the features'), run with the head
    in eval mode (its train/eval mode is restored afterwards) and without gradients.

    Args:
        sampler: the episodes; default: ``EpisodeSampler(split.labels, n_way, k_shot, queries, seed=seed,
            num_episodes=num_episodes)`` (then ``num_episodes`` is required).
        num_episodes: how many of the sampler's episodes (default: all of them).
        batch_episodes: episodes scored at once (the numbers do not depend on it beyond the last bits
            of floating-point reductions).
        progress: show a progress bar.

    Returns:
        :class:`EvalResult`, one accuracy per episode.
    """
    if sampler is None:
        if num_episodes is None:
            raise ValueError("evaluate_split: give a sampler, or num_episodes to draw the episodes from "
                             "n_way, k_shot, queries and seed")
        sampler = EpisodeSampler(np.asarray(split.labels), n_way, k_shot, queries, seed=seed,
                                 num_episodes=num_episodes)
    features = split.features
    dev = torch.device(device) if device is not None else model_device(head, default=features.device)
    was_training = head.training
    head.eval()
    try:
        return evaluate_episodes(head, features.to(dev), split.labels, sampler, num_episodes, batch_episodes,
                                 progress=progress, text_bank=getattr(split, "bank", None), device=device,
                                 phase_bounds=getattr(split, "phase_bounds", None))
    finally:
        head.train(was_training)


# ============================================================================ whole-split evaluation
def evaluate_checkpoint(cfg, checkpoint=None, episodes: int | None = None, split: str | None = None,
                        progress: bool = True, device=None) -> EvalResult:
    """Evaluate a config's model (weights from ``checkpoint``, else its initial weights) on a split.

    Test frames are deterministic (the centre crop, :mod:`lga.engine.augment`); each video is
    encoded once (cached on disk under ``eval.feature_cache`` when set; for a frozen backbone, in
    the same files as training's, under ``train.feature_cache`` unless ``eval.feature_cache`` is
    set); ``episodes`` (default
    ``eval.episodes``) episodes of seed ``eval.seed`` are scored ``eval.batch_episodes`` at a time.
    A frozen-backbone run's checkpoint holds its head alone: the encoder is built from the config and
    must be the one the head was trained on (same :func:`~lga.engine.model.encoder_key`), else
    ValueError.
    """
    from ..data.dataset import VideoDataset  # heavy: PyAV, only where videos are decoded

    split = split or cfg.eval.split
    n = episodes or cfg.eval.episodes
    device = torch.device(device) if device is not None else resolve_device(cfg.train.device)
    model = build_model(cfg, device)
    ck_meta, head_only = {}, checkpoint is None and backbone_mode(cfg, model.encoder) == "frozen"
    key = encoder_key(model.encoder) if head_only else None
    if checkpoint is not None:
        head_only = read_metadata(checkpoint).get("backbone") == "frozen"
        if head_only:   # a frozen-backbone run: the head's weights, on this config's encoder
            stored, key = read_metadata(checkpoint).get("encoder_key"), encoder_key(model.encoder)
            if stored != key:
                raise ValueError(f"{checkpoint}: its head was trained on the features of another encoder "
                                 f"(key {str(stored)[:12]}, this config's encoder: {key[:12]}); evaluate it with "
                                 "the config and backbone checkpoint of its run")
        ck_meta = load_model_weights(checkpoint, EpisodicModel(None, model.head) if head_only else model)
    model.to(device).eval()
    root = resolve_dataset_root(cfg)
    verify_dataset(root, allow_symlinks=cfg.data.allow_symlinks, skip=not cfg.data.verify)
    ds = VideoDataset(root, split, cfg.data.num_frames, mode="test", allow_symlinks=cfg.data.allow_symlinks)
    try:    # fail now, not after encoding the whole split
        EpisodeSampler(ds.labels, cfg.data.n_way, cfg.data.k_shot, cfg.data.test_queries, num_episodes=1)
    except ValueError as e:
        raise ValueError(f"the {split} split of {root} cannot supply episodes: {e}") from None
    crops = Crops.from_config(cfg.data)
    if head_only:       # a frozen backbone's features depend on the encoder alone (shared with training's)
        parts, cache = split_key(key, root, split, cfg.data.num_frames, crops), cfg.eval.feature_cache
        cache = cache_dir(cache if cache is not None else cfg.train.feature_cache)
    else:
        parts = {"checkpoint": file_hash(checkpoint) if checkpoint else f"init-seed{cfg.train.seed}",
                 "model": cfg.to_dict()["model"], "dataset": str(root.resolve()), "split": split,
                 "num_frames": cfg.data.num_frames, "crop": [crops.scale]}
        cache = cache_dir(cfg.eval.feature_cache)
    feats, labels, keys, report = cached_features(
        model.encoder, ds, cache, parts, batch_size=cfg.eval.encode_batch, device=device,
        workers=cfg.data.workers, progress=progress, crops=crops)
    bank = build_text_bank(cfg.model, ds.class_names, encoder=model.encoder, anatomy=anatomy_source(cfg, root),
                           device=device)
    sampler = EpisodeSampler(labels.numpy(), cfg.data.n_way, cfg.data.k_shot, cfg.data.test_queries,
                             seed=cfg.eval.seed, num_episodes=n)
    result = evaluate_episodes(model.head, feats.to(device), labels, sampler, n, cfg.eval.batch_episodes,
                               progress=progress, text_bank=bank, device=device,
                               phase_bounds=sampled_bounds(root, keys, cfg.data.num_frames))
    result.meta = {"checkpoint": str(checkpoint) if checkpoint else None, "checkpoint_step": ck_meta.get("step"),
                   "config": cfg.name, "dataset": cfg.data.dataset, "split": split,
                   "n_way": cfg.data.n_way, "k_shot": cfg.data.k_shot, "queries": cfg.data.test_queries,
                   "seed": cfg.eval.seed, "videos": len(keys), "dataset_verified": cfg.data.verify,
                   "skipped": report.skipped,
                   "missing": report.missing}
    return result
