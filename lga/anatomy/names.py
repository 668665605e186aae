"""Class names: one normal form so that every spelling of a class finds its anatomy.

The five benchmarks spell class names in different ways, and the same class can reach ``lga`` in
more than one spelling:

==============  ==========================================  ======================================
dataset         spelling in the split lists                 other spellings met in practice
==============  ==========================================  ======================================
HMDB51          ``brush_hair``                              ``brush hair``
UCF101          ``ApplyEyeMakeup``                          ``Apply Eye Makeup`` (CLIP-FSAR text)
Kinetics-100    ``air drumming``                            ``air_drumming`` (CLIP-FSAR folders)
SSv2-Small      ``Pouring something into something``        ``Pouring [something] into [something]``
SSv2-Full       ``Pouring [something] into [something]``    ``pouring something into something``
==============  ==========================================  ======================================

:func:`normalize_class_name` maps all of them to one key (brackets dropped, underscores to spaces,
CamelCase split, case folded, spaces collapsed, typographic apostrophes and quotes made plain,
split-table markers such as ``(inferred)`` dropped); :func:`loose_class_key` goes one step further
and keeps only letters and digits, for names that also differ in punctuation.
:func:`humanize_label` turns a class name into the text shown to an LLM or a text encoder.
"""

from __future__ import annotations

import re
import unicodedata

# Provenance markers that split tables may put before a name (the standard SSv2-Full lists
# mark the one SSv2-Full val name recovered from other lists as ``(inferred) ...``).
NAME_MARKERS = ("(inferred)",)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPACES = re.compile(r"\s+")
# Apostrophe-like and quote-like characters that LLM text and class lists use instead of ' and "
# (NFKC maps the full-width ones, \uff07 \uff02 \uff40, to ' " `): right/left single quotes,
# single high-reversed-9, modifier letters apostrophe / turned comma / prime, prime, reversed
# prime, grave and acute accents; and the double forms, guillemets included.
_QUOTES = str.maketrans({**dict.fromkeys("\u2019\u2018\u201b\u02bc\u02bb\u02b9\u2032\u2035`\u00b4", "'"),
                         **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"')})


def plain_quotes(text: str) -> str:
    """``text`` in Unicode NFKC with every apostrophe- or quote-like character as ``'`` or ``"``.

    ``plain_quotes("can\u2019t \u201cx\u201d")`` is ``"can't \"x\""``. The characters are mapped
    before NFKC (which turns the acute accent ``\u00b4`` into a space and a combining accent) and
    again after it (which turns the full-width grave accent ``\uff40`` into a backtick).
    """
    return unicodedata.normalize("NFKC", text.translate(_QUOTES)).translate(_QUOTES)


def strip_name_markers(name: str) -> str:
    """Drop a leading marker: ``"(inferred) Scooping something up with something"`` ->
    ``"Scooping something up with something"``."""
    text = name.strip()
    for marker in NAME_MARKERS:
        if text.casefold().startswith(marker):
            text = text[len(marker):].strip()
    return text


def split_camel_case(name: str) -> str:
    """Insert spaces into CamelCase words: ``"ApplyEyeMakeup"`` -> ``"Apply Eye Makeup"``.

    Names that already contain spaces or are all lower case are returned unchanged.
    """
    if " " in name.strip() or name.islower() or name.isupper():
        return name
    return _CAMEL.sub(" ", name)


def humanize_label(name: str) -> str:
    """The readable text of a class name: underscores to spaces, CamelCase split, spaces collapsed.

    Brackets and case are kept, so an SSv2 template stays a template (a leading ``(inferred)``
    marker is dropped):
    ``"brush_hair"`` -> ``"brush hair"``, ``"YoYo"`` -> ``"Yo Yo"``,
    ``"Pouring [something] into [something]"`` is unchanged.
    """
    text = split_camel_case(strip_name_markers(name).replace("_", " "))
    return _SPACES.sub(" ", text).strip()


def normalize_class_name(name: str) -> str:
    """The matching key of a class name: brackets stripped, casefolded, spaces collapsed, quotes
    plain (:func:`plain_quotes`: ``can\u2019t`` matches ``can't``).

    ``"Pouring [something] into [something]"`` and ``"Pouring something into something"`` give the
    same key, and so do ``"brush_hair"`` / ``"brush hair"`` and ``"ApplyEyeMakeup"`` /
    ``"Apply Eye Makeup"``.
    """
    text = humanize_label(plain_quotes(name)).replace("[", "").replace("]", "")
    return _SPACES.sub(" ", text.casefold()).strip()


def loose_class_key(name: str) -> str:
    """A looser key than :func:`normalize_class_name`: letters and digits only, no spaces.

    Used as a fall-back, e.g. for ``"Putting something, something and something on the table"``
    against ``"Putting [something], [something] and [something] on the table"`` spelled without
    commas, or ``"pullup"`` against ``"pull up"``.
    """
    return "".join(ch for ch in normalize_class_name(name) if ch.isalnum())
