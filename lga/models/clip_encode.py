"""Encoding with a CLIP: frames and images (uint8, any layout) prepared as the model's preprocessing
says, and texts, each to L2-normalised embeddings, under autocast on CUDA when the model was loaded
with mixed precision.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from .clip_loading import resolve_precision


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
