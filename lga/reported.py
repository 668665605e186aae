"""Numbers *reported by the papers*, as data, so the book prints them from one place and labels them.

Nothing here was measured by this project, and nothing here was read in the LGA paper itself: its
full text was not available to us. Every number carries the key of the source it was copied from
(:data:`SOURCES`; the book's page *The paper, and how we know it* describes each source):

- ``"summary"``: a third-party summary of the LGA paper (Qian et al., ICCV 2025, arXiv:2507.16287),
  which gives its results table and its ablation on HMDB51; no official code is public;
- ``"ts-fsar"``: TS-FSAR's own report (AAAI 2026), from its official README or a third-party note on
  its paper; these numbers are not part of the LGA paper, which predates TS-FSAR.

5-way accuracy in %, 10,000 test episodes. ``None`` means **not in our source** (:data:`MISSING`):
the summary does not give that number. It does not mean that the paper does not report it.
"""

from __future__ import annotations

#: the key of every source a number may come from -> what that source is
SOURCES: dict[str, str] = {
    "summary": "a third-party summary of the LGA paper (its results table and HMDB51 ablation)",
    "ts-fsar": "TS-FSAR's own report (AAAI 2026), from its official README or a third-party note on its paper",
}

#: what a missing number (``None``, printed as a dash in the book's tables) means
MISSING = "not in our source"

#: methods of :data:`MAIN_TABLE`, in column order
METHODS = ("LGA", "CLIP-FSAR (ViT-B/16)", "EMP-Net", "TS-FSAR")

#: the source of each column of :data:`MAIN_TABLE` (LGA's table compares with CLIP-FSAR and EMP-Net)
_COLUMN_SOURCE = {"LGA": "summary", "CLIP-FSAR (ViT-B/16)": "summary", "EMP-Net": "summary",
                  "TS-FSAR": "ts-fsar"}

#: (dataset, shot) -> method -> reported 5-way accuracy (%), ``None``: not in our source
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

#: (dataset, shot) -> method -> the key in :data:`SOURCES` of that entry of :data:`MAIN_TABLE`
#: (for a ``None`` entry: the source that lacks the number)
MAIN_TABLE_SOURCE: dict[tuple[str, int], dict[str, str]] = {
    key: {m: _COLUMN_SOURCE[m] for m in row} for key, row in MAIN_TABLE.items()
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

#: row of :data:`ABLATION_HMDB51` -> the key in :data:`SOURCES` of its numbers
ABLATION_HMDB51_SOURCE: dict[str, str] = {row: "summary" for row in ABLATION_HMDB51}


def source_of(dataset_or_row: str, shot: int | None = None, method: str | None = None) -> str:
    """What a reported number was copied from, in words.

    ``source_of("HMDB51", 1, "LGA")`` for an entry of :data:`MAIN_TABLE`,
    ``source_of("full LGA")`` for a row of :data:`ABLATION_HMDB51`.

    Raises:
        KeyError: naming the entry, when the tables hold no such entry.
    """
    if shot is None:
        if dataset_or_row not in ABLATION_HMDB51_SOURCE:
            raise KeyError(f"lga.reported: no ablation row {dataset_or_row!r}; rows: {list(ABLATION_HMDB51)}")
        return SOURCES[ABLATION_HMDB51_SOURCE[dataset_or_row]]
    row = MAIN_TABLE_SOURCE.get((dataset_or_row, shot))
    if row is None or method not in row:
        raise KeyError(f"lga.reported: no entry ({dataset_or_row!r}, {shot}, {method!r}) in MAIN_TABLE; "
                       f"methods: {list(METHODS)}")
    return SOURCES[row[method]]
