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

The backbone is four modules, one job each; every name is importable from here (the chapters do):

- :mod:`lga.models.clip_loading`     :func:`load_clip`, the tiny configs, the precision.
- :mod:`lga.models.clip_checkpoint`  :func:`save_clip_checkpoint` (atomic, safetensors) and :func:`get_model_cfg`.
- :mod:`lga.models.clip_tuning`      :func:`set_trainable` and :func:`count_parameters`.
- :mod:`lga.models.clip_encode`      :func:`prepare_images`, :func:`encode_images`, :func:`encode_frames`,
  :func:`encode_text` and :func:`autocast_for`.
"""

from __future__ import annotations

from .clip_checkpoint import get_model_cfg, save_clip_checkpoint
from .clip_encode import autocast_for, encode_frames, encode_images, encode_text, prepare_images
from .clip_loading import (CONFIG_DIR, CONFIG_FILE, DEFAULT_TINY_MODEL, LOCAL_DIR_PREFIX, PAPER_MODEL, PAPER_PRETRAINED,
                           TINY_MODEL_NAMES, WEIGHTS_FILE, ClipTransform, is_clip_checkpoint, load_clip,
                           register_tiny_configs, resolve_precision)
from .clip_tuning import count_parameters, set_trainable

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
