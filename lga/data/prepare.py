"""Turn a benchmark as users download it into the one layout of :mod:`lga.data.layout`.

``prepare(dataset, raw, out)`` (and ``python -m lga prepare NAME --raw ... --out ...``, or
``data_scripts/prepare_<dataset>.py``) does, for HMDB51, UCF101, Kinetics-100, SSv2-Small and
SSv2-Full:

1. load the standard split lists (:mod:`lga.data.splits`; downloaded once, checksummed);
2. find every video of the splits under ``raw`` -- folders, archives (zip, tar, rar, rar-of-rars,
   SSv2's numbered tar pieces), extracting only the videos the splits need
   (:mod:`lga.data.prepare_archives`);
3. report the videos it cannot find, per class, and stop unless ``allow_missing``;
4. decode each video with PyAV, resize it to ``short_side`` (256: the short side CLIP-FSAR resizes
   to before cropping 224; aspect kept, sizes even), optionally resample it to ``fps`` or cap it at
   ``max_frames`` (evenly spaced over the whole video), and write ``videos/<class_dir>/<id>.mp4``
   with :func:`lga.data.video.write_video` (atomic);
5. write ``splits/{train,val,test}.txt``, ``classes.tsv`` and, last, ``dataset.json``, with the
   size and sha256 of every video, split list and anatomy file (:mod:`lga.data.manifest`), which
   ``lga train`` and ``lga eval`` check the folder against before using it.

Videos are converted by ``workers`` processes, which end when the preparing process ends (even
killed). Each video has a time limit; a video whose decoder hangs or crashes its process is reported
as corrupt and its worker replaced, so one bad file never stops or hangs a run. A corrupt, truncated,
empty or too-short video (fewer than ``min_frames`` frames) is reported and left out of the split
lists. A video that cannot be *written* (a full disk, a folder without write permission) is not the
video's fault: the run stops with a :class:`PrepareError` that says so, keeping the videos done.

``dataset.json`` is the mark of a complete folder: it is removed before anything in the folder
changes and written last (atomically), with the settings the videos were made with; readers
(:class:`lga.data.dataset.VideoDataset`) refuse a folder without it. A rerun skips every video whose
output file exists (outputs are written atomically, so an existing file is complete), provided the
folder's videos were made with the same settings (recorded in ``.lga-prepare.json`` while a run is
under way, in ``dataset.json`` once it is done); with other settings it is refused, unless
``overwrite``, which deletes the folder's videos and prepares them again.

This module is the run and its command line; the parts it uses, each importable from here too:
:mod:`lga.data.prepare_sources` (finding the videos in the download), :mod:`lga.data.prepare_archives`
(extracting them), :mod:`lga.data.prepare_convert` (one video), :mod:`lga.data.prepare_workers`
(worker processes with a time limit) and :mod:`lga.data.prepare_ssv2` (SSv2-Full's class names).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from .. import __version__
from ..util.processes import die_with_parent  # noqa: F401  (importable from here, as before)
from . import layout
from . import splits as S
from .layout import SPLITS, ClassEntry, write_classes, write_json, write_split_list
from .manifest import build_manifest
from .prepare_archives import DISK_FULL, ArchiveError, ArchiveLimits
from .prepare_convert import convert_video, output_size  # noqa: F401  (output_size: importable from here)
from .prepare_sources import _pick_source, class_dir_name, entry_key, gather_sources, source_key  # noqa: F401
from .prepare_ssv2 import load_templates, name_classes
from .prepare_workers import DEFAULT_TIMEOUT, run_parallel
from .video import VideoError, write_video  # noqa: F401  (importable from here, as before the split)

log = logging.getLogger("lga.prepare")

EXTRACT_DIRNAME = ".lga-extract"
SETTINGS_FILE = ".lga-prepare.json"

#: per dataset: display name, split origin, and what a user downloads by hand
DATASETS: dict[str, dict] = {
    "hmdb51": {
        "title": "HMDB51", "split": "ARN (31/10/10 classes)",
        "download": "hmdb51_org.rar (a .rar holding one .rar per class) from the HMDB51 page of "
                    "Brown University's Serre lab; pass the .rar, or any folder holding it or its "
                    "contents, as --raw",
    },
    "ucf101": {
        "title": "UCF101", "split": "ARN (70/10/21 classes)",
        "download": "UCF101.rar from the UCF CRCV UCF101 page; pass the .rar or the extracted "
                    "folder as --raw",
    },
    "kinetics100": {
        "title": "Kinetics-100", "split": "CMN (64/12/24 classes, 100 videos each)",
        "download": "the Kinetics-400 clips of the split (mp4 named <youtube_id>_<start>_<end>.mp4 "
                    "or <youtube_id>.mp4, in any folders or .tar.gz/.zip archives, e.g. the CVDF "
                    "Kinetics-400 tarballs); videos gone from YouTube are reported as missing",
    },
    "ssv2_small": {
        "title": "SSv2-Small", "split": "CMN (64/12/24 classes, 100 videos each)",
        "download": "Something-Something v2 videos from Qualcomm: the 20bn-something-something-v2-??.zip "
                    "files (or the pieces inside them, or the extracted folder of <id>.webm files)",
    },
    "ssv2_full": {
        "title": "SSv2-Full", "split": "OTAM (64/12/24 classes, all their videos)",
        "download": "Something-Something v2 videos (as for ssv2_small) and its labels archive "
                    "(labels.json, train.json, validation.json, test.json): names of the classes come "
                    "from it",
    },
}


class PrepareError(RuntimeError):
    """A preparation that cannot go on: the output folder holds videos made with other settings, or
    cannot be written (a full disk). The message says what to do."""


class MissingVideosError(RuntimeError):
    """Videos of the split lists that are not in the raw download (and ``allow_missing`` is off)."""

    def __init__(self, message: str, report: "PrepareReport"):
        super().__init__(message)
        self.report = report


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


@dataclass
class PrepareReport:
    """What a preparation run did. ``missing`` and ``corrupt`` videos are left out of the splits."""

    dataset: str
    out: Path
    prepared: list[str] = field(default_factory=list)     # "class_dir/video_id"
    skipped: list[str] = field(default_factory=list)      # already done by an earlier run
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)  # (entry, source, reason)
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (split, class_name, video_id)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def missing_per_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for split, name, _ in self.missing:
            key = f"{split}/{name}"
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> str:
        lines = [f"{self.dataset} -> {self.out} ({self.seconds:.1f} s)",
                 f"  prepared {len(self.prepared)}, skipped (already done) {len(self.skipped)}, "
                 f"corrupt {len(self.corrupt)}, missing {len(self.missing)}"]
        for split, c in self.splits.items():
            lines.append(f"  {split}: {c['videos']} videos of {c['listed']} listed, {c['classes']} classes")
        if self.corrupt:
            lines.append("  corrupt (left out):")
            lines += [f"    {src}: {reason}" for _, src, reason in self.corrupt]
        if self.missing:
            lines.append("  missing per class:")
            lines += [f"    {k}: {v}" for k, v in sorted(self.missing_per_class().items())]
        return "\n".join(lines)


def _finished_videos(out: Path, clean_temporaries: bool = False) -> set[str]:
    """``class_dir/video_id`` of every non-empty ``videos/*/*.mp4`` (finished: writes are atomic).

    ``clean_temporaries`` removes the hidden partial files of interrupted writes (only safe while no
    other process is writing into ``out``).
    """
    done: set[str] = set()
    root = out / "videos"
    if not root.is_dir():
        return done
    with os.scandir(root) as classes:
        for d in classes:
            if not d.is_dir():
                continue
            with os.scandir(d.path) as files:
                for f in files:
                    if not f.name.endswith(".mp4"):
                        continue
                    if f.name.startswith("."):  # write_video's temporary: a killed worker's leftover
                        if clean_temporaries:
                            Path(f.path).unlink(missing_ok=True)
                    elif f.stat().st_size > 0:
                        done.add(f"{d.name}/{f.name[:-4]}")
    return done


def video_settings(dataset: str, split_format: str, short_side: int, fps: float | None,
                   max_frames: int | None, min_frames: int) -> dict:
    """What decides the content of a prepared folder's videos (recorded in ``dataset.json``)."""
    return {"name": dataset, "split_format": split_format,
            "video": {"short_side": short_side, "fps": fps, "max_frames": max_frames, "min_frames": min_frames,
                      "codec": "h264", "container": "mp4"}}


def _recorded_settings(out: Path) -> tuple[dict, Path] | None:
    """The settings the videos in ``out`` were made with: from the record of a run under way (or
    interrupted), else from ``dataset.json``; ``None`` if neither exists."""
    for path in (out / SETTINGS_FILE, out / "dataset.json"):
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            return {"name": meta["name"], "split_format": meta.get("split_format", "standard"),
                    "video": meta["video"]}, path
        except (ValueError, KeyError, TypeError) as e:
            raise PrepareError(f"{path} cannot be read ({type(e).__name__}: {e}), so the settings of the "
                               f"videos in {out} are unknown: pass --overwrite (overwrite=True) to prepare "
                               "them again, or choose a new --out") from e
    return None


def _check_settings(out: Path, wanted: dict, done: set[str]) -> None:
    """Refuse to add videos made with ``wanted`` settings to videos made with others."""
    if not done:
        return
    what_to_do = ("Prepare into a new folder (another --out), or pass --overwrite (overwrite=True) to "
                  f"delete the {len(done)} videos there and prepare them again.")
    found = _recorded_settings(out)
    if found is None:
        raise PrepareError(f"{out} holds {len(done)} videos but no record of the settings they were made "
                           f"with (no {SETTINGS_FILE} or dataset.json). {what_to_do}")
    recorded, path = found
    keys = ("short_side", "fps", "max_frames", "min_frames")
    diff = [f"{k}={recorded['video'].get(k)!r} (asked: {wanted['video'][k]!r})" for k in keys
            if recorded["video"].get(k) != wanted["video"][k]]
    diff += [f"{k}={recorded[k]!r} (asked: {wanted[k]!r})" for k in ("name", "split_format")
             if recorded[k] != wanted[k]]
    if diff:
        raise PrepareError(f"{out} holds {len(done)} videos made with other settings ({path.name}: "
                           f"{', '.join(diff)}); adding videos made otherwise would mix the two. {what_to_do}")


#: what :func:`prepare` writes into its output folder (and ``overwrite`` deletes)
OUTPUT_NAMES = ("dataset.json", SETTINGS_FILE, "classes.tsv", "missing.tsv", "splits", "videos")


def _clear_output(out: Path) -> None:
    """Delete :data:`OUTPUT_NAMES` from ``out``, if it looks like a folder :func:`prepare` made: it
    has ``dataset.json`` or the record of a run, or its ``videos/`` holds nothing but class folders
    of ``.mp4`` files. Anything else is refused (``--overwrite`` with a wrong ``--out`` must not
    delete a stranger's files)."""
    if not any((out / n).exists() for n in OUTPUT_NAMES):
        return
    ours = (out / "dataset.json").is_file() or (out / SETTINGS_FILE).is_file()
    if not ours and (out / "videos").is_dir():
        ours = all(d.is_dir() and all(f.is_file() and f.suffix == ".mp4" for f in d.iterdir())
                   for d in (out / "videos").iterdir())
    if not ours:
        raise PrepareError(f"--overwrite: {out} does not look like a folder made by `lga prepare` (no "
                           "dataset.json, and videos/ holds other things than class folders of .mp4 files); "
                           "not deleting anything there. Choose another --out, or empty it yourself.")
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _write_error(e: OSError, out: Path, done: int) -> PrepareError:
    """The message for an output that cannot be written: what failed, and what to do."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in DISK_FULL:
        advice = (f"The disk holding {out} is full: free some space (or choose an --out on another "
                  "disk) and run the same command again")
    else:
        advice = f"Check that {out} can be written, then run the same command again"
    if (out / "dataset.json").is_file():   # failed before the folder was touched: still the earlier run's
        state = f"{out} is as the earlier preparation left it (its dataset.json is that run's)"
    else:
        state = f"{out} is incomplete (it has no dataset.json, so no reader uses it)"
    return PrepareError(f"cannot write into {out}: {e.strerror or e}{where}. The preparation stopped; "
                        f"{state}. {advice}: the {done} videos already prepared are kept and skipped.")


def _as_list(raw) -> list[Path]:
    if isinstance(raw, (str, os.PathLike)):
        return [Path(raw)]
    return [Path(r) for r in raw]


def prepare(dataset: str, raw, out: str | os.PathLike, *, workers: int | None = None,
            short_side: int = 256, fps: float | None = None, max_frames: int | None = None,
            min_frames: int = 8, allow_missing: bool = False, cache_dir=None, annotations=None,
            work_dir=None, keep_extracted: bool = False, timeout: float | None = DEFAULT_TIMEOUT,
            split_format: str = "standard", progress: bool = True,
            archive_backend: str = "auto", overwrite: bool = False,
            archive_limits: ArchiveLimits | None = None) -> PrepareReport:
    """Prepare one benchmark from its raw download into the layout of :mod:`lga.data.layout`.

    Args:
        dataset: one of :data:`lga.data.splits.DATASETS`.
        raw: a path or list of paths: the download (archives, folders, video files).
        out: the prepared dataset's root folder.
        workers: processes converting videos (default: CPU count; 0: in this process).
        short_side, fps, max_frames, min_frames: see :func:`~lga.data.prepare_convert.convert_video`.
        allow_missing: go on without the split's videos that ``raw`` lacks (else
            :class:`MissingVideosError`, after writing their list to ``out/missing.tsv``).
        cache_dir: split list cache (see :func:`lga.data.splits.fetch_split_file`).
        annotations: SSv2 annotation files/folders/zips (default: searched for under ``raw``).
        work_dir: where archives are extracted (default ``out``); the ``.lga-extract`` folder made
            there is removed at the end unless ``keep_extracted``.
        timeout: seconds allowed per video.
        split_format: ``"standard"`` or ``"clipfsar"`` (CLIP-FSAR's lists; for Kinetics-100 a
            different set of videos).
        overwrite: delete what an earlier preparation wrote into ``out`` (:data:`OUTPUT_NAMES`) and
            start afresh; needed when ``out`` holds videos made with other settings.
        archive_limits: caps on what archives may extract (default ``ArchiveLimits()``).

    Returns:
        a :class:`PrepareReport`.

    Raises:
        PrepareError: ``out`` holds videos made with other settings, or cannot be written (a full
            disk); the message says what to do.
        MissingVideosError: videos of the splits are not in ``raw`` (and not ``allow_missing``).
    """
    if dataset not in DATASETS:
        raise KeyError(f"unknown dataset {dataset!r}; choose one of {tuple(DATASETS)}")
    t0 = time.monotonic()
    raw = _as_list(raw)
    out = Path(out)
    workers = (os.cpu_count() or 1) if workers is None else workers
    report = PrepareReport(dataset, out)

    # 1. splits and classes
    if dataset == "ssv2_full":  # fail early without annotations: they name the classes
        templates = load_templates(_as_list(annotations) if annotations else raw)
    entries = {s: S.load_split(dataset, s, split_format, cache_dir) for s in SPLITS}
    names = {s: S.class_names(entries[s]) for s in SPLITS}
    name_info: dict = {}
    if dataset == "ssv2_full":
        for s in SPLITS:
            named = name_classes(entries[s], templates, names[s])
            names[s] = named.names
            name_info[s] = {"source": named.source,
                            "disagreements": {str(k): v for k, v in named.disagreements.items()}}
    classes: list[ClassEntry] = []
    class_dir: dict[tuple[str, int], str] = {}
    used: set[str] = set()
    for s in SPLITS:
        for i, name in enumerate(names[s]):
            d = class_dir_name(name) if name else f"{s}_class_{i:02d}"
            base, k = d, 2
            while d.lower() in used:
                d, k = f"{base}_{k}", k + 1
            used.add(d.lower())
            class_dir[(s, i)] = d
            classes.append(ClassEntry(s, i, d, name if name else f"{s} class {i} (unnamed)"))

    classes_by_key = {(c.split, c.label_index): c for c in classes}

    # 2. what is done, what is to do
    settings = video_settings(dataset, split_format, short_side, fps, max_frames, min_frames)
    if overwrite and out.is_dir():
        _clear_output(out)
    done = _finished_videos(out, clean_temporaries=True)
    _check_settings(out, settings, done)
    todo: list[tuple[str, S.SplitEntry, str, Path]] = []
    for s in SPLITS:
        for e in entries[s]:
            rel = f"{class_dir[(s, e.label_index)]}/{e.video_id}"
            if rel in done:
                report.skipped.append(rel)
            else:
                todo.append((s, e, rel, out / "videos" / f"{rel}.mp4"))

    # 3. find the raw videos of what is to do
    work = Path(work_dir or out) / EXTRACT_DIRNAME
    found: dict[str, list[Path]] = {}
    if todo:
        wanted = {entry_key(dataset, e.video_id) for _, e, _, _ in todo}
        try:
            found = gather_sources(dataset, raw, work, wanted, exclude=[out / "videos", work],
                                   archive_backend=archive_backend, limits=archive_limits)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            raise PrepareError(f"cannot extract the raw videos into {work}: {e.strerror} ({e.filename}). "
                               "Free some space, or extract elsewhere (--work-dir on another disk), and run "
                               "the same command again: what is extracted already is kept.") from e
    tasks, task_meta = [], []
    for s, e, rel, dst in todo:
        cands = found.get(entry_key(dataset, e.video_id))
        if not cands:
            report.missing.append((s, classes_by_key[(s, e.label_index)].class_name, e.video_id))
            continue
        src, clip = _pick_source(dataset, e, cands)
        tasks.append(((str(src), str(dst)), dict(short_side=short_side, fps=fps, max_frames=max_frames,
                                                 min_frames=min_frames, clip=clip)))
        task_meta.append((rel, src))
    if report.missing:
        try:
            layout.atomic_write_text(out / "missing.tsv", "split\tclass_name\tvideo_id\n" +
                                     "".join(f"{s}\t{c}\t{v}\n" for s, c, v in report.missing))
        except OSError as e:
            raise _write_error(e, out, len(done)) from e
        per_class = report.missing_per_class()
        msg = (f"{len(report.missing)} of {sum(len(v) for v in entries.values())} videos of the "
               f"{DATASETS[dataset]['title']} split lists are not in {[str(r) for r in raw]} "
               f"({len(per_class)} classes affected; the list is in {out / 'missing.tsv'}):\n" +
               "\n".join(f"  {k}: {v} missing" for k, v in sorted(per_class.items())))
        if not allow_missing:
            report.seconds = time.monotonic() - t0
            raise MissingVideosError(msg + "\nPass --allow-missing (allow_missing=True) to prepare "
                                     "the videos that exist.", report)
        log.warning("%s\ncontinuing with the videos that exist (--allow-missing)", msg)

    # 4. convert. From here on the folder changes: it is complete again when dataset.json is back.
    try:
        (out / "dataset.json").unlink(missing_ok=True)
        write_json(out / SETTINGS_FILE, settings)
    except OSError as e:
        raise _write_error(e, out, len(done)) from e
    if tasks:
        bar = tqdm(total=len(tasks), desc=f"prepare {dataset}", unit="video", disable=not progress)
        try:
            for i, ok, res in run_parallel(convert_video, tasks, workers, timeout):
                rel, src = task_meta[i]
                if ok:
                    report.prepared.append(rel)
                else:
                    report.corrupt.append((rel, str(src), str(res)))
                    log.warning("%s: %s (left out)", src, res)
                bar.update(1)
                bar.set_postfix(corrupt=len(report.corrupt), refresh=False)
        except OSError as e:
            raise _write_error(e, out, len(done) + len(report.prepared)) from e
        finally:
            bar.close()
            _finished_videos(out, clean_temporaries=True)  # leftovers of killed or failed workers
    try:
        _write_layout(out, dataset, split_format, entries, names, name_info, classes, class_dir, settings,
                      report)
    except OSError as e:
        raise _write_error(e, out, len(done) + len(report.prepared)) from e
    (out / SETTINGS_FILE).unlink(missing_ok=True)
    if not report.missing and (out / "missing.tsv").exists():
        (out / "missing.tsv").unlink()
    if not keep_extracted and work.exists():
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    return report


def _write_layout(out: Path, dataset: str, split_format: str, entries: dict, names: dict, name_info: dict,
                  classes: list[ClassEntry], class_dir: dict, settings: dict, report: PrepareReport) -> None:
    """Step 5 of :func:`prepare`: the split lists, ``classes.tsv``, and last ``dataset.json``."""
    missing = {(s, v) for s, _, v in report.missing}
    bad = {rel for rel, _, _ in report.corrupt} | {
        f"{class_dir[(s, e.label_index)]}/{e.video_id}" for s in SPLITS for e in entries[s]
        if (s, e.video_id) in missing}
    for s in SPLITS:
        lines = [f"{class_dir[(s, e.label_index)]}/{e.video_id}" for e in entries[s]]
        kept = [x for x in lines if x not in bad]
        write_split_list(out, s, kept)
        report.splits[s] = {"listed": len(lines), "videos": len(kept), "classes": len(names[s])}
    write_classes(out, classes)
    src_files = {s: {"url": S.split_file(dataset, s, split_format).url,
                     "sha256": S.split_file(dataset, s, split_format).sha256} for s in SPLITS}
    meta = {
        "name": dataset,
        "version": 1,
        "created_by": f"lga {__version__} lga.data.prepare",
        "title": DATASETS[dataset]["title"],
        "split_origin": DATASETS[dataset]["split"],
        "split_format": split_format,
        "num_classes": len(classes),
        "splits": {s: {"num_classes": len(names[s]), "num_videos": report.splits[s]["videos"],
                       "num_listed": report.splits[s]["listed"]} for s in SPLITS},
        "split_files": src_files,
        "video": settings["video"],
        "left_out": {
            "missing": [f"{s}/{c}/{v}" for s, c, v in sorted(report.missing)],
            "corrupt": [{"video": rel, "reason": reason} for rel, _, reason in sorted(report.corrupt)],
        },
    }
    if dataset == "ssv2_full":
        meta["class_names"] = {
            "origin": "train/test: CLIP-FSAR configs, checked against the SSv2 annotations; "
                      "val: recovered from the SSv2 annotations (template of each video id)",
            **{s: {"names": names[s], **name_info[s]} for s in SPLITS},
        }
    meta["files"] = build_manifest(out)    # what train and eval check the folder against
    write_json(out / "dataset.json", meta)  # last: from here on the folder is complete


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser(dataset: str | None = None) -> argparse.ArgumentParser:
    prog = f"prepare_{dataset}.py" if dataset else "python -m lga prepare"
    p = argparse.ArgumentParser(
        prog=prog, description="Prepare a few-shot action recognition benchmark (standard split) "
        "from its raw download into lga's layout.",
        epilog="\n".join(f"{k}: {v['download']}." for k, v in DATASETS.items()
                         if dataset is None or k == dataset))
    if dataset is None:
        p.add_argument("dataset", choices=tuple(DATASETS))
    p.add_argument("--raw", nargs="+", required=True, metavar="PATH",
                   help="what you downloaded: archives, folders or video files (several allowed)")
    p.add_argument("--out", required=True, metavar="DIR", help="the prepared dataset's folder")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="video conversion processes (default: CPU count; 0 = no subprocesses)")
    p.add_argument("--short-side", type=int, default=256, help="resize the short side to this (0: keep)")
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="keep at most this many frames per video, evenly spaced (default: all)")
    p.add_argument("--min-frames", type=int, default=8, help="shorter videos are left out as corrupt")
    p.add_argument("--allow-missing", action="store_true",
                   help="prepare what exists when videos of the split are missing (Kinetics)")
    p.add_argument("--cache-dir", default=None, help="split list cache (default $LGA_SPLITS_DIR or "
                   "~/.cache/lga/splits)")
    p.add_argument("--annotations", nargs="+", default=None, metavar="PATH",
                   help="SSv2 labels (folder, zip or json files; default: searched under --raw)")
    p.add_argument("--split-format", choices=S.FORMATS, default="standard",
                   help="standard lists (default) or CLIP-FSAR's")
    p.add_argument("--work-dir", default=None, help="where to extract archives (default: --out)")
    p.add_argument("--keep-extracted", action="store_true", help="keep the extracted raw videos")
    p.add_argument("--overwrite", action="store_true",
                   help="delete what an earlier preparation wrote into --out and prepare it afresh (needed "
                   "to change --short-side, --fps, --max-frames or --min-frames of a prepared folder)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds allowed per video")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None, dataset: str | None = None) -> int:
    """Command line: ``main(["hmdb51", "--raw", ..., "--out", ...])``, or with ``dataset`` fixed
    (the data_scripts) ``main(["--raw", ..., "--out", ...], dataset="hmdb51")``. Returns the exit
    status: 0 done, 1 videos missing (without --allow-missing), unreadable input, an --out holding
    videos made with other settings, or an --out that cannot be written (a full disk)."""
    args = build_parser(dataset).parse_args(argv)
    name = dataset or args.dataset
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        report = prepare(name, args.raw, args.out, workers=args.workers, short_side=args.short_side,
                         fps=args.fps, max_frames=args.max_frames, min_frames=args.min_frames,
                         allow_missing=args.allow_missing, cache_dir=args.cache_dir,
                         annotations=args.annotations, work_dir=args.work_dir,
                         keep_extracted=args.keep_extracted, timeout=args.timeout,
                         split_format=args.split_format, progress=not args.no_progress,
                         overwrite=args.overwrite)
    except MissingVideosError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (PrepareError, ArchiveError, S.SplitFileError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
