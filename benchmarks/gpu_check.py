#!/usr/bin/env python
"""``make gpu-check``: the paper recipe end to end on one GPU, with the figures a reader needs.

On a small AtomicActions generated at 224 px, with the shipped paper configs
(``hmdb51_5way_1shot`` / ``hmdb51_5way_5shot``: ViT-B/16, all 12 blocks trained, AMP, 4 tasks per
step, 5 training queries per class, gradient checkpointing) and only the dataset, the length of the
run and the validation size overridden, it runs through the real command line:

1. per shot (1, 5): ``python -m lga train`` for a few dozen steps with validation, killed half-way
   (``--stop-after``) and continued with ``--resume``; the same recipe without gradient
   checkpointing for a few steps (the memory it saves and the speed it costs);
   ``python -m lga eval`` over 10,000 test episodes of the selected checkpoint;
2. ``torchrun --nproc_per_node 1 -m lga train``: the NCCL + DDP path of a multi-GPU run;
3. the transformers anatomy backend on a tiny random chat model, on the GPU;
4. the T4 default of chapter 4 (``lga.anatomy.llm_choices``, ``colab-t4``: an open instruction-tuned
   model in float16) writing the anatomy of HMDB51's test classes, with its time, its peak memory
   (at most the T4's) and the estimate beside them. Where the model can be neither found in the local
   Hugging Face cache nor downloaded, the step is reported as skipped, not failed (``--smoke`` never
   loads it).

It prints peak GPU memory, training tasks per second and evaluation time, writes them as JSON
(``--out``), and exits non-zero if any step failed or a shot's recipe peaked above ``--max-peak-gib``
(8 GiB, the target that fits a free Colab T4). Offline it uses random ViT-B/16 weights (the speed
and memory are the same as with OpenAI's); online, OpenAI's (``--weights auto``).

    python benchmarks/gpu_check.py --out gpu_check.json           # on a GPU machine
    python benchmarks/gpu_check.py --smoke                          # about two minutes on a CPU: the same path, tiny

``--smoke`` swaps ViT-B/16 for the package's tiny ViT and shrinks everything else (``SMOKE``: short
videos, 4 frames a clip, a few steps and episodes), so the script itself is tested where there is no
GPU (``tests/test_gpu_check.py``): every step runs through the same command lines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: what ``--smoke`` shrinks (upper bounds on the command-line values): CPU-sized, every step still runs.
#: 7 videos per class: a 5-shot training task needs 5 support + 2 queries of a class.
SMOKE = {"steps": 4, "no_ckpt_steps": 2, "episodes": 20, "val_episodes": 10, "videos_per_class": 7,
         "frames_per_video": 12, "num_frames": 4, "size": 64}


def online(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (where open_clip fetches OpenAI's weights) can be reached."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class Checks:
    """Runs named steps, records time and outcome, and keeps going after a failure."""

    def __init__(self):
        self.results: dict = {}
        self.failed: list[str] = []

    def run(self, name: str, fn, *args, **kwargs):
        print(f"\n=== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
            ok = True
        except Exception as e:                          # report and continue: one failure, all figures
            traceback.print_exc()
            out, ok = {"error": f"{type(e).__name__}: {e}"}, False
            self.failed.append(name)
        seconds = time.perf_counter() - t0
        self.results[name] = {"ok": ok, "seconds": round(seconds, 2), **(out or {})}
        print(f"=== {name}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s", flush=True)
        return out if ok else None


def cli(args: list[str], env: dict, launcher: list[str] | None = None) -> float:
    """Run ``python -m lga ARGS`` (or ``LAUNCHER -m lga ARGS``); returns its wall time, raises on failure."""
    cmd = (launcher or [sys.executable]) + ["-m", "lga"] + args
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"exit status {proc.returncode}: {' '.join(cmd)}")
    return time.perf_counter() - t0


def make_data(root: Path, size: int, videos: int, smoke: bool) -> dict:
    from lga.data.atomic_actions import AtomicActionsConfig, generate

    classes = (10, 5, 5) if smoke else (64, 12, 24)
    short = {"frames_per_video": SMOKE["frames_per_video"], "clip_frames": SMOKE["num_frames"]} if smoke else {}
    cfg = AtomicActionsConfig(num_classes=classes, videos_per_class=videos, size=size,
                              workers=max(1, min(16, os.cpu_count() or 1)), **short)
    summary = generate(root, cfg, progress=False)
    return {"classes": summary["classes"], "videos": summary["videos"], "size": size}


def overrides(root: Path, steps: int, val_episodes: int, weights: str, smoke: bool, extra=()) -> list[str]:
    half = max(1, steps // 2)
    sets = [f"data.dataset=atomic_actions", f"data.root={root}", "data.anatomy=null",
            f"data.workers={0 if smoke else 8}",
            "train.epochs=2", f"train.steps_per_epoch={half}", "train.milestones=[2]",
            "train.warmup_epochs=0.5", f"train.eval_interval={half}", f"train.val_episodes={val_episodes}",
            "train.log_interval=2", "eval.encode_batch=64"]
    if weights == "random":
        sets.append("model.encoder_args.pretrained=null")
    if smoke:   # the package's tiny ViT: same code path (ViT tower, checkpointing, text bank), CPU-sized
        sets += ["model.encoder_args.model=lga-tiny-vit-64", "model.encoder_args.pretrained=null",
                 "model.head_args.num_heads=4", "train.tasks_per_step=2", "data.train_queries=2",
                 f"data.num_frames={SMOKE['num_frames']}"]
    out = []
    for s in list(sets) + list(extra):
        out += ["--set", s]
    return out


def summary_of(run: Path) -> dict:
    s = json.loads((run / "summary.json").read_text())
    return {"tasks_per_s": round(s["episodes_per_s"], 3), "peak_memory_gib": s.get("peak_memory_gib"),
            "best_val_accuracy": s.get("best_val_accuracy"), "steps": s["steps"]}


def train_resume(config: str, run: Path, sets: list[str], steps: int, env: dict) -> dict:
    """Train, stop half-way as if killed, resume to the end; the summary is the resumed half's."""
    half = max(1, steps // 2)
    first = cli(["train", "--config", config, "--out", str(run), "--no-progress", "--stop-after", str(half)] + sets, env)
    if not (run / "checkpoints" / "last.safetensors").is_file():
        raise RuntimeError("no checkpoint after the first half")
    second = cli(["train", "--config", config, "--out", str(run), "--no-progress", "--resume"] + sets, env)
    return {**summary_of(run), "wall_first_half_s": round(first, 1), "wall_resumed_half_s": round(second, 1)}


def evaluate(run: Path, episodes: int, env: dict) -> dict:
    out = run / "eval.json"
    wall = cli(["eval", "--config", str(run / "config.yaml"), "--checkpoint",
                str(run / "checkpoints" / "best.safetensors"), "--episodes", str(episodes),
                "--no-progress", "--out", str(out)], env)
    r = json.loads(out.read_text())
    return {"episodes": r["num_episodes"], "accuracy": round(r["mean"], 4), "ci95": round(r["ci95"], 4),
            "wall_s": round(wall, 1)}


def within_memory_target(results: dict, shots, limit_gib: float) -> dict:
    """The peak GPU memory of each shot's paper recipe (gradient checkpointing on), which must be at most
    ``limit_gib`` (8 GiB: a free Colab T4 has 15); raises when one is above it or was not measured."""
    peaks = {shot: results.get(f"{shot}-shot train+resume (checkpointing on)", {}).get("peak_memory_gib")
             for shot in shots}
    problems = [f"{shot}-shot: " + ("not measured" if p is None else f"{p:.2f} GiB") for shot, p in peaks.items()
                if p is None or p > limit_gib]
    if problems:
        raise RuntimeError(f"peak GPU memory above the {limit_gib} GiB target or unknown: {'; '.join(problems)}")
    return {"limit_gib": limit_gib, **{f"peak_{shot}shot_gib": round(p, 2) for shot, p in peaks.items()}}


def anatomy_backend(work: Path, device: str) -> dict:
    import torch

    from lga.anatomy.backends import generate_anatomy, make_backend
    from lga.anatomy.tiny_lm import build_tiny_chat_model

    path = build_tiny_chat_model(work / "tiny-chat-lm")
    backend = make_backend("transformers", model=str(path), device=device, dtype="float32", batch_size=2,
                           max_new_tokens=8, seed=0, local_files_only=True)
    labels = {"kick_ball": "kick ball", "hug": "hug", "wave": "wave hand"}
    report = generate_anatomy(labels, backend, work / "anatomy.json", retries_on_parse_error=1)
    # random weights answer garbage: every label must be reported as failed, and nothing crash
    if report.ok or sorted(report.failed) != sorted(labels):
        raise RuntimeError(f"unexpected anatomy report: {report.summary()}")
    if backend.lm.device.type != torch.device(device).type:
        raise RuntimeError(f"the anatomy model ran on {backend.lm.device}, not on {device}")
    return {"device": str(backend.lm.device), "labels": len(labels), "reported_failures": len(report.failed)}


def student_anatomy_model(work: Path, device: str, choice=None, allow_download: bool = True,
                          dataset: str = "hmdb51") -> dict:
    """Chapter 4's model for a free Colab T4 (``choice``, default ``colab-t4``) answering the test classes
    of ``dataset``: coverage, seconds (with the table's estimate beside them) and peak GPU memory, which
    must fit ``choice.memory_gib``. A model that is neither cached nor downloadable is reported as
    ``skipped``; any other error fails the step."""
    import torch

    from lga.anatomy.backends import generate_anatomy, make_backend
    from lga.anatomy.llm_choices import anatomy_model
    from lga.anatomy.prompts import DATASET_HINTS, PromptSpec
    from lga.anatomy.shipped import load_shipped_anatomy

    choice = choice or anatomy_model("colab-t4")
    info = {"model": choice.model, "dtype": choice.dtype, "revision": choice.revision,
            "weights_gib": round(choice.weight_gib, 2), "bound_gib": round(choice.peak_gib, 2)}
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        backend = make_backend("transformers", model=choice.model, revision=choice.revision, device=device,
                               dtype=choice.dtype, batch_size=choice.batch_size,
                               max_new_tokens=choice.max_new_tokens, seed=0,
                               local_files_only=not allow_download)
    except OSError as e:        # not in the local cache, and no download allowed or possible
        return {**info, "skipped": f"{choice.model} is not available offline "
                                   f"({'no download tried' if not allow_download else 'download failed'}: "
                                   f"{str(e).splitlines()[0][:200]})"}
    shipped = load_shipped_anatomy(dataset)
    from lga.data.splits import load_split
    try:
        names = sorted({e.class_name for e in load_split(dataset, "test")})
    except Exception:            # noqa: BLE001 - no split lists here: the first classes of the file
        names = sorted(shipped.classes)[:10]
    labels = {n: shipped[n].label for n in names}
    t0 = time.perf_counter()
    report = generate_anatomy(labels, backend, work / f"anatomy_{choice.key}.json",
                              spec=PromptSpec(dataset_hint=DATASET_HINTS.get(dataset)), dataset=dataset)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    out = {**info, "device": str(backend.lm.device), "labels": len(labels), "covered": len(report.covered),
           "failed": len(report.failed), "seconds": round(seconds, 1),
           "estimate_s": round(choice.estimate_seconds(len(labels)), 1),
           "peak_memory_gib": None if peak is None else round(peak, 2)}
    del backend
    if cuda:
        torch.cuda.empty_cache()
    if peak is not None and peak > choice.memory_gib:
        raise RuntimeError(f"{choice.model} peaked at {peak:.2f} GiB, above the {choice.memory_gib:g} GiB "
                           f"of {choice.runtime}: {out}")
    return out


def environment() -> dict:
    import torch

    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpu_memory_gib": (round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
                               if torch.cuda.is_available() else None)}
    for mod in ("open_clip", "av", "transformers"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:                       # noqa: BLE001 - reported, not fatal here
            info[mod] = f"missing ({e})"
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--weights", choices=("auto", "openai", "random"), default="auto")
    p.add_argument("--steps", type=int, default=24, help="training steps per run (stopped and resumed half-way)")
    p.add_argument("--no-ckpt-steps", type=int, default=8, help="steps of the runs without checkpointing")
    p.add_argument("--episodes", type=int, default=10_000, help="test episodes of lga eval")
    p.add_argument("--videos-per-class", type=int, default=10)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 5], choices=(1, 5))
    p.add_argument("--max-peak-gib", type=float, default=8.0,
                   help="fail when a shot's paper recipe peaks above this much GPU memory (the T4 target)")
    p.add_argument("--smoke", action="store_true", help="CPU-sized: tiny ViT, tiny data (tests the script)")
    a = p.parse_args(argv)

    import torch
    if not torch.cuda.is_available() and not a.smoke:
        print("gpu-check: no CUDA GPU here (use --smoke to exercise the script on a CPU)", file=sys.stderr)
        return 2
    weights = a.weights if a.weights != "auto" else ("openai" if online() else "random")
    if a.smoke:
        weights, a.steps, a.no_ckpt_steps = "random", min(a.steps, SMOKE["steps"]), min(a.no_ckpt_steps, SMOKE["no_ckpt_steps"])
        a.episodes, a.videos_per_class = min(a.episodes, SMOKE["episodes"]), min(a.videos_per_class, SMOKE["videos_per_class"])
    work = a.work or Path(tempfile.mkdtemp(prefix="lga-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LGA_DATA_DIR=str(work / "cache"), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    checks = Checks()
    results = {"environment": environment(), "weights": weights, "smoke": a.smoke, "steps": a.steps}
    print(json.dumps(results, indent=1))

    data = work / "atomic_actions_224"
    size = SMOKE["size"] if a.smoke else 224
    if data.exists():
        shutil.rmtree(data)
    checks.run("data", make_data, data, size, a.videos_per_class, a.smoke)
    val_eps = SMOKE["val_episodes"] if a.smoke else 300
    for shot in a.shots:
        config = f"hmdb51_5way_{shot}shot"
        run = work / f"run_{shot}shot"
        sets = overrides(data, a.steps, val_eps, weights, a.smoke)
        if checks.run(f"{shot}-shot train+resume (checkpointing on)", train_resume, config, run, sets, a.steps, env):
            checks.run(f"{shot}-shot eval", evaluate, run, a.episodes, env)
        off = work / f"run_{shot}shot_no_ckpt"
        sets_off = overrides(data, a.no_ckpt_steps, val_eps, weights, a.smoke,
                             extra=["model.encoder_args.grad_checkpointing=false"])
        checks.run(f"{shot}-shot train (checkpointing off)",
                   lambda: (cli(["train", "--config", config, "--out", str(off), "--no-progress"] + sets_off, env),
                            summary_of(off))[1])
    if torch.cuda.is_available():
        checks.run(f"peak memory <= {a.max_peak_gib:g} GiB (checkpointing on)", within_memory_target,
                   checks.results, a.shots, a.max_peak_gib)
    ddp = work / "run_torchrun"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--standalone"]
    checks.run("torchrun --nproc_per_node 1 (NCCL/DDP)",
               lambda: (cli(["train", "--config", "hmdb51_5way_1shot", "--out", str(ddp), "--no-progress"]
                            + overrides(data, 4, val_eps, weights, a.smoke), env, launcher=launcher),
                        summary_of(ddp))[1])
    checks.run("transformers anatomy backend", anatomy_backend, work, "cuda" if torch.cuda.is_available() else "cpu")
    if a.smoke:      # a CPU-sized run never loads a 4B model
        checks.results["chapter 4 model for a T4"] = {"ok": True, "seconds": 0.0,
                                                      "skipped": "--smoke: not loaded"}
    else:
        checks.run("chapter 4 model for a T4", student_anatomy_model, work, "cuda", None, online())

    results["checks"] = checks.results
    print("\n" + "=" * 72)
    for name, r in checks.results.items():
        figures = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("ok", "error"))
        print(f"{'ok ' if r['ok'] else 'FAIL'} {name}: {figures}{'  ' + r['error'] if 'error' in r else ''}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {a.out}")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    if checks.failed:
        print(f"gpu-check FAILED: {', '.join(checks.failed)}", file=sys.stderr)
        return 1
    print("gpu-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
