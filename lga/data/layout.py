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
import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")
ANATOMY_SCHEMA = "lga-anatomy/1"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ClassEntry:
    """One row of ``classes.tsv``."""

    split: str
    label_index: int
    class_dir: str
    class_name: str


#: errno values of a full disk (or a quota, or a file too large for it)
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(OSError):
    """A file could not be written for lack of space: the message names the file, the bytes it needed
    and the bytes free there. ``errno`` is the original one (``ENOSPC``, ``EDQUOT`` or ``EFBIG``)."""

    def __init__(self, path, needed: int | None, err: OSError | None = None, note: str = ""):
        path = Path(path)
        try:
            free = shutil.disk_usage(path.parent if path.parent.exists() else ".").free
        except OSError:
            free = None
        code = err.errno if err is not None and err.errno else errno.ENOSPC
        super().__init__(code, os.strerror(code), str(path))
        self.path, self.needed, self.free, self._note = path, needed, free, note
        size = f"{needed:,} bytes" if needed is not None else "an unknown number of bytes"
        room = f"{free:,} bytes are free there" if free is not None else "the free space is unknown"
        self.message = (f"{path}: {os.strerror(code)} (the disk is full): writing it needs {size}, {room}. "
                        f"A file already there is unchanged{note or '. Free some space and run again'}")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):     # across processes (a worker's error reaches its parent)
        return type(self), (self.path, self.needed, OSError(self.errno, self.strerror), self._note)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp"):
    """Yield a temporary file name beside ``path``; when the block ends normally, the file gets the
    usual permissions and is renamed to ``path``, and when it raises, it is removed. A reader (or a
    run killed mid-write) thus sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`). ``durable`` also fsyncs the
    file and the folder, so the new file survives a power cut."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS and not isinstance(e, DiskFullError):
            raise DiskFullError(path, len(data), e) from e
        raise
    if durable:
        try:  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:  # some file systems cannot fsync a folder
            pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def make_readable(path: str | os.PathLike) -> None:
    """Give a file made by ``mkstemp`` (mode 0600) or a folder made by ``mkdtemp`` (0700) the usual
    permissions: 0666 (files) or 0777 (folders), less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as pretty, key-stable JSON, atomically (byte-identical for equal objects)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


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
            out.append(ClassEntry(row["split"], idx, row["class_dir"], row["class_name"]))
    return out


def find_video(root: str | os.PathLike, entry: str) -> Path:
    """Locate the file (``videos/``) or frame folder (``frames/``) of ``class_dir/video_id``."""
    root = Path(root)
    folder = root / "frames" / entry
    if folder.is_dir():
        return folder
    base = root / "videos" / entry
    for ext in VIDEO_EXTENSIONS:
        p = base.with_name(base.name + ext)
        if p.is_file():
            return p
    raise FileNotFoundError(f"video {entry!r} not found under {root / 'videos'} or {root / 'frames'}")


def read_anatomy(path: str | os.PathLike) -> dict:
    """Load an anatomy JSON file and check its schema tag."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("schema") != ANATOMY_SCHEMA:
        raise ValueError(f"{path}: field 'schema' must be {ANATOMY_SCHEMA!r}, got {data.get('schema')!r}")
    return data
