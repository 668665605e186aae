"""Text anatomy (LLM descriptions of action phases) and visual anatomy (temporal phases).

Shortcuts (each imported on first use from the module that defines it; submodules as usual):
:obj:`Anatomy <lga.anatomy.shipped.Anatomy>`,
:obj:`ClassAnatomy <lga.anatomy.shipped.ClassAnatomy>`,
:obj:`load_anatomy <lga.anatomy.shipped.load_anatomy>`,
:obj:`load_shipped_anatomy <lga.anatomy.shipped.load_shipped_anatomy>`,
:obj:`generate_anatomy <lga.anatomy.backends.generate_anatomy>`,
:obj:`make_backend <lga.anatomy.backends.make_backend>`,
:obj:`AnatomyBackend <lga.anatomy.backends.AnatomyBackend>`,
:obj:`AnatomyCache <lga.anatomy.backends.AnatomyCache>`,
:obj:`build_messages <lga.anatomy.prompts.build_messages>`,
:obj:`PromptSpec <lga.anatomy.prompts.PromptSpec>`,
:obj:`parse_anatomy <lga.anatomy.parse.parse_anatomy>`,
:obj:`Step <lga.anatomy.parse.Step>`,
:obj:`AnatomyError <lga.anatomy.parse.AnatomyError>`,
:obj:`check_anatomy <lga.anatomy.quality.check_anatomy>`,
:obj:`anatomy_agreement <lga.anatomy.agreement.anatomy_agreement>`,
:obj:`segment <lga.anatomy.visual.segment>`,
:obj:`phase_masks <lga.anatomy.visual.phase_masks>`,
:obj:`phase_pool <lga.anatomy.visual.phase_pool>`.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "Anatomy": "lga.anatomy.shipped",
    "ClassAnatomy": "lga.anatomy.shipped",
    "load_anatomy": "lga.anatomy.shipped",
    "load_shipped_anatomy": "lga.anatomy.shipped",
    "generate_anatomy": "lga.anatomy.backends",
    "make_backend": "lga.anatomy.backends",
    "AnatomyBackend": "lga.anatomy.backends",
    "AnatomyCache": "lga.anatomy.backends",
    "build_messages": "lga.anatomy.prompts",
    "PromptSpec": "lga.anatomy.prompts",
    "parse_anatomy": "lga.anatomy.parse",
    "Step": "lga.anatomy.parse",
    "AnatomyError": "lga.anatomy.parse",
    "check_anatomy": "lga.anatomy.quality",
    "anatomy_agreement": "lga.anatomy.agreement",
    "segment": "lga.anatomy.visual",
    "phase_masks": "lga.anatomy.visual",
    "phase_pool": "lga.anatomy.visual",
})

del attach
