"""Redaction of a secret (an API key) from any text before it is shown, logged or written.

:func:`redact_secret` replaces every occurrence of the key in a text by ``***``, in every spelling
it can see:

- **escaped**, in any mix and up to three levels deep: ``sk\\u002d...``, ``%2D``, ``&#45;``,
  ``&#x2d;``, ``\\x2d``, ``\\-``;
- **as look-alike characters Unicode folds onto it** (NFKC): full-width ``ｓｋ－...``, mathematical
  letters, ligatures; in any case (casefolded), and with every dash (Unicode's dash punctuation,
  ``‐``, ``‑``, ``−``, ...) read as ``-``;
- **with invisible characters inside**: soft hyphens, zero-width spaces and joiners, word joiners,
  byte-order marks, variation selectors, combining marks (every character of Unicode's categories
  Cf, Mn and Me, and the Hangul fillers) are skipped when matching, and redacted with the key;
- **in part**: any prefix of 8 characters or more, anywhere (a server that echoes
  ``sk-proj-ab****``), and a prefix of 4 or more that ends the text (a text already cut by someone
  else, also when the cut fell inside an escape).

What it cannot see: the key spelled with letters of another script that only look alike (Cyrillic
``ѕ`` for ``s``), with spaces or other visible characters between its characters, or
encoded otherwise (base64, reversed). Redact first, cut after: a text cut first may hold a part
of the key too short to be recognised.

:mod:`lga.anatomy.openai_backend` passes every error message, every log record of the HTTP
libraries and every model answer through it (an answer that holds the key is not used).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata

__all__ = ["redact_secret", "redact_record", "REDACTED"]

REDACTED = "***"
"""What a redacted key is replaced with."""
_PARTIAL = 8  # a prefix of the key this long is redacted anywhere ("sk-proj-ab****" echoes)
_MIN_PREFIX = 4  # and this long at the very end of a text (a text cut inside the key)
_SKIPPED_CATEGORIES = ("Cf", "Mn", "Me")  # format (soft hyphen, zero-width ...), combining marks
_FILLERS = "\u115f\u1160\u3164\uffa0"  # Hangul fillers: blank, but letters to Unicode

_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})|\\x([0-9a-fA-F]{2})|%([0-9a-fA-F]{2})"
                      r"|&#[xX]([0-9a-fA-F]{1,6});|&#([0-9]{1,7});|\\([^uUx])", re.S)
# The start of an escape cut before its end ("sk\u002dtest\u0" cut by a length limit): the
# text is taken to end before it.
_CUT_ESCAPE = re.compile(r"(?:\\{1,8}(?:u[0-9a-fA-F]{0,3}|U[0-9a-fA-F]{0,7}|x[0-9a-fA-F]?)?|%[0-9a-fA-F]?"
                         r"|&(?:#(?:[xX][0-9a-fA-F]{0,6}|[0-9]{0,7}))?)\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _decode_once(text: str) -> tuple[str, list[int]]:
    """Unescape ``\\uXXXX``, ``\\xXX``, ``%XX``, ``&#..;`` and ``\\c`` in ``text`` once.

    Returns the decoded text and, for each of its characters, the offset in ``text`` where that
    character's source starts (plus ``len(text)`` at the end).
    """
    chars: list[str] = []
    starts: list[int] = []
    pos = 0
    for m in _ESCAPED.finditer(text):
        chars.extend(text[pos:m.start()])
        starts.extend(range(pos, m.start()))
        group = m.lastindex
        value = m.group(group)
        try:
            ch = value if group == 7 else chr(int(value, 10 if group == 6 else 16))
        except (ValueError, OverflowError):  # not a code point: keep the text as it is
            chars.extend(m.group())
            starts.extend(range(m.start(), m.end()))
        else:
            chars.append(ch)
            starts.append(m.start())
        pos = m.end()
    chars.extend(text[pos:])
    starts.extend(range(pos, len(text) + 1))
    return "".join(chars), starts


@functools.lru_cache(maxsize=4096)
def _fold(ch: str) -> str:
    """The characters ``ch`` is matched as: NFKC, casefolded, dashes as ``-``; ``""`` if invisible."""
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        if c in _FILLERS or unicodedata.category(c) in _SKIPPED_CATEGORIES:
            continue
        out.append("-" if unicodedata.category(c) == "Pd" or c == "\u2212" else c.casefold())
    return "".join(out)


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` folded character by character, and for each folded character its index in ``text``."""
    if text.isascii():
        return text.translate(_ASCII_LOWER), list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold(ch)
        chars.append(folded)
        origin.extend([i] * len(folded))
    return "".join(chars), origin


def redact_secret(text: str, secret: str | None, *, rounds: int = 3) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``.

    An occurrence counts also when it is written with escapes, in any mix and up to ``rounds``
    levels deep (``sk\\u002dabc``, ``sk%2Dabc``, ``sk&#45;abc``, ``sk\\\\u002dabc``), with
    characters that Unicode folds onto the key's (full-width ``ｓｋ－abc``, any case, any dash), and
    with invisible characters inside (``s\\u00adk-abc`` with a soft hyphen); the whole span is
    replaced. So is any prefix of ``secret`` of 8 characters or more (a server that echoes
    ``sk-proj-ab****``), and a prefix of 4 or more that ends ``text`` (a text already cut by
    someone else), also when the cut fell inside an escape (``sk\\u002dtest\\u00``).
    Redact first, cut after.
    """
    if not secret or not text:
        return text
    needle = "".join(_fold(c) for c in secret)
    if not needle:
        return text
    decoded, starts = text, list(range(len(text) + 1))
    for _ in range(rounds):
        again, inner = _decode_once(decoded)
        if again == decoded:
            break
        decoded, starts = again, [starts[i] for i in inner]
    haystack, origin = _folded(decoded)

    def source(a: int, b: int) -> tuple[int, int]:
        """haystack[a:b] as a span of ``text``, with the invisible characters that follow it."""
        k = origin[b - 1] + 1
        while k < len(decoded) and not _fold(decoded[k]):
            k += 1
        return starts[origin[a]], starts[k]

    spans = []
    head = needle[:_PARTIAL]
    i = haystack.find(head)
    while i >= 0:  # the key, or a prefix of it of at least _PARTIAL characters
        j = len(head)
        while j < len(needle) and i + j < len(haystack) and haystack[i + j] == needle[j]:
            j += 1
        spans.append(source(i, i + j))
        i = haystack.find(head, i + j)
    cut = _CUT_ESCAPE.search(haystack)
    end = cut.start() if cut else len(haystack)
    for n in range(min(len(needle) - 1, end), _MIN_PREFIX - 1, -1):
        if haystack.startswith(needle[:n], end - n):
            spans.append((source(end - n, end)[0], len(text)))
            break
    if not spans:
        return text
    out, pos = [], 0
    for start, stop in sorted(spans):
        if start < pos:  # overlaps the span just redacted: widen it
            pos = max(pos, stop)
            continue
        out += [text[pos:start], REDACTED]
        pos = stop
    out.append(text[pos:])
    return "".join(out)


def redact_record(record: logging.LogRecord, secret: str) -> None:
    """Rewrite a log record's message (and traceback, stack) with ``secret`` redacted."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken record is still logged, redacted
        message = str(record.msg)
    record.msg, record.args = redact_secret(message, secret), None
    if record.exc_info:
        record.exc_text = redact_secret(logging.Formatter().formatException(record.exc_info), secret)
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact_secret(record.stack_info, secret)
