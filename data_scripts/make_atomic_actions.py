#!/usr/bin/env python
"""Generate the AtomicActions benchmark: ``python data_scripts/make_atomic_actions.py --out DIR``.

Options (see ``--help``): ``--version 2.0|1.0 --seed S --videos-per-class N --frames F
--clip-frames T --size PX --phase-variability V --label-level LEVEL --wording WORDING
--distractor-motion P --grip-cues/--no-grip-cues --motion-blur N --occlusion-prob P
--max-distractors N --max-clutter N --max-noise STD --workers W --anatomy-noise RATE ... --overwrite``.
``DIR`` must be absent or empty unless ``--overwrite``; the dataset is written to ``DIR.partial``
and renamed when complete. Same as ``python -m lga make-atomic-actions ...``.
"""

import sys

from lga.data.atomic_actions import main

if __name__ == "__main__":
    sys.exit(main())
