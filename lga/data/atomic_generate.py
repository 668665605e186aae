"""AtomicActions, the whole dataset: :func:`generate` writes it (videos in worker processes, split
lists, class table, anatomy, ``dataset.json`` with a manifest last) beside its folder and moves it
there when complete; :func:`verify` checks it against its manifest; :func:`get_atomic_actions` reuses
or makes the dataset of a config in the data cache. Part of :mod:`lga.data.atomic_actions`, which
offers every name.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from ..util.hashing import bytes_sha256, json_sha256
from ..util.paths import data_dir
from ..util.processes import die_with_parent
from . import atomic_text, layout
from .atomic_anatomy import anatomy_dict, noisy_anatomy
from .atomic_design import WORDING_COPY, WORDINGS, AtomicActionsConfig, design_classes, min_phase_frames
from .atomic_phases import phase_frame_accuracy
from .atomic_render import render_video
from .manifest import problems
from .video import write_video


def _file_record(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": bytes_sha256(data)}


def _video_job(args):
    cls, cfg, v, root = args
    video_id = f"{cls.class_dir}_{v:03d}"
    frames, bounds = render_video(cls, cfg, v)
    path = write_video(Path(root) / "videos" / cls.class_dir / f"{video_id}.mp4", frames, fps=cfg.fps)
    return f"{cls.class_dir}/{video_id}", bounds, _file_record(path)


def generate(out: str | Path, cfg: AtomicActionsConfig | None = None, progress: bool = True, *,
             overwrite: bool = False, anatomy_noise=()) -> dict:
    """Generate AtomicActions into ``out`` (the layout of :mod:`lga.data.layout`).

    The dataset is written into ``<out>.partial`` (removed first if a killed run left it, and removed
    if the run fails: a full disk, an error, Ctrl-C) and renamed to ``out`` only when complete, with
    ``dataset.json`` (config, classes, manifest of every file) written last; so ``out`` is either
    absent, the old dataset, or the complete new one. ``out`` may be
    absent or an empty folder; a non-empty ``out`` is refused unless ``overwrite`` (and even then
    only if it looks like a dataset: it holds ``dataset.json``, ``splits/`` or ``videos/``).
    ``anatomy_noise``: rates; for each, ``anatomy_noise<RATE>.json`` (:func:`~lga.data.atomic_anatomy.noisy_anatomy` of
    ``anatomy.json``, seed ``cfg.seed``) is written too.

    Videos are rendered in ``cfg.workers`` processes, which exit if this process dies; the result does
    not depend on the number of workers. Returns a summary dict (counts and seconds).

    With ``cfg.only_splits`` (e.g. ``("test",)``) only those splits are rendered and listed in
    ``splits/``; the classes are designed as always (``classes.tsv`` and the anatomy hold all of
    them), and every video is a function of the seed, its class and its index, so a test-only dataset
    with fewer ``videos_per_class`` holds exactly the first videos of the full dataset's test classes
    (the same knobs otherwise): a cheap dataset for a sweep of a knob.
    """
    cfg = cfg or AtomicActionsConfig()
    if len(cfg.num_classes) != 3:
        raise ValueError(f"num_classes must give (train, val, test), got {cfg.num_classes}")
    if cfg.size % 2:
        raise ValueError(f"size must be even (video encoding), got {cfg.size}")
    if cfg.version == "1.0":
        if cfg.frames_per_video < cfg.num_phases * 2 / cfg.min_phase_share / cfg.num_phases:
            raise ValueError(f"frames_per_video={cfg.frames_per_video} too short for {cfg.num_phases} phases")
    elif cfg.frames_per_video < max(cfg.clip_frames, cfg.num_phases * min_phase_frames(cfg)):
        raise ValueError(f"frames_per_video={cfg.frames_per_video} too short for {cfg.num_phases} phases of at "
                         f"least {min_phase_frames(cfg)} frames (one of {cfg.clip_frames} sampled frames) each")
    t0 = time.perf_counter()
    out = Path(out)
    _check_target(out, overwrite)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        n_classes, n_videos = _write_dataset(tmp, cfg, progress, anatomy_noise)
    except BaseException:   # a full disk, a bug, Ctrl-C: the unfinished folder is of no use, and takes space
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, out)
    return {"classes": n_classes, "videos": n_videos, "seconds": time.perf_counter() - t0}


def _write_dataset(tmp: Path, cfg: AtomicActionsConfig, progress: bool, anatomy_noise) -> tuple[int, int]:
    """The dataset of ``cfg`` written into the empty folder ``tmp``, ``dataset.json`` last (see
    :func:`generate`). Returns (number of classes, number of videos)."""
    wording_data = None
    if cfg.version != "1.0":
        raw = atomic_text.wording_bytes()
        layout.atomic_write_bytes(tmp / WORDING_COPY, raw)
        wording_data = atomic_text.load_wording(tmp / WORDING_COPY)
    classes = design_classes(cfg, wording_data)
    jobs = [(c, cfg, v, str(tmp)) for c in classes if cfg.renders(c.split) for v in range(cfg.videos_per_class)]
    videos: dict = {}
    files: dict = {}

    def record(result):
        key, bounds, rec = result
        videos[key] = {"num_frames": cfg.frames_per_video, "phase_bounds": bounds}
        files[f"videos/{key}.mp4"] = rec

    with tqdm(total=len(jobs), desc="AtomicActions videos", unit="video", disable=not progress) as bar:
        if cfg.workers > 1:   # workers end with this process, even if killed
            ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
            with ctx.Pool(cfg.workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for result in pool.imap(_video_job, jobs, chunksize=8):
                    record(result)
                    bar.update()
        else:
            for job in jobs:
                record(_video_job(job))
                bar.update()
    entries = []
    for split in layout.SPLITS:
        split_classes = [c for c in classes if c.split == split]
        entries += [layout.ClassEntry(split, i, c.class_dir, c.name) for i, c in enumerate(split_classes)]
        if not cfg.renders(split):
            continue
        layout.write_split_list(tmp, split, [k for c in split_classes for k in
                                             (f"{c.class_dir}/{c.class_dir}_{v:03d}"
                                              for v in range(cfg.videos_per_class))])
    layout.write_classes(tmp, entries)
    anatomy = anatomy_dict(classes, videos, cfg)
    layout.write_json(tmp / "anatomy.json", anatomy)
    if cfg.version != "1.0":
        for w in WORDINGS:
            layout.write_json(tmp / f"anatomy_{w}.json", anatomy_dict(classes, videos, cfg, w))
    for rate in anatomy_noise:
        layout.write_json(tmp / f"anatomy_noise{rate:.2f}.json", noisy_anatomy(anatomy, rate, cfg.seed))
    for path in sorted(tmp.rglob("*")):
        rel = path.relative_to(tmp).as_posix()
        if path.is_file() and rel not in files:
            files[rel] = _file_record(path)
    test_dirs = {c.class_dir for c in classes if c.split == "test"}
    test_bounds = [v["phase_bounds"] for k, v in videos.items() if k.split("/")[0] in test_dirs]
    clip = cfg.clip_frames
    meta = {"name": "atomic_actions", "version": cfg.version, "created_by": "lga.data.atomic_actions",
            "config": cfg.recorded(),
            "num_classes": len(classes),
            "splits": {s: sum(c.split == s for c in classes) for s in layout.SPLITS},
            "stats": {f"uniform_thirds_phase_accuracy_{clip}_frames": {
                "all": float(phase_frame_accuracy([v["phase_bounds"] for v in videos.values()],
                                                  cfg.frames_per_video, clip_frames=clip).mean()),
                "test": float(phase_frame_accuracy(test_bounds, cfg.frames_per_video,
                                                   clip_frames=clip).mean()) if test_bounds else None}},
            "classes": [asdict(c) for c in classes],
            "files": {k: files[k] for k in sorted(files)}}
    layout.write_json(tmp / "dataset.json", meta)        # last: the folder is complete from here on
    return len(classes), len(jobs)


def _looks_like_dataset(folder: Path) -> bool:
    return any((folder / n).exists() for n in ("dataset.json", "splits", "videos"))


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty: choose another folder, or pass overwrite=True "
                              "(--overwrite) to replace the dataset there")
    if not _looks_like_dataset(out):
        raise FileExistsError(f"{out} is not empty and does not look like a dataset (no dataset.json, "
                              "splits/ or videos/): not replacing it; remove it yourself or choose another folder")


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``, replacing whatever is there."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def verify(root: str | Path, deep: bool = False) -> list[str]:
    """What is wrong with the dataset at ``root``, checked against the manifest of its
    ``dataset.json``: a missing file, a file of another size (a video of another frame count or frame
    size), an extra video, or (small files always; videos with ``deep=True``) other content by
    sha256. Returns the problems (empty: complete). Cheap without ``deep``: a ``stat`` per video.
    Symlinked files are followed (this checks content; :func:`lga.data.manifest.verify_dataset`, which
    ``lga train`` and ``lga eval`` run, also refuses files that lead outside the folder)."""
    root = Path(root)
    meta_path = root / "dataset.json"
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{meta_path}: cannot be read ({type(e).__name__})"]
    if meta.get("name") != "atomic_actions":
        return [f"{meta_path}: not an AtomicActions dataset (name={meta.get('name')!r})"]
    files = meta.get("files")
    if not isinstance(files, dict):
        return [f"{meta_path}: no file manifest (made by an older generator)"]
    return problems(root, files, deep=deep, allow_symlinks=True)[0]


def get_atomic_actions(root: str | Path | None = None, cfg: AtomicActionsConfig | None = None,
                       progress: bool = True) -> Path:
    """The folder of an AtomicActions dataset made with ``cfg``: reused if already there, else generated.

    ``root`` defaults to :func:`default_root` of ``cfg`` under :func:`lga.config.data_dir`: one
    folder per config, so a sweep dataset never replaces the book's default one. A folder whose
    ``dataset.json`` records another generator version or config, or that fails :func:`verify` (a
    missing, extra or resized file), is regenerated, so a chapter never runs on stale data.
    """
    cfg = cfg or AtomicActionsConfig()
    root = Path(root) if root is not None else data_dir() / default_root(cfg)
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("version") == cfg.version and meta.get("config") == cfg.recorded() and _is_complete(root):
            return root
    generate(root, cfg, progress=progress, overwrite=True)
    return root


def default_root(cfg: AtomicActionsConfig) -> str:
    """The folder name of ``cfg``'s dataset in the data cache: ``atomic_actions-seed<seed>`` for the
    default config of that seed (the book's dataset), else that name plus the first 10 hex digits of
    the sha256 of the recorded config (``atomic_actions-seed0-3f2a...``)."""
    name = f"atomic_actions-seed{cfg.seed}"
    if cfg.recorded() == AtomicActionsConfig(seed=cfg.seed).recorded():
        return name
    digest = json_sha256(cfg.recorded())
    return f"{name}-{digest[:10]}"


def default_seed(name: str) -> int | None:
    """The seed whose default dataset :func:`default_root` names ``name`` (``atomic_actions-seed3`` -> 3),
    or None for any other folder name (a sweep dataset's, or a folder of one's own)."""
    prefix = "atomic_actions-seed"
    seed = name.removeprefix(prefix)
    if name == seed or not seed.isdigit() or default_root(AtomicActionsConfig(seed=int(seed))) != name:
        return None
    return int(seed)


def _is_complete(root: Path) -> bool:
    """The dataset at ``root`` matches its manifest (see :func:`verify`)."""
    return not verify(root)
