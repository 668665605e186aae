"""The ``cpu`` profile's tiny CLIP as shipped inside the package: trained once by the recipe
(``configs/tiny_clip/atomic_actions.yaml``, :func:`lga.models.tiny_clip.train_tiny_clip`) on the
AtomicActions train classes, and stored beside this module in ``tiny_clip_weights/``, an open_clip
``local-dir`` checkpoint that :func:`~lga.models.clip_loading.load_clip` reads like any other:

- ``open_clip_config.json``, ``open_clip_model.safetensors``: the architecture and the weights, in
  float16 (half the size; the loader reads them into float32). Rows of the token embedding whose token
  occurs in no training sentence were never changed by training (their gradient is always zero) and are
  stored as zeros, so the file compresses to about a third in a wheel or in git;
- ``lga_train_log.json``: the recipe's settings, the loss of every step and the training time;
- ``lga_train_pairs.json``: the training pairs and the AtomicActions version and config they came from;
- ``lga_shipped.json`` (:data:`SHIPPED_RECORD`): the sha256 of the weights file, the retrieval figures
  measured on the shipped weights, and the machine, threads and library versions that trained them.

Chapters and configs name it ``tiny_clip/atomic_actions`` under :func:`lga.config.data_dir`;
:func:`install_shipped_tiny_clip` copies it there (checking the sha256) on first use, and again when the
copy there is another model. ``make tiny-clip`` (``python -m lga tiny-clip``) retrains it from scratch and
rewrites this folder (:func:`ship_tiny_clip`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import torch
from safetensors.torch import load_file, save_file

from ..util.files import atomic_write_text, make_readable, replace_dir
from ..util.hashing import file_sha256
from .clip_loading import CONFIG_FILE, WEIGHTS_FILE, is_clip_checkpoint

__all__ = ["SHIPPED_DIR", "SHIPPED_NAME", "SHIPPED_RECORD", "ShippedTinyClipError", "shipped_record",
           "verify_shipped_tiny_clip", "install_shipped_tiny_clip", "ship_tiny_clip", "file_sha256"]

log = logging.getLogger(__name__)

#: where the package keeps the shipped tiny CLIP
SHIPPED_DIR = Path(__file__).with_name("tiny_clip_weights")
#: its name for configs and chapters: a folder under :func:`lga.config.data_dir`
SHIPPED_NAME = "tiny_clip/atomic_actions"
#: the record of what was shipped: sha256 of the weights, retrieval figures, how it was trained
SHIPPED_RECORD = "lga_shipped.json"
#: the files of a shipped tiny CLIP
SHIPPED_FILES = (CONFIG_FILE, WEIGHTS_FILE, "lga_train_log.json", "lga_train_pairs.json", SHIPPED_RECORD)


class ShippedTinyClipError(RuntimeError):
    """The shipped tiny CLIP is missing or does not match its record."""


def shipped_record(folder: str | os.PathLike = SHIPPED_DIR) -> dict:
    """The record (:data:`SHIPPED_RECORD`) of the tiny CLIP shipped in ``folder``."""
    path = Path(folder) / SHIPPED_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShippedTinyClipError(f"{path}: missing; the package ships no tiny CLIP here. Run `make tiny-clip` "
                                   "(python -m lga tiny-clip) to train it by the recipe") from None
    except json.JSONDecodeError as e:
        raise ShippedTinyClipError(f"{path}: not valid JSON ({e})") from None


def verify_shipped_tiny_clip(folder: str | os.PathLike = SHIPPED_DIR) -> dict:
    """Check that ``folder`` holds every shipped file and that the weights' sha256 is the recorded one;
    return the record. Raises :class:`ShippedTinyClipError` naming the file otherwise."""
    folder = Path(folder)
    record = shipped_record(folder)
    missing = [n for n in SHIPPED_FILES if not (folder / n).is_file()]
    if missing:
        raise ShippedTinyClipError(f"{folder}: missing {missing}; reinstall lga or run `make tiny-clip`")
    sha = file_sha256(folder / WEIGHTS_FILE)
    if sha != record.get("sha256"):
        raise ShippedTinyClipError(f"{folder / WEIGHTS_FILE}: sha256 {sha[:12]}... is not the recorded "
                                   f"{str(record.get('sha256'))[:12]}... ({SHIPPED_RECORD}); the file is damaged "
                                   "or was replaced: reinstall lga or run `make tiny-clip`")
    return record


def install_shipped_tiny_clip(dest: str | os.PathLike, folder: str | os.PathLike = SHIPPED_DIR) -> Path:
    """Copy the shipped tiny CLIP into ``dest`` (a ``local-dir`` checkpoint folder) unless ``dest``
    already holds exactly it (same weights sha256); return ``dest``.

    The copy is made in a temporary sibling folder and renamed into place, so ``dest`` is never half
    written. A ``dest`` that holds another checkpoint (an older or retrained tiny CLIP) is replaced; a
    ``dest`` that is not a checkpoint folder is refused, not deleted.
    """
    dest = Path(dest)
    record = verify_shipped_tiny_clip(folder)
    if is_clip_checkpoint(dest) and (dest / WEIGHTS_FILE).is_file() and \
            file_sha256(dest / WEIGHTS_FILE) == record["sha256"]:
        return dest
    if dest.exists() and any(dest.iterdir()) and not (dest / CONFIG_FILE).is_file():
        raise FileExistsError(f"{dest} exists and is not a CLIP checkpoint; refusing to replace it with the "
                              "shipped tiny CLIP")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        for name in SHIPPED_FILES:
            shutil.copyfile(Path(folder) / name, tmp / name)
        if file_sha256(tmp / WEIGHTS_FILE) != record["sha256"]:
            raise ShippedTinyClipError(f"copying the shipped tiny CLIP into {dest} changed its weights")
        for path in [tmp, *tmp.iterdir()]:
            make_readable(path)
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("installed the shipped tiny CLIP (sha256 %s...) in %s", record["sha256"][:12], dest)
    return dest


def ship_tiny_clip(trained: str | os.PathLike, used_tokens: Iterable[int], figures: dict,
                   out: str | os.PathLike = SHIPPED_DIR, about: dict | None = None) -> dict:
    """Write the tiny CLIP trained in ``trained`` (a ``local-dir`` checkpoint made by
    :func:`lga.models.tiny_clip.get_or_train_atomic_actions_clip`) into ``out`` as shipped: float16
    weights, token-embedding rows outside ``used_tokens`` (the token ids of the training sentences) set
    to zero, the train log and pairs record copied, and the record (:data:`SHIPPED_RECORD`) with the
    sha256, ``figures`` (retrieval measured on the shipped weights) and ``about`` (how it was trained).
    Returns the record. ``out`` is replaced atomically."""
    trained, out = Path(trained), Path(out)
    tensors = load_file(str(trained / WEIGHTS_FILE))
    emb = tensors["token_embedding.weight"]
    keep = torch.zeros(emb.shape[0], dtype=torch.bool)
    keep[torch.as_tensor(sorted(set(int(t) for t in used_tokens)), dtype=torch.long)] = True
    tensors["token_embedding.weight"] = emb * keep[:, None].to(emb.dtype)
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_file(half, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        for name in SHIPPED_FILES[:-1]:
            if name != WEIGHTS_FILE:
                shutil.copyfile(trained / name, tmp / name)
        record = {"sha256": file_sha256(tmp / WEIGHTS_FILE), "dtype": "float16",
                  "token_rows_kept": int(keep.sum()), "token_rows": int(keep.numel()),
                  "figures": figures, "about": about or {}}
        atomic_write_text(tmp / SHIPPED_RECORD, json.dumps(record, indent=1) + "\n")
        for path in [tmp, *tmp.iterdir()]:
            make_readable(path)
        if out.exists() and any(out.iterdir()) and not (out / SHIPPED_RECORD).is_file():
            raise FileExistsError(f"{out} exists and holds no shipped tiny CLIP; refusing to replace it")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record
