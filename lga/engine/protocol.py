"""The results protocol: many rows, shots and seeds on one frozen backbone, compared on shared episodes.

Every number of the results table comes from the one engine: each row (a head and its arguments)
is trained by :func:`lga.engine.train.train` in frozen-backbone mode on features encoded once
(:class:`~lga.engine.features.FrozenFeatures`), with its checkpoint chosen on the validation
classes, and then scored on test episodes that are the same for every row and every seed::

    from lga.config import load_config
    from lga.engine.protocol import headline_rows, run_protocol

    cfg = load_config("atomic_actions_5way_1shot_cpu")      # backbone, data, recipe, test protocol
    table = run_protocol(cfg, headline_rows(), shots=(1, 5), seeds=(0, 1, 2), workers=2)
    table.summary()                      # per row and shot: mean and spread across seeds
    table.compare("full LGA", "label-only", shot=1)       # paired interval within each seed

A seed changes what the head's training draws (initial weights, episodes, frames, crops); the test
episodes (``eval.seed``) stay fixed, so two rows of one seed are compared episode by episode
(:func:`lga.engine.evaluate.compare`) and a claim "holds in every seed" when all those paired
intervals agree. A row whose head has nothing to train (ProtoNet, OTAM, the rows without text
fusion) is scored as it is, the same in every seed.

A row can also have one free parameter chosen on the validation classes after training
(:attr:`Row.tune`, e.g. OTAM's soft-min temperature): the protocol then reports two rows from the
one trained head, the row as given (``"OTAM"``, the published value) and ``"OTAM, tuned"`` (the value
of the grid that scores best on validation episodes, ``tune_episodes`` of them), so a baseline gets
the same validation budget as LGA's fusion weight (:func:`tuned_baseline_rows`).
"""

from __future__ import annotations

import multiprocessing
import platform
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import apply_override, config_from_dict
from ..models.lga import ABLATION_CHAIN, LGAConfig
from .build import check_components
from .checkpoint import load_model_weights
from .device import resolve_device, worker_init
from .evaluate import Comparison, EvalResult, compare, evaluate_split
from .features import FrozenFeatures
from .model import EpisodicModel, build_model, trainable_parameters
from .train import train

__all__ = ["Row", "baseline_rows", "tuned_baseline_rows", "ablation_rows", "oracle_rows", "headline_rows",
           "row_config", "run_protocol", "ProtocolResult", "load_head", "TUNE_GRID", "TUNED_SUFFIX"]

#: the 5-value grid of OTAM's soft-min temperature lambda that :func:`tuned_baseline_rows` searches on
#: the validation classes: as many values as LGA's fusion weight alpha gets in chapter 9, from the
#: lambda chapter 7 found best on AtomicActions' validation classes to CLIP-FSAR's 0.5
TUNE_GRID = (0.02, 0.05, 0.1, 0.2, 0.5)
#: appended to a row's name for its tuned twin (:attr:`Row.tune`)
TUNED_SUFFIX = ", tuned"


@dataclass(frozen=True)
class Row:
    """One row of a results table: a registered head (:mod:`lga.engine.build`) and its arguments.

    Attributes:
        name: the row's label.
        head: ``model.head`` (``"protonet"``, ``"otam"``, ``"label_only"``, ``"lga"``, ...).
        head_args: ``model.head_args``.
        overrides: further ``--set`` overrides for this row only (e.g. ``("train.lr=1e-3",)``).
        tune: ``(attribute, values)``: a parameter of the head (an attribute path such as ``"lbda"``
            or ``"config.alpha"``) chosen after training among ``values`` on the validation classes
            (:func:`run_protocol`'s ``tune_episodes``).
            The row is then reported twice, as given and as ``name + TUNED_SUFFIX`` (same trained
            head, the chosen value); ``()`` for none. The value must not change training: it is
            set on the trained head only.
    """

    name: str
    head: str
    head_args: dict = field(default_factory=dict)
    overrides: tuple = ()
    tune: tuple = ()

    @property
    def tuned_name(self) -> str | None:
        """The name of the row's tuned twin, or None when the row tunes nothing."""
        return self.name + TUNED_SUFFIX if self.tune else None


def baseline_rows() -> list[Row]:
    """ProtoNet, OTAM and the label-only baseline (CLIP-FSAR's recipe: OTAM with its lambda 0.5 on
    label-modulated frames, plus video-to-label-text matching, trained like LGA)."""
    return [Row("ProtoNet", "protonet", {"metric": "cosine", "temperature": 0.1}),
            Row("OTAM", "otam", {"lbda": 0.5, "temperature": 0.5}),
            Row("label-only", "label_only", {})]


def tuned_baseline_rows(grid=TUNE_GRID) -> list[Row]:
    """:func:`baseline_rows` with OTAM's ``lbda`` and the label-only head's ``otam_lbda`` chosen on
    the validation classes among ``grid`` (each reported as published and as ``"..., tuned"``).
    ProtoNet has nothing to tune: its temperature scales every logit alike and cannot change a
    prediction."""
    tune = {"OTAM": ("lbda", tuple(grid)), "label-only": ("otam_lbda", tuple(grid))}
    return [Row(r.name, r.head, r.head_args, r.overrides, tune.get(r.name, ())) for r in baseline_rows()]


def ablation_rows(names=None, **overrides) -> list[Row]:
    """LGA's ablation rows as :class:`Row` s (default: every row of
    :data:`lga.models.lga.ABLATION_CHAIN`, the paper's six and our three), each with only the
    :class:`~lga.models.lga.LGAConfig` fields that differ from the defaults, plus ``overrides``
    (e.g. ``shot_rule="mean_distance"``) applied to every row."""
    base = asdict(LGAConfig())
    rows = []
    for name in (names or list(ABLATION_CHAIN)):
        cfg = dict(asdict(ABLATION_CHAIN[name]), **overrides)
        rows.append(Row(name, "lga", {k: v for k, v in cfg.items() if v != base[k]}))
    return rows


def oracle_rows(names=("+ visual anatomy", "both anatomies", "full LGA"), **overrides) -> list[Row]:
    """LGA rows on the ground-truth phases instead of a segmenter (``segmenter="given"``), named
    ``"<row>, oracle phases"``: an upper bound for visual anatomy, on data that has ground-truth
    phases (AtomicActions; the features carry them, :attr:`lga.engine.features.SplitFeatures.phase_bounds`)."""
    return [Row(f"{r.name}, oracle phases", r.head, r.head_args)
            for r in ablation_rows(list(names), segmenter="given", **overrides)]


def headline_rows(**lga_overrides) -> list[Row]:
    """The book's table: :func:`tuned_baseline_rows` then :func:`ablation_rows`."""
    return tuned_baseline_rows() + ablation_rows(**lga_overrides)


def _set_path(obj, path: str, value, row: str) -> None:
    *parents, last = path.split(".")
    for name in parents:
        obj = getattr(obj, name, None)
    if obj is None or not hasattr(obj, last):
        raise ValueError(f"row {row!r}: its head has no parameter {path!r} to tune (Row.tune)")
    setattr(obj, last, value)


def row_config(cfg, row: Row, shot: int, seed: int):
    """``cfg`` for one row, shot and seed: its head, ``data.k_shot``, ``train.seed``, a frozen backbone."""
    data = cfg.to_dict()
    data["model"]["head"], data["model"]["head_args"] = row.head, dict(row.head_args)
    data["data"]["k_shot"], data["train"]["seed"], data["train"]["backbone"] = shot, seed, "frozen"
    data["name"] = f"{cfg.name or 'run'}:{row.name}:{shot}shot:seed{seed}"
    for item in row.overrides:
        data = apply_override(data, item)
    out = config_from_dict(data)
    check_components(out.model)
    return out


def load_head(cfg, row: Row, shot: int, seed: int, checkpoint=None, dim: int | None = None):
    """The head of ``row`` for ``shot`` and ``seed``: its initial weights (seeded as the engine seeds
    them), or those of ``checkpoint`` (e.g. :attr:`ProtocolResult.checkpoints`); in eval mode.
    ``dim``: the features' size (default: the encoder's, which builds the encoder)."""
    rcfg = row_config(cfg, row, shot, seed)
    model = build_model(rcfg, "cpu", dim=dim)
    if checkpoint is not None:
        load_model_weights(checkpoint, EpisodicModel(None, model.head))
    return model.head.eval()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "row"


@dataclass
class ProtocolResult:
    """Every row x shot x seed of a :func:`run_protocol` call, scored on shared test episodes.

    Attributes:
        results: ``{(row, shot, seed): EvalResult}`` (the checkpoint selected on validation).
        untrained: the same for the heads' initial weights (when asked for; else empty).
        trained: ``{(row, shot, seed): bool}``: whether the head had parameters to train.
        val: ``{(row, shot, seed): best validation accuracy}`` (None when nothing trained).
        temperatures: ``{(row, shot, seed): head.temperatures()}`` for heads that have them.
        job_seconds: ``{(row, shot, seed): seconds}`` spent on each (training and scoring).
        checkpoints: ``{(row, shot, seed): path}`` of each trained head's selected checkpoint (files
            that outlive the call only with ``out_dir`` or ``keep_runs``; load one with
            :func:`load_head`).
        tuned: ``{(tuned row, shot, seed): {"parameter", "value", "val"}}`` for the rows with
            :attr:`Row.tune`: the value chosen and the validation accuracy of every value tried.
        seconds: wall time of the whole protocol.
    """

    rows: list
    shots: tuple
    seeds: tuple
    results: dict = field(default_factory=dict)
    untrained: dict = field(default_factory=dict)
    trained: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    temperatures: dict = field(default_factory=dict)
    job_seconds: dict = field(default_factory=dict)
    checkpoints: dict = field(default_factory=dict)
    tuned: dict = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> list[dict]:
        """One dict per row, shot and seed: ``row, shot, seed, mean, ci95, trained`` (accuracies in %)."""
        return [{"row": r, "shot": k, "seed": s, "mean": 100 * res.mean, "ci95": 100 * res.ci95,
                 "trained": self.trained.get((r, k, s))}
                for (r, k, s), res in self.results.items()]

    def summary(self) -> list[dict]:
        """One dict per row and shot: ``mean`` and ``std`` across seeds (sample std, in %), ``min``,
        ``max``, and ``ci95``: the mean over seeds of the within-seed 95 % episode interval."""
        out = []
        for r in self.rows:
            for k in self.shots:
                rs = [self.results[r, k, s] for s in self.seeds if (r, k, s) in self.results]
                if not rs:
                    continue
                m = np.array([100 * x.mean for x in rs])
                out.append({"row": r, "shot": k, "mean": float(m.mean()),
                            "std": float(m.std(ddof=1)) if len(m) > 1 else 0.0, "min": float(m.min()),
                            "max": float(m.max()), "ci95": float(np.mean([100 * x.ci95 for x in rs])),
                            "seeds": len(rs)})
        return out

    def compare(self, a: str, b: str, shot: int, untrained_b: bool = False) -> list[Comparison]:
        """Paired comparison of row ``a`` minus row ``b`` in each seed (``untrained_b``: against
        ``b``'s untrained head)."""
        other = self.untrained if untrained_b else self.results
        return [compare(self.results[a, shot, s], other[b, shot, s]) for s in self.seeds]

    def holds(self, a: str, b: str, shot: int, untrained_b: bool = False) -> str:
        """``"better"`` / ``"worse"`` when ``a - b`` excludes 0 with the same sign in every seed, else
        ``"mixed"`` (some seeds significant one way or the other) or ``"n.s."`` (none significant)."""
        cs = self.compare(a, b, shot, untrained_b)
        if all(c.significant and c.diff > 0 for c in cs):
            return "better"
        if all(c.significant and c.diff < 0 for c in cs):
            return "worse"
        return "mixed" if any(c.significant for c in cs) else "n.s."

    def to_frame(self, summary: bool = True):
        """:meth:`summary` (or :meth:`table`) as a pandas DataFrame."""
        import pandas as pd  # optional: pandas, only for a DataFrame
        return pd.DataFrame(self.summary() if summary else self.table())


#: the features of the protocol being run, inherited by forked worker processes (never pickled)
_SHARED: dict = {}


def _job(job: tuple) -> dict:
    """Train (when there is something to train) and score one row, shot and seed."""
    rcfg, row, trains, n, untrained, run_dir, in_worker, tune_episodes = job
    row_name = row.name
    if in_worker:
        torch.set_num_threads(1)
    features, test = _SHARED["features"], _SHARED["test"]
    t0 = time.perf_counter()
    device = resolve_device(rcfg.train.device)
    k = rcfg.data.k_shot
    sampler = test.sampler(rcfg.data.n_way, k, rcfg.data.test_queries, seed=rcfg.eval.seed, num_episodes=n)
    model = build_model(rcfg, device, dim=features.dim).to(device)
    out = {"key": (row_name, k, rcfg.train.seed), "trained": trains, "val": None, "untrained": None,
           "checkpoint": None}
    if trains:
        if untrained:
            out["untrained"] = evaluate_split(model.head, test, sampler, n,
                                              batch_episodes=rcfg.eval.batch_episodes, device=device)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run = train(rcfg, run_dir, features=features, progress=False)
        load_model_weights(run.best_checkpoint, EpisodicModel(None, model.head))
        out["val"], out["checkpoint"] = run.best_val, run.best_checkpoint
    out["result"] = evaluate_split(model.head, test, sampler, n,
                                   batch_episodes=rcfg.eval.batch_episodes, device=device)
    out["temperatures"] = model.head.temperatures() if hasattr(model.head, "temperatures") else None
    out["tuned"] = None
    if row.tune:
        out["tuned"] = _tune(model.head, row, rcfg, features.val, tune_episodes, device)
        out["tuned_result"] = evaluate_split(model.head, test, sampler, n,
                                             batch_episodes=rcfg.eval.batch_episodes, device=device)
    out["seconds"] = time.perf_counter() - t0
    return out


def _tune(head, row: Row, rcfg, val, episodes: int, device) -> dict:
    """Set ``row.tune``'s parameter of ``head`` to the value of its grid that scores best on
    ``episodes`` validation episodes (seeded by ``eval.seed``; the first of equals); returns what was
    tried."""
    param, values = row.tune
    if val is None:
        raise ValueError(f"row {row.name!r} tunes {param!r} on the validation classes, but the features "
                         "hold no val split")
    sampler = val.sampler(rcfg.data.n_way, rcfg.data.k_shot, rcfg.data.test_queries, seed=rcfg.eval.seed,
                          num_episodes=episodes)
    scores = {}
    for v in values:
        _set_path(head, param, v, row.name)
        scores[v] = evaluate_split(head, val, sampler, batch_episodes=rcfg.eval.batch_episodes, device=device).mean
    best = max(values, key=lambda v: scores[v])          # max keeps the first of equal scores
    _set_path(head, param, best, row.name)
    return {"parameter": param, "value": best, "val": scores}


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and platform.system() == "Linux"


def run_protocol(cfg, rows, shots=(1, 5), seeds=(0, 1, 2), features=None, out_dir=None,
                 episodes: int | None = None, untrained: bool = False, progress: bool = True,
                 keep_runs: bool = False, workers: int = 1, tune_episodes: int | None = None) -> ProtocolResult:
    """Train and score ``rows`` for every shot and seed through the engine, on shared test episodes.

    Args:
        cfg: the base config: backbone (``model.encoder``), text (``model.text``), data, training
            recipe and test protocol (``eval.episodes``, ``eval.seed``, ``eval.split``).
        rows: :class:`Row` s (:func:`headline_rows`).
        features: the frozen backbone's :class:`~lga.engine.features.FrozenFeatures` (default:
            built from ``cfg`` once, through ``train.feature_cache``).
        out_dir: where the runs go (``ROW/kSHOT/seedSEED``); default: a temporary folder, removed at
            the end unless ``keep_runs``.
        episodes: test episodes per shot (default ``eval.episodes``).
        untrained: also score every trained head's initial weights (:attr:`ProtocolResult.untrained`).
        workers: processes that train and score rows side by side, one torch thread each (forked,
            so the features are shared, never copied; where fork is unavailable or unsafe, macOS and
            Windows, the rows run one after the other). ``workers=2`` on 2 cores about halves the
            time; the numbers do not depend on it.
        tune_episodes: validation episodes on which the rows with :attr:`Row.tune` choose their
            value (default ``train.val_episodes``, those that select the checkpoints).
    """
    t0 = time.perf_counter()
    split = cfg.eval.split
    if features is None:
        features = FrozenFeatures.from_config(cfg, progress=progress)
    test = features.test if split == "test" else features.val
    if test is None:
        raise ValueError(f"the features hold no {split} split (FrozenFeatures.from_config(..., splits=...))")
    n = episodes or cfg.eval.episodes
    tmp = None
    if out_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="lga-protocol-"))
        out_dir = tmp
    out_dir = Path(out_dir)
    workers = max(1, int(workers)) if _can_fork() else 1
    for row in rows:
        if row.tune and (len(row.tune) != 2 or not row.tune[1]):
            raise ValueError(f"row {row.name!r}: Row.tune must be (parameter, non-empty values), got {row.tune!r}")
    names = [n for r in rows for n in (r.name, r.tuned_name) if n is not None]
    result = ProtocolResult(names, tuple(shots), tuple(seeds))
    jobs, shared_from = [], {}
    for k in shots:
        for row in rows:
            rcfg = row_config(cfg, row, k, seeds[0])
            trains = trainable_parameters(build_model(rcfg, "cpu", dim=features.dim)) > 0
            for s in (seeds if trains else seeds[:1]):   # nothing to train: the same head in every seed
                run_dir = out_dir / _slug(row.name) / f"k{k}" / f"seed{s}"
                jobs.append((row_config(cfg, row, k, s), row, trains, n, untrained, run_dir, workers > 1,
                             tune_episodes or cfg.train.val_episodes))
            if not trains:
                shared_from[row.name, k] = seeds[0]
    jobs.sort(key=lambda j: (not j[2], -j[0].data.k_shot))     # longest first: trained, 5-shot
    _SHARED.update(features=features, test=test)
    try:
        bar = tqdm(total=len(jobs), desc="results protocol", disable=not progress)
        if workers > 1:
            with multiprocessing.get_context("fork").Pool(workers, initializer=worker_init(), initargs=(0,)) as pool:
                outs = []
                for o in pool.imap_unordered(_job, jobs):
                    outs.append(o)
                    bar.update(1)
        else:
            outs = []
            for j in jobs:
                outs.append(_job(j))
                bar.update(1)
        bar.close()
    finally:
        _SHARED.clear()
        if tmp is not None and not keep_runs:
            shutil.rmtree(tmp, ignore_errors=True)
    by_key = {o["key"]: o for o in outs}
    for k in shots:                                   # in row, shot, seed order
        for row in rows:
            for s in seeds:
                o = by_key[row.name, k, shared_from.get((row.name, k), s)]
                key = (row.name, k, s)
                result.results[key], result.trained[key], result.val[key] = o["result"], o["trained"], o["val"]
                result.job_seconds[key] = o["seconds"] if o["key"] == key else 0.0
                if o["untrained"] is not None:
                    result.untrained[key] = o["untrained"]
                if o["checkpoint"] is not None:
                    result.checkpoints[key] = o["checkpoint"]
                if o["temperatures"] is not None:
                    result.temperatures[key] = o["temperatures"]
                if o["tuned"] is not None:                # the tuned twin: the same head, the chosen value
                    twin = (row.tuned_name, k, s)
                    result.results[twin], result.tuned[twin] = o["tuned_result"], o["tuned"]
                    result.trained[twin], result.val[twin] = o["trained"], o["val"]
                    result.job_seconds[twin] = 0.0
                    if o["checkpoint"] is not None:
                        result.checkpoints[twin] = o["checkpoint"]
    result.seconds = time.perf_counter() - t0
    return result
