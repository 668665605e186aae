#!/usr/bin/env python
"""How long generating AtomicActions takes: prints seconds, videos per second and the dataset size.

    python benchmarks/atomic_actions.py [--out DIR] [--workers 2] [--videos-per-class 30]

A figure, not a test: the machine's load changes it. The target is the default dataset (100 classes)
in at most 3 minutes on 2 cores.
"""

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from lga.data.atomic_actions import AtomicActionsConfig, generate


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None, help="where to write (default: a temporary folder, removed)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--videos-per-class", type=int, default=AtomicActionsConfig.videos_per_class)
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="atomic_actions_"))
    try:
        cfg = AtomicActionsConfig(workers=a.workers, videos_per_class=a.videos_per_class)
        s = generate(out, cfg)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"classes            {s['classes']}")
        print(f"videos             {s['videos']}")
        print(f"workers            {a.workers} (of {os.cpu_count()} cores)")
        print(f"seconds            {s['seconds']:.1f}")
        print(f"videos per second  {s['videos'] / s['seconds']:.1f}")
        print(f"size on disk       {size / 2**20:.1f} MiB")
    finally:
        if not a.out:
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
