"""lga: Language-Guided Action Anatomy for few-shot action recognition.

A small, readable re-implementation of LGA (ICCV 2025) and its baselines, written to be
taught from (see the book in ``book/``) and reused in research.

Sub-packages follow the book's chapters:

- :mod:`lga.data`     videos, frame sampling, episodes, the AtomicActions benchmark
- :mod:`lga.anatomy`  text anatomy (LLM prompting, parsing, cache) and visual anatomy
- :mod:`lga.models`   backbones, fusion, matching, LGA and its baselines
- :mod:`lga.engine`   training and evaluation
"""

__version__ = "0.1.0"
