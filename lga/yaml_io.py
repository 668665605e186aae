"""Reading YAML: the one loader the project uses, which refuses a key given twice.

PyYAML keeps the last of two equal keys in a mapping without a word: a second ``lr:`` line wins
silently, and a second ``train:`` block silently replaces the first block whole. :func:`load_yaml`
reads like :func:`yaml.safe_load` (plain data only: nothing named in a file is imported or called)
but raises :class:`DuplicateKeyError` naming the file, the key and both lines. YAML merge keys
(``<<: *defaults``) keep their meaning: a key written next to a merge overrides the merged one::

    from lga.yaml_io import load_yaml
    data = load_yaml(Path("configs/hmdb51_5way_1shot.yaml"))     # a path: its text, named in errors
    value = load_yaml("[1, 2]", source="--set data.x")             # a string: parsed as YAML text

This module imports nothing of :mod:`lga`.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

__all__ = ["DuplicateKeyError", "load_yaml"]


class DuplicateKeyError(ValueError):
    """A mapping in a YAML file gives the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that refuses a key written twice in one mapping."""

    source = "<yaml>"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":      # '<<': merged keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                mark = key_node.start_mark
                where = f"line {mark.line + 1}" + (f", column {mark.column + 1}" if node.flow_style else "")
                try:
                    first = seen.get(key)
                except TypeError:                                  # an unhashable key: PyYAML's own error
                    continue
                if first is not None:
                    raise DuplicateKeyError(
                        f"{self.source}: key {key!r} is given twice in one mapping, on {first} and on "
                        f"{where}; YAML would silently keep only the second: delete one of them")
                seen[key] = where
        return super().construct_mapping(node, deep=deep)


def load_yaml(source: str | os.PathLike, *, text: str | None = None, name: str | None = None):
    """Parse YAML safely, refusing duplicate keys.

    Args:
        source: a path to read (UTF-8), or, as a ``str`` with ``text`` None, the YAML text itself.
        text: the YAML text; ``source`` then only names it in error messages.
        name: how errors name the document (default: the path, or ``"<yaml>"`` for text).

    Returns the data (mappings, lists, strings, numbers, booleans, None).

    Raises:
        DuplicateKeyError: a mapping gives one key twice (the message names the file, key and lines).
        yaml.YAMLError: the text is not valid YAML.
    """
    if text is None:
        if isinstance(source, str):
            text, label = source, name or "<yaml>"
        else:
            path = Path(source)
            text, label = path.read_text(encoding="utf-8"), name or str(path)
    else:
        label = name or str(source)
    loader = _UniqueKeyLoader(text)
    loader.source = label
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
