"""How closely a regenerated anatomy agrees with a reference one (e.g. the shipped file).

Regenerate a benchmark's anatomy with a named open model, then compare it with the text shipped
with ``lga``. On a free Colab T4 that is ``--model colab-t4`` (Phi-3.5-mini-instruct in float16; on
a CPU, ``--model cpu``: Qwen2.5-0.5B-Instruct; see :mod:`lga.anatomy.llm_choices`); the book's
reference model, ``--model Qwen/Qwen2.5-7B-Instruct --dtype bfloat16``, needs a larger GPU::

    python -m lga anatomy --dataset hmdb51 --classes ~/.cache/lga/splits/hmdb51 \\
        --backend transformers --model colab-t4 --out runs/anatomy/hmdb51_phi.json

    report = anatomy_agreement("runs/anatomy/hmdb51_phi.json", "hmdb51")
    print(report.summary())

Classes are matched by name as :meth:`lga.anatomy.shipped.Anatomy.lookup` matches them (so
``Pouring something into something`` finds ``Pouring [something] into [something]``), and
compared **step by step**: step ``l`` of the generated class against step ``l`` of the reference
class, so a right sentence in the wrong phase does not count. Per step, in ``[0, 1]``:

``motion``
    exact match of the ``motion`` field after normalisation (:func:`content_tokens`: casefolded,
    articles, pronouns and auxiliaries dropped, words stemmed; compared as sets, so
    ``"raising the brush"`` equals ``"raises brush"``, but ``"lifts"`` does not);
``object``
    token F1 of the normalised ``object`` fields;
``description``
    token F1 of the normalised descriptions (SQuAD-style F1 over word multisets);
``cosine``
    only with a text encoder: the cosine of the two descriptions' embeddings, with the encoder
    the rest of the book uses (the cpu profile's tiny CLIP, or OpenAI's ViT-B/16).

A class scores the mean over its steps, the report the mean over classes. Two reference points
make the numbers readable: ``chance``, the same measures between a generated class and every
*other* reference class (what unrelated actions of the same benchmark score), and
``identified``, whether a generated class is closer to its own reference class than to any other
(by cosine when an encoder is given, else by description F1; chance level ``1 / classes``).
Prepositions are kept by the normalisation: in SSv2 *into*, *out of*, *behind* and *up* are the
words that tell classes apart.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .quality import normalize_text, stem
from .shipped import Anatomy, load_anatomy

__all__ = ["MEASURES", "ClassAgreement", "AgreementReport", "anatomy_agreement", "content_tokens",
           "token_f1"]

#: the text measures, in report order (``cosine`` is added when a text encoder is given)
MEASURES = ("motion", "object", "description")

_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no action content. Prepositions and particles (into, out, behind, up, left)
# are deliberately absent: they are what separates many SSv2 classes.
_FUNCTION_WORDS = frozenset("""a an the this that these those it its itself he she they him her them
 his hers their theirs one ones someone somebody and or but is are was were be been being has have
 had does do did""".split())


def content_tokens(text: str) -> list[str]:
    """Normalised content words of ``text``: quotes made plain and casefolded
    (:func:`lga.anatomy.quality.normalize_text`), ``'s`` and function words dropped, stemmed."""
    words = _WORD.findall(normalize_text(text).replace("'s", ""))
    return [stem(w) for w in words if w not in _FUNCTION_WORDS]


def token_f1(a: Sequence[str], b: Sequence[str]) -> float:
    """F1 of two token multisets (1.0 when both are empty, 0.0 when only one is)."""
    return _f1(Counter(a), Counter(b))


def _f1(a: Counter, b: Counter) -> float:
    if not a and not b:
        return 1.0
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class ClassAgreement:
    """Agreement of one class: ``name`` is the reference key, ``generated_name`` the other's.

    ``steps`` holds the per-step scores, ``{measure: [L floats]}``; the attributes are their means.
    """

    name: str
    generated_name: str
    motion: float
    object: float
    description: float
    cosine: float | None
    identified: bool
    steps: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_row(self) -> dict:
        row = {"class": self.name, "motion": self.motion, "object": self.object,
               "description": self.description}
        if self.cosine is not None:
            row["cosine"] = self.cosine
        row["identified"] = self.identified
        return row


@dataclass
class AgreementReport:
    """The result of :func:`anatomy_agreement`.

    ``overall`` and ``chance`` map each measure (and ``identified``) to a mean over classes;
    ``missing`` lists reference classes the generated file lacks, ``unmatched`` generated classes
    without a reference entry (both by name, in file order).
    """

    generated_source: str
    reference_source: str
    num_steps: int
    classes: list[ClassAgreement]
    overall: dict[str, float]
    chance: dict[str, float]
    missing: list[str]
    unmatched: list[str]

    @property
    def measures(self) -> tuple[str, ...]:
        return MEASURES + (("cosine",) if "cosine" in self.overall else ())

    def rows(self) -> list[dict]:
        """One dict per class (for ``pandas.DataFrame(report.rows())``)."""
        return [c.as_row() for c in self.classes]

    def worst(self, n: int = 5, by: str = "description") -> list[ClassAgreement]:
        """The ``n`` classes that agree least under measure ``by``."""
        if by not in self.measures:
            raise ValueError(f"unknown measure {by!r}; known: {self.measures}")
        return sorted(self.classes, key=lambda c: getattr(c, by))[:n]

    def summary(self) -> str:
        n = len(self.classes)
        lines = [f"agreement of {self.generated_source} with {self.reference_source}: {n} classes "
                 f"compared step by step ({self.num_steps} steps), {len(self.missing)} reference "
                 f"classes not generated, {len(self.unmatched)} generated classes without reference"]
        for m in self.measures:
            lines.append(f"  {m:12s} {self.overall[m]:.3f}   (other classes: {self.chance[m]:.3f})")
        lines.append(f"  {'identified':12s} {self.overall['identified']:.3f}   "
                     f"(chance: {self.chance['identified']:.3f})")
        return "\n".join(lines)


def _as_anatomy(x, what: str) -> Anatomy:
    if isinstance(x, Anatomy):
        return x
    if isinstance(x, dict):
        return Anatomy(x, source=f"<{what} dict>")
    if isinstance(x, (str, os.PathLike)):
        return load_anatomy(x)
    raise TypeError(f"{what}: expected an Anatomy, a dict, a path or a shipped dataset name, "
                    f"got {type(x).__name__}")


def _pairs(generated: Anatomy, reference: Anatomy, classes: Iterable[str] | None):
    """Matched ``(generated_key, reference_key)`` pairs, reference keys not generated, and
    generated names without a reference entry (or whose entry another class already took)."""
    if classes is None:
        names = list(generated)
    else:
        names = [generated.lookup(n).name for n in classes]  # KeyError names the file and class
    pairs, unmatched, used = [], [], set()
    for name in names:
        try:
            ref_key = reference.resolve(name)
        except KeyError:  # ambiguous in the reference: no fair match
            ref_key = None
        if ref_key is None or ref_key in used:
            unmatched.append(name)
            continue
        used.add(ref_key)
        pairs.append((name, ref_key))
    missing = [k for k in reference if k not in used] if classes is None else []
    return pairs, missing, unmatched


def _field_matrix(gen_tokens, ref_tokens, score) -> np.ndarray:
    """``[C, C, L]``: ``score`` of step ``l`` of generated class ``i`` and reference class ``j``
    (``*_tokens``: per class, per step, a token list)."""
    gen = [[Counter(s) for s in cls] for cls in gen_tokens]
    ref = [[Counter(s) for s in cls] for cls in ref_tokens]
    out = np.zeros((len(gen), len(ref), len(gen[0])))
    for i, g in enumerate(gen):
        for j, r in enumerate(ref):
            out[i, j] = [score(a, b) for a, b in zip(g, r)]
    return out


def _same_words(a: Counter, b: Counter) -> float:
    return float(a.keys() == b.keys())


def _cosine_matrix(gen_texts, ref_texts, encode) -> np.ndarray:
    """``[C, C, L]`` cosine of step ``l``'s description embeddings (``encode``: texts -> [N, D])."""
    c, steps = len(gen_texts), len(gen_texts[0])

    def embed(texts):
        flat = [t for cls in texts for t in cls]
        feats = np.asarray(_to_numpy(encode(flat)), dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] != len(flat):
            raise ValueError(f"the text encoder returned shape {feats.shape} for {len(flat)} "
                             "texts; expected [N, D]")
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        return feats.reshape(c, steps, -1)

    g, r = embed(gen_texts), embed(ref_texts)
    return np.einsum("ild,jld->ijl", g, r)


def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, on any device
        return x.detach().float().cpu().numpy()
    return x


def anatomy_agreement(generated, reference, *, classes: Iterable[str] | None = None,
                      encode: Callable[[list[str]], object] | None = None) -> AgreementReport:
    """Compare ``generated`` with ``reference``, class by class and step by step.

    Args:
        generated: the anatomy to judge: an :class:`~lga.anatomy.shipped.Anatomy`, an
            ``lga-anatomy/1`` dict, a file path or a shipped dataset name.
        reference: the same kinds; typically a shipped dataset name such as ``"hmdb51"``.
        classes: compare only these classes (any spelling); each must be in ``generated``.
            Default: every class of ``generated`` that ``reference`` has.
        encode: optional text encoder, ``list[str] -> [N, D]`` array or tensor (normalised here),
            e.g. ``lambda t: encode_text(clip_model, tokenizer, t)``; adds the ``cosine`` measure.

    Raises:
        ValueError: the two anatomies have different ``num_steps``, or share no class.
    """
    gen, ref = _as_anatomy(generated, "generated"), _as_anatomy(reference, "reference")
    if gen.num_steps != ref.num_steps:
        raise ValueError(f"{gen.source} has {gen.num_steps} steps per class but {ref.source} has "
                         f"{ref.num_steps}: step-by-step agreement needs the same number")
    pairs, missing, unmatched = _pairs(gen, ref, classes)
    if not pairs:
        raise ValueError(f"{gen.source} and {ref.source} share no class (first generated "
                         f"classes: {list(gen)[:3]})")
    gen_steps = [gen.classes[g].steps for g, _ in pairs]
    ref_steps = [ref.classes[r].steps for _, r in pairs]

    def tokens(steps, name):
        return [[content_tokens(getattr(s, name)) for s in cls] for cls in steps]

    matrices = {
        "motion": _field_matrix(tokens(gen_steps, "motion"), tokens(ref_steps, "motion"), _same_words),
        "object": _field_matrix(tokens(gen_steps, "object"), tokens(ref_steps, "object"), _f1),
        "description": _field_matrix(tokens(gen_steps, "description"),
                                     tokens(ref_steps, "description"), _f1),
    }
    if encode is not None:
        matrices["cosine"] = _cosine_matrix([[s.description for s in c] for c in gen_steps],
                                            [[s.description for s in c] for c in ref_steps], encode)
    n = len(pairs)
    by_class = {m: mat.mean(axis=2) for m, mat in matrices.items()}  # [C, C]
    ranking = by_class["cosine" if encode is not None else "description"]
    identified = [bool(ranking[i, i] > np.delete(ranking[i], i).max()) if n > 1 else True
                  for i in range(n)]
    results = []
    for i, (g, r) in enumerate(pairs):
        per_step = {m: [float(v) for v in mat[i, i]] for m, mat in matrices.items()}
        results.append(ClassAgreement(
            name=r, generated_name=g, motion=float(by_class["motion"][i, i]),
            object=float(by_class["object"][i, i]), description=float(by_class["description"][i, i]),
            cosine=float(by_class["cosine"][i, i]) if encode is not None else None,
            identified=identified[i], steps=per_step))
    off = ~np.eye(n, dtype=bool)
    overall = {m: float(np.diag(v).mean()) for m, v in by_class.items()}
    overall["identified"] = float(np.mean(identified))
    chance = {m: float(v[off].mean()) if n > 1 else float("nan") for m, v in by_class.items()}
    chance["identified"] = 1.0 / n
    return AgreementReport(generated_source=gen.source, reference_source=ref.source,
                           num_steps=gen.num_steps, classes=results, overall=overall, chance=chance,
                           missing=missing, unmatched=unmatched)

