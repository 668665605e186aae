"""``python -m lga train``, ``python -m lga eval`` and ``python -m lga config``.

  python -m lga train --config configs/atomic_actions_5way_1shot_cpu.yaml --out runs/aa1 [--resume] [--set train.lr=1e-3 ...]
  torchrun --nproc_per_node 4 -m lga train --config configs/hmdb51_5way_1shot.yaml --out runs/hmdb1
  python -m lga eval --config configs/atomic_actions_5way_1shot_cpu.yaml --checkpoint runs/aa1/checkpoints/best.safetensors [--episodes 10000] [--out result.json]
  python -m lga config show hmdb51_5way_1shot [--set train.lr=2e-5]    # every value, and where it came from
  python -m lga config list                                            # the shipped config names

A config whose encoder has nothing to train (``train.backbone: auto``), or that says
``train.backbone: frozen``, encodes every video once (cached under ``train.feature_cache``) and trains
the head alone on the cached features.

Components come from lga's registry only (:mod:`lga.engine.build`): a config or checkpoint naming
``"package.module:Class"`` is refused unless that exact string is passed to ``--allow-component``.
Without ``--config``, ``eval`` uses the checkpoint's own run config (:func:`checkpoint_config`).

Both check the dataset against the manifest in its ``dataset.json`` before reading it
(:func:`lga.data.manifest.verify_dataset`; a second run re-reads no file that is unchanged) and refuse
a folder that differs, naming the files; ``--no-verify`` (``data.verify=false``) skips the check, and
the run's ``config.yaml`` records it. Videos and frame folders must lie inside the dataset folder;
``--set data.allow_symlinks=true`` follows symlinks out of it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, apply_override, config_diff, config_from_dict, list_configs, load_config, show_config
from ..config.components import allow_component
from ..util.files import DiskFullError


def _common(p: argparse.ArgumentParser):
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML config, or the name of a shipped one (e.g. hmdb51_5way_1shot; see configs/); "
                        "without it, train takes the defaults of the cpu profile and eval the checkpoint's "
                        "own config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--allow-component", dest="allow", action="append", default=[], metavar="PKG.MOD:CLASS",
                   help="trust this 'package.module:Class' named as model.encoder or model.head in the config "
                        "(repeatable); without it such a name is refused and nothing is imported")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-verify", action="store_true",
                   help="use the dataset without checking it against the manifest in its dataset.json "
                        "(data.verify=false; the run's config records it)")


def _verify_setting(cfg, args, from_checkpoint: bool = False):
    """Apply --no-verify. A config taken from a checkpoint verifies again unless told otherwise here:
    a run that skipped the check does not pass that on to its evaluations."""
    if args.no_verify:
        cfg.data.verify = False
    elif from_checkpoint and not any(o.split("=", 1)[0].strip() == "data.verify" for o in args.overrides):
        cfg.data.verify = True
    return cfg


def _allow(args) -> bool:
    try:
        for target in args.allow:
            allow_component(target)
    except ConfigError as e:
        print(f"lga: {e}", file=sys.stderr)
        return False
    return True


def _load(args):
    try:
        return load_config(args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"lga: config error: {e}", file=sys.stderr)
        return None


def checkpoint_config(checkpoint, overrides=()):
    """The config to evaluate ``checkpoint`` with when none is given, and where it came from.

    1. The run's own ``RUN/config.yaml`` when the checkpoint lies in ``RUN/checkpoints/`` *and* that
       config is the one the checkpoint was trained with (the config stored in the checkpoint,
       apart from keys a resumed run may change): never a ``config.yaml`` that merely lies nearby.
    2. Else the config stored in the checkpoint (refused if it names code: :mod:`lga.engine.build`).
    3. Else :class:`~lga.config.ConfigError`.

    ``overrides`` (``--set``) apply to the chosen config. Returns ``(config, source, note)``: ``note``
    says why a nearby ``config.yaml`` was not used (None otherwise).
    """
    from .checkpoint import read_metadata  # heavy: torch, only once a command runs
    from .train import RESUMABLE_CHANGES  # heavy: torch, only once a command runs
    path = Path(checkpoint)
    meta = read_metadata(path)
    stored = meta.get("config")
    if stored is not None and not isinstance(stored, dict):
        raise ConfigError(f"{path}: the stored config must be a mapping, got {type(stored).__name__}")
    try:
        trained = config_from_dict(stored).to_dict() if stored else None
    except ConfigError as e:
        raise ConfigError(f"{path}: the config stored in this checkpoint: {e}") from None
    note = None
    run_cfg = path.parent.parent / "config.yaml"
    if path.parent.name == "checkpoints" and run_cfg.is_file():
        if trained is None:
            note = f"not using {run_cfg}: the checkpoint stores no config to match it against"
        else:
            try:
                diff = config_diff(load_config(run_cfg).to_dict(), trained, ignore=RESUMABLE_CHANGES)
                why = f"it is not the config this checkpoint was trained with (differs in {', '.join(diff[:5])})"
            except (ConfigError, OSError) as e:
                diff, why = None, f"it cannot be read ({e})"
            if diff == []:
                return load_config(run_cfg, overrides), str(run_cfg), None
            note = f"not using {run_cfg}: {why}; using the config stored in the checkpoint"
    if trained is None:
        raise ConfigError(f"{path} stores no config; pass --config")
    data = stored
    for item in overrides:
        data = apply_override(data, item)
    try:
        return config_from_dict(data), f"the config stored in {path}", note
    except ConfigError as e:
        raise ConfigError(f"{path}: the stored config with the --set overrides: {e}") from None


def train_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lga train", description="episodic meta-training "
                                "(validation-based model selection; checkpoints in OUT/checkpoints)")
    _common(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                   help="stop once this many optimizer steps are done (resume later with --resume)")
    p.add_argument("--restart-optimizer", action="store_true",
                   help="with --resume: start the optimizer afresh instead of loading its state (e.g. when the "
                        "checkpoint's optimizer state is lost); recorded in log.csv, and the run is no longer "
                        "the uninterrupted one")
    args = p.parse_args(argv)
    if args.restart_optimizer and not args.resume:
        print("lga train: --restart-optimizer only goes with --resume", file=sys.stderr)
        return 2
    cfg = _load(args) if _allow(args) else None
    if cfg is None:
        return 2
    _verify_setting(cfg, args)
    from .train import NonFiniteLossError, train  # heavy: torch, only once a command runs
    try:
        r = train(cfg, args.out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after,
                  restart_optimizer=args.restart_optimizer)
    except NonFiniteLossError as e:
        print(f"lga train: {e}", file=sys.stderr)
        return 3
    except DiskFullError as e:
        print(f"lga train: {e}", file=sys.stderr)
        return 1
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"lga train: {e}", file=sys.stderr)
        return 2
    if r.best_val is not None:
        print(f"done: {r.step} steps ({r.backbone} backbone); best val {100 * r.best_val:.2f}% at step "
              f"{r.best_step}; best checkpoint {r.best_checkpoint}")
    return 0


def eval_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lga eval", description="evaluate a checkpoint on many "
                                "episodes (mean accuracy and 95% CI)")
    _common(p)
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a .safetensors checkpoint of lga train")
    p.add_argument("--episodes", type=int, default=None, help="number of episodes (default: eval.episodes)")
    p.add_argument("--split", choices=("test", "val"), default=None)
    p.add_argument("--out", default=None, metavar="FILE", help="write the result as JSON here")
    args = p.parse_args(argv)
    if not _allow(args):
        return 2
    if args.config is None:   # the run's own config.yaml, else the one stored in the checkpoint
        try:
            cfg, source, note = checkpoint_config(args.checkpoint, args.overrides)
        except (FileNotFoundError, ValueError) as e:
            print(f"lga: config error: {e}", file=sys.stderr)
            return 2
        if note:
            print(f"lga eval: {note}", file=sys.stderr)
        print(f"config: {source}", file=sys.stderr)
        _verify_setting(cfg, args, from_checkpoint=True)
    else:
        cfg = _load(args)
    if cfg is None:
        return 2
    _verify_setting(cfg, args)
    if args.episodes is not None and args.episodes < 1:
        print("lga eval: --episodes must be >= 1", file=sys.stderr)
        return 2
    from .evaluate import evaluate_checkpoint  # heavy: torch, only once a command runs
    try:
        r = evaluate_checkpoint(cfg, args.checkpoint, episodes=args.episodes, split=args.split,
                                progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"lga eval: {e}", file=sys.stderr)
        return 2
    print(f"{cfg.data.dataset} {cfg.data.n_way}-way {cfg.data.k_shot}-shot ({r.meta['split']}): {r}")
    if args.out:
        r.to_json(args.out)
        print(f"wrote {args.out}")
    return 0


def config_main(argv=None) -> int:
    """``python -m lga config show NAME`` / ``python -m lga config list``."""
    p = argparse.ArgumentParser(prog="python -m lga config", description="the shipped configs, resolved")
    sub = p.add_subparsers(dest="action", required=True)
    show = sub.add_parser("show", help="print a config resolved, each value with where it came from "
                                       "(a file, a field default, an ablation row, --set)")
    show.add_argument("config", nargs="?", default=None, metavar="NAME",
                      help="a YAML file or a shipped config name (default: the cpu profile's recipe)")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sub.add_parser("list", help="the names of the shipped configs")
    args = p.parse_args(argv)
    if args.action == "list":
        print("\n".join(list_configs()))
        return 0
    try:
        print(show_config(args.config, args.overrides))
    except (ConfigError, FileNotFoundError) as e:
        print(f"lga: config error: {e}", file=sys.stderr)
        return 2
    return 0
