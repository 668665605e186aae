"""CLIP backbones: one loader for every CLIP the project uses (book chapter 3).

Everything goes through open_clip's factory, so the OpenAI ViT-B/16 of the ``paper`` profile and the
tiny CLIP of the ``cpu`` profile are the same kind of object (an ``open_clip.CLIP``) loaded by the same
function:

=============================  =================================================================
``load_clip(...)`` argument    what it loads
=============================  =================================================================
``"ViT-B-16", "openai"``       the paper's backbone (downloaded by open_clip into its cache)
``"ViT-B-16", None``           the same architecture with random weights (tests, smoke runs)
``"lga-tiny-vit-64"``          a tiny CLIP config shipped in ``lga/models/clip_configs/`` (random)
``"local-dir:/path"``          an open_clip ``local-dir`` checkpoint (e.g. the trained tiny CLIP)
``Path("/path")``              the same, for a folder that holds ``open_clip_config.json``
a ``dict``                     an open_clip model config given as data (random weights)
=============================  =================================================================

The ``local-dir`` layout (as read by open_clip 3.3.0's factory) is a folder holding

* ``open_clip_config.json``: ``{"model_cfg": {...}, "preprocess_cfg": {...}}``, the architecture and the
  image preprocessing (mean, std, interpolation, resize mode; the size comes from the model);
* one weights file, which open_clip picks by name, ``open_clip_model.safetensors`` first.

:func:`save_clip_checkpoint` writes exactly that, atomically, with safetensors. Loading never unpickles
(safetensors, or ``torch.load(weights_only=True)`` inside open_clip) and never touches the network:
the tokenizer of every config here is open_clip's ``SimpleTokenizer``, whose BPE vocabulary ships
inside the open_clip package.

Tiny configs (all: embedding dim 128; text tower width 128, 4 layers, 2 heads, context 32 tokens;
the 49,408 x 128 token-embedding table is 6.3 M of their ~8 M parameters, and it is only a lookup):

* ``lga-tiny-vit-64`` / ``-96`` / ``-112``: ViT, width 128, 4 layers, 2 heads, an 8 x 8 patch grid
  (patch 8 / 12 / 14 px), 0.84-0.89 M vision parameters.
* ``lga-tiny-rn-64``: a one-block-per-stage ModifiedResNet (width 16) with attention pooling, 1.4 M.
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
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.pretrained import get_pretrained_cfg
from torch import nn

from ..data.layout import make_readable

__all__ = [
    "CONFIG_DIR",
    "TINY_MODEL_NAMES",
    "DEFAULT_TINY_MODEL",
    "PAPER_MODEL",
    "PAPER_PRETRAINED",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ClipTransform",
    "register_tiny_configs",
    "resolve_precision",
    "load_clip",
    "save_clip_checkpoint",
    "is_clip_checkpoint",
    "get_model_cfg",
    "set_trainable",
    "count_parameters",
    "autocast_for",
    "prepare_images",
    "encode_images",
    "encode_frames",
    "encode_text",
]

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent / "clip_configs"
TINY_MODEL_NAMES = ("lga-tiny-vit-64", "lga-tiny-vit-96", "lga-tiny-vit-112", "lga-tiny-rn-64")
DEFAULT_TINY_MODEL = "lga-tiny-vit-64"
PAPER_MODEL = "ViT-B-16"
PAPER_PRETRAINED = "openai"

#: file names of an open_clip ``local-dir:`` checkpoint, as written by :func:`save_clip_checkpoint`
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
    tensor path used by :func:`encode_frames` follows the same recipe on batched tensors.
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
            ``amp*`` keeps fp32 weights; :func:`encode_frames` and :func:`encode_text` then run
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


# ----------------------------------------------------------------------------- saving


def get_model_cfg(model: nn.Module, model_cfg: dict | str | None = None) -> dict:
    """The architecture config of ``model``: given, looked up by name, or the one :func:`load_clip`
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
    """Save ``model`` as an open_clip ``local-dir`` checkpoint that :func:`load_clip` reads back.

    Writes ``open_clip_config.json`` (``model_cfg``, ``preprocess_cfg`` and an ``lga`` block with
    the tokenizer description and ``metadata``) and ``open_clip_model.safetensors`` (every tensor of
    the state dict, on CPU, in its own dtype), plus any ``extra_files`` (name -> text or bytes; names
    must not end in a weights suffix, which open_clip would mistake for weights).

    The folder appears atomically: everything is written into a temporary sibling folder which
    then replaces ``out_dir`` by rename, so a crash never leaves a half-written checkpoint. An
    existing ``out_dir`` must be a checkpoint (or empty); anything else is refused, not deleted.
    """
    from safetensors.torch import save_file

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
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rmdir(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
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


# ----------------------------------------------------------------------------- fine-tuning


def _vision_parts(visual: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Parameter]]:
    """Split a vision tower into (stem modules/params, ordered blocks, head modules/params)."""
    if hasattr(visual, "transformer") and hasattr(visual.transformer, "resblocks"):  # ViT
        blocks = list(visual.transformer.resblocks)
        head = [m for m in (getattr(visual, "attn_pool", None), getattr(visual, "attn_pool_contrastive", None),
                            getattr(visual, "ln_post", None)) if m is not None]
        head_params = [visual.proj] if isinstance(getattr(visual, "proj", None), nn.Parameter) else []
        if isinstance(getattr(visual, "proj", None), nn.Module):
            head.append(visual.proj)
        return blocks, head, head_params
    if hasattr(visual, "layer4") and hasattr(visual, "attnpool"):  # ModifiedResNet: a stage is a block
        return [visual.layer1, visual.layer2, visual.layer3, visual.layer4], [visual.attnpool], []
    raise TypeError(f"unsupported vision tower {type(visual).__name__}")


def _text_blocks(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Parameter]]:
    text = getattr(model, "text", model)  # CustomTextCLIP keeps its tower in .text
    blocks = list(text.transformer.resblocks)
    head = [m for m in (getattr(text, "ln_final", None),) if m is not None]
    proj = getattr(text, "text_projection", None)
    head_params = [proj] if isinstance(proj, nn.Parameter) else []
    if isinstance(proj, nn.Module):
        head.append(proj)
    return blocks, head, head_params


def _enable(modules: Iterable[nn.Module] = (), params: Iterable[nn.Parameter] = ()) -> None:
    for m in modules:
        m.requires_grad_(True)
    for p in params:
        p.requires_grad_(True)


def set_trainable(
    model: nn.Module,
    train_last_blocks: int = 0,
    train_text: bool | int = False,
    train_logit_scale: bool = False,
) -> list[str]:
    """Freeze the whole CLIP, then unfreeze what is to be fine-tuned; return the trainable names.

    Args:
        train_last_blocks: vision blocks to fine-tune, counted from the top (ViT: residual
            blocks; ResNet: stages). With k > 0 the head after the blocks (final norm and
            projection, or attention pooling) trains too; k >= the number of blocks unfreezes the
            whole vision tower, stem included. 0 freezes the vision tower.
        train_text: False freezes the text tower; True fine-tunes all of it; an int k fine-tunes
            its last k blocks plus the final norm and projection.
        train_logit_scale: also learn CLIP's temperature.

    Only ``requires_grad`` changes: train/eval mode (dropout, BatchNorm statistics of the ResNet
    tower) stays the caller's choice.
    """
    model.requires_grad_(False)
    visual = model.visual
    k = int(train_last_blocks)
    if k < 0:
        raise ValueError("train_last_blocks must be >= 0")
    if k > 0:
        blocks, head, head_params = _vision_parts(visual)
        if k >= len(blocks):
            visual.requires_grad_(True)
        else:
            _enable(blocks[-k:] + head, head_params)

    if train_text is True:
        for name, p in model.named_parameters():
            if not name.startswith("visual.") and name not in ("logit_scale", "logit_bias"):
                p.requires_grad_(True)
    elif train_text is not False and int(train_text) > 0:
        blocks, head, head_params = _text_blocks(model)
        _enable(blocks[-int(train_text):] + head, head_params)
    if train_logit_scale:
        model.logit_scale.requires_grad_(True)
        if getattr(model, "logit_bias", None) is not None:
            model.logit_bias.requires_grad_(True)
    return [n for n, p in model.named_parameters() if p.requires_grad]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    seen: set[int] = set()
    n = 0
    for p in module.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


# ----------------------------------------------------------------------------- encoding


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def autocast_for(model: nn.Module):
    """``torch.autocast`` on CUDA when the model was loaded with mixed precision; a no-op otherwise
    (never on CPU)."""
    device = _model_device(model)
    precision = getattr(model, "lga_precision", None) or resolve_precision("auto", device)
    if device.type == "cuda" and precision.startswith("amp"):
        dtype = torch.bfloat16 if precision == "amp_bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x
    raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")


def _channels_first(x: torch.Tensor) -> torch.Tensor:
    """[..., H, W, 3] or [..., 3, H, W] -> [..., 3, H, W]. Channels-last is assumed for uint8 and
    whenever the last axis has 3 entries and the third-to-last does not."""
    last3, first3 = x.shape[-1] == 3, x.shape[-3] == 3
    if last3 and (not first3 or x.dtype == torch.uint8):
        return x.movedim(-1, -3)
    if first3:
        return x
    raise ValueError(f"cannot find the colour axis (size 3) in an image batch of shape {tuple(x.shape)}")


def prepare_images(
    images: torch.Tensor,
    image_size: Sequence[int] | int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str = "bicubic",
    resize_mode: str = "shortest",
) -> torch.Tensor:
    """Images [N,3,H,W] (uint8 0-255, or float 0-1) -> float [N,3,S,S] ready for the vision tower.

    The batched-tensor version of CLIP's evaluation transform: resize (shortest side to S, then
    centre crop; or ``squash`` straight to S x S) only when the size differs, then normalise with
    ``mean``/``std`` (skipped when they are None).
    """
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    th, tw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    h, w = x.shape[-2:]
    if (h, w) != (th, tw):
        mode = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bicubic"
        aa = {"antialias": True} if mode != "nearest" else {}
        if resize_mode == "squash":
            x = F.interpolate(x, size=(th, tw), mode=mode, **aa)
        else:  # 'shortest' (CLIP) resize, then centre crop; 'longest' is treated the same way here
            scale = max(th / h, tw / w)
            nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode=mode, **aa)
            top, left = (nh - th) // 2, (nw - tw) // 2
            x = x[..., top:top + th, left:left + tw]
        x = x.clamp(0.0, 1.0)
    if mean is not None and std is not None:
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        x = (x - m) / s
    return x


def _preprocess_cfg(model: nn.Module) -> dict:
    pp = dict(getattr(model.visual, "preprocess_cfg", {}))
    size = pp.get("size", getattr(model.visual, "image_size", 224))
    return {
        "image_size": size,
        "mean": pp.get("mean", open_clip.OPENAI_DATASET_MEAN),
        "std": pp.get("std", open_clip.OPENAI_DATASET_STD),
        "interpolation": pp.get("interpolation", "bicubic"),
        "resize_mode": pp.get("resize_mode", "shortest"),
    }


def encode_images(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    chunk_size: int = 64,
    normalize: bool = True,
) -> torch.Tensor:
    """Images [N,H,W,3] uint8 or [N,3,H,W] float in [0,1] -> features [N,D] (float32, on the
    model's device; L2-normalised by default). Resizing and mean/std normalisation are done here,
    ``chunk_size`` images at a time. Gradients flow if the caller has them enabled and some vision
    parameter is trainable; wrap the call in ``torch.no_grad()`` for pure feature extraction."""
    x = _channels_first(_as_tensor(images))
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [N,H,W,3] or [N,3,H,W], got {tuple(x.shape)}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    device = _model_device(model)
    cfg = _preprocess_cfg(model)
    weight_dtype = next(model.visual.parameters()).dtype
    out = []
    for start in range(0, x.shape[0], chunk_size):
        chunk = prepare_images(x[start:start + chunk_size].to(device, non_blocking=True), **cfg)
        chunk = chunk.to(weight_dtype)  # fp32 unless the weights were made half precision ('fp16'/'bf16')
        with autocast_for(model):
            feats = model.encode_image(chunk)
        feats = feats.float()
        out.append(F.normalize(feats, dim=-1) if normalize else feats)
    if not out:
        return torch.empty(0, _embed_dim(model), device=device)
    return torch.cat(out)


def encode_frames(
    model: nn.Module,
    frames: torch.Tensor | np.ndarray,
    chunk_size: int = 64,
    normalize: bool = True,
) -> torch.Tensor:
    """Video clips -> per-frame features.

    ``frames`` is uint8 ``[B,T,H,W,3]`` (as decoded) or float ``[B,T,3,H,W]`` in [0,1]; frames of
    another size than the model's are resized (shortest side, centre crop). The B*T frames are
    encoded ``chunk_size`` at a time (mixed precision on CUDA if the model was loaded that way) and
    returned as float32 ``[B,T,D]``, L2-normalised along D.
    """
    x = _channels_first(_as_tensor(frames))
    if x.ndim != 5:
        raise ValueError(f"expected frames [B,T,H,W,3] or [B,T,3,H,W], got {tuple(x.shape)}")
    b, t = x.shape[:2]
    feats = encode_images(model, x.reshape(b * t, *x.shape[2:]), chunk_size=chunk_size, normalize=normalize)
    return feats.view(b, t, -1)


def _embed_dim(model: nn.Module) -> int:
    cfg = getattr(model, "lga_model_cfg", None)
    if cfg is not None:
        return int(cfg["embed_dim"])
    return int(getattr(model.visual, "output_dim"))


def encode_text(
    model: nn.Module,
    tokenizer: Callable,
    texts: Sequence[str],
    chunk_size: int = 256,
    normalize: bool = True,
) -> torch.Tensor:
    """Strings -> text features [N,D] (float32, on the model's device, L2-normalised by default),
    tokenised and encoded ``chunk_size`` at a time."""
    if isinstance(texts, str):
        raise TypeError("encode_text takes a list of strings, not a single string")
    texts = list(texts)
    device = _model_device(model)
    out = []
    for start in range(0, len(texts), chunk_size):
        tokens = tokenizer(texts[start:start + chunk_size]).to(device)
        with autocast_for(model):
            feats = model.encode_text(tokens)
        feats = feats.float()
        out.append(F.normalize(feats, dim=-1) if normalize else feats)
    if not out:
        return torch.empty(0, _embed_dim(model), device=device)
    return torch.cat(out)
