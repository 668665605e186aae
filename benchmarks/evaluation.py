"""10,000-episode evaluation: cached features (lga) against features recomputed per episode.

The public FSAR code bases evaluate by loading every episode's videos through a data loader and
running the backbone on them, episode after episode: a test video is decoded and encoded once for
every episode it appears in. :func:`lga.engine.evaluate.evaluate_checkpoint` decodes and encodes
every test video once (deterministic test frames), then scores thousands of episodes at once from
the cached features. Both give the same per-episode predictions; this script measures the time.

The slow path is run on ``--slow-episodes`` episodes and extrapolated to ``--episodes``; the fast
path is run in full. Its accuracy on the slow path's episodes is compared episode by episode.

    python benchmarks/evaluation.py [--root DATASET] [--head protonet|lga] [--episodes 10000]

Without ``--root`` it uses ``<data_dir>/atomic_actions-seed0`` if present, else generates a test-only
AtomicActions (24 test classes x 30 videos) in a temporary folder. Backbone: the cpu profile's tiny
open_clip ViT (``lga-tiny-vit-64``; random weights: the time does not depend on them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _dataset(root: str | None, tmp: str) -> Path:
    from lga.config import data_dir
    if root:
        return Path(root)
    default = data_dir() / "atomic_actions-seed0"
    if (default / "classes.tsv").is_file():
        return default
    from lga.data.atomic_actions import AtomicActionsConfig, generate
    out = Path(tmp) / "aa"
    print(f"generating a test-only AtomicActions in {out} ...")
    generate(out, AtomicActionsConfig(num_classes=(5, 5, 24), videos_per_class=30, workers=2), progress=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help="a prepared dataset (default: AtomicActions)")
    p.add_argument("--head", choices=("protonet", "lga"), default="protonet")
    p.add_argument("--episodes", type=int, default=10_000)
    p.add_argument("--slow-episodes", type=int, default=200)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both paths)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from lga.config import load_config
    from lga.data.dataset import VideoDataset
    from lga.data.episodes import EpisodeSampler
    from lga.data.video import read_video
    from lga.engine.build import build_text_bank
    from lga.engine.evaluate import evaluate_split
    from lga.engine.features import SplitFeatures, encode_split
    from lga.engine.model import build_model

    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(args.root, tmp)
        sets = [f"data.root={root.resolve()}", f"data.k_shot={args.shots}", "model.encoder=clip",
                "model.encoder_args={model: lga-tiny-vit-64, pretrained: null}", f"model.head={args.head}",
                "train.device=cpu"]
        if args.head == "lga":
            sets.append("model.text=clip")
        cfg = load_config("atomic_actions_5way_1shot_protonet_cpu", sets)   # the conv4 ProtoNet recipe, changed by sets
        model = build_model(cfg).eval()
        ds = VideoDataset(root, "test", cfg.data.num_frames)
        bank = build_text_bank(cfg.model, ds.class_names, encoder=model.encoder, anatomy=str(root))
        labels = ds.labels
        sampler = EpisodeSampler(labels, cfg.data.n_way, cfg.data.k_shot, cfg.data.test_queries,
                                 seed=cfg.eval.seed, num_episodes=args.episodes)

        # ---- fast path: every video decoded and encoded once, episodes scored in batches
        t0 = time.perf_counter()
        feats, flabels, keys, report = encode_split(model.encoder, ds, batch_size=64, progress=False)
        t_encode = time.perf_counter() - t0
        if report.skipped or report.missing:
            raise SystemExit(f"unreadable videos change the episode set; fix the dataset first\n{report}")
        # no phase bounds: the slow path below gives the head none either
        test = SplitFeatures(feats, flabels.numpy(), keys, bank, "test", list(ds.class_names))
        fast = evaluate_split(model.head, test, sampler, args.episodes, batch_episodes=1000)
        t_fast = time.perf_counter() - t0

        # ---- slow path: each episode's videos decoded and encoded for that episode (public code)
        slow_acc = []
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(args.slow_episodes):
                ep = sampler.episode(i)
                idx = np.concatenate([ep.support, ep.query])
                clips = torch.stack([read_video(ds.items[int(v)].path, cfg.data.num_frames, "test") for v in idx])
                f = model.encoder(clips)
                n_s = len(ep.support)
                text = bank.for_episodes(torch.from_numpy(ep.classes)[None]) if bank is not None else {}
                logits = model.head(f[None, :n_s], torch.from_numpy(ep.support_labels)[None], f[None, n_s:],
                                    cfg.data.n_way, **text)[0]
                slow_acc.append((logits.argmax(-1).numpy() == ep.query_labels).mean())
        t_slow_part = time.perf_counter() - t0
    t_slow = t_slow_part / args.slow_episodes * args.episodes
    slow_acc = np.array(slow_acc)
    same = fast.accuracies[:args.slow_episodes]
    agree = float((slow_acc == same).mean())

    print(f"\nAtomicActions test split: {len(keys)} videos, {cfg.data.n_way}-way {cfg.data.k_shot}-shot, "
          f"head {args.head}, tiny CLIP ViT 64 px, {cfg.data.num_frames} frames, {args.threads} thread(s)\n")
    print("| path | episodes | time (s) | episodes/s | accuracy (%) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| per-episode features (measured) | {args.slow_episodes} | {t_slow_part:.1f} | "
          f"{args.slow_episodes / t_slow_part:.1f} | {100 * slow_acc.mean():.2f} |")
    print(f"| per-episode features (extrapolated) | {args.episodes} | {t_slow:.0f} | "
          f"{args.slow_episodes / t_slow_part:.1f} | - |")
    print(f"| cached features, same {args.slow_episodes} episodes | {args.slow_episodes} | - | - | "
          f"{100 * same.mean():.2f} |")
    print(f"| cached features (lga), all | {args.episodes} | {t_fast:.1f} (encode {t_encode:.1f}) | "
          f"{args.episodes / t_fast:.0f} | {100 * fast.mean:.2f} ± {100 * fast.ci95:.2f} |")
    print(f"\nspeed-up: {t_slow / t_fast:.0f}x; per-episode accuracies identical on "
          f"{100 * agree:.1f}% of the {args.slow_episodes} shared episodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
