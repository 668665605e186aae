"""``python -m lga train`` and ``python -m lga eval``.

  python -m lga train --config configs/atomic_actions_5way_1shot_cpu.yaml --out runs/aa1 [--resume] [--set train.lr=1e-3 ...]
  torchrun --nproc_per_node 4 -m lga train --config configs/hmdb51_5way_1shot.yaml --out runs/hmdb1
  python -m lga eval --config configs/atomic_actions_5way_1shot_cpu.yaml --checkpoint runs/aa1/checkpoints/best.safetensors [--episodes 10000] [--out result.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _common(p: argparse.ArgumentParser):
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML config, or the name of a shipped one (e.g. hmdb51_5way_1shot; see configs/); "
                        "without it, the defaults of the cpu profile")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _load(args):
    from ..config import ConfigError, load_config
    try:
        return load_config(args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"lga: config error: {e}", file=sys.stderr)
        return None


def train_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lga train", description="episodic meta-training "
                                "(validation-based model selection; checkpoints in OUT/checkpoints)")
    _common(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                   help="stop once this many optimizer steps are done (resume later with --resume)")
    args = p.parse_args(argv)
    cfg = _load(args)
    if cfg is None:
        return 2
    from .train import NonFiniteLossError, train
    try:
        r = train(cfg, args.out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after)
    except NonFiniteLossError as e:
        print(f"lga train: {e}", file=sys.stderr)
        return 3
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"lga train: {e}", file=sys.stderr)
        return 2
    if r.best_val is not None:
        print(f"done: {r.step} steps; best val {100 * r.best_val:.2f}% at step {r.best_step}; "
              f"best checkpoint {r.best_checkpoint}")
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
    cfg = None
    if args.config is None:   # the run's config.yaml beside checkpoints/, else the one inside the checkpoint
        run_cfg = Path(args.checkpoint).resolve().parent.parent / "config.yaml"
        if run_cfg.is_file():
            args.config = str(run_cfg)
        elif Path(args.checkpoint).is_file():
            from ..config import ConfigError, apply_override, config_from_dict
            from .checkpoint import read_checkpoint
            try:
                data = read_checkpoint(args.checkpoint)[1].get("config") or {}
                for item in args.overrides:
                    data = apply_override(data, item)
                cfg = config_from_dict(data)
            except (ConfigError, ValueError) as e:
                print(f"lga: config error: {e}", file=sys.stderr)
                return 2
    cfg = cfg or _load(args)
    if cfg is None:
        return 2
    if args.episodes is not None and args.episodes < 1:
        print("lga eval: --episodes must be >= 1", file=sys.stderr)
        return 2
    from .evaluate import evaluate_checkpoint
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
