"""Saving a CLIP as an open_clip ``local-dir`` checkpoint (config JSON + safetensors weights), written
atomically, that :func:`lga.models.clip_loading.load_clip` reads back (layout: :mod:`lga.models.backbone`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from copy import deepcopy
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file
from torch import nn

from ..util.files import make_readable, replace_dir
from .clip_loading import _WEIGHT_SUFFIXES, CONFIG_FILE, LOCAL_DIR_PREFIX, WEIGHTS_FILE


def get_model_cfg(model: nn.Module, model_cfg: dict | str | None = None) -> dict:
    """The architecture config of ``model``: given, looked up by name, or the one :func:`~lga.models.clip_loading.load_clip`
    attached."""
    if isinstance(model_cfg, str):
        cfg = open_clip.get_model_config(model_cfg)
        if cfg is None:
            raise ValueError(f"unknown open_clip model name {model_cfg!r}")
        return cfg
    if isinstance(model_cfg, dict):
        return deepcopy(model_cfg.get("model_cfg", model_cfg))
    cfg = getattr(model, "lga_model_cfg", None)
    if cfg is None:
        raise ValueError("model has no attached config (not made by load_clip): pass model_cfg")
    return deepcopy(cfg)


def save_clip_checkpoint(
    model: nn.Module,
    out_dir: str | os.PathLike,
    model_cfg: dict | str | None = None,
    *,
    extra_files: dict[str, str | bytes] | None = None,
    metadata: dict | None = None,
) -> Path:
    """Save ``model`` as an open_clip ``local-dir`` checkpoint that :func:`~lga.models.clip_loading.load_clip` reads back.

    Writes ``open_clip_config.json`` (``model_cfg``, ``preprocess_cfg`` and an ``lga`` block with
    the tokenizer description and ``metadata``) and ``open_clip_model.safetensors`` (every tensor of
    the state dict, on CPU, in its own dtype), plus any ``extra_files`` (name -> text or bytes; names
    must not end in a weights suffix, which open_clip would mistake for weights).

    The folder appears atomically: everything is written into a temporary sibling folder which
    then replaces ``out_dir`` by rename, so a crash never leaves a half-written checkpoint. An
    existing ``out_dir`` must be a checkpoint (or empty); anything else is refused, not deleted.
    """
    out_dir = Path(str(out_dir).removeprefix(LOCAL_DIR_PREFIX)).absolute()
    cfg = get_model_cfg(model, model_cfg)
    text_cfg = cfg.get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name") or text_cfg.get("hf_model_name"):
        raise NotImplementedError("only CLIPs with open_clip's SimpleTokenizer can be saved here")
    for name in extra_files or {}:
        if Path(name).name != name or name in (CONFIG_FILE, WEIGHTS_FILE) or name.endswith(_WEIGHT_SUFFIXES):
            raise ValueError(f"bad extra file name {name!r}")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / CONFIG_FILE).is_file():
        raise FileExistsError(f"{out_dir} exists and is not a CLIP checkpoint; refusing to replace it")

    pp = dict(getattr(model.visual, "preprocess_cfg", {}))
    preprocess_cfg = {
        "mean": list(map(float, pp.get("mean", open_clip.OPENAI_DATASET_MEAN))),
        "std": list(map(float, pp.get("std", open_clip.OPENAI_DATASET_STD))),
        "interpolation": pp.get("interpolation", "bicubic"),
        "resize_mode": pp.get("resize_mode", "shortest"),
    }
    config = {
        "model_cfg": cfg,
        "preprocess_cfg": preprocess_cfg,
        "lga": {
            "format": "open_clip local-dir",
            "open_clip_version": open_clip.__version__,
            "tokenizer": {
                "class": "open_clip.SimpleTokenizer",
                "context_length": text_cfg.get("context_length", 77),
            },
            **(metadata or {}),
        },
    }

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu").contiguous()
        if t.data_ptr() in seen or t.data_ptr() == v.data_ptr():
            t = t.clone()  # safetensors refuses shared storage; never alias the live model either
        seen.add(t.data_ptr())
        tensors[k] = t

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        _write_text(tmp / CONFIG_FILE, json.dumps(config, indent=2))
        for name, content in (extra_files or {}).items():
            if isinstance(content, str):
                _write_text(tmp / name, content)
            else:
                with open(tmp / name, "wb") as f:
                    f.write(content)
                    f.flush()
                    os.fsync(f.fileno())
        _fsync_file(tmp / WEIGHTS_FILE)
        for path in [tmp, *tmp.iterdir()]:
            make_readable(path)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
