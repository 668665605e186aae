"""A tolerant JSON reader for what language models actually write.

Models asked for JSON often return *almost* JSON: Python-style single quotes, a trailing comma
before ``}``, unquoted keys, ``True``/``None``, "smart" quotes, or an apostrophe inside a
single-quoted string (``'the person's hand'``). :func:`loads_prefix` reads such text with a small
hand-written recursive-descent parser. It builds only dicts, lists, strings, numbers, booleans
and ``None``; nothing in the text is ever evaluated as code (no ``eval``, no ``ast``).

What it accepts, beyond strict JSON:

- strings in ``"..."``, ``'...'`` or ``“...”``; a closing quote counts only when the next
  non-space character can follow a value (``, : } ]`` or the end), so ``'person's'`` keeps its
  apostrophe;
- trailing commas in objects and arrays;
- bare identifiers as object keys (``{subject: "hand"}``);
- ``true/false/null`` and ``True/False/None``;
- ``// line`` and ``/* block */`` comments.
"""

from __future__ import annotations

import re

__all__ = ["LenientJSONError", "loads_prefix", "loads"]

_OPEN_TO_CLOSE = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_AFTER_VALUE = set(",:}]")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$\- ]*[A-Za-z0-9_$]|[A-Za-z_$]")
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\",
            '"': '"', "'": "'"}
_MAX_DEPTH = 64


class LenientJSONError(ValueError):
    """The text is not even lenient JSON; ``pos`` is the character offset of the problem."""

    def __init__(self, message: str, text: str, pos: int):
        snippet = text[max(0, pos - 20):pos + 20].replace("\n", "\\n")
        super().__init__(f"{message} at character {pos} (near {snippet!r})")
        self.pos = pos


class _Reader:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str) -> LenientJSONError:
        return LenientJSONError(message, self.text, self.pos)

    def skip_space(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self):
        ch = self.peek()
        if not ch:
            raise self.fail("unexpected end of text, expected a value")
        if ch == "{":
            return self.container(self.object_items, "}")
        if ch == "[":
            return self.container(self.array_items, "]")
        if ch in _OPEN_TO_CLOSE:
            return self.string()
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            token = m.group()
            return float(token) if any(c in token for c in ".eE") else int(token)
        for word, val in _LITERALS.items():
            if self.text.startswith(word, self.pos) and not self._ident_char(self.pos + len(word)):
                self.pos += len(word)
                return val
        raise self.fail(f"unexpected character {ch!r}, expected a value")

    def _ident_char(self, pos: int) -> bool:
        return pos < len(self.text) and (self.text[pos].isalnum() or self.text[pos] == "_")

    def container(self, items, close: str):
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        self.pos += 1  # the opening bracket
        out = items(close)
        self.depth -= 1
        return out

    def array_items(self, close: str) -> list:
        out = []
        while True:
            ch = self.peek()
            if ch == close:
                self.pos += 1
                return out
            out.append(self.value())
            ch = self.peek()
            if ch == ",":
                self.pos += 1
            elif ch != close:
                raise self.fail(f"expected ',' or '{close}' in a list")

    def object_items(self, close: str) -> dict:
        out = {}
        while True:
            ch = self.peek()
            if ch == close:
                self.pos += 1
                return out
            key = self.key()
            if self.peek() not in (":", "="):
                raise self.fail(f"expected ':' after key {key!r}")
            self.pos += 1
            out[key] = self.value()
            ch = self.peek()
            if ch == ",":
                self.pos += 1
            elif ch != close:
                raise self.fail(f"expected ',' or '{close}' in an object")

    def key(self) -> str:
        ch = self.peek()
        if ch in _OPEN_TO_CLOSE:
            return self.string()
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a key")
        self.pos = m.end()
        return m.group().strip()

    def string(self) -> str:
        text = self.text
        opener = text[self.pos]
        closer = _OPEN_TO_CLOSE[opener]
        closers = {closer, opener} if opener in "\u201c\u2018" else {closer}
        start = self.pos
        self.pos += 1
        out = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                nxt = text[self.pos + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[self.pos + 2:self.pos + 6] or ""):
                    out.append(chr(int(text[self.pos + 2:self.pos + 6], 16)))
                    self.pos += 6
                else:
                    out.append(_ESCAPES.get(nxt, nxt))
                    self.pos += 2
                continue
            if ch in closers and self._closes_string(self.pos + 1):
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        self.pos = start
        raise self.fail("unterminated string")

    def _closes_string(self, pos: int) -> bool:
        """A quote ends a string only if what follows it can follow a value."""
        text = self.text
        while pos < len(text) and text[pos] in " \t\r":
            pos += 1
        if pos >= len(text) or text[pos] in _AFTER_VALUE or text[pos] == "\n":
            return True
        return text.startswith("//", pos) or text.startswith("/*", pos)


def loads_prefix(text: str, start: int = 0):
    """Read one lenient-JSON value that starts at ``text[start]``; text after it is ignored.

    Returns ``(value, end)`` where ``end`` is the offset just after the value. Raises
    :class:`LenientJSONError` (a ``ValueError``) naming the offset of the first problem.
    """
    reader = _Reader(text)
    reader.pos = start
    value = reader.value()
    return value, reader.pos


def loads(text: str):
    """Read a whole text as one lenient-JSON value (only spaces and comments may follow it)."""
    value, end = loads_prefix(text)
    reader = _Reader(text)
    reader.pos = end
    if reader.peek():
        raise reader.fail("extra text after the value")
    return value
