"""The two profiles: what ``paper`` and ``cpu`` mean, and which one a machine gets.

Every chapter and command runs under one of two profiles through one code path:

- ``paper``: open_clip ViT-B-16 with OpenAI weights, real LLMs, real benchmarks, a GPU.
- ``cpu``: a tiny open_clip CLIP shipped with the package (trained once by the book's recipe), the
  shipped anatomy, the synthetic AtomicActions benchmark; runs on a laptop or CI in minutes.

``select_profile("auto")`` picks ``paper`` when a CUDA GPU is present and ``cpu`` otherwise; the
environment variable ``LGA_PROFILE`` overrides ``auto``. A profile is defined once, by its base
recipe ``configs/_base/<profile>.yaml`` (:func:`lga.config.loading.default_config`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .loading import default_config
from .schema import PROFILES

@dataclass(frozen=True)
class Profile:
    """What a profile means in practice (read from the profile's recipe, :func:`default_config`)."""

    name: str
    device: str
    backbone: str          # model.encoder_args.model of the recipe: an open_clip name or a checkpoint folder
    pretrained: str | None  # model.encoder_args.pretrained of the recipe
    dataset: str           # data.dataset of the recipe: the default benchmark of the chapters
    why: str               # one line for the reader: why this profile was chosen


def select_profile(name: str = "auto") -> Profile:
    """Resolve ``"auto"`` / ``"paper"`` / ``"cpu"`` into a :class:`Profile`."""
    import torch   # heavy: only to ask for a GPU (import lga.config stays free of torch)

    why = f"asked for {name!r}"
    if name == "auto":
        env = os.environ.get("LGA_PROFILE")
        if env:
            name, why = env, f"LGA_PROFILE={env}"
        elif torch.cuda.is_available():
            name, why = "paper", f"a CUDA GPU is available ({torch.cuda.get_device_name(0)})"
        else:
            name, why = "cpu", "no CUDA GPU found"
    if name not in PROFILES:
        raise ValueError(f"profile must be 'auto' or one of {PROFILES}, got {name!r}")
    recipe = default_config(name)
    device = "cuda" if name == "paper" and torch.cuda.is_available() else "cpu"
    args = recipe.model.encoder_args
    return Profile(name, device, str(args.get("model", recipe.model.encoder)), args.get("pretrained"),
                   recipe.data.dataset, why)
