"""The ``lga`` command line: ``python -m lga <command> ...`` (or ``lga <command> ...``).

Commands:
  make-atomic-actions  generate the AtomicActions benchmark (see lga.data.atomic_actions)
  prepare              prepare a real benchmark into the common layout (see lga.data.prepare)
  anatomy              generate / check text anatomy with an LLM or a cache (see lga.anatomy.cli)
  train                episodic meta-training from a config (see lga.engine.cli; torchrun for DDP)
  eval                 evaluate a checkpoint: many episodes, mean and 95% CI (see lga.engine.cli)
  tiny-clip            retrain the cpu profile's tiny CLIP by the recipe and ship it (see lga.models.tiny_clip)
  config               show a config resolved, with where each value came from; list the shipped ones
"""

from __future__ import annotations

import sys


def _make_atomic_actions(argv):
    from .data.atomic_actions import main
    return main(argv)


def _prepare(argv):
    from .data.prepare import main
    return main(argv)


def _anatomy(argv):
    from .anatomy.cli import main
    return main(argv)


def _train(argv):
    from .engine.cli import train_main
    return train_main(argv)


def _eval(argv):
    from .engine.cli import eval_main
    return eval_main(argv)


def _config(argv):
    from .engine.cli import config_main
    return config_main(argv)


def _tiny_clip(argv):
    from .models.tiny_clip import main
    return main(argv)


COMMANDS = {"make-atomic-actions": _make_atomic_actions, "prepare": _prepare, "anatomy": _anatomy,
            "train": _train, "eval": _eval, "config": _config,
            "tiny-clip": _tiny_clip}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"lga: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return COMMANDS[command](rest) or 0


if __name__ == "__main__":
    sys.exit(main())
