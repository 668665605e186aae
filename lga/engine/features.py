"""Features of a frozen backbone: each video encoded once, kept in memory or cached on disk.

When the backbone does not train, what it computes for a frame never changes, so the engine encodes
every video once and trains and evaluates heads on the stored features (``train.backbone: frozen``,
:func:`lga.engine.train.train`). Three containers:

- :class:`SplitFeatures`: a split with its deterministic test frames, ``[V, T, D]``, and the class
  texts of its classes (a :class:`~lga.models.text_bank.TextBank`). Validation and test episodes
  index it; the book's analysis cells use it too (:meth:`SplitFeatures.encode`).
- :class:`FrameBank`: *every* frame of every training video (``[F, C, D]`` for F frames in all and
  C training crops, :mod:`lga.engine.augment`), so that a training episode can still sample a random
  frame per segment (TSN) and a random crop, exactly as training on the videos would.
- :class:`FrozenFeatures`: what one run needs (train bank, val and test splits) and the key of the
  encoder that made them. Built from a config with :meth:`FrozenFeatures.from_config`; pass the same
  object to many runs (:func:`lga.engine.protocol.run_protocol`) and the backbone runs once.

On disk (``train.feature_cache``, or ``eval.feature_cache`` for evaluation), every file is named
by a sha256 of what made it: the encoder's key (:func:`lga.engine.model.encoder_key`: every weight
and the preprocessing), the dataset folder and its video list, the split, the frame count and the
crop. Another checkpoint or another setting never reads a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from tqdm.auto import tqdm

from ..anatomy.visual import bounds_for_sampled_frames
from ..data.episodes import EpisodeSampler
from ..data.layout import read_anatomy
from ..data.sampling import sample_indices
from ..models.text_bank import TextBank
from ..util.files import atomic_write_bytes
from ..util.hashing import json_sha256
from ..util.paths import data_dir
from .augment import Crops
from .build import anatomy_source, build_encoder, build_text_bank, resolve_dataset_root
from .device import resolve_device, worker_init
from .model import encoder_key

__all__ = ["encode_split", "cached_features", "cache_dir", "split_key", "video_bounds", "sampled_bounds",
           "SplitFeatures", "FrameBank", "FrozenFeatures"]


# ============================================================================ one split, test frames
class _TestClips(torch.utils.data.Dataset):
    """Test-mode clips of a :class:`~lga.data.dataset.VideoDataset` (centre-cropped when asked);
    unreadable ones come back as None with the reason."""

    def __init__(self, dataset, crops: Crops | None = None):
        self.dataset, self.crops = dataset, crops

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        from ..data.video import VideoError, read_video  # heavy: PyAV, only where videos are decoded
        item = self.dataset.items[i]
        try:
            clip = read_video(item.path, self.dataset.num_frames, "test", **getattr(self.dataset, "read_options", {}))
        except VideoError as e:
            return i, None, e.reason
        if self.crops is not None:
            clip = Crops.apply(clip, self.crops.test_view(clip.shape[1], clip.shape[2])).contiguous()
        return i, clip, None


def _collate(batch):
    return batch


@torch.no_grad()
def encode_split(encoder, dataset, batch_size: int = 64, device=None, workers: int = 0,
                 progress: bool = True, crops: Crops | None = None):
    """Encode every video of a split once, with deterministic test frames, streaming from disk.

    ``crops``: cut every frame to the centre crop first (:class:`~lga.engine.augment.Crops`).
    Returns ``(features float32 [V, T, D] on CPU, labels int64 [V], keys, report)`` for the V readable
    videos; unreadable ones are skipped and listed in the :class:`~lga.data.dataset.LoadReport`.
    """
    from ..data.dataset import LoadReport  # heavy: PyAV, only where videos are decoded
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    report = LoadReport(missing=list(dataset.missing))
    loader = torch.utils.data.DataLoader(_TestClips(dataset, crops), batch_size=batch_size, num_workers=workers,
                                         collate_fn=_collate, worker_init_fn=worker_init())
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


# ============================================================================ the disk cache
def _cache_path(cache_dir, kind: str, key_parts: dict, dataset) -> tuple[Path, dict]:
    videos = hashlib.sha256("\n".join(it.key for it in dataset.items).encode()).hexdigest()
    key_parts = dict(key_parts, videos=videos)
    key = json_sha256(key_parts)[:32]
    return Path(cache_dir) / f"{kind}-{key}.safetensors", key_parts


def _load_cached(path: Path):
    from ..data.dataset import LoadReport  # heavy: PyAV, only where videos are decoded
    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {})["lga"])
    report = LoadReport(loaded=len(info["keys"]), skipped=info["skipped"], missing=info["missing"])
    return load_file(str(path)), info, report


def _save_cached(path: Path, tensors: dict, key_parts: dict, keys: list, report) -> None:
    md = {"lga": json.dumps({"key": key_parts, "keys": keys, "skipped": report.skipped, "missing": report.missing})}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=md))


def cached_features(encoder, dataset, cache_dir, key_parts: dict, **kw):
    """:func:`encode_split` once; later calls with the same ``key_parts`` read the cached file.

    The cache file name is a sha256 of ``key_parts`` (checkpoint or encoder hash, dataset, split,
    frames, crop) and of the split's video list: a new checkpoint or another frame count never reads
    stale features. ``cache_dir=None``: no file, just :func:`encode_split`.
    """
    if cache_dir is None:
        return encode_split(encoder, dataset, **kw)
    path, key_parts = _cache_path(cache_dir, "features", key_parts, dataset)
    if path.is_file():
        t, info, report = _load_cached(path)
        return t["features"], t["labels"], info["keys"], report
    feats, labels, keys, report = encode_split(encoder, dataset, **kw)
    _save_cached(path, {"features": feats, "labels": labels}, key_parts, keys, report)
    return feats, labels, keys, report


# ============================================================================ containers
@dataclass
class _Videos:
    """What every split container holds (see :class:`SplitFeatures` and :class:`FrameBank`)."""

    features: torch.Tensor
    labels: np.ndarray
    keys: list
    bank: object = None
    split: str = ""
    class_names: list | None = None
    phase_bounds: torch.Tensor | None = None

    @property
    def dim(self) -> int:
        return int(self.features.shape[-1])


@dataclass
class SplitFeatures(_Videos):
    """A split's cached frame features and class texts.

    Attributes:
        features: float32 ``[V, T, D]`` frame features of the deterministic test frames
            (L2-normalised for a CLIP).
        labels: int64 ``[V]`` split-local labels.
        keys: the V videos (``class_dir/video_id``).
        bank: :class:`lga.models.text_bank.TextBank` of the split's classes (steps ``[C, L, D]``,
            labels ``[C, D]``), or None (heads without text).
        split: ``"train"``, ``"val"`` or ``"test"``.
        class_names: the split's classes in label order.
        phase_bounds: int64 ``[V, L+1]`` ground-truth phase bounds over the T frames (AtomicActions),
            for LGA's oracle phases (``segmenter="given"``); None when the dataset has none.
    """

    def __post_init__(self):
        if self.class_names is None and self.bank is not None:
            self.class_names = list(self.bank.class_names)

    @classmethod
    def encode(cls, clip_model, tokenizer, root: str | os.PathLike, split: str, num_frames: int = 8,
               per_class: int | None = None, anatomy=None, label_template: str = "{label}",
               batch_size: int = 64, progress: bool = False) -> "SplitFeatures":
        """Encode a split of a prepared dataset once with a frozen CLIP (for analysis cells).

        Args:
            per_class: keep only the first ``per_class`` videos of each class (None: every video).
            anatomy: the step texts (anything :meth:`TextBank.build` takes); default: the
                dataset's own ``anatomy.json``.
            label_template: how a class label becomes a sentence for the label text.
        Unreadable videos are skipped (see :func:`encode_split`).
        """
        from ..data.dataset import VideoDataset  # heavy: PyAV, only where videos are decoded
        from ..models.backbone_encoder import ClipFrameEncoder  # heavy: open_clip, only for a CLIP

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
        feats, labels, keys, _ = encode_split(encoder, ds, batch_size=batch_size, progress=progress)
        bank = TextBank.build(anatomy if anatomy is not None else root, ds.class_names, clip_model, tokenizer,
                              label_template=label_template)
        return cls(feats, labels.numpy(), keys, bank, split, list(ds.class_names),
                   sampled_bounds(root, keys, num_frames))

    def with_text(self, clip_model, tokenizer, anatomy, label_template: str = "{label}") -> "SplitFeatures":
        """The same videos with the class texts of another ``anatomy`` (e.g. a noisy one)."""
        bank = TextBank.build(anatomy, self.class_names, clip_model, tokenizer, label_template=label_template)
        return replace(self, bank=bank)

    def sampler(self, n_way: int = 5, k_shot: int = 1, queries: int = 1, seed: int = 0,
                num_episodes: int | None = None) -> EpisodeSampler:
        """Episodes over this split's videos (episode i is the same for every head)."""
        return EpisodeSampler(self.labels, n_way, k_shot, queries, seed=seed,
                              num_episodes=num_episodes if num_episodes is not None else 1000)


@dataclass
class FrameBank(_Videos):
    """Every frame of every video of a split, through each training crop: a frozen backbone's
    training set.

    Attributes:
        features: float32 ``[F, C, D]``: F frames of all videos in order, C crops
            (:attr:`lga.engine.augment.Crops.num_train_views`).
        offsets: int64 ``[V + 1]``: video v's frames are rows ``offsets[v] .. offsets[v+1] - 1``.
        labels: int64 ``[V]``; keys: the V videos; bank: the split's :class:`TextBank` (or None).
        phase_bounds: int64 ``[V, L+1]`` ground-truth phase bounds in the numbering of the cached
            frames (AtomicActions), or None.
    """

    offsets: torch.Tensor | None = None
    split: str = "train"

    @property
    def num_views(self) -> int:
        return int(self.features.shape[1])

    def frames_of(self, video: int) -> int:
        return int(self.offsets[video + 1] - self.offsets[video])

    def clip(self, video: int, num_frames: int, rng: np.random.Generator | None, crops: Crops,
             sampling: str = "random"):
        """``(features [T, D], phase bounds [L+1] or None)`` of one training clip of ``video``: its
        frames drawn as :func:`lga.data.video.read_video` draws them (``sampling="random"``: one random
        frame per segment from ``rng``; ``"fixed"``: the test frames), then a crop from ``rng``
        (:meth:`Crops.draw`); the bounds are the ground truth's over the T frames drawn."""
        mode = "train" if sampling == "random" else "test"
        idx = sample_indices(self.frames_of(video), num_frames, mode, rng if mode == "train" else None)
        idx = torch.from_numpy(idx)
        view = crops.draw(rng)
        bounds = None
        if self.phase_bounds is not None:
            bounds = bounds_for_sampled_frames(idx, self.phase_bounds[video][None])[0]
        return self.features[int(self.offsets[video]) + idx, view], bounds

    @classmethod
    @torch.no_grad()
    def encode(cls, encoder, dataset, crops: Crops, cache_frames: int = 0, device=None,
               progress: bool = True):
        """Encode every frame (or ``cache_frames`` evenly spaced frames) of every video of ``dataset``
        through each training crop. Returns ``(bank, report)``; unreadable videos and videos with
        fewer than ``dataset.num_frames`` frames are skipped and listed in the report."""
        from ..data.dataset import LoadReport  # heavy: PyAV, only where videos are decoded
        from ..data.video import VideoError, count_frames, read_video  # heavy: PyAV, only where videos are decoded
        device = torch.device(device) if device is not None else next(encoder.parameters()).device
        was = encoder.training
        encoder.eval()
        report = LoadReport(missing=list(dataset.missing))
        feats, offsets, labels, keys = [], [0], [], []
        for item in tqdm(dataset.items, desc=f"encoding every frame of the {dataset.split} videos",
                         disable=not progress):
            try:
                total = count_frames(item.path)
                n = total if cache_frames <= 0 else min(cache_frames, total)
                if n < dataset.num_frames:
                    raise VideoError(item.path, f"has {n} frames, fewer than the {dataset.num_frames} needed")
                clip = read_video(item.path, n, "test", **getattr(dataset, "read_options", {}))  # [n, H, W, 3]
            except VideoError as e:
                report.skipped[item.key] = e.reason
                continue
            H, W = clip.shape[1:3]
            views = torch.stack([Crops.apply(clip, crops.train_view(v, H, W)) for v in range(crops.num_train_views)])
            f = encoder(views.to(device)).float().cpu()                          # [C, n, D]
            feats.append(f.transpose(0, 1))                                      # [n, C, D]
            offsets.append(offsets[-1] + n)
            labels.append(item.label)
            keys.append(item.key)
        encoder.train(was)
        report.loaded = len(keys)
        if not keys:
            raise RuntimeError(f"no readable video in {dataset.root} split {dataset.split!r}\n{report}")
        bank = cls(torch.cat(feats), np.asarray(labels, dtype=np.int64), keys, split=dataset.split,
                   class_names=list(dataset.class_names), offsets=torch.tensor(offsets, dtype=torch.int64))
        return bank, report


@dataclass
class FrozenFeatures:
    """A frozen backbone's features for one config: every training frame, the val and test splits,
    and the key of the encoder that made them (checked against a checkpoint's before its head is used).

    Build it once with :meth:`from_config` and pass it to :func:`lga.engine.train.train` (argument
    ``features``) for any number of runs of configs that share the encoder, the text config, the
    dataset, the frame count and the crop (:meth:`check`).
    """

    key: str
    train: FrameBank
    val: SplitFeatures
    test: SplitFeatures | None
    signature: dict

    @property
    def dim(self) -> int:
        return self.train.dim

    @staticmethod
    def signature_of(cfg) -> dict:
        """What of a config the features depend on (two configs with the same signature share them)."""
        d, m = cfg.to_dict()["data"], cfg.to_dict()["model"]
        return {"dataset": str(cfg.dataset_root().resolve()), "num_frames": d["num_frames"],
                "crop": [d["augment"], d["crop_scale"], d["crop_grid"]], "cache_frames": cfg.train.cache_frames,
                "encoder": m["encoder"], "encoder_args": m["encoder_args"], "text": m["text"],
                "text_args": m["text_args"], "anatomy": d["anatomy"], "seed": cfg.train.seed
                if not _pretrained(cfg) else None}

    def check(self, cfg) -> None:
        """Raise ValueError naming the keys when ``cfg`` needs other features than these."""
        want = self.signature_of(cfg)
        diff = [k for k in want if want[k] != self.signature.get(k)]
        if diff:
            raise ValueError(f"these cached features were made for another config: it differs in {', '.join(diff)}")

    @classmethod
    def from_config(cls, cfg, encoder=None, splits=("train", "val", "test"), device=None,
                    progress: bool = True) -> "FrozenFeatures":
        """Encode (or read from ``train.feature_cache``) what a frozen-backbone run of ``cfg`` needs.

        Args:
            encoder: the frozen encoder (default: built from the config, seeded by ``train.seed`` as
                :func:`lga.engine.model.build_model` builds it).
            splits: which of train / val / test to encode (the others are None).
        """
        from ..data.dataset import VideoDataset  # heavy: PyAV, only where videos are decoded

        device = torch.device(device) if device is not None else resolve_device(cfg.train.device)
        if encoder is None:
            torch.manual_seed(cfg.train.seed)
            encoder = build_encoder(cfg.model, device=device)
        encoder = encoder.to(device).eval()
        key = encoder_key(encoder)
        root = resolve_dataset_root(cfg, progress=progress)
        cache = cache_dir(cfg.train.feature_cache)
        crops = Crops.from_config(cfg.data)
        anatomy = anatomy_source(cfg, root)
        out: dict = {}
        for split in ("train", "val", "test"):
            if split not in splits:
                out[split] = None
                continue
            ds = VideoDataset(root, split, cfg.data.num_frames, mode="test", allow_symlinks=cfg.data.allow_symlinks)
            bank = build_text_bank(cfg.model, ds.class_names, encoder=encoder, anatomy=anatomy)
            bank = bank.to("cpu") if bank is not None else None
            if split == "train":
                parts = dict(split_key(key, root, split, cfg.data.num_frames, crops), kind="frames",
                             cache_frames=cfg.train.cache_frames,
                             crop=[crops.scale, crops.grid if crops.augment else 0])
                out[split] = _frame_bank(encoder, ds, crops, cfg.train.cache_frames, cache, parts, device, progress)
                out[split].bank = bank
                out[split].phase_bounds = _cached_frame_bounds(root, out[split], cfg.train.cache_frames)
            else:
                parts = split_key(key, root, split, cfg.data.num_frames, crops)
                f, labels, keys, _ = cached_features(encoder, ds, cache, parts, batch_size=cfg.eval.encode_batch,
                                                     device=device, workers=cfg.data.workers, progress=progress,
                                                     crops=crops)
                out[split] = SplitFeatures(f, labels.numpy(), keys, bank, split, list(ds.class_names),
                                           sampled_bounds(root, keys, cfg.data.num_frames))
        return cls(key, out["train"], out["val"], out["test"], cls.signature_of(cfg))


def cache_dir(path) -> Path | None:
    """A feature-cache folder of a config (``train.feature_cache``, ``eval.feature_cache``): absolute,
    ``~``, or relative to :func:`lga.config.data_dir`; None stays None (no cache)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_dir() / p


def split_key(encoder_key: str, root, split: str, num_frames: int, crops: Crops) -> dict:
    """What the test-frame features of a split depend on (the name of their cache file)."""
    return {"encoder": encoder_key, "dataset": str(Path(root).resolve()), "split": split,
            "num_frames": num_frames, "crop": [crops.scale]}


def video_bounds(root, keys: list) -> tuple[torch.Tensor, list] | None:
    """Ground-truth phase bounds of videos, in their own frame numbers: ``(bounds [V, L+1],
    frames per video)`` from the dataset's ``anatomy.json`` (``videos``: AtomicActions has them), or
    None when the dataset has none for some of ``keys`` (the real benchmarks)."""
    path = Path(root) / "anatomy.json"
    if not path.is_file():
        return None
    videos = read_anatomy(path).get("videos") or {}
    if not keys or any(k not in videos for k in keys):
        return None
    return (torch.tensor([videos[k]["phase_bounds"] for k in keys], dtype=torch.int64),
            [int(videos[k]["num_frames"]) for k in keys])


def sampled_bounds(root, keys: list, num_frames: int) -> torch.Tensor | None:
    """Ground-truth phase bounds ``[V, L+1]`` over the ``num_frames`` deterministic test frames of each
    video (:func:`lga.anatomy.visual.bounds_for_sampled_frames`), or None (:func:`video_bounds`)."""
    gt = video_bounds(root, keys)
    if gt is None:
        return None
    bounds, frames = gt
    idx = torch.from_numpy(np.stack([sample_indices(n, num_frames, "test") for n in frames]))
    return bounds_for_sampled_frames(idx, bounds)


def _pretrained(cfg) -> bool:
    """True when the encoder's weights come from a file or a download, not from the seed."""
    args = cfg.model.encoder_args
    return cfg.model.encoder == "clip" and (bool(args.get("pretrained")) or "/" in str(args.get("model", ""))
                                            or str(args.get("model", "")).startswith("local-dir:"))


def _cached_frame_bounds(root, bank: FrameBank, cache_frames: int) -> torch.Tensor | None:
    """The ground-truth bounds of a frame bank's videos in the numbering of its cached frames."""
    gt = video_bounds(root, bank.keys)
    if gt is None:
        return None
    bounds, frames = gt
    if cache_frames <= 0:
        return bounds
    return torch.cat([bounds_for_sampled_frames(torch.from_numpy(sample_indices(n, bank.frames_of(v), "test")),
                                                bounds[v:v + 1]) for v, n in enumerate(frames)])


def _frame_bank(encoder, ds, crops, cache_frames, cache, parts, device, progress) -> FrameBank:
    if cache is not None:
        path, parts = _cache_path(cache, "frames", parts, ds)
        if path.is_file():
            t, info, _ = _load_cached(path)
            return FrameBank(t["features"], t["labels"].numpy(), info["keys"], split=ds.split,
                             class_names=list(ds.class_names), offsets=t["offsets"])
    bank, report = FrameBank.encode(encoder, ds, crops, cache_frames, device=device, progress=progress)
    if cache is not None:
        _save_cached(path, {"features": bank.features, "offsets": bank.offsets,
                            "labels": torch.from_numpy(bank.labels)}, parts, bank.keys, report)
    return bank
