#!/usr/bin/env python
"""How long generating AtomicActions takes: prints seconds, videos per second and the dataset size.

    python benchmarks/atomic_actions.py [--out DIR] [--workers 2] [--videos-per-class 30] [--version 2.0]

A figure, not a test: the machine's load changes it. The target is the default dataset (100 classes,
30 videos of 32 frames each, 64 px) in at most 90 s on 2 cores. Also prints the share of ground-truth
phase frames that uniform thirds of the 8 test-time frames find (v1: 85 %, v2 default: about 64 %).
"""

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from lga.data.atomic_actions import VERSIONS, AtomicActionsConfig, generate


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None, help="where to write (default: a temporary folder, removed)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--videos-per-class", type=int, default=AtomicActionsConfig.videos_per_class)
    p.add_argument("--version", default=AtomicActionsConfig.version, choices=VERSIONS)
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="atomic_actions_")) / "data"
    try:
        cfg = AtomicActionsConfig(workers=a.workers, videos_per_class=a.videos_per_class, version=a.version)
        s = generate(out, cfg)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        stats = json.loads((out / "dataset.json").read_text(encoding="utf-8"))["stats"]
        uniform = stats[f"uniform_thirds_phase_accuracy_{cfg.clip_frames}_frames"]
        print(f"version            {cfg.version}")
        print(f"classes            {s['classes']}")
        print(f"videos             {s['videos']}")
        print(f"workers            {a.workers} (of {os.cpu_count()} cores)")
        print(f"seconds            {s['seconds']:.1f}")
        print(f"videos per second  {s['videos'] / s['seconds']:.1f}")
        print(f"size on disk       {size / 2**20:.1f} MiB")
        print(f"uniform thirds     {100 * uniform['all']:.1f} % of phase frames (test split {100 * uniform['test']:.1f} %)")
    finally:
        if not a.out:
            shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
