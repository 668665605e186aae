"""Choosing which parts of a CLIP train: :func:`set_trainable` (the last blocks of the vision or text
tower, the projections, or nothing) and :func:`count_parameters`.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn


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
