"""The ablation table as data: each row's switches of the LGA head, and the config names of the rows.

``ablations/hmdb51_5way_1shot_text_anatomy`` (or ``hmdb51_5way_1shot/ablation=text_anatomy``) is the
config ``hmdb51_5way_1shot`` with the switches of row ``"+ textual anatomy"`` in ``model.head_args``
(:func:`lga.config.load_config` reads such names). :data:`ABLATION_SWITCHES` is the one table of
rows: :data:`lga.models.lga.ABLATION_CHAIN` builds the head's configs from it, so that reading a
config name needs neither torch nor the model.
"""

from __future__ import annotations

#: the switches an ablation row sets in a config's ``model.head_args``: what each entry of
#: :meth:`lga.models.lga.LGAConfig.effective` reads, and the branch the cross-entropy trains
ABLATION_FIELDS = ("use_visual_anatomy", "plain_phases", "segmenter", "overlap", "use_text_anatomy",
                   "use_video_video", "use_video_text", "train_with")

# the switches of full LGA (the defaults of LGAConfig), which every row starts from
_FULL = dict(use_visual_anatomy=True, plain_phases="whole", segmenter="cluster", overlap=1,
             use_text_anatomy=True, use_video_video=True, use_video_text=True, train_with="vv")

#: Every row of the ablation table: its :data:`ABLATION_FIELDS`, in the table's order. The paper's six
#: rows (HMDB51, Table "components"; :data:`lga.models.lga.ABLATION_ROWS`) are ``video-video``,
#: ``+ visual anatomy``, ``+ textual anatomy``, ``both anatomies``, ``both anatomies, video-text only``
#: and ``full LGA``; what each computes is our reading of the paper's words ([inferred]: uniform thirds
#: without overlap for "+ textual anatomy"; Bi-MHM on the whole video for "video-video"), the values
#: behind each switch are ours ([choose]). The other three rows are ours: in the paper,
#: "+ textual anatomy" cuts uniform thirds without overlap while "+ visual anatomy" and "both
#: anatomies" cut CLUSTER phases with overlap, so "both anatomies" minus "+ textual anatomy" mixes the
#: segmenter, the overlap and nothing else; the added rows separate them
#: (:data:`lga.models.lga.ABLATION_STEPS`).
ABLATION_SWITCHES: dict[str, dict] = {
    # Bi-MHM on whole videos (AB-MHM with one phase), no text anywhere
    "video-video": {**_FULL, "use_visual_anatomy": False, "plain_phases": "whole", "use_text_anatomy": False,
                    "use_video_text": False},
    # uniform thirds without overlap, no text (ours)
    "uniform thirds": {**_FULL, "use_visual_anatomy": False, "plain_phases": "uniform", "use_text_anatomy": False,
                       "use_video_text": False},
    # uniform thirds with overlap, no text (ours)
    "uniform thirds + overlap": {**_FULL, "segmenter": "uniform", "use_text_anatomy": False,
                                 "use_video_text": False},
    # CLUSTER-Segment phases, AB-MHM, no text
    "+ visual anatomy": {**_FULL, "use_text_anatomy": False, "use_video_text": False},
    # step texts fused into uniform thirds ("HARD"), AB-MHM over those thirds
    "+ textual anatomy": {**_FULL, "use_visual_anatomy": False, "plain_phases": "uniform", "use_video_text": False},
    # step texts fused into uniform thirds with overlap (ours)
    "+ textual anatomy + overlap": {**_FULL, "segmenter": "uniform", "use_video_text": False},
    # both anatomies, video-video matching only
    "both anatomies": {**_FULL, "use_video_text": False},
    # both anatomies, video-text matching only (support videos play no part)
    "both anatomies, video-text only": {**_FULL, "use_video_video": False, "train_with": "vt"},
    # everything
    "full LGA": dict(_FULL),
}

#: each row's short name in config names: ``ablations/hmdb51_5way_1shot_text_anatomy`` or
#: ``hmdb51_5way_1shot/ablation=text_anatomy`` (:func:`lga.config.load_config`) is the config
#: ``hmdb51_5way_1shot`` with the row's :data:`ABLATION_FIELDS`.
ABLATION_CONFIG_NAMES: dict[str, str] = {
    "video-video": "video_video", "uniform thirds": "uniform_thirds",
    "uniform thirds + overlap": "uniform_thirds_overlap", "+ visual anatomy": "visual_anatomy",
    "+ textual anatomy": "text_anatomy", "+ textual anatomy + overlap": "text_anatomy_overlap",
    "both anatomies": "both_anatomies", "both anatomies, video-text only": "both_anatomies_vt_only",
    "full LGA": "full",
}
if list(ABLATION_CONFIG_NAMES) != list(ABLATION_SWITCHES):        # a row added to one and not the other
    raise RuntimeError("ABLATION_CONFIG_NAMES must name every row of ABLATION_SWITCHES, in its order")

#: the shipped configs that have one config per row of the ablation table, ``ablations/<name>``
ABLATION_BASES = ("atomic_actions_5way_1shot_cpu", "atomic_actions_5way_5shot_cpu",
                  "hmdb51_5way_1shot", "hmdb51_5way_5shot")
#: ``NAME/ablation=ROW``: the config NAME with the switches of ablation row ROW
ABLATION_SEPARATOR = "/ablation="


def ablation_head_args(name: str) -> dict:
    """The :data:`ABLATION_FIELDS` of row ``name`` of the ablation table, as ``model.head_args`` entries
    (the other fields keep the config's own values)."""
    if name not in ABLATION_SWITCHES:
        raise KeyError(f"unknown ablation row {name!r}; rows: {list(ABLATION_SWITCHES)}")
    return dict(ABLATION_SWITCHES[name])


def _ablation_name(base: str, row: str) -> str:
    """``hmdb51_5way_1shot`` + ``full`` -> ``hmdb51_5way_1shot_full``; a ``_cpu`` suffix stays last."""
    stem = base.rsplit("/", 1)[-1]
    return f"{stem[:-4]}_{row}_cpu" if stem.endswith("_cpu") else f"{stem}_{row}"


def ablation_configs() -> dict[str, tuple[str, str]]:
    """``{"ablations/hmdb51_5way_1shot_full": ("hmdb51_5way_1shot", "full LGA"), ...}``: every ablation
    config name, the config it changes (:data:`ABLATION_BASES`) and its row of
    :data:`ABLATION_SWITCHES`."""
    return {f"ablations/{_ablation_name(b, short)}": (b, row)
            for b in ABLATION_BASES for row, short in ABLATION_CONFIG_NAMES.items()}
