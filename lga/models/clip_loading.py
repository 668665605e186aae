"""Loading a CLIP through open_clip's factory (book chapter 3): model names, the tiny configs shipped in
``lga/models/clip_configs/``, ``local-dir:`` checkpoint folders, configs given as data, and the
numeric precision. :mod:`lga.models.backbone` says what each argument of :func:`load_clip` loads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg
from torch import nn


CONFIG_DIR = Path(__file__).resolve().parent / "clip_configs"
TINY_MODEL_NAMES = ("lga-tiny-vit-64", "lga-tiny-vit-96", "lga-tiny-vit-112", "lga-tiny-rn-64")
DEFAULT_TINY_MODEL = "lga-tiny-vit-64"
PAPER_MODEL = "ViT-B-16"
PAPER_PRETRAINED = "openai"

#: file names of an open_clip ``local-dir:`` checkpoint, as written by :func:`~lga.models.clip_checkpoint.save_clip_checkpoint`
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
LOCAL_DIR_PREFIX = "local-dir:"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")  # what open_clip's local-dir loader globs for

# ----------------------------------------------------------------------------- registration

_registered = False


def register_tiny_configs() -> list[str]:
    """Add ``lga/models/clip_configs/*.json`` to open_clip's model registry (idempotent).

    Afterwards ``open_clip.create_model("lga-tiny-vit-64")`` works like a built-in name.
    Returns the names registered from that folder.
    """
    global _registered
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    if not _registered or not set(names) <= set(open_clip.list_models()):
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True
    return names


register_tiny_configs()

# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ClipTransform:
    """How images must look before they enter ``model.visual``.

    ``transform`` is open_clip's own evaluation pipeline (PIL image -> normalised tensor); the
    tensor path used by :func:`~lga.models.clip_encode.encode_frames` follows the same recipe on batched tensors.
    """

    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    transform: Callable | None = field(default=None, repr=False, compare=False)


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """``"auto"``/None -> mixed precision on CUDA (``amp_bf16`` where supported, else ``amp``), fp32
    elsewhere. Mixed precision is never used on CPU: ``amp*`` falls back to ``fp32`` there."""
    dev = torch.device(device)
    if precision in (None, "auto"):
        if dev.type == "cuda":
            return "amp_bf16" if torch.cuda.is_bf16_supported() else "amp"
        return "fp32"
    if dev.type != "cuda" and precision.startswith("amp"):
        return "fp32"
    return precision


def _model_name(name_or_path: str | os.PathLike) -> str:
    """Turn what the user gave into an open_clip model identifier."""
    if isinstance(name_or_path, os.PathLike):
        return LOCAL_DIR_PREFIX + os.fspath(name_or_path)
    name = str(name_or_path)
    if name.startswith((LOCAL_DIR_PREFIX, "hf-hub:")):
        return name
    if name in open_clip.list_models() or name.replace("/", "-") in open_clip.list_models():
        return name
    if (Path(name) / CONFIG_FILE).is_file():
        return LOCAL_DIR_PREFIX + name
    raise ValueError(
        f"unknown CLIP {name!r}: not an open_clip model name, nor a folder holding {CONFIG_FILE}. "
        f"Tiny configs: {', '.join(TINY_MODEL_NAMES)}"
    )


def is_clip_checkpoint(path: str | os.PathLike) -> bool:
    """True if ``path`` is a complete ``local-dir`` checkpoint (config and weights present)."""
    path = Path(str(path).removeprefix(LOCAL_DIR_PREFIX))
    return (path / CONFIG_FILE).is_file() and any(
        p.suffix in _WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file()
    )


def _read_local_config(path: Path) -> dict:
    with open(path / CONFIG_FILE, encoding="utf-8") as f:
        return json.load(f)


def load_clip(
    name_or_path: str | os.PathLike | dict,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
    precision: str | None = "auto",
    *,
    image_size: int | None = None,
    cache_dir: str | None = None,
) -> tuple[nn.Module, ClipTransform, Callable]:
    """Load any CLIP through open_clip's factory; return ``(model, transform, tokenizer)``.

    Args:
        name_or_path: an open_clip model name (``"ViT-B-16"``, one of :data:`TINY_MODEL_NAMES`), a
            ``"local-dir:<folder>"`` string, a folder (``Path`` or a string naming a folder that holds
            ``open_clip_config.json``), or a model config ``dict`` (random weights).
        pretrained: weights for a model *name*: an open_clip tag such as ``"openai"`` (downloaded
            into open_clip's cache, or read from ``cache_dir``), a weights file, or None for random
            weights. Must be None for checkpoints, which carry their own weights.
        device: where the model lives.
        precision: ``"auto"`` (mixed precision on CUDA, fp32 on CPU), ``"fp32"``, ``"amp"``,
            ``"amp_bf16"``, or open_clip's ``"fp16"``/``"bf16"`` (half-precision weights).
            ``amp*`` keeps fp32 weights; :func:`~lga.models.clip_encode.encode_frames` and :func:`~lga.models.clip_encode.encode_text` then run
            under ``torch.autocast`` on CUDA.
        image_size: override the vision tower's input size (positional embeddings are resized).

    The model is returned in eval mode with ``model.lga_model_cfg`` (the architecture, enough to
    save it again) and ``model.lga_precision`` attached. For OpenAI weights, which were trained with
    QuickGELU, QuickGELU is switched on as the tag requires (open_clip's ``ViT-B-16`` config
    otherwise uses nn.GELU and would silently compute the wrong features).
    """
    tmp = None
    try:
        if isinstance(name_or_path, dict):
            # a config given as data: write it as a weight-less local-dir so the factory builds it
            if pretrained is not None:
                raise ValueError("pretrained must be None when the model is given as a config dict")
            tmp = tempfile.mkdtemp(prefix="lga-clip-cfg-")
            cfg = deepcopy(name_or_path)
            cfg = cfg["model_cfg"] if "model_cfg" in cfg else cfg
            with open(Path(tmp) / CONFIG_FILE, "w", encoding="utf-8") as f:
                json.dump({"model_cfg": cfg}, f)
            model_name = LOCAL_DIR_PREFIX + tmp
        else:
            model_name = _model_name(name_or_path)

        precision = resolve_precision(precision, device)
        kwargs: dict[str, Any] = dict(precision=precision, device=device, cache_dir=cache_dir)
        if image_size is not None:
            kwargs["force_image_size"] = image_size

        if model_name.startswith(LOCAL_DIR_PREFIX):
            if pretrained is not None:
                raise ValueError(
                    f"pretrained={pretrained!r} given for a checkpoint folder ({model_name}); "
                    "a checkpoint carries its own weights"
                )
            local = Path(model_name[len(LOCAL_DIR_PREFIX):])
            if not local.is_dir():
                raise FileNotFoundError(f"no CLIP checkpoint folder at {local}")
            if tmp is None and not is_clip_checkpoint(local):  # open_clip would only warn, then go random
                raise FileNotFoundError(f"{local} holds no weights file next to {CONFIG_FILE}")
            model_cfg = deepcopy(_read_local_config(local)["model_cfg"])
        elif model_name.startswith("hf-hub:"):
            model_cfg = open_clip.get_model_config(model_name)
        else:
            model_name = model_name.replace("/", "-")
            model_cfg = open_clip.get_model_config(model_name)
            if pretrained:
                tag_cfg = get_pretrained_cfg(model_name, pretrained)
                if tag_cfg.get("quick_gelu", False) and not model_cfg.get("quick_gelu", False):
                    kwargs["force_quick_gelu"] = True
                    model_cfg["quick_gelu"] = True

        random_init = tmp is not None or (pretrained is None and not model_name.startswith(LOCAL_DIR_PREFIX))
        with _quiet_random_init(random_init):
            model, _, transform = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, **kwargs)
        # the tokenizer type and context length come from the same config (SimpleTokenizer: offline)
        tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    if model_cfg is not None and image_size is not None:
        model_cfg["vision_cfg"]["image_size"] = image_size
    model.eval()
    model.lga_model_cfg = model_cfg
    model.lga_precision = precision

    pp = model.visual.preprocess_cfg
    size = pp["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    info = ClipTransform(
        image_size=size,
        mean=tuple(float(m) for m in pp["mean"]),
        std=tuple(float(s) for s in pp["std"]),
        interpolation=pp.get("interpolation", "bicubic"),
        resize_mode=pp.get("resize_mode", "shortest"),
        transform=transform,
    )
    return model, info, tokenizer


class _DropRandomInitWarnings(logging.Filter):
    _MESSAGES = ("No pretrained weights loaded", "Local config loaded, but no CLIP weights")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._MESSAGES)


@contextlib.contextmanager
def _quiet_random_init(active: bool):
    """Silence open_clip's 'initialized randomly' warnings when random weights are what was asked."""
    if not active:
        yield
        return
    root = logging.getLogger()
    filt = _DropRandomInitWarnings()
    root.addFilter(filt)
    try:
        yield
    finally:
        root.removeFilter(filt)
