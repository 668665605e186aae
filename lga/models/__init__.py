"""Backbones, fusion, matching, the LGA model and its baselines.

Shortcuts (each imported on first use from the module that defines it; submodules as usual):
:obj:`LGA <lga.models.lga.LGA>`,
:obj:`LGAConfig <lga.models.lga.LGAConfig>`,
:obj:`ablation_config <lga.models.lga.ablation_config>`,
:obj:`ABLATION_ROWS <lga.models.lga.ABLATION_ROWS>`,
:obj:`FewShotHead <lga.models.baselines.FewShotHead>`,
:obj:`ProtoNet <lga.models.baselines.ProtoNet>`,
:obj:`OTAMHead <lga.models.baselines.OTAMHead>`,
:obj:`LabelOnlyHead <lga.models.baselines.LabelOnlyHead>`,
:obj:`PhaseFusion <lga.models.fusion.PhaseFusion>`,
:obj:`TextBank <lga.models.text_bank.TextBank>`,
:obj:`load_clip <lga.models.backbone.load_clip>`,
:obj:`save_clip_checkpoint <lga.models.backbone.save_clip_checkpoint>`,
:obj:`ClipFrameEncoder <lga.models.backbone_encoder.ClipFrameEncoder>`,
:obj:`FrameEncoder <lga.models.frame_encoder.FrameEncoder>`.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "LGA": "lga.models.lga",
    "LGAConfig": "lga.models.lga",
    "ablation_config": "lga.models.lga",
    "ABLATION_ROWS": "lga.models.lga",
    "FewShotHead": "lga.models.baselines",
    "ProtoNet": "lga.models.baselines",
    "OTAMHead": "lga.models.baselines",
    "LabelOnlyHead": "lga.models.baselines",
    "PhaseFusion": "lga.models.fusion",
    "TextBank": "lga.models.text_bank",
    "load_clip": "lga.models.backbone",
    "save_clip_checkpoint": "lga.models.backbone",
    "ClipFrameEncoder": "lga.models.backbone_encoder",
    "FrameEncoder": "lga.models.frame_encoder",
})

del attach
