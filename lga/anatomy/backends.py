"""Where anatomy comes from: one backend interface, a resumable cache, and the driver.

A backend turns class labels into raw LLM answers; the driver :func:`generate_anatomy` parses
and validates each answer (:func:`lga.anatomy.parse.parse_anatomy`), re-asks on a parse error,
and writes every success straight into an ``lga-anatomy/1`` file (:class:`AnatomyCache`,
atomic writes). A stopped run therefore resumes by asking only for the classes still missing.

Backends (``make_backend(kind, ...)`` builds one by name):

- ``cache``        :class:`CacheBackend`, answers from an existing anatomy file (or a shipped one);
- ``transformers`` :class:`lga.anatomy.transformers_backend.TransformersBackend`, a local or hub
  causal LM with a chat template;
- ``openai``       :class:`lga.anatomy.openai_backend.OpenAIBackend`, any OpenAI-compatible
  chat-completions server (OpenAI, vLLM, Ollama, llama.cpp).

The base class and :class:`BackendError` are defined in :mod:`lga.anatomy.backend_base` (the backends
import them from there). The transformers backend is imported on first use, so reading a cache
never imports torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..data.layout import ANATOMY_SCHEMA
from ..util.files import write_json
from .backend_base import AnatomyBackend, BackendError
from .openai_backend import OpenAIBackend
from .parse import AnatomyError, Step, parse_anatomy
from .prompts import PromptSpec
from .shipped import Anatomy, load_anatomy

__all__ = ["BackendError", "AnatomyBackend", "CacheBackend", "AnatomyCache", "GenerationReport",
           "generate_anatomy", "make_backend", "BACKENDS"]

logger = logging.getLogger("lga.anatomy")

BACKENDS = ("transformers", "openai", "cache")


class CacheBackend(AnatomyBackend):
    """Answers from an existing anatomy file: a path, a prepared root or a shipped dataset name.

    Useful to copy (a subset of) a shipped anatomy into a new file through the same driver and
    checks as the LLM backends. Labels are resolved with :meth:`Anatomy.lookup`.
    """

    name = "cache"
    batch_size = 64

    def __init__(self, source: str | os.PathLike | Anatomy):
        self.anatomy = source if isinstance(source, Anatomy) else load_anatomy(source)
        self.model = str(self.anatomy.provenance.get("model", ""))

    def __repr__(self) -> str:
        return f"CacheBackend(source={self.anatomy.source!r})"

    def generate(self, labels: Sequence[str], spec: PromptSpec,
                 attempt: int = 0) -> dict[str, str | BackendError]:
        out: dict[str, str | BackendError] = {}
        for label in labels:
            try:
                entry = self.anatomy.lookup(label)
            except KeyError as e:
                out[label] = BackendError(str(e.args[0]) if e.args else str(e))
                continue
            out[label] = json.dumps({"steps": [s.to_dict() for s in entry.steps]}, ensure_ascii=False)
        return out

    def provenance(self) -> dict:
        prov = dict(self.anatomy.provenance)
        prov.setdefault("method", "cache")
        prov["notes"] = (prov.get("notes", "") + f" Copied from {self.anatomy.source}.").strip()
        return prov


class AnatomyCache:
    """An ``lga-anatomy/1`` file that grows one class at a time (each write atomic).

    Opening an existing file checks its schema, ``num_steps`` and ``dataset``; :meth:`put`
    rewrites the whole file through :func:`lga.util.files.write_json` (temporary file + rename),
    so an interrupted run never leaves a half-written file.
    """

    def __init__(self, path: str | os.PathLike, *, num_steps: int = 3, dataset: str | None = None):
        self.path = Path(path)
        if self.path.exists():
            anatomy = load_anatomy(self.path)
            if anatomy.num_steps != num_steps:
                raise ValueError(f"{self.path}: the cache has num_steps={anatomy.num_steps}, "
                                 f"but num_steps={num_steps} was asked for (use another file)")
            if dataset and anatomy.dataset and anatomy.dataset != dataset:
                raise ValueError(f"{self.path}: the cache is for dataset {anatomy.dataset!r}, "
                                 f"not {dataset!r}")
            self.data = anatomy.data
        else:
            self.data = {"schema": ANATOMY_SCHEMA, "dataset": dataset, "num_steps": num_steps,
                         "provenance": {}, "classes": {}}
        self.num_steps = num_steps

    def __contains__(self, class_name: object) -> bool:
        return class_name in self.data["classes"]

    def __len__(self) -> int:
        return len(self.data["classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.data["classes"])

    def get(self, class_name: str) -> list[Step] | None:
        entry = self.data["classes"].get(class_name)
        if entry is None:
            return None
        return [Step.from_dict(s, where=f"{self.path}: class {class_name!r}") for s in entry["steps"]]

    def set_provenance(self, provenance: Mapping) -> None:
        """Record where the anatomy came from; refuse to mix models or prompt versions in one file."""
        old = self.data.get("provenance") or {}
        for key in ("model", "prompt_version"):
            if old.get(key) and provenance.get(key) and old[key] != provenance[key] and len(self):
                raise ValueError(f"{self.path}: the cache was made with {key}={old[key]!r}, "
                                 f"not {provenance[key]!r}; write to another file")
        new = {"method": "", "model": "", "prompt_version": "", "date": _dt.date.today().isoformat(),
               "reviewed": False, "notes": ""}
        new.update(old)
        new.update({k: v for k, v in provenance.items() if v not in (None, "")})
        new["date"] = _dt.date.today().isoformat()
        self.data["provenance"] = new

    def put(self, class_name: str, label: str, steps: Sequence[Step]) -> None:
        """Store one class and write the file atomically."""
        if len(steps) != self.num_steps:
            raise ValueError(f"{self.path}: class {class_name!r} has {len(steps)} steps, "
                             f"expected {self.num_steps}")
        self.data["classes"][class_name] = {"label": label, "steps": [s.to_dict() for s in steps]}
        write_json(self.path, self.data)


@dataclass
class GenerationReport:
    """What :func:`generate_anatomy` did: classes answered now, found in the cache, or failed."""

    ok: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    queried: list[str] = field(default_factory=list)  # every label sent to the backend, in order
    parse_errors: int = 0

    @property
    def covered(self) -> list[str]:
        return self.cached + self.ok

    def summary(self) -> str:
        total = len(self.covered) + len(self.failed)
        lines = [f"anatomy: {len(self.covered)}/{total} classes covered "
                 f"({len(self.ok)} generated, {len(self.cached)} already cached), "
                 f"{len(self.failed)} failed, {len(self.queried)} queries, "
                 f"{self.parse_errors} parse errors"]
        lines += [f"  FAILED {name!r}: {reason}" for name, reason in self.failed.items()]
        return "\n".join(lines)


def _as_mapping(labels: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(labels, Mapping):
        items = dict(labels)
    else:
        items = {name: name for name in labels}
    for name, label in items.items():
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"class {name!r}: empty label")
    return items


def generate_anatomy(labels: Sequence[str] | Mapping[str, str], backend: AnatomyBackend,
                     cache: AnatomyCache | str | os.PathLike, *, num_steps: int = 3,
                     retries_on_parse_error: int = 2, spec: PromptSpec | None = None,
                     dataset: str | None = None, progress: bool = False) -> GenerationReport:
    """Generate, parse and cache the anatomy of every class not yet in ``cache``.

    Args:
        labels: class names (each its own label), or ``{class_name: label}`` where the label is
            the text shown to the LLM (e.g. ``{"brush_hair": "brush hair"}``).
        backend: any :class:`AnatomyBackend`.
        cache: an :class:`AnatomyCache` or the path of its file (created if missing).
        num_steps: ``L``; must equal ``spec.num_steps`` when ``spec`` is given.
        retries_on_parse_error: how many times a class whose answer did not parse is asked again.
        spec: the prompt; default ``PromptSpec(num_steps)``.
        dataset: written into a new cache file's ``dataset`` field.
        progress: show a tqdm progress bar.

    Returns a :class:`GenerationReport`; failures are reported there, not raised.
    """
    if retries_on_parse_error < 0:
        raise ValueError(f"retries_on_parse_error must be >= 0, got {retries_on_parse_error}")
    spec = spec or PromptSpec(num_steps=num_steps)
    if spec.num_steps != num_steps:
        raise ValueError(f"spec.num_steps={spec.num_steps} but num_steps={num_steps}")
    if not isinstance(cache, AnatomyCache):
        cache = AnatomyCache(cache, num_steps=num_steps, dataset=dataset)
    items = _as_mapping(labels)
    report = GenerationReport()
    report.cached = [name for name in items if name in cache]
    pending = [name for name in items if name not in cache]
    if pending:
        cache.set_provenance(backend.provenance())
    bar = None
    if progress:
        bar = tqdm(total=len(items), initial=len(report.cached), desc=f"anatomy ({backend.name})",
                   unit="class")

    def tick() -> None:
        if bar is not None:
            bar.update(1)

    retry: dict[str, str] = {}
    try:
        for attempt in range(retries_on_parse_error + 1):
            retry = {}
            size = max(1, int(backend.batch_size))
            for start in range(0, len(pending), size):
                batch = pending[start:start + size]
                answers = _ask(backend, [items[n] for n in batch], spec, attempt)
                report.queried += [items[n] for n in batch]
                for name in batch:
                    answer = answers.get(items[name])
                    if answer is None or isinstance(answer, BaseException):
                        reason = str(answer) if answer is not None else "the backend gave no answer"
                        report.failed[name] = reason
                        logger.warning("anatomy of %r failed: %s", name, reason)
                        tick()
                        continue
                    try:
                        steps = parse_anatomy(answer, num_steps)
                    except (ValueError, RecursionError) as e:
                        # AnatomyError is a ValueError; anything else the answer provokes is
                        # reported for this class too and never stops the run
                        report.parse_errors += 1
                        why = str(e) if isinstance(e, AnatomyError) else f"{type(e).__name__}: {e}"
                        retry[name] = f"unparsable answer after {attempt + 1} attempt(s): {why}"
                        logger.info("anatomy of %r (attempt %d) did not parse: %s", name, attempt + 1, why)
                        continue
                    cache.put(name, items[name], steps)
                    report.ok.append(name)
                    tick()
            pending = list(retry)
            if not pending:
                break
        for name in pending:
            report.failed[name] = retry[name]
            logger.warning("anatomy of %r failed: %s", name, retry[name])
            tick()
    finally:
        if bar is not None:
            bar.close()
    return report


def _ask(backend: AnatomyBackend, labels: list[str], spec: PromptSpec,
         attempt: int) -> dict[str, str | BaseException]:
    try:
        return dict(backend.generate(labels, spec, attempt=attempt))
    except BackendError as e:
        return {label: e for label in labels}


def make_backend(kind: str, **kwargs) -> AnatomyBackend:
    """Build a backend by name: ``make_backend("openai", model="gpt-4o-mini", base_url=...)``.

    ``kind`` is one of :data:`BACKENDS`; keyword arguments go to the backend's constructor
    (``cache`` takes ``source=``).
    """
    if kind == "cache":
        return CacheBackend(**kwargs)
    if kind == "openai":
        return OpenAIBackend(**kwargs)
    if kind == "transformers":
        from .transformers_backend import TransformersBackend   # heavy: imports torch

        return TransformersBackend(**kwargs)
    raise ValueError(f"unknown anatomy backend {kind!r}; choose from {BACKENDS}")


def __getattr__(name: str):
    # A lazy re-export, so that `from lga.anatomy.backends import TransformersBackend` works without
    # importing torch/transformers for users of the cache only.
    if name == "TransformersBackend":
        from .transformers_backend import TransformersBackend   # heavy: imports torch

        return TransformersBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
