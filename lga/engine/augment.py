"""Spatial augmentation of training clips: crops on a fixed grid, the same crop for every frame.

CLIP-FSAR resizes frames to a short side of 256 and random-crops 224 x 224 (7/8 of the short side)
in training, and takes the centre crop at test. :class:`Crops` does the same at any frame size: a
square of side ``scale`` x the short side, at one of ``grid x grid`` evenly spaced positions in
training (drawn per video, so a video's frames stay aligned), and the centre square at validation
and test (at ``scale`` 1 the whole frame, uncropped). The
positions form a small fixed set on purpose: a frozen backbone's features can then be cached once
per position (:mod:`lga.engine.features`), and training on cached features sees exactly the crops
that training on the videos would. The encoder resizes each crop to its input size.

Config: ``data.augment`` (``none`` | ``crop``), ``data.crop_scale``, ``data.crop_grid``. With
``augment: none`` every split uses the centre crop (the whole frame at ``crop_scale: 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Crops"]


@dataclass(frozen=True)
class Crops:
    """Where training and test crops lie in a frame (see the module docstring).

    Attributes:
        scale: crop side / frame side, in (0, 1].
        grid: training positions per axis (``grid**2`` crops); 1 means the centre only.
        augment: draw a training crop among the positions (False: the centre crop everywhere).
    """

    scale: float = 1.0
    grid: int = 3
    augment: bool = False

    @classmethod
    def from_config(cls, data_cfg) -> "Crops":
        return cls(float(data_cfg.crop_scale), int(data_cfg.crop_grid), data_cfg.augment == "crop")

    @property
    def num_train_views(self) -> int:
        """How many crops a training video can be seen through."""
        return self.grid ** 2 if self.augment else 1

    def _side(self, height: int, width: int) -> int:
        return max(1, round(self.scale * min(height, width)))

    def train_view(self, index: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of training crop ``index`` (0 .. num_train_views - 1, row-major): a
        square of side ``scale`` x the short side."""
        if not self.augment or self.scale >= 1:
            return self.test_view(height, width)
        side = self._side(height, width)
        i, j = divmod(int(index), self.grid)

        def at(k: int, free: int) -> int:
            return (free // 2) if self.grid == 1 else round(k * free / (self.grid - 1))
        return at(i, height - side), at(j, width - side), side, side

    def test_view(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of the centre crop (the whole frame at ``scale`` 1)."""
        if self.scale >= 1:
            return 0, 0, height, width
        side = self._side(height, width)
        return (height - side) // 2, (width - side) // 2, side, side

    @staticmethod
    def apply(clip: torch.Tensor, view: tuple[int, int, int, int]) -> torch.Tensor:
        """``clip [..., H, W, 3]`` cut to ``view`` (a view of the same memory; no copy)."""
        top, left, h, w = view
        if (top, left, h, w) == (0, 0, clip.shape[-3], clip.shape[-2]):
            return clip
        return clip[..., top:top + h, left:left + w, :]

    def draw(self, rng) -> int:
        """A training crop index drawn from the numpy Generator ``rng`` (0 without augmentation, and
        then nothing is drawn, so the frames a run samples do not depend on this setting)."""
        return int(rng.integers(self.num_train_views)) if self.augment else 0
