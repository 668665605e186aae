"""The one on-disk layout shared by every prepared benchmark (AtomicActions and the real ones).

Every dataset that ``lga`` reads, synthetic or real, is written by a preparer into this layout, so
one reader, one sampler and one command line serve all of them::

    ROOT/
      dataset.json                  {"name", "version", "created_by", "num_classes", "splits": {...}, ...}
      classes.tsv                   header "split  label_index  class_dir  class_name"
      splits/train.txt              one video per line: "<class_dir>/<video_id>" (the ARN format)
      splits/val.txt
      splits/test.txt
      videos/<class_dir>/<video_id>.mp4          encoded video files (PyAV), or
      frames/<class_dir>/<video_id>/%06d.jpg     folders of frames (either is accepted per video)
      anatomy.json                  optional: per-class text anatomy, per-video phase boundaries

``class_dir`` is a file-system-safe folder name; ``class_name`` is the human label (the one fed to a
text encoder). ``label_index`` numbers the classes of one split from 0 in ``classes.tsv`` order.
``dataset.json`` is written last, atomically, and removed before a preparer changes the folder: it
marks a complete folder, and :class:`lga.data.dataset.VideoDataset` refuses a folder without it.

Anatomy JSON (schema ``lga-anatomy/1``), shared by the ground truth of AtomicActions and the LLM
anatomy shipped for the real benchmarks (``lga/anatomy/data/<dataset>.json``)::

    {
      "schema": "lga-anatomy/1",
      "dataset": "hmdb51",
      "num_steps": 3,
      "provenance": {"method": "...", "model": "...", "prompt_version": "...",
                     "date": "YYYY-MM-DD", "reviewed": true, "notes": "..."},
      "classes": {
        "<class_name>": {
          "label": "<text fed to the LLM / text encoder>",
          "steps": [
            {"subject": "...", "motion": "...", "object": "...", "description": "one sentence"},
            ... exactly num_steps steps, in temporal order (onset, progression, completion)
          ]
        }
      },
      "videos": {"<class_dir>/<video_id>": {"num_frames": T, "phase_bounds": [0, b1, b2, T]}}
    }

``phase_bounds`` are frame indices: phase ``i`` covers frames ``[phase_bounds[i], phase_bounds[i+1])``.
The ``videos`` key is present only where ground truth exists (AtomicActions).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

# generic file helpers, defined in lga.util.files and importable from here as before
from ..util.files import (DISK_FULL_ERRNOS, DiskFullError, atomic_path, atomic_write_bytes,  # noqa: F401
                          atomic_write_text, make_readable, write_json)

SPLITS = ("train", "val", "test")
ANATOMY_SCHEMA = "lga-anatomy/1"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


class OutsideRootError(ValueError):
    """A path of a dataset that leads out of its root folder: ``..``, an absolute path, or a symlink
    to elsewhere. The message names the path, where it leads, and the option that allows symlinks."""

    ADVICE = ("lga reads nothing outside a dataset's folder. If you keep videos elsewhere on purpose and link "
              "them in, allow symlinks: data.allow_symlinks=true (--set data.allow_symlinks=true), or "
              "VideoDataset(..., allow_symlinks=True)")

    def __init__(self, path, target, root, why: str = "", message: str | None = None):
        self.path, self.target, self.root = str(path), str(target), str(root)
        super().__init__(message or f"{path}: leads to {target}, outside the dataset folder {root}"
                         + (f" ({why})" if why else "") + "; " + self.ADVICE)

    @classmethod
    def of_list(cls, listing, errors: list, root) -> "OutsideRootError":
        """One error for the ``errors`` (:class:`OutsideRootError`) of the lines of the file ``listing``."""
        shown = ", ".join(f"{e.path} -> {e.target}" for e in errors[:2])
        more = f" and {len(errors) - 2} more" if len(errors) > 2 else ""
        return cls(errors[0].path, errors[0].target, root, message=(
            f"{listing}: {len(errors)} videos lead outside the dataset folder {root}: {shown}{more}; " + cls.ADVICE))


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one path part (a class folder or video id) inside a dataset, or None."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a name of a file or folder inside the dataset"
    if "\\" in name or "\0" in name:
        return f"{name!r} contains a backslash or NUL, refused in a path part"
    return None


def is_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both absolute, already resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def real_path(path: str, folders: dict | None = None) -> str:
    """``os.path.realpath(path)``; with ``folders`` (a dict kept by the caller), the real paths of
    parent folders are remembered there, so resolving the many files of a few folders costs one
    ``lstat`` per file."""
    if folders is None:
        return os.path.realpath(path)
    parent, name = os.path.split(path)
    real_parent = folders.get(parent)
    if real_parent is None:
        real_parent = folders[parent] = os.path.realpath(parent)
    full = os.path.join(real_parent, name)
    return os.path.realpath(full) if os.path.islink(full) else full


def confined(root: str | os.PathLike, path: str | os.PathLike, allow_symlinks: bool = False,
             folders: dict | None = None) -> Path:
    """``path`` (a path below ``root``), checked to stay inside ``root``: returned as given.

    ``..`` in ``path`` (relative to ``root``) is always refused; with ``allow_symlinks=False`` (the
    default) so is a path whose symlinks resolve outside ``root`` (resolved too). ``folders``: see
    :func:`real_path` (for checking many paths).

    Raises:
        OutsideRootError: naming the path and where it leads.
    """
    root, path = Path(root), Path(path)
    shown = root / path
    lexical = os.path.normpath(os.path.join(os.path.abspath(root), path))
    if not is_inside(lexical, os.path.normpath(os.path.abspath(root))):
        raise OutsideRootError(shown, lexical, root, "an absolute path, or '..'")
    if not allow_symlinks:
        target = real_path(lexical, folders)
        if not is_inside(target, real_path(os.path.abspath(root), folders)):
            raise OutsideRootError(shown, target, root, "through a symlink")
    return path


@dataclass(frozen=True)
class ClassEntry:
    """One row of ``classes.tsv``."""

    split: str
    label_index: int
    class_dir: str
    class_name: str


def write_split_list(root: str | os.PathLike, split: str, entries: list[str]) -> Path:
    """Write ``splits/<split>.txt`` with one ``class_dir/video_id`` per line."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(root) / "splits" / f"{split}.txt"
    atomic_write_text(path, "".join(e + "\n" for e in entries))
    return path


def read_split_list(root: str | os.PathLike, split: str) -> list[str]:
    """Read ``splits/<split>.txt`` into a list of ``class_dir/video_id`` strings."""
    path = Path(root) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no split list {path} (is {root} a prepared dataset?)")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.count("/") != 1:
            raise ValueError(f"{path}:{n}: expected 'class_dir/video_id', got {line!r}")
        bad = next(filter(None, map(name_problem, line.split("/"))), None)
        if bad:
            raise ValueError(f"{path}:{n}: {line!r} does not name a video inside the dataset: {bad}")
        out.append(line)
    return out


def write_classes(root: str | os.PathLike, entries: list[ClassEntry]) -> Path:
    """Write ``classes.tsv``."""
    rows = ["split\tlabel_index\tclass_dir\tclass_name"]
    rows += [f"{e.split}\t{e.label_index}\t{e.class_dir}\t{e.class_name}" for e in entries]
    path = Path(root) / "classes.tsv"
    atomic_write_text(path, "\n".join(rows) + "\n")
    return path


def read_classes(root: str | os.PathLike) -> list[ClassEntry]:
    """Read ``classes.tsv`` into :class:`ClassEntry` rows, checking its header and fields."""
    path = Path(root) / "classes.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"no class table {path} (is {root} a prepared dataset?)")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        expected = ["split", "label_index", "class_dir", "class_name"]
        if reader.fieldnames != expected:
            raise ValueError(f"{path}: header must be {expected}, got {reader.fieldnames}")
        out = []
        for n, row in enumerate(reader, 2):
            if row["split"] not in SPLITS:
                raise ValueError(f"{path}:{n}: field 'split' must be one of {SPLITS}, got {row['split']!r}")
            try:
                idx = int(row["label_index"])
            except ValueError:
                raise ValueError(f"{path}:{n}: field 'label_index' is not an integer: {row['label_index']!r}") from None
            bad = name_problem(row["class_dir"]) or ("'/' in it" if "/" in (row["class_dir"] or "") else None)
            if bad:
                raise ValueError(f"{path}:{n}: field 'class_dir' must be one folder name inside the dataset: {bad}")
            out.append(ClassEntry(row["split"], idx, row["class_dir"], row["class_name"]))
    return out


def find_video(root: str | os.PathLike, entry: str, allow_symlinks: bool = False,
               folders: dict | None = None) -> Path:
    """Locate the file (``videos/``) or frame folder (``frames/``) of ``class_dir/video_id``.

    The path found must stay inside ``root`` (see :func:`confined`; ``folders`` too): ``..``, an
    absolute ``entry`` and, unless ``allow_symlinks``, a symlink leading out of ``root`` raise
    :class:`OutsideRootError`.
    """
    root = Path(root)
    bad = next(filter(None, map(name_problem, entry.split("/"))), None)
    if bad or entry.count("/") != 1:
        raise OutsideRootError(entry, root / "videos" / entry, root, bad or "expected 'class_dir/video_id'")
    folder = root / "frames" / entry
    if folder.is_dir():
        confined(root, folder.relative_to(root), allow_symlinks, folders)
        return folder
    base = root / "videos" / entry
    for ext in VIDEO_EXTENSIONS:
        p = base.with_name(base.name + ext)
        if p.is_file():
            confined(root, p.relative_to(root), allow_symlinks, folders)
            return p
    raise FileNotFoundError(f"video {entry!r} not found under {root / 'videos'} or {root / 'frames'}")


def read_dataset_meta(root: str | os.PathLike) -> dict:
    """The ``dataset.json`` of a complete dataset folder.

    Raises:
        FileNotFoundError: there is none (the folder is incomplete: a preparation was interrupted, or
            is still running), with what to do.
        ValueError: it is not a JSON object.
    """
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{root} is not a complete dataset: it has no dataset.json, which `lga prepare` and "
            "make_atomic_actions write last. Its preparation was interrupted (or is still running): run "
            "the same command again to complete it (it keeps what is done), or prepare it afresh.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); prepare the dataset again") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}; prepare the dataset again")
    return meta


def read_anatomy(path: str | os.PathLike) -> dict:
    """Load an anatomy JSON file and check its schema tag."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("schema") != ANATOMY_SCHEMA:
        raise ValueError(f"{path}: field 'schema' must be {ANATOMY_SCHEMA!r}, got {data.get('schema')!r}")
    return data
