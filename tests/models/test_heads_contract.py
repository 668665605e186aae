"""The contract of every registered few-shot head (:data:`lga.engine.build.HEADS`), on small random inputs.

Each head is built through the registry, as a config builds it, in its default form and in every row of
the results table that uses it (:func:`lga.engine.protocol.baseline_rows`, ``ablation_rows``,
``oracle_rows``), with K = 1 and K = 2 shots. For each:

- ``forward(support [E, N*K, T, D], support_labels [E, N*K], query [E, N*Q, T, D], n_way, **text)``
  gives finite float logits ``[E, N*Q, N]``; ``**text`` is what the engine passes
  (:meth:`lga.models.text_bank.TextBank.for_episodes`' ``class_text [E, N, L, D]`` and ``label_text
  [E, N, D]``, the phase bounds ``support_bounds [E, N*K, L+1]`` / ``query_bounds [E, N*Q, L+1]``);
- ``loss(support, support_labels, query, query_labels [E, N*Q], n_way, **text)`` (the engine's
  :func:`lga.engine.build.head_loss`) gives a finite scalar and the logits ``[E, N*Q, N]``;
- its backward reaches every trainable parameter with a finite gradient, except the parameters its
  :data:`CONTRACTS` entry names as unused in that form (which must then get none), and reaches the
  support and query features (a fine-tuned backbone learns through the head);
- the device rule (:mod:`lga.engine.device`, ``tests/engine/test_device_rule.py``): on a (fake) CUDA device it
  scores CPU features, texts and bounds through :func:`lga.engine.evaluate.score_episodes`, on CUDA.

A newly registered head is picked up from the registry; it fails :func:`test_every_registered_head_has_a_contract`
until :data:`CONTRACTS` documents it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest
import torch

from lga.data.episodes import EpisodeSampler
from lga.engine.build import HEADS, build_head, head_loss
from lga.engine.device import model_device
from lga.engine.evaluate import score_episodes
from lga.engine.protocol import ablation_rows, baseline_rows, oracle_rows
from lga.models.text_bank import TextBank


E, N, Q, T, D, L = 2, 3, 2, 8, 16, 3
CUDA = torch.device("cuda", 0)


@dataclass(frozen=True)
class Contract:
    """What a registered head promises beyond the interface every head shares (module docstring).

    Attributes:
        logits: the shape of ``forward``'s output and of ``loss``'s logits, in the letters above.
        unused: ``head -> {parameter name prefix: why}``: the trainable parameters that, by design,
            no gradient reaches in this form of the head (empty for most).
    """

    logits: str = "[E, N*Q, N]"
    unused: Callable[[torch.nn.Module], dict[str, str]] = field(default=lambda head: {})


def _lga_unused(head) -> dict[str, str]:
    c = head.config
    if head.fusion is not None and not c.use_video_video and c.vt_features == "pooled":
        return {"fusion.": "the fused phases feed only the video-video branch, which this form turns off; "
                           "video-text matches the pooled phases (vt_features='pooled')"}
    return {}


#: every registered head's contract (the registry's names)
CONTRACTS: dict[str, Contract] = {
    "protonet": Contract(),
    "otam": Contract(),
    "label_only": Contract(),
    "lga": Contract(unused=_lga_unused),
}


def _forms() -> list[tuple[str, str, dict]]:
    """(registered head, form, head_args): each head's defaults and every results-table row using it."""
    rows = baseline_rows() + ablation_rows() + oracle_rows()
    forms = [(name, "defaults", {}) for name in HEADS]
    forms += [(r.head, r.name, dict(r.head_args)) for r in rows if r.head in HEADS]
    return forms


FORMS = _forms()
#: the device rule is a matter of where inputs go, not of a form's switches: each head's defaults, and a
#: form that reads the phase bounds
DEVICE_FORMS = [f for f in FORMS if f[1] == "defaults"] + [(r.head, r.name, dict(r.head_args)) for r in oracle_rows()[:1]]


def _build(name: str, args: dict):
    torch.manual_seed(0)
    return build_head(SimpleNamespace(head=name, head_args=args), dim=D)


def _episode(k: int):
    """A batch of E random episodes: inputs as the engine gives them to a head."""
    g = torch.Generator().manual_seed(k)
    support = torch.nn.functional.normalize(torch.randn(E, N * k, T, D, generator=g), dim=-1)
    query = torch.nn.functional.normalize(torch.randn(E, N * Q, T, D, generator=g), dim=-1)
    support_labels = torch.arange(N).repeat_interleave(k).expand(E, -1).clone()
    query_labels = torch.arange(N).repeat_interleave(Q).expand(E, -1).clone()
    bounds = torch.tensor([0, 2, 5, T])
    text = {"class_text": torch.randn(E, N, L, D, generator=g), "label_text": torch.randn(E, N, D, generator=g),
            "support_bounds": bounds.expand(E, N * k, L + 1).clone(),
            "query_bounds": bounds.expand(E, N * Q, L + 1).clone()}
    return support, support_labels, query, query_labels, text


def _shape(spec: str, k: int) -> tuple[int, ...]:
    sizes = {"E": E, "N": N, "Q": Q, "K": k, "T": T, "D": D, "L": L}
    return tuple(int(eval(dim, {}, sizes)) for dim in spec.strip("[]").split(","))


def test_every_registered_head_has_a_contract():
    missing = sorted(set(HEADS) - set(CONTRACTS))
    assert not missing, f"registered heads without a documented contract (add them to CONTRACTS): {missing}"
    stale = sorted(set(CONTRACTS) - set(HEADS))
    assert not stale, f"CONTRACTS documents heads that are not registered: {stale}"


def test_every_registered_head_is_exercised():
    assert {name for name, _, _ in FORMS} == set(HEADS)
    assert len(FORMS) > len(HEADS)           # the results-table rows are there too


@pytest.mark.parametrize("k", [1, 2], ids=lambda k: f"{k}shot")
@pytest.mark.parametrize("name,form,args", FORMS, ids=[f"{n}:{f}" for n, f, _ in FORMS])
def test_head_contract(name, form, args, k):
    contract = CONTRACTS.get(name)
    assert contract is not None, f"head {name!r} is registered without a documented contract (CONTRACTS)"
    head = _build(name, args)
    support, support_labels, query, query_labels, text = _episode(k)
    expected = _shape(contract.logits, k)

    with torch.no_grad():
        logits = head(support, support_labels, query, N, **text)
    assert tuple(logits.shape) == expected and logits.dtype == torch.float32, f"{name}:{form} forward"
    assert torch.isfinite(logits).all()

    support.requires_grad_(True)
    query.requires_grad_(True)
    head.zero_grad(set_to_none=True)
    loss, train_logits = head_loss(head, support, support_labels, query, query_labels, N, text)
    assert loss.dim() == 0 and torch.isfinite(loss), f"{name}:{form}: loss {loss}"
    assert tuple(train_logits.shape) == expected
    loss.backward()

    unused = contract.unused(head)
    trainable = {n: p for n, p in head.named_parameters() if p.requires_grad}
    for prefix in unused:
        assert any(n.startswith(prefix) for n in trainable), f"{name}:{form}: no parameter {prefix}* to be unused"
    for n, p in trainable.items():
        if any(n.startswith(prefix) for prefix in unused):
            assert p.grad is None, f"{name}:{form}: {n} is documented unused but got a gradient"
        else:
            assert p.grad is not None, f"{name}:{form}: no gradient reaches {n}"
            assert torch.isfinite(p.grad).all(), f"{name}:{form}: non-finite gradient of {n}"
    for what, x in (("support", support), ("query", query)):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.any(), \
            f"{name}:{form}: no gradient reaches the {what} features"


@pytest.mark.parametrize("name,form,args", DEVICE_FORMS, ids=[f"{n}:{f}" for n, f, _ in DEVICE_FORMS])
def test_head_follows_the_device_rule(fake, name, form, args):
    """Built on (fake) CUDA, the head scores an episode batch whose features, texts and phase bounds
    live on the CPU, as the engine's caches hold them: :func:`score_episodes` moves them, the logits
    are on CUDA."""
    with torch.device(CUDA):
        torch.manual_seed(0)
        head = build_head(SimpleNamespace(head=name, head_args=args), dim=D)
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(6), 4)
    feats = torch.nn.functional.normalize(torch.randn(len(labels), T, D, generator=g), dim=-1)
    bank = TextBank(torch.randn(6, L, D, generator=g), torch.randn(6, D, generator=g), [f"c{i}" for i in range(6)])
    bounds = torch.tensor([0, 2, 5, T]).expand(len(labels), L + 1).clone()
    ep = EpisodeSampler(labels, N, 2, Q, seed=0).batch(0, E)
    logits = score_episodes(head, feats, ep, N, bank, device=model_device(head, default=CUDA), phase_bounds=bounds)
    assert logits.device == CUDA and tuple(logits.shape) == _shape(CONTRACTS[name].logits, 2)
