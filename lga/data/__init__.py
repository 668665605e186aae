"""Datasets, videos, frame sampling and few-shot episodes.

Shortcuts (each imported on first use from the module that defines it; submodules as usual):
:obj:`VideoDataset <lga.data.dataset.VideoDataset>`,
:obj:`load_clips <lga.data.dataset.load_clips>`,
:obj:`LoadReport <lga.data.dataset.LoadReport>`,
:obj:`EpisodeSampler <lga.data.episodes.EpisodeSampler>`,
:obj:`Episode <lga.data.episodes.Episode>`,
:obj:`AtomicActionsConfig <lga.data.atomic_actions.AtomicActionsConfig>`,
:obj:`get_atomic_actions <lga.data.atomic_actions.get_atomic_actions>`,
:obj:`generate_atomic_actions <lga.data.atomic_actions.generate>`,
:obj:`noisy_anatomy <lga.data.atomic_actions.noisy_anatomy>`,
:obj:`prepare_dataset <lga.data.prepare.prepare>`,
:obj:`PrepareReport <lga.data.prepare.PrepareReport>`,
:obj:`load_split <lga.data.splits.load_split>`,
:obj:`fetch_split_file <lga.data.splits.fetch_split_file>`.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "VideoDataset": "lga.data.dataset",
    "load_clips": "lga.data.dataset",
    "LoadReport": "lga.data.dataset",
    "EpisodeSampler": "lga.data.episodes",
    "Episode": "lga.data.episodes",
    "AtomicActionsConfig": "lga.data.atomic_actions",
    "get_atomic_actions": "lga.data.atomic_actions",
    "generate_atomic_actions": "lga.data.atomic_actions:generate",
    "noisy_anatomy": "lga.data.atomic_actions",
    "prepare_dataset": "lga.data.prepare:prepare",
    "PrepareReport": "lga.data.prepare",
    "load_split": "lga.data.splits",
    "fetch_split_file": "lga.data.splits",
})

del attach
