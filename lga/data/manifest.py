"""The manifest of a dataset folder, and the check that ``lga train`` and ``lga eval`` run before using one.

A dataset's ``dataset.json`` records, under ``"files"``, the size and sha256 of every file a reader
uses: ``{"videos/<class_dir>/<id>.mp4": {"bytes": N, "sha256": "..."}, ...}`` for the videos (or
frame images), the split lists, ``classes.tsv`` and the anatomy files. The AtomicActions generator
and ``lga prepare`` write it; :func:`write_manifest` adds one to a folder made otherwise.

:func:`verify_dataset` compares a folder with its manifest and refuses it, naming each file, when a
file is missing, of another size or other content, or when a file that a reader would pick up is
not in the manifest (a video, a frame folder, a split list, ``classes.tsv``, ``anatomy.json``); or
when a listed file leads outside the folder (``..``, or a symlink unless ``allow_symlinks``).
Hashing every video once takes a while for a large benchmark, so each file found intact is
remembered by its size, modification and change times and inode, with its sha256, in a small JSON
under the data cache (``<data_dir>/verified/``): a second run stats the files and hashes none.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..util.files import write_json
from ..util.hashing import file_sha256
from ..util.paths import data_dir
from .layout import is_inside, read_dataset_meta, real_path

#: folders whose every file belongs in the manifest (a reader finds videos and split lists there)
COVERED_DIRS = ("videos", "frames", "splits")
#: top-level files a reader picks up by name, so they belong in the manifest when present
COVERED_FILES = ("classes.tsv", "anatomy.json")
#: top-level files of a folder that a prepared dataset's manifest includes when present
_TOP_LEVEL_PATTERNS = ("classes.tsv", "anatomy*.json")



class DatasetMismatchError(ValueError):
    """A dataset folder that does not match its manifest. ``problems`` lists one line per file."""

    def __init__(self, root, problems: list[str], repair: str):
        self.root, self.problems = str(root), list(problems)
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        super().__init__(f"{root} does not match the manifest in its dataset.json, so it is not used:\n"
                         + "".join(f"  {p}\n" for p in shown) + repair
                         + "\nTo use the folder as it is anyway, pass --no-verify (data.verify=false); the run "
                           "records that its data was not verified.")


@dataclass
class Verified:
    """What :func:`verify_dataset` checked: ``files`` in the manifest, of which ``hashed`` were read
    (the others were unchanged since an earlier check, by their size, times and inode)."""

    root: Path
    files: int
    hashed: int



def _stamp(st: os.stat_result) -> list[int]:
    """What identifies one version of a file without reading it."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _cache_path(root: Path) -> Path:
    real = os.path.realpath(root)
    return data_dir() / "verified" / f"{hashlib.sha256(real.encode()).hexdigest()[:24]}.json"


def _load_cache(root: Path) -> dict:
    """``{rel: [size, mtime_ns, ctime_ns, inode, sha256]}`` of the files of ``root`` checked before."""
    try:
        data = json.loads(_cache_path(root).read_text(encoding="utf-8"))
        if data.get("root") == os.path.realpath(root) and isinstance(data.get("files"), dict):
            return data["files"]
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _save_cache(root: Path, files: dict) -> None:
    try:
        write_json(_cache_path(root), {"root": os.path.realpath(root), "files": files})
    except OSError:   # a read-only data cache: the next run hashes again, nothing worse
        pass


class _Hasher:
    """sha256 of the files of one folder, taken from the cache when a file is unchanged."""

    def __init__(self, root: Path, use_cache: bool):
        self.root, self.use_cache = root, use_cache
        self.old = _load_cache(root) if use_cache else {}
        self.new: dict = {}
        self.hashed = 0

    def sha256(self, rel: str, st: os.stat_result) -> str:
        stamp = _stamp(st)
        hit = self.old.get(rel)
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == stamp:
            digest = hit[4]
        else:
            digest = file_sha256(os.path.join(self.root, rel))
            self.hashed += 1
        self.new[rel] = stamp + [digest]
        return digest

    def save(self) -> None:
        if self.use_cache and (self.hashed or self.new.keys() != self.old.keys()):
            _save_cache(self.root, self.new)


def _covered(root: Path, allow_symlinks: bool) -> list[str]:
    """Every file of ``root`` a manifest must list (see :data:`COVERED_DIRS`, :data:`COVERED_FILES`)."""
    out, base = [], str(root)
    for folder in COVERED_DIRS:
        for dirpath, dirnames, names in os.walk(os.path.join(base, folder), followlinks=allow_symlinks):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
            out += [f"{rel_dir}/{n}" for n in sorted(names)]
    out += [n for n in COVERED_FILES if (root / n).is_file()]
    return out


def problems(root: str | os.PathLike, files: dict, *, deep: bool = True, allow_symlinks: bool = False,
             use_cache: bool = False) -> tuple[list[str], int]:
    """What differs between the folder ``root`` and the manifest ``files`` (``rel -> {"bytes",
    "sha256"}``): one line per file, naming it. Returns ``(problems, number of files hashed)``.

    ``deep=False`` compares the videos' sizes only (a ``stat`` each; small files are always hashed).
    ``use_cache`` skips hashing files unchanged since they last matched (see the module's docstring).
    """
    root = Path(root)
    base, real_root, folders = str(root), os.path.realpath(root), {}
    absolute = os.path.abspath(base)
    hasher = _Hasher(root, use_cache)
    out = []
    for rel, rec in files.items():
        if os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/") or not isinstance(rec, dict):
            out.append(f"{root}: manifest entry {rel!r} is not a file inside the dataset (refused)")
            continue
        path = os.path.join(base, rel)
        try:
            st = os.stat(path)
        except OSError:
            out.append(f"{path}: missing")
            continue
        target = None if allow_symlinks else real_path(os.path.join(absolute, rel), folders)
        if target is not None and not is_inside(target, real_root):
            out.append(f"{path}: leads to {target} through a symlink, outside the dataset folder "
                       "(allow symlinks with data.allow_symlinks=true)")
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append(f"{path}: not a regular file")
        elif st.st_size != rec.get("bytes"):
            out.append(f"{path}: {st.st_size} bytes, the manifest says {rec.get('bytes')}")
        elif (deep or not rel.startswith("videos/")) and hasher.sha256(rel, st) != rec.get("sha256"):
            out.append(f"{path}: content differs from the manifest (sha256)")
    for rel in _covered(root, allow_symlinks):
        if rel not in files:
            out.append(f"{os.path.join(base, rel)}: not in the manifest")
    hasher.save()
    return out, hasher.hashed


def repair_hint(root: str | os.PathLike, meta: dict, no_manifest: bool = False) -> str:
    """How to bring a folder made by ``meta["created_by"]`` in line with a manifest (``no_manifest``:
    give it one)."""
    made_by = str(meta.get("created_by", ""))
    if made_by == "lga.data.atomic_actions":
        return (f"To repair it, generate the dataset again: delete {root} (the book's datasets in the data "
                "cache are generated again on first use), or run `python -m lga make-atomic-actions --out "
                f"{root} --overwrite` with the options recorded under 'config' in its dataset.json.")
    if "lga.data.prepare" in made_by:
        command = f"`python -m lga prepare {meta.get('name', 'NAME')} --raw ... --out {root}`"
        if no_manifest:
            return (f"To give it one, run the same {command} again: it converts nothing already done and "
                    "records the manifest.")
        return (f"To repair it, delete the files named above and run the same {command} again: it prepares "
                "those again, keeps the videos that are intact, and records a new manifest.")
    return (f"If you made or changed the folder on purpose, record its files as they are now: `python -m "
            f"lga.data.manifest --write {root}`.")


def verify_dataset(root: str | os.PathLike, *, allow_symlinks: bool = False, use_cache: bool = True,
                   skip: bool = False) -> Verified | None:
    """Check the dataset at ``root`` against the manifest in its ``dataset.json`` before using it.

    Every listed file is checked by size and sha256 (a file unchanged since its last check is not
    read again, ``use_cache``), and every file a reader would pick up must be listed. ``skip=True``
    checks nothing and warns that the data is used unverified (``--no-verify``).

    Raises:
        FileNotFoundError: ``root`` has no ``dataset.json`` (an incomplete folder).
        DatasetMismatchError: the folder has no manifest, or differs from it; the message names every
            file and says how to repair the folder.
    """
    root = Path(root)
    if skip:
        warnings.warn(f"{root}: used without checking it against its manifest (--no-verify, "
                      "data.verify=false)", stacklevel=2)
        return None
    meta = read_dataset_meta(root)
    files = meta.get("files")
    if not isinstance(files, dict):
        found = [f"{root / 'dataset.json'}: no file manifest ('files'): the folder was made by an older lga, "
                 "or otherwise"]
        raise DatasetMismatchError(root, found, repair_hint(root, meta, no_manifest=True))
    found, hashed = problems(root, files, deep=True, allow_symlinks=allow_symlinks, use_cache=use_cache)
    if found:
        raise DatasetMismatchError(root, found, repair_hint(root, meta))
    return Verified(root, len(files), hashed)


def build_manifest(root: str | os.PathLike, use_cache: bool = True) -> dict:
    """``{rel: {"bytes", "sha256"}}`` of every file of ``root`` a manifest covers: the files under
    :data:`COVERED_DIRS`, ``classes.tsv`` and the ``anatomy*.json`` files at the top, sorted."""
    root = Path(root)
    hasher = _Hasher(root, use_cache)
    rels = _covered(root, allow_symlinks=False)
    rels += [p.name for pattern in _TOP_LEVEL_PATTERNS for p in sorted(root.glob(pattern))
             if p.is_file() and p.name not in rels]
    out = {}
    for rel in sorted(rels):
        st = os.stat(os.path.join(root, rel))
        out[rel] = {"bytes": st.st_size, "sha256": hasher.sha256(rel, st)}
    hasher.save()
    return out


def write_manifest(root: str | os.PathLike) -> dict:
    """Record the files of ``root`` as they are now in its ``dataset.json`` (``"files"``). Returns them.

    For a folder made or changed by hand: it then passes :func:`verify_dataset` until it changes again.
    """
    root = Path(root)
    meta = read_dataset_meta(root)
    meta["files"] = build_manifest(root)
    write_json(root / "dataset.json", meta)
    return meta["files"]


def main(argv=None) -> int:
    """``python -m lga.data.manifest ROOT`` checks a dataset; ``--write`` records its files as they are."""
    p = argparse.ArgumentParser(prog="python -m lga.data.manifest", description=main.__doc__)
    p.add_argument("root")
    p.add_argument("--write", action="store_true", help="record the folder's files in its dataset.json")
    p.add_argument("--allow-symlinks", action="store_true", help="follow symlinks out of the folder")
    a = p.parse_args(argv)
    try:
        if a.write:
            print(f"recorded {len(write_manifest(a.root))} files in {Path(a.root) / 'dataset.json'}")
        else:
            v = verify_dataset(a.root, allow_symlinks=a.allow_symlinks)
            print(f"{a.root}: {v.files} files match the manifest ({v.hashed} read, the others unchanged)")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
