"""Read anatomy files: the ones shipped with ``lga`` and any other ``lga-anatomy/1`` file.

The package ships one anatomy file per real benchmark, as package data under
``lga/anatomy/data/`` (schema in :mod:`lga.data.layout`). Their text was written by an LLM agent
(Claude) in a development session, following prompt ``lga-anatomy-v1``, and revised by reading; it
was not produced by running ``python -m lga anatomy``. Each file's ``provenance`` says how, and
when, it was written and revised; :mod:`lga.anatomy.agreement` compares it with a regeneration by
a named open model.

=================  ====================  ==================================================
dataset            file                  keyed by
=================  ====================  ==================================================
``hmdb51``         ``hmdb51.json``       class folder name (``brush_hair``)
``ucf101``         ``ucf101.json``       class folder name (``ApplyEyeMakeup``)
``kinetics100``    ``kinetics100.json``  CMN class name (``air drumming``)
``ssv2_small``     ``ssv2.json``         SSv2 template (``Pouring [something] into [something]``)
``ssv2_full``      ``ssv2.json``         the same file
=================  ====================  ==================================================

SSv2-Small's split lists spell classes without brackets (``Pouring something into something``),
SSv2-Full's with them, and a prepared SSv2-Full root may carry val names recovered from the SSv2
annotations in either spelling. :meth:`Anatomy.lookup` therefore matches names through
:func:`lga.anatomy.names.normalize_class_name` (brackets stripped, casefolded, spaces collapsed)
and then :func:`lga.anatomy.names.loose_class_key` (letters and digits only).

Usage::

    anatomy = load_shipped_anatomy("ssv2_small")
    anatomy.lookup("Pouring something into something").descriptions   # 3 sentences
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..data.layout import ANATOMY_SCHEMA, read_anatomy
from .names import loose_class_key, normalize_class_name
from .parse import AnatomyError, Step

__all__ = ["SHIPPED_FILES", "ClassAnatomy", "Anatomy", "load_shipped_anatomy", "load_anatomy",
           "shipped_anatomy_path"]

SHIPPED_FILES: dict[str, str] = {
    "hmdb51": "hmdb51.json",
    "ucf101": "ucf101.json",
    "kinetics100": "kinetics100.json",
    "ssv2_small": "ssv2.json",
    "ssv2_full": "ssv2.json",
}


@dataclass(frozen=True)
class ClassAnatomy:
    """The text anatomy of one class: its key in the file, its label and its ordered steps."""

    name: str
    label: str
    steps: tuple[Step, ...]

    @property
    def descriptions(self) -> list[str]:
        """The ``L`` step descriptions in temporal order (what the text encoder reads)."""
        return [s.description for s in self.steps]

    def to_dict(self) -> dict:
        return {"label": self.label, "steps": [s.to_dict() for s in self.steps]}


class Anatomy(Mapping[str, ClassAnatomy]):
    """A validated ``lga-anatomy/1`` document, with tolerant class-name lookup.

    ``anatomy[name]`` is :meth:`lookup` (tolerant); iteration yields the class names exactly as
    the file spells them. ``data`` keeps the whole document (including ``videos`` if present).
    """

    def __init__(self, data: dict, source: str = "<dict>"):
        self.source = source
        if not isinstance(data, dict):
            raise AnatomyError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("schema") != ANATOMY_SCHEMA:
            raise AnatomyError(f"{source}: field 'schema' must be {ANATOMY_SCHEMA!r}, "
                               f"got {data.get('schema')!r}")
        num_steps = data.get("num_steps")
        if not isinstance(num_steps, int) or num_steps < 1:
            raise AnatomyError(f"{source}: field 'num_steps' must be a positive integer, got {num_steps!r}")
        classes = data.get("classes")
        if not isinstance(classes, dict):
            raise AnatomyError(f"{source}: field 'classes' must be an object, got {type(classes).__name__}")
        self.data = data
        self.dataset: str | None = data.get("dataset")
        self.num_steps: int = num_steps
        self.provenance: dict = dict(data.get("provenance") or {})
        self.classes: dict[str, ClassAnatomy] = {}
        for name, entry in classes.items():
            self.classes[name] = _class_from_json(name, entry, num_steps, source)
        self._index = _build_index(self.classes)

    # Mapping interface -------------------------------------------------------------------
    def __getitem__(self, name: str) -> ClassAnatomy:
        return self.lookup(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            return self.resolve(name) is not None
        except KeyError:  # ambiguous: present, but lookup() will ask for a precise name
            return True

    def __repr__(self) -> str:
        return (f"Anatomy(source={self.source!r}, dataset={self.dataset!r}, "
                f"num_steps={self.num_steps}, classes={len(self.classes)})")

    # lookup ------------------------------------------------------------------------------
    def resolve(self, name: str) -> str | None:
        """The file's key for ``name`` (exact, then normalised, then loose match), or None."""
        if name in self.classes:
            return self.classes[name].name
        for key_fn in (normalize_class_name, loose_class_key):
            keys = self._index[key_fn.__name__].get(key_fn(name))
            if keys and len(keys) == 1:
                return keys[0]
            if keys:
                raise KeyError(f"{self.source}: class name {name!r} is ambiguous: it matches {keys}")
        return None

    def lookup(self, name: str) -> ClassAnatomy:
        """The anatomy of class ``name``, in any of its spellings (see :mod:`lga.anatomy.names`).

        Raises ``KeyError`` naming the file and the closest class names when nothing matches.
        """
        key = self.resolve(name)
        if key is None:
            normal = {normalize_class_name(k): k for k in self.classes}
            close = difflib.get_close_matches(normalize_class_name(name), list(normal), n=3)
            hint = f"; closest: {[normal[c] for c in close]}" if close else ""
            raise KeyError(f"{self.source}: no anatomy for class {name!r}{hint}")
        return self.classes[key]

    def descriptions(self, name: str) -> list[str]:
        """Shortcut for ``lookup(name).descriptions``."""
        return self.lookup(name).descriptions

    def missing(self, names) -> list[str]:
        """Those of ``names`` that :meth:`lookup` cannot resolve, in order."""
        return [n for n in names if n not in self]


def _class_from_json(name: str, entry, num_steps: int, source: str) -> ClassAnatomy:
    where = f"{source}: class {name!r}"
    if not isinstance(entry, dict):
        raise AnatomyError(f"{where}: expected an object with 'label' and 'steps', got {type(entry).__name__}")
    label = entry.get("label", name)
    if not isinstance(label, str) or not label.strip():
        raise AnatomyError(f"{where}: field 'label' must be a non-empty string, got {label!r}")
    steps = entry.get("steps")
    if not isinstance(steps, list):
        raise AnatomyError(f"{where}: field 'steps' must be a list, got {type(steps).__name__}")
    if len(steps) != num_steps:
        raise AnatomyError(f"{where}: has {len(steps)} steps, the file's num_steps is {num_steps}")
    parsed = tuple(Step.from_dict(s, where=f"{where}, step {i}") for i, s in enumerate(steps, 1))
    return ClassAnatomy(name=name, label=label, steps=parsed)


def _build_index(classes: dict[str, ClassAnatomy]) -> dict[str, dict[str, list[str]]]:
    index: dict[str, dict[str, list[str]]] = {}
    for key_fn in (normalize_class_name, loose_class_key):
        table: dict[str, list[str]] = {}
        for name in classes:
            table.setdefault(key_fn(name), []).append(name)
        index[key_fn.__name__] = table
    return index


def shipped_anatomy_path(dataset: str):
    """The package-data resource (a ``Traversable``) of ``dataset``'s shipped anatomy file."""
    if dataset not in SHIPPED_FILES:
        raise ValueError(f"no shipped anatomy for dataset {dataset!r}; known: {sorted(SHIPPED_FILES)}")
    return resources.files("lga.anatomy").joinpath("data", SHIPPED_FILES[dataset])


def load_shipped_anatomy(dataset: str) -> Anatomy:
    """The anatomy shipped for ``dataset`` (``hmdb51``, ``ucf101``, ``kinetics100``,
    ``ssv2_small`` or ``ssv2_full``; both SSv2 variants read ``ssv2.json``)."""
    res = shipped_anatomy_path(dataset)
    source = f"lga/anatomy/data/{SHIPPED_FILES[dataset]}"
    if not res.is_file():
        raise FileNotFoundError(f"{source} is missing from the installed package "
                                "(is lga installed with its package data?)")
    try:
        data = json.loads(res.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AnatomyError(f"{source}: invalid JSON: {e}") from None
    return Anatomy(data, source=source)


def load_anatomy(path_or_dataset: str | os.PathLike) -> Anatomy:
    """Load an anatomy by shipped dataset name, by file path, or from a prepared dataset root.

    A name in :data:`SHIPPED_FILES` that is not also an existing path loads the shipped file;
    a directory loads ``<dir>/anatomy.json`` (the prepared-dataset layout); anything else is read
    as an ``lga-anatomy/1`` JSON file.
    """
    key = os.fspath(path_or_dataset)
    path = Path(key)
    if key in SHIPPED_FILES and not path.exists():
        return load_shipped_anatomy(key)
    if path.is_dir():
        path = path / "anatomy.json"
    if not path.is_file():
        raise FileNotFoundError(f"no anatomy file {path} (and {key!r} is not one of the shipped "
                                f"datasets {sorted(SHIPPED_FILES)})")
    try:
        data = read_anatomy(path)
    except AnatomyError:
        raise
    except ValueError as e:  # bad JSON or wrong schema tag; read_anatomy's message names the file
        raise AnatomyError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
    return Anatomy(data, source=str(path))
