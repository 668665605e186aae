"""Prepare ssv2_small (standard few-shot split) from its raw download into lga's layout.

Usage: python data_scripts/prepare_ssv2_small.py --raw PATH [PATH ...] --out DIR [--workers N] ...
(run with --help for every option; the same as `python -m lga prepare ssv2_small ...`).
"""

import sys
from pathlib import Path

try:
    from lga.data.prepare import main
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lga.data.prepare import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dataset="ssv2_small"))
