#!/usr/bin/env python
"""Generate the AtomicActions benchmark: ``python data_scripts/make_atomic_actions.py --out DIR``.

Options: ``--videos-per-class N --size PX --frames T --seed S --workers W --anatomy-noise RATE ...``
(see ``--help``). Same as ``python -m lga make-atomic-actions ...``.
"""

import sys

from lga.data.atomic_actions import main

if __name__ == "__main__":
    sys.exit(main())
