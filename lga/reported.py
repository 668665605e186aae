"""Numbers *reported by the papers*, as data, so the book prints them from one place and labels them.

Nothing here was measured by this project. Source: the LGA paper (Qian et al., ICCV 2025,
arXiv:2507.16287) as summarised in the project's notes on the paper (no official code is public);
the TS-FSAR column is TS-FSAR's own report (AAAI 2026). 5-way accuracy in %, 10,000 test episodes;
``None``: not reported.
"""

from __future__ import annotations

#: methods of :data:`MAIN_TABLE`, in column order
METHODS = ("LGA", "CLIP-FSAR (ViT-B/16)", "EMP-Net", "TS-FSAR")

#: (dataset, shot) -> method -> reported 5-way accuracy (%)
MAIN_TABLE: dict[tuple[str, int], dict[str, float | None]] = {
    (ds, shot): dict(zip(METHODS, row)) for ds, shot, row in (
        ("HMDB51", 1, (86.8, 77.1, 76.8, 85.0)),
        ("HMDB51", 5, (89.3, 87.7, 85.8, 88.9)),
        ("UCF101", 1, (98.2, 97.0, 94.3, 98.7)),
        ("UCF101", 5, (None, None, None, 99.3)),
        ("Kinetics-100", 1, (95.2, 94.8, 89.1, 96.3)),
        ("Kinetics-100", 5, (None, None, None, 96.6)),
        ("SSv2-Small", 1, (58.9, 54.6, 57.1, 60.5)),
        ("SSv2-Small", 5, (69.3, 61.8, 65.7, 70.3)),
        ("SSv2-Full", 1, (63.8, 62.1, 63.1, 75.1)),
        ("SSv2-Full", 5, (74.4, 72.1, 73.0, 83.5)),
    )
}

#: the paper's component ablation on HMDB51: row of :data:`lga.models.lga.ABLATION_ROWS` ->
#: (1-shot, 5-shot) reported accuracy (%)
ABLATION_HMDB51: dict[str, tuple[float, float]] = {
    "video-video": (75.8, 87.7),
    "+ visual anatomy": (79.9, 86.0),
    "+ textual anatomy": (79.6, 87.2),
    "both anatomies": (80.8, 88.2),
    "both anatomies, video-text only": (83.1, 86.2),
    "full LGA": (86.8, 89.3),
}
