"""Throughput of the preparers: videos per second, on fabricated HMDB51-like raw videos.

Makes ``--videos`` raw videos shaped like HMDB51's (320x240 MPEG-4 .avi at 30 fps, ``--seconds``
long, a moving pattern), named after real entries of the HMDB51 split lists, then times
``lga.data.prepare.prepare`` converting them (short side 256, H.264 mp4) with ``--workers``
processes, and a second run that finds everything done (resumption).

    python benchmarks/prepare.py --videos 24 --workers 2 --cache-dir ~/.cache/lga/splits

Split lists are read from ``--cache-dir`` (or ``$LGA_SPLITS_DIR``, or downloaded once).
This is a measurement, not a test: it prints numbers and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lga.data import splits as S  # noqa: E402
from lga.data.prepare import prepare  # noqa: E402
from lga.data.video import write_video  # noqa: E402


def fabricate(raw: Path, entries, seconds: float, fps: int = 30, h: int = 240, w: int = 320):
    y, x = np.mgrid[0:h, 0:w]
    t = int(seconds * fps)
    for k, e in enumerate(entries):
        frames = np.empty((t, h, w, 3), np.uint8)
        for i in range(t):
            frames[i, ..., 0] = (x + 4 * i + 13 * k) % 256
            frames[i, ..., 1] = (y + 2 * i) % 256
            frames[i, ..., 2] = ((x + y) // 2 + 3 * i) % 256
        write_video(raw / e.class_name / f"{e.video_id}.avi", frames, fps=fps, codec="mpeg4")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=24)
    p.add_argument("--seconds", type=float, default=3.0, help="length of each raw video")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--keep", default=None, help="work in this folder instead of a temporary one")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    entries = S.load_split("hmdb51", "train", cache_dir=args.cache_dir)
    step = max(1, len(entries) // args.videos)
    picked = entries[::step][: args.videos]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        raw, out = root / "raw", root / "out"
        t0 = time.perf_counter()
        fabricate(raw, picked, args.seconds)
        t_make = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = prepare("hmdb51", raw, out, workers=args.workers, short_side=args.short_side,
                         allow_missing=True, cache_dir=args.cache_dir, progress=False)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = prepare("hmdb51", raw, out, workers=args.workers, short_side=args.short_side,
                        allow_missing=True, cache_dir=args.cache_dir, progress=False)
        t_again = time.perf_counter() - t0

    n = len(report.prepared)
    frames = int(args.seconds * 30)
    print(f"cpu cores: {os.cpu_count()}, workers: {args.workers}, short side: {args.short_side}")
    print(f"fabricated {len(picked)} raw videos (320x240, {frames} frames, MPEG-4 avi) in {t_make:.1f} s")
    print(f"first run : {n} prepared, {len(report.corrupt)} corrupt in {t_first:.2f} s "
          f"-> {n / t_first:.2f} videos/s, {n * frames / t_first:.0f} frames/s "
          f"(includes loading the split lists and writing the layout)")
    print(f"second run: {len(again.skipped)} skipped, {len(again.prepared)} prepared in {t_again:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
