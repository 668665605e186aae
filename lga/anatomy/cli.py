"""``python -m lga anatomy``: generate (or copy) text anatomy into an ``lga-anatomy/1`` file.

Examples::

    # regenerate a benchmark's shipped anatomy (its classes and labels) with the book's reference
    # model, Qwen2.5-7B-Instruct in bfloat16: a GPU with more memory than a free Colab T4
    python -m lga anatomy --dataset hmdb51 --backend transformers \\
        --model Qwen/Qwen2.5-7B-Instruct --dtype bfloat16 --out runs/anatomy/hmdb51.json

    # what a student runs (lga.anatomy.llm_choices): colab-t4 is Phi-3.5-mini-instruct in float16
    # on a free Colab T4, cpu is Qwen2.5-0.5B-Instruct on a CPU runtime
    python -m lga anatomy --dataset hmdb51 --backend transformers --model colab-t4 \\
        --out runs/anatomy/hmdb51_phi-3.5-mini-instruct.json

    # the CPU choice, classes from the split tables in the data cache
    python -m lga anatomy --dataset hmdb51 --classes ~/.cache/lga/splits/hmdb51 \\
        --backend transformers --model cpu --out runs/anatomy/hmdb51_qwen2.5-0.5b-instruct.json

    # an OpenAI-compatible server (the key is read from $OPENAI_API_KEY, or --api-key-env VAR)
    python -m lga anatomy --labels my_labels.txt --backend openai --model gpt-4o-mini \\
        --base-url https://api.openai.com/v1 --out my_anatomy.json

    # copy the shipped anatomy of a prepared dataset's classes
    python -m lga anatomy --dataset ssv2_full --root data/ssv2_full --backend cache --out a.json

Class names come from ``--labels FILE`` (one label per line, or ``class_name<TAB>label``), or,
with ``--dataset NAME``, from ``--classes`` (a ``classes_*.tsv`` of the shared split folder, a
prepared root's ``classes.tsv``, or a folder holding them; repeatable) or ``--root`` (a prepared
dataset). With no class list, a shipped benchmark's classes and labels are taken from its shipped
anatomy (``--backend cache``: every class of the source file is copied).
Classes named ``(unknown)`` (SSv2-Full val) are skipped and reported. The run resumes: classes
already in ``--out`` are not asked again. The last line says what was written, or that nothing
was and why. Exit status: 0 all covered, 1 some (or all) failed, 2 an input file could not be read
(the message names it).

``--backend openai`` needs the optional ``openai`` package (``pip install "lga[openai]"``); the key
is read from the environment variable named by ``--api-key-env`` (default ``OPENAI_API_KEY``) and
is only ever sent to the origin of ``--base-url``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from . import backends   # backends.make_backend: looked up at each call
from .backends import generate_anatomy
from .llm_choices import ANATOMY_MODELS
from .names import humanize_label, strip_name_markers
from .prompts import DATASET_HINTS, PromptSpec
from .quality import check_anatomy
from .shipped import SHIPPED_FILES, load_shipped_anatomy

__all__ = ["main", "add_arguments", "run", "read_class_table", "read_label_file"]

UNKNOWN_CLASS = "(unknown)"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``anatomy`` command's options to ``parser`` (for embedding as a sub-command)."""
    src = parser.add_argument_group("classes")
    src.add_argument("--dataset", help="dataset name (hmdb51, ucf101, kinetics100, ssv2_small, "
                                       "ssv2_full, atomic_actions, or any name)")
    src.add_argument("--labels", type=Path, help="file with one label per line (or class<TAB>label)")
    src.add_argument("--classes", type=Path, action="append", default=[],
                     help="classes TSV (shared split table or prepared classes.tsv) or a folder of "
                          "them; repeatable")
    src.add_argument("--root", type=Path, help="a prepared dataset root (reads its classes.tsv)")
    be = parser.add_argument_group("backend")
    be.add_argument("--backend", choices=("transformers", "openai", "cache"), required=True)
    be.add_argument("--model", help="model name or path (transformers, openai); transformers also takes "
                                    "colab-t4 or cpu, the two models of lga.anatomy.llm_choices")
    be.add_argument("--base-url", default="https://api.openai.com/v1", help="openai: API root URL")
    be.add_argument("--api-key-env", default="OPENAI_API_KEY",
                    help="openai: environment variable holding the API key (may be unset)")
    be.add_argument("--source", help="cache: anatomy file, prepared root or shipped dataset to copy "
                                     "from (default: the shipped file of --dataset)")
    be.add_argument("--device", help="transformers: cuda, cpu, ... (default: cuda if available)")
    be.add_argument("--dtype", default="auto", help="transformers: auto, bfloat16, float16, float32")
    be.add_argument("--batch-size", type=int, default=8, help="transformers: labels per batch")
    be.add_argument("--max-new-tokens", type=int, default=512)
    be.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request")
    be.add_argument("--max-retries", type=int, default=4, help="openai: retries on 429/5xx/timeout")
    be.add_argument("--local-files-only", action="store_true", help="transformers: no downloads")
    be.add_argument("--revision", default=None,
                    help="transformers: hub revision (branch, tag or commit) of --model, for reproducibility")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--out", type=Path, required=True, help="anatomy JSON to write (resumed if present)")
    gen.add_argument("--num-steps", type=int, default=3)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--retries", type=int, default=2, help="re-asks after an unparsable answer")
    gen.add_argument("--dataset-hint", help="one sentence about the videos (default: by --dataset)")
    gen.add_argument("--zero-shot", action="store_true", help="no worked examples in the prompt")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lga anatomy", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(parser)


# ----------------------------------------------------------------------------------------------
# class lists


def read_class_table(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Read a class table into ``({class_name: label}, skipped)``.

    Accepts the shared split tables (``label_index class_name clipfsar_text_name n_videos``; the
    CLIP-FSAR text is the label when present) and a prepared root's ``classes.tsv``
    (``split label_index class_dir class_name``). A folder reads every ``classes*.tsv`` in it.
    ``skipped`` lists rows named ``(unknown)``, as ``"<file>:<line>"``; markers such as
    ``(inferred)`` are stripped from names.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("classes*.tsv"))
        if not files:
            raise FileNotFoundError(f"no classes*.tsv in folder {path}")
        items: dict[str, str] = {}
        skipped: list[str] = []
        for f in files:
            more, skip = read_class_table(f)
            items.update({k: v for k, v in more.items() if k not in items})
            skipped += skip
        return items, skipped
    if not path.is_file():
        raise FileNotFoundError(f"no class table {path}")
    items, skipped = {}, []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            fields = reader.fieldnames or []
            if "class_name" not in fields:
                raise ValueError(f"{path}: header has no 'class_name' column (got {fields})")
            for n, row in enumerate(reader, 2):
                name = strip_name_markers(row.get("class_name") or "")
                if not name:
                    raise ValueError(f"{path}:{n}: empty field 'class_name'")
                if name == UNKNOWN_CLASS:
                    skipped.append(f"{path}:{n}")
                    continue
                text = (row.get("clipfsar_text_name") or "").strip()
                items.setdefault(name, text if text and text != "-" else humanize_label(name))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a UTF-8 tab-separated class table ({e})") from None
    return items, skipped


def read_label_file(path: str | Path) -> dict[str, str]:
    """One label per line (blank lines and ``#`` comments skipped), or ``class_name<TAB>label``."""
    path = Path(path)
    items: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 label file ({e})") from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, label = line.partition("\t")
        name, label = name.strip(), (label.strip() or name.strip())
        if not name:
            raise ValueError(f"{path}:{n}: empty class name")
        items.setdefault(name, label)
    return items


def _class_items(args) -> tuple[dict[str, str], list[str]]:
    if args.labels:
        return read_label_file(args.labels), []
    items: dict[str, str] = {}
    skipped: list[str] = []
    sources = list(args.classes) + ([args.root / "classes.tsv"] if args.root else [])
    for source in sources:
        more, skip = read_class_table(source)
        items.update({k: v for k, v in more.items() if k not in items})
        skipped += skip
    return items, skipped


# ----------------------------------------------------------------------------------------------


def _backend(args):
    if args.backend == "cache":
        source = args.source or args.dataset
        if not source:
            raise SystemExit("error: --backend cache needs --source or --dataset")
        return backends.make_backend("cache", source=source)
    if not args.model:
        raise SystemExit(f"error: --backend {args.backend} needs --model")
    if args.backend == "openai":
        return backends.make_backend("openai", model=args.model, base_url=args.base_url,
                                     api_key_env=args.api_key_env, timeout_s=args.timeout,
                                     max_retries=args.max_retries, max_tokens=args.max_new_tokens,
                                     seed=args.seed)
    model, device, dtype, revision = args.model, args.device, args.dtype, args.revision
    if model in ANATOMY_MODELS and not Path(model).exists():     # a named choice: colab-t4, cpu
        choice = ANATOMY_MODELS[model]
        model, device = choice.model, device or choice.device
        dtype = choice.dtype if dtype == "auto" else dtype
        revision = revision or choice.revision
        print(f"--model {args.model}: {model} in {dtype} on {device} ({choice.runtime})", file=sys.stderr)
    return backends.make_backend("transformers", model=model, device=device, dtype=dtype,
                                 batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                 seed=args.seed, local_files_only=args.local_files_only, revision=revision)


def run(args: argparse.Namespace) -> int:
    """Run the command on parsed arguments; returns the exit status."""
    if not args.labels and not args.dataset:
        raise SystemExit("error: give --dataset NAME or --labels FILE")
    from_list = bool(args.labels or args.classes or args.root)
    if args.dataset and not from_list and args.backend != "cache" and args.dataset not in SHIPPED_FILES:
        raise SystemExit("error: --dataset needs --classes FILE or --root DIR for its class names")
    items, skipped = _class_items(args)
    backend = _backend(args)
    if not items and args.backend == "cache":
        items = {name: entry.label for name, entry in backend.anatomy.classes.items()}
    elif not items and not from_list and args.dataset in SHIPPED_FILES:
        # the one-command regeneration of a benchmark's shipped anatomy: its classes and their labels
        items = {n: e.label for n, e in load_shipped_anatomy(args.dataset).classes.items()}
        print(f"classes and labels: the {len(items)} classes of the shipped anatomy "
              f"lga/anatomy/data/{SHIPPED_FILES[args.dataset]}", file=sys.stderr)
    if not items:
        raise SystemExit("error: no classes to describe")
    for where in skipped:
        print(f"skipped a class named {UNKNOWN_CLASS!r} at {where}", file=sys.stderr)
    hint = args.dataset_hint or DATASET_HINTS.get(args.dataset or "")
    spec = PromptSpec(num_steps=args.num_steps, dataset_hint=hint,
                      examples=() if args.zero_shot else None)
    report = generate_anatomy(items, backend, args.out, num_steps=args.num_steps,
                              retries_on_parse_error=args.retries, spec=spec, dataset=args.dataset,
                              progress=not args.no_progress)
    print(report.summary())
    if skipped:
        print(f"  not covered: {len(skipped)} class(es) named {UNKNOWN_CLASS!r} (see above)")
    if args.out.exists():
        quality = check_anatomy(args.out, classes=list(items), num_steps=args.num_steps)
        print(quality.summary())
    print(_outcome(report, args.out), file=sys.stdout if report.ok else sys.stderr)
    return 1 if report.failed else 0


def _outcome(report, out: Path) -> str:
    """One line that says what was written to ``out``, or that nothing was and why."""
    if report.ok:
        return f"wrote {out}: {len(report.ok)} new class(es), {len(report.covered)} covered in all"
    if not report.failed:
        return f"nothing new to write: {out} already holds every class asked for ({len(report.cached)})"
    why = f"every class asked for failed ({len(report.failed)}, reasons above)"
    if out.exists():
        return f"nothing new written to {out}: {why}; it keeps the classes it held"
    return f"nothing written: {why}, so {out} was not created"


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``main(["--dataset", "hmdb51", ...])`` (a leading ``"anatomy"`` is ignored)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["anatomy"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, ImportError) as e:  # bad input files or setup: the message names it
        print(f"lga anatomy: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
