"""Few-shot evaluation: features once, then thousands of episodes scored in batches.

Each test video is encoded once (deterministic test frames); an episode then only indexes the cached
features, so 10,000 episodes cost little more than one pass over the test videos. Accuracy is
reported as the mean over episodes with a 95% confidence interval (1.96 standard errors).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.episodes import EpisodeSampler


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
            from ..data.layout import atomic_write_text
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


@torch.no_grad()
def evaluate_episodes(head, features: torch.Tensor, labels, sampler: EpisodeSampler,
                      num_episodes: int | None = None, batch_episodes: int = 500,
                      progress: bool = True, text_bank=None) -> EvalResult:
    """Score ``num_episodes`` episodes of ``sampler`` with ``head`` on cached ``features [V, T, D]``.

    ``head(support [E,N*K,T,D], support_labels [E,N*K], query [E,N*Q,T,D], n_way) -> [E,N*Q,N]``.
    ``labels`` are the dataset labels the sampler was built on (used only to check consistency).
    ``text_bank``: its ``for_episodes(classes [E, N])`` mapping is passed to the head as keywords.
    Indices move to the features' device; put features (and the head) on a GPU to score there.
    """
    labels = torch.as_tensor(labels).cpu()
    dev = features.device
    n = num_episodes or len(sampler)
    accs = []
    for start in tqdm(range(0, n, batch_episodes), desc="episodes", disable=not progress):
        ep = sampler.batch(start, min(batch_episodes, n - start))
        s_idx, q_idx = torch.from_numpy(ep.support), torch.from_numpy(ep.query)
        classes = torch.from_numpy(ep.classes)
        if not torch.equal(labels[s_idx], classes.gather(1, torch.from_numpy(ep.support_labels))):
            raise RuntimeError("the sampler was built on other labels than these features")
        text = text_bank.for_episodes(classes.to(dev)) if text_bank is not None else {}
        logits = head(features[s_idx.to(dev)], torch.from_numpy(ep.support_labels).to(dev),
                      features[q_idx.to(dev)], sampler.n_way, **text)
        correct = (logits.argmax(-1).cpu() == torch.from_numpy(ep.query_labels)).double().mean(-1)
        accs.append(correct.numpy())
    return EvalResult(np.concatenate(accs), episodes_fingerprint(sampler, labels.numpy(), n))


# ============================================================================ whole-split evaluation
class _TestClips(torch.utils.data.Dataset):
    """Test-mode clips of a :class:`~lga.data.dataset.VideoDataset`; unreadable ones come back as None."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        from ..data.video import VideoError, read_video
        item = self.dataset.items[i]
        try:
            return i, read_video(item.path, self.dataset.num_frames, "test"), None
        except VideoError as e:
            return i, None, e.reason


def _collate(batch):
    return batch


@torch.no_grad()
def encode_split(encoder, dataset, batch_size: int = 64, device=None, workers: int = 0,
                 progress: bool = True):
    """Encode every video of a split once, with deterministic test frames, streaming from disk.

    Returns ``(features float32 [V, T, D] on CPU, labels int64 [V], keys, report)`` for the V readable
    videos; unreadable ones are skipped and listed in the :class:`~lga.data.dataset.LoadReport`.
    """
    from ..data.dataset import LoadReport
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    report = LoadReport(missing=list(dataset.missing))
    loader = torch.utils.data.DataLoader(_TestClips(dataset), batch_size=batch_size, num_workers=workers,
                                         collate_fn=_collate)
    feats, labels, keys = [], [], []
    for batch in tqdm(loader, desc=f"encoding {dataset.split} videos", disable=not progress):
        good = [(i, c) for i, c, err in batch if c is not None]
        for i, c, err in batch:
            if c is None:
                report.skipped[dataset.items[i].key] = err
        if not good:
            continue
        clips = torch.stack([c for _, c in good]).to(device)
        feats.append(encoder(clips).float().cpu())
        labels += [dataset.items[i].label for i, _ in good]
        keys += [dataset.items[i].key for i, _ in good]
    encoder.train(was)
    report.loaded = len(keys)
    if not keys:
        raise RuntimeError(f"no readable video in {dataset.root} split {dataset.split!r}\n{report}")
    return torch.cat(feats), torch.tensor(labels, dtype=torch.int64), keys, report


def cached_features(encoder, dataset, cache_dir, key_parts: dict, **kw):
    """:func:`encode_split` once; later calls with the same ``key_parts`` read the cached file.

    The cache file name is a sha256 of ``key_parts`` (checkpoint hash, dataset, split, frames, the
    video list): a new checkpoint or another frame count never reads stale features.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from ..data.layout import atomic_write_bytes
    key_parts = dict(key_parts, videos=hashlib.sha256("\n".join(it.key for it in dataset.items).encode()).hexdigest())
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:32]
    path = Path(cache_dir) / f"features-{key}.safetensors"
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata()
        t = load_file(str(path))
        from ..data.dataset import LoadReport
        info = json.loads(md["lga"])
        return t["features"], t["labels"], info["keys"], LoadReport(loaded=len(info["keys"]),
                                                                   skipped=info["skipped"],
                                                                   missing=info["missing"])
    feats, labels, keys, report = encode_split(encoder, dataset, **kw)
    md = {"lga": json.dumps({"key": key_parts, "keys": keys, "skipped": report.skipped,
                             "missing": report.missing})}
    atomic_write_bytes(path, save({"features": feats.contiguous(), "labels": labels}, metadata=md))
    return feats, labels, keys, report


def evaluate_checkpoint(cfg, checkpoint=None, episodes: int | None = None, split: str | None = None,
                        progress: bool = True, device=None) -> EvalResult:
    """Evaluate a config's model (weights from ``checkpoint``, else its initial weights) on a split.

    Test frames are deterministic; each video is encoded once (cached on disk under
    ``eval.feature_cache`` when set); ``episodes`` (default ``eval.episodes``) episodes of seed
    ``eval.seed`` are scored ``eval.batch_episodes`` at a time.
    """
    from ..data.dataset import VideoDataset
    from .build import build_text_bank
    from .checkpoint import file_hash, load_model_weights
    from .train import _load_anatomy, _resolve_device, Dist, build_model

    split = split or cfg.eval.split
    n = episodes or cfg.eval.episodes
    device = torch.device(device) if device is not None else _resolve_device(cfg.train.device, Dist())
    model = build_model(cfg, device)
    ck_meta = {}
    if checkpoint is not None:
        ck_meta = load_model_weights(checkpoint, model)
    model.to(device).eval()
    root = cfg.dataset_root()
    ds = VideoDataset(root, split, cfg.data.num_frames, mode="test")
    kw = dict(batch_size=cfg.eval.encode_batch, device=device, workers=cfg.data.workers, progress=progress)
    if cfg.eval.feature_cache:
        parts = {"checkpoint": file_hash(checkpoint) if checkpoint else f"init-seed{cfg.train.seed}",
                 "model": cfg.to_dict()["model"], "dataset": str(root.resolve()), "split": split,
                 "num_frames": cfg.data.num_frames}
        feats, labels, keys, report = cached_features(model.encoder, ds, cfg.eval.feature_cache, parts, **kw)
    else:
        feats, labels, keys, report = encode_split(model.encoder, ds, **kw)
    bank = build_text_bank(cfg.model, ds.class_names, encoder=model.encoder, anatomy=_load_anatomy(cfg, root),
                           device=device)
    sampler = EpisodeSampler(labels.numpy(), cfg.data.n_way, cfg.data.k_shot, cfg.data.test_queries,
                             seed=cfg.eval.seed, num_episodes=n)
    result = evaluate_episodes(model.head, feats.to(device), labels, sampler, n, cfg.eval.batch_episodes,
                               progress=progress, text_bank=bank)
    result.meta = {"checkpoint": str(checkpoint) if checkpoint else None, "checkpoint_step": ck_meta.get("step"),
                   "config": cfg.name, "dataset": cfg.data.dataset, "split": split,
                   "n_way": cfg.data.n_way, "k_shot": cfg.data.k_shot, "queries": cfg.data.test_queries,
                   "seed": cfg.eval.seed, "videos": len(keys), "skipped": report.skipped,
                   "missing": report.missing}
    return result
