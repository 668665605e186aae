#!/usr/bin/env python
"""The results protocol (chapter 9's table) timed end to end, with its numbers.

Every headline row (ProtoNet, OTAM, the label-only baseline, LGA's ablation rows) is trained by the
engine in frozen-backbone mode for every shot and seed and scored on shared test episodes
(:func:`lga.engine.protocol.run_protocol`). Prints the time of the feature encoding (once per
backbone, then cached) and of the protocol, the seconds per row, the table (mean and spread across
seeds), each ablation step's paired difference in every seed, and trained minus untrained.

    python benchmarks/protocol.py --config atomic_actions_5way_1shot_cpu [--seeds 0,1,2] [--shots 1,5]
                                  [--episodes 2000] [--workers 1] [--oracle] [--set KEY=VALUE ...] [--out r.json]

Run it with one thread per worker (``OMP_NUM_THREADS=1``); ``--workers 2`` uses two processes.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="atomic_actions_5way_1shot_cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--shots", default="1,5")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--rows", default=None, help="row names separated by '|' (default: every headline row)")
    p.add_argument("--oracle", action="store_true", help="add LGA rows on the ground-truth phases (AtomicActions)")
    p.add_argument("--out", default=None, help="write the table and the comparisons as JSON here")
    args = p.parse_args(argv)

    import torch

    from lga.config import load_config
    from lga.engine.features import FrozenFeatures
    from lga.engine.protocol import headline_rows, oracle_rows, run_protocol
    from lga.models.lga import ABLATION_STEPS

    torch.set_num_threads(1)
    cfg = load_config(args.config, args.overrides + [f"eval.split={args.split}"])
    seeds = tuple(int(s) for s in args.seeds.split(","))
    shots = tuple(int(s) for s in args.shots.split(","))
    rows = headline_rows() + (oracle_rows() if args.oracle else [])
    if args.rows:
        keep = args.rows.split("|")
        rows = [r for r in rows if r.name in keep]
    t0 = time.perf_counter()
    feats = FrozenFeatures.from_config(cfg, progress=False)
    t_feats = time.perf_counter() - t0
    res = run_protocol(cfg, rows, shots=shots, seeds=seeds, features=feats, episodes=args.episodes,
                       untrained=True, progress=False, workers=args.workers)
    print(f"{cfg.data.dataset} ({cfg.dataset_root().name}), split {args.split}, {args.episodes} episodes per shot, "
          f"seeds {seeds}, {args.workers} worker(s) of 1 thread")
    print(f"features: {t_feats:.1f} s (train frames {tuple(feats.train.features.shape)}); protocol: "
          f"{res.seconds:.1f} s for {len(rows)} rows x {len(shots)} shots x {len(seeds)} seeds\n")
    print("| row | shot | mean over seeds (%) | std across seeds | 95% CI within a seed | trained | s per seed |")
    print("|---|---|---|---|---|---|---|")
    for r in res.summary():
        secs = [res.job_seconds[r["row"], r["shot"], s] for s in seeds]
        print(f"| {r['row']} | {r['shot']} | {r['mean']:.2f} | {r['std']:.2f} | {r['ci95']:.2f} | "
              f"{res.trained[r['row'], r['shot'], seeds[0]]} | {sum(secs) / len(seeds):.1f} |")
    names = res.rows                                   # with the tuned twins ("OTAM, tuned", ...)
    pairs = [(a, b) for a, b, _ in ABLATION_STEPS if a in names and b in names]
    pairs += [(a, b) for a, b in (("full LGA", "label-only"), ("full LGA", "label-only, tuned"), ("label-only", "OTAM"),
                                  ("OTAM, tuned", "OTAM"), ("label-only, tuned", "label-only"),
                                  ("+ visual anatomy, oracle phases", "+ visual anatomy"),
                                  ("+ visual anatomy, oracle phases", "uniform thirds + overlap"),
                                  ("both anatomies, oracle phases", "both anatomies"),
                                  ("full LGA, oracle phases", "full LGA")) if a in names and b in names]
    out = {"seconds": res.seconds, "feature_seconds": t_feats, "summary": res.summary(), "table": res.table(),
           "comparisons": [], "trained_minus_untrained": []}
    print("\n| comparison | shot | paired difference in each seed (points) | holds |")
    print("|---|---|---|---|")
    for k in shots:
        for a, b in pairs:
            cs = res.compare(a, b, k)
            print(f"| {a} - {b} | {k} | " + ", ".join(f"{100 * c.diff:+.2f} ± {100 * c.ci95:.2f}" for c in cs)
                  + f" | {res.holds(a, b, k)} |")
            out["comparisons"].append({"a": a, "b": b, "shot": k, "holds": res.holds(a, b, k),
                                       "diff": [100 * c.diff for c in cs], "ci95": [100 * c.ci95 for c in cs]})
    print("\n| trained - untrained | shot | per seed (points) | holds |")
    print("|---|---|---|---|")
    for k in shots:
        for name in names:
            if (name, k, seeds[0]) in res.untrained:
                cs = res.compare(name, name, k, untrained_b=True)
                print(f"| {name} | {k} | " + ", ".join(f"{100 * c.diff:+.2f} ± {100 * c.ci95:.2f}" for c in cs)
                      + f" | {res.holds(name, name, k, untrained_b=True)} |")
                out["trained_minus_untrained"].append({"row": name, "shot": k, "diff": [100 * c.diff for c in cs],
                                                       "ci95": [100 * c.ci95 for c in cs]})
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
