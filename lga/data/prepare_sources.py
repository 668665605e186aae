"""Preparing a benchmark: find the videos of the split lists in what the user downloaded (folders
and archives, extracting only the videos wanted; :func:`gather_sources`), and the keys that match a
file to an entry of a split list. Part of :mod:`lga.data.prepare`, which offers every name.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from pathlib import Path, PurePosixPath
from typing import Sequence

from . import splits as S
from .layout import VIDEO_EXTENSIONS
from .prepare_archives import (SSV2_PART, ArchiveError, ArchiveLimits, archive_kind, extract_archive,
                               extract_tar_parts, is_ssv2_part)

log = logging.getLogger("lga.prepare")


def _video_stem(name: str) -> str | None:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.stem if p.suffix.lower() in VIDEO_EXTENSIONS else None


def source_key(dataset: str, name: str) -> str | None:
    """The key under which a raw video file is matched to split entries (None: not a video).

    HMDB51, UCF101, SSv2: the file stem. Kinetics: the YouTube id (the stem's first 11
    characters, as TRX matches it), so a clip named without or with other timestamps is found.
    """
    stem = _video_stem(name)
    if stem is None:
        return None
    return stem[:11] if dataset == "kinetics100" else stem


_KINETICS_ID = re.compile(r"^(.{11})_(\d{6})_(\d{6})$")


def entry_key(dataset: str, video_id: str) -> str:
    return video_id[:11] if dataset == "kinetics100" else video_id


def _is_under(path: Path, roots: list[Path]) -> bool:
    path = path.resolve()
    return any(path == r or r in path.parents for r in roots)


def gather_sources(dataset: str, raw: Sequence[str | os.PathLike], work: Path, wanted: set[str],
                   exclude: Sequence[Path] = (), archive_backend: str = "auto",
                   limits: ArchiveLimits | None = None) -> dict[str, list[Path]]:
    """Find (extracting where needed) the raw video files whose key is in ``wanted``.

    Returns key -> candidate files. Archives nested in archives (HMDB51) are opened in turn, down to
    ``limits.depth`` levels (:class:`~lga.data.prepare_archives.ArchiveLimits`; deeper is an
    :class:`~lga.data.prepare_archives.ArchiveError`); archives are skipped once every wanted key is found.
    """
    limits = limits or ArchiveLimits()
    found: dict[str, list[Path]] = {}
    skip = [Path(p).resolve() for p in exclude]

    def add(path: Path):
        k = source_key(dataset, path.name)
        if k is not None and k in wanted:
            found.setdefault(k, []).append(path)

    def want_member(name: str) -> bool:
        if archive_kind(name) is not None:
            return True
        k = source_key(dataset, name)
        return k is not None and k in wanted and k not in found

    queue: deque[tuple[Path, int, str]] = deque((Path(p), 0, "") for p in raw)  # path, depth, origin
    parts: list[Path] = []
    n_archives = 0
    while queue:
        p, depth, origin = queue.popleft()
        if not p.exists():
            raise FileNotFoundError(f"--raw {p} does not exist")
        if p.is_dir():
            if _is_under(p, skip):
                continue
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not _is_under(Path(root) / d, skip))
                for f in sorted(files):
                    fp = Path(root) / f
                    if f.startswith(".") and f.endswith((".tmp", ".part")):
                        continue
                    if is_ssv2_part(f):
                        parts.append(fp)
                    elif archive_kind(f) is not None:
                        queue.append((fp, depth, origin))
                    else:
                        add(fp)
            continue
        if is_ssv2_part(p.name):
            parts.append(p)
        elif archive_kind(p) is not None:
            if wanted <= found.keys():
                continue
            if depth > limits.depth:
                raise ArchiveError(f"{origin}: archives nested more than {limits.depth} levels deep "
                                   f"(lga.data.prepare_archives.ArchiveLimits.depth); extract them yourself "
                                   "if they are genuine, and pass the folder as --raw")
            n_archives += 1
            inside_work = _is_under(p, [work.resolve()])
            dest = p.with_name(p.name + ".d") if inside_work else work / f"{n_archives:03d}-{p.name}.d"
            log.info("extracting %s", p)
            extracted = extract_archive(p, dest, want_member, backend=archive_backend, limits=limits)
            for f in extracted:
                if is_ssv2_part(f.name):
                    parts.append(f)
                elif archive_kind(f) is not None:
                    inner = f"{origin or p}, member {f.relative_to(dest).as_posix()}"
                    queue.append((f, depth + 1, inner))
                else:
                    add(f)
        else:
            add(p)
    if parts and not wanted <= found.keys():
        groups: dict[Path, list[Path]] = {}
        for p in parts:
            groups.setdefault(p.parent, []).append(p)
        for folder, group in sorted(groups.items()):
            # keep one file per piece number (a piece and the zip holding it may both be there)
            by_number: dict[str, Path] = {}
            for p in sorted(group, key=lambda x: x.suffix.lower() == ".zip"):
                by_number.setdefault(SSV2_PART.match(p.name).group(1), p)
            log.info("extracting from %d archive pieces in %s", len(by_number), folder)
            for f in extract_tar_parts(list(by_number.values()), work / "ssv2-parts.d", want_member, limits):
                add(f)
    return found


def _pick_source(dataset: str, entry: S.SplitEntry, candidates: list[Path]
                 ) -> tuple[Path, tuple[float, float] | None]:
    """The best raw file for one split entry, and the clip window (Kinetics) to cut from it."""
    if dataset == "kinetics100":
        vid = entry.video_id
        for c in candidates:
            if c.stem == vid:
                return c, None
        m = _KINETICS_ID.match(vid)
        for c in candidates:
            if c.stem == vid[:11]:  # named by YouTube id only: maybe the untrimmed video
                return c, (float(m.group(2)), float(m.group(3))) if m else None
        return candidates[0], None
    if dataset in ("hmdb51", "ucf101"):
        for c in candidates:
            if c.parent.name.lower() == (entry.class_name or "").lower():
                return c, None
    return candidates[0], None


def class_dir_name(name: str) -> str:
    """A file-system-safe folder name for a class (``Pouring [something] into [something]`` ->
    ``Pouring_something_into_something``; HMDB51/UCF101 folder names are kept as they are)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "class"
