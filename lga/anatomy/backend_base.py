"""The interface every anatomy backend implements (:class:`AnatomyBackend`) and the error it raises
(:class:`BackendError`). The backends (:mod:`lga.anatomy.backends` for the cache and the factory,
:mod:`lga.anatomy.openai_backend`, :mod:`lga.anatomy.transformers_backend`) build on it; every name
is importable from :mod:`lga.anatomy.backends`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from .prompts import PROMPT_VERSION, PromptSpec

__all__ = ["BackendError", "AnatomyBackend"]


class BackendError(RuntimeError):
    """A backend could not produce an answer (network failure, HTTP error, missing cache entry)."""


class AnatomyBackend(ABC):
    """Turns class labels into raw answers (text that :func:`parse_anatomy` will read).

    Subclasses set :attr:`name` (``"transformers"``, ``"openai"``, ``"cache"``), :attr:`model`
    (recorded in the anatomy file's provenance) and :attr:`batch_size` (how many labels the
    driver passes to one :meth:`generate` call).
    """

    name: str = "backend"
    model: str = ""
    batch_size: int = 1

    @abstractmethod
    def generate(self, labels: Sequence[str], spec: PromptSpec,
                 attempt: int = 0) -> dict[str, str | BackendError]:
        """Answer every label in ``labels`` with the prompt ``spec.messages(label)``.

        Returns ``{label: raw_text}``; a label that failed maps to a :class:`BackendError`
        (or is absent). ``attempt`` counts re-asks after a parse error (0 first); sampling
        backends use it to vary their seed. May raise :class:`BackendError` for the whole batch.
        """

    def provenance(self) -> dict:
        """What to record in the anatomy file about this backend."""
        return {"method": f"llm:{self.name}", "model": self.model, "prompt_version": PROMPT_VERSION}
