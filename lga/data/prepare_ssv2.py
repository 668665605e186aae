"""What is special about Something-Something v2: its annotation files, and SSv2-Full's class names.

SSv2 ships its labels apart from its videos (``labels.json``, ``train.json``, ``validation.json``,
``test.json``; older copies call them ``something-something-v2-<name>.json``, and they often come
zipped). ``train.json`` and ``validation.json`` map every labelled video id to its ``template``,
e.g. ``{"id": "78687", "template": "Holding [something] next to [something]", ...}``.

The SSv2-Full (OTAM) lists give class *indices* only. Its train and test names ship with the
package (from CLIP-FSAR's configs); its 12 val classes are named by no public file. Here every
class gets the template its videos carry in the annotations (the majority, if they disagree),
which recovers the val names and cross-checks the shipped ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .prepare_archives import ArchiveError, check_zip_member
from .splits import SplitEntry

log = logging.getLogger("lga.prepare")

ANNOTATION_FILES = {  # role -> accepted file names
    "train": ("train.json", "something-something-v2-train.json"),
    "validation": ("validation.json", "something-something-v2-validation.json"),
    "labels": ("labels.json", "something-something-v2-labels.json"),
}
#: the largest annotation file read from a zip (SSv2's train.json is about 20 MB): a bigger member
#: is a crafted or wrong file, refused before it is decompressed into memory
MAX_ANNOTATION_BYTES = 256 << 20


class AnnotationError(RuntimeError):
    """SSv2 annotations that are missing or unusable."""


def normalize_label(text: str) -> str:
    """Compare SSv2 labels across files: lower case, no brackets, single spaces."""
    return re.sub(r"\s+", " ", text.replace("[", "").replace("]", "")).strip().lower()


def _role(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1].lower()
    for role, names in ANNOTATION_FILES.items():
        if base in names:
            return role
    return None


def _find_annotation_sources(paths: list[Path]) -> dict[str, tuple[Path, str | None]]:
    """role -> (file, None) or (zip file, member name), searching folders and zip files."""
    found: dict[str, tuple[Path, str | None]] = {}

    def consider_zip(z: Path):
        try:
            with zipfile.ZipFile(z) as zf:
                for name in zf.namelist():
                    role = _role(name)
                    if role and role not in found:
                        found[role] = (z, name)
        except zipfile.BadZipFile:
            pass

    for p in paths:
        if p.is_file():
            role = _role(p.name)
            if role:
                found.setdefault(role, (p, None))
            elif p.suffix.lower() == ".zip" and p.stat().st_size < (1 << 30):  # not a video archive
                consider_zip(p)
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    fp = Path(root) / f
                    role = _role(f)
                    if role:
                        found.setdefault(role, (fp, None))
                    elif f.lower().endswith(".zip") and "label" in f.lower():
                        consider_zip(fp)
    return found


def _load_json(src: tuple[Path, str | None]):
    path, member = src
    try:
        if member is None:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(member)
            try:
                check_zip_member(path, info)   # encrypted or Deflate64: say what to do
            except ArchiveError as e:
                raise AnnotationError(str(e)) from None
            if info.file_size > MAX_ANNOTATION_BYTES:
                raise AnnotationError(f"{path}: member {member} declares {info.file_size} bytes, over the "
                                      f"limit of {MAX_ANNOTATION_BYTES} for an annotation file "
                                      "(lga.data.prepare_ssv2.MAX_ANNOTATION_BYTES)")
            with z.open(info) as f:
                return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile, NotImplementedError) as e:
        where = f"{path}:{member}" if member else str(path)
        raise AnnotationError(f"{where}: cannot be read as JSON ({e})") from e


def load_templates(paths: list[str | os.PathLike]) -> dict[str, str]:
    """Video id -> template, from ``train.json`` and ``validation.json`` found under ``paths``.

    Raises:
        AnnotationError: neither file was found, or an entry lacks ``id`` / ``template``.
    """
    sources = _find_annotation_sources([Path(p) for p in paths])
    roles = [r for r in ("train", "validation") if r in sources]
    if not roles:
        raise AnnotationError(
            f"no SSv2 annotations (train.json / validation.json) found under {[str(p) for p in paths]}; "
            "download the SSv2 labels archive and pass it (or its folder) with --annotations")
    templates: dict[str, str] = {}
    for role in roles:
        data = _load_json(sources[role])
        if not isinstance(data, list):
            raise AnnotationError(f"{sources[role][0]}: expected a JSON list of videos")
        for n, item in enumerate(data):
            try:
                vid, template = str(item["id"]), str(item["template"])
            except (KeyError, TypeError):
                raise AnnotationError(f"{sources[role][0]}: entry {n} has no 'id' and 'template'") from None
            templates[vid] = template
        log.info("SSv2 annotations: %d videos from %s", len(data), sources[role][0])
    return templates


@dataclass
class NamedClasses:
    """Names given to the classes of one split, with how each was found."""

    names: list[str | None]
    source: list[str]                       # "annotations" or "package" or "none"
    disagreements: dict[int, dict] = field(default_factory=dict)


def name_classes(entries: list[SplitEntry], templates: dict[str, str],
                 known: list[str | None]) -> NamedClasses:
    """Name each label index of one SSv2-Full split from the templates of its videos.

    ``known`` holds the shipped names (``None`` where unknown). A shipped name that the
    annotations contradict is logged; the annotations win, since they are the dataset's own.
    """
    votes: dict[int, Counter] = {}      # label index -> normalized template -> videos
    spelling: dict[str, Counter] = {}    # normalized template -> raw spellings
    for e in entries:
        t = templates.get(e.video_id)
        votes.setdefault(e.label_index, Counter())
        if t is not None:
            key = normalize_label(t)
            votes[e.label_index][key] += 1
            spelling.setdefault(key, Counter())[t] += 1
    n = max(max([e.label_index for e in entries], default=-1) + 1, len(known))
    names, source, disagreements = [], [], {}
    for i in range(n):
        c = votes.get(i, Counter())
        ship = known[i] if i < len(known) else None
        if c:
            top = c.most_common()
            best = sorted(k for k, v in top if v == top[0][1])
            # a tie is broken by the shipped name if it is among the best
            key = normalize_label(ship) if ship and normalize_label(ship) in best else best[0]
            names.append(spelling[key].most_common(1)[0][0])
            source.append("annotations")
            if len(c) > 1:
                disagreements[i] = {spelling[k].most_common(1)[0][0]: v for k, v in top}
            if ship is not None and normalize_label(ship) != key:
                log.warning("SSv2-Full class %d: shipped name %r, annotations say %r", i, ship, names[-1])
        elif ship is not None:
            names.append(ship)
            source.append("package")
        else:
            names.append(None)
            source.append("none")
    return NamedClasses(names, source, disagreements)
