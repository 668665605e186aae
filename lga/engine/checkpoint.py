"""Checkpoints: one safetensors file per checkpoint, written atomically, read without unpickling.

A checkpoint holds the model's tensors (``model/<name>``), the optimizer's tensors
(``optim/<param index>/<key>``), the RNG states of torch (and CUDA) and numpy as tensors, and
everything else (step, best validation score, scheduler, python RNG, optimizer hyper-parameters,
the resolved config) as JSON in the safetensors metadata, with a sha256 checksum of every tensor
(:func:`tensor_checksums`): reading a checkpoint verifies them, so a flipped bit or a lost tensor is
an error naming the file and the tensor, not a run that silently goes on from damaged weights. The file is written to a temporary name
in the same folder, flushed to disk, then renamed over the old one: a crash mid-write leaves the
previous checkpoint intact. Nothing here calls ``torch.load``.

A checkpoint is data from wherever it came from: its metadata is checked before anything uses it
(valid JSON, nested at most :data:`MAX_METADATA_DEPTH` levels, the lga format), and a stored config
that names Python code (``"package.module:Class"``) is refused unless the user allowed that name
(:mod:`lga.engine.build`). Every error names the file.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from ..config.components import check_component_name
from ..config.errors import ConfigError
from ..util.files import atomic_write_bytes
from ..util.hashing import file_sha256

FORMAT = "lga-checkpoint/1"
#: the metadata key of the tensors' checksums (``{name: sha256}``); checkpoints written before lga
#: stored them have none (they still load; ``--resume`` refuses them)
CHECKSUM = "tensor_sha256"
#: deepest nesting of lists and objects accepted in a checkpoint's metadata (lga writes about 6)
MAX_METADATA_DEPTH = 64
#: a JSON string, or the rest of the text from an unclosed quote (never fails once started, so a
#: hostile ``"\\"\\"...`` costs linear time, not quadratic)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _enc(x):
    """JSON-encode with tuples kept as tuples."""
    if isinstance(x, tuple):
        return {"__tuple__": [_enc(v) for v in x]}
    if isinstance(x, list):
        return [_enc(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _enc(v) for k, v in x.items()}
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not np.isfinite(x):
        return {"__float__": repr(x)}
    return x


def _dec(x):
    if isinstance(x, dict):
        if set(x) == {"__tuple__"}:
            return tuple(_dec(v) for v in x["__tuple__"])
        if set(x) == {"__float__"}:
            return float(x["__float__"])
        return {k: _dec(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_dec(v) for v in x]
    return x


def rng_state() -> tuple[dict, dict]:
    """(tensors, json) of the python, numpy and torch (CPU and CUDA) global RNGs."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    np_state = np.random.get_state(legacy=False)
    tensors["rng/numpy_key"] = torch.from_numpy(np_state["state"]["key"].astype(np.int64))
    meta = {"python": random.getstate(), "numpy": {"bit_generator": np_state["bit_generator"],
                                                   "pos": int(np_state["state"]["pos"]),
                                                   "has_gauss": int(np_state["has_gauss"]),
                                                   "gauss": float(np_state["gauss"])}}
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    random.setstate(meta["python"])
    n = meta["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": tensors["rng/numpy_key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][:torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, state_json = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim/{pid}/{k}"] = v
            else:
                state_json.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "state": state_json}


def optimizer_from_flat(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optim/"):
            _, pid, k = key.split("/", 2)
            state.setdefault(int(pid), {})[k] = v
    for pid, extra in meta.get("state", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    # every parameter's state has the same keys (an Adam state without exp_avg would fail at step())
    usual = Counter(frozenset(st) for st in state.values()).most_common(1)[0][0] if state else None
    for pid in sorted(state):
        if set(state[pid]) != usual:
            raise ValueError(f"the optimizer state of parameter {pid} has keys {sorted(state[pid])}, "
                             f"the others {sorted(usual)}")
    return {"state": state, "param_groups": meta["param_groups"]}


def _tensor_digest(name: str, t: torch.Tensor) -> str:
    h = hashlib.sha256(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    h.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return h.hexdigest()


def tensor_checksums(tensors: dict) -> dict:
    """``{name: sha256}`` of a checkpoint's tensors (each over its name, dtype, shape and bytes)."""
    return {k: _tensor_digest(k, v) for k, v in sorted(tensors.items())}


def verify_checksums(tensors: dict, meta: dict, path, skip: tuple = (), only: tuple | None = None) -> None:
    """Check ``tensors`` against the checksums stored in ``meta`` (:func:`save_checkpoint`); tensors
    whose name starts with one of ``skip``, or (``only`` given) with none of ``only``, are not checked. Raises ValueError naming the file and the
    tensors that are missing, extra or changed. A checkpoint without checksums passes (see
    :data:`CHECKSUM`: older lga checkpoints); ``--resume`` requires them (:func:`lga.engine.train.restore`)."""
    stored = meta.get(CHECKSUM)
    if stored is None:
        return
    if not (isinstance(stored, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in stored.items())):
        raise ValueError(f"{path}: the checkpoint's {CHECKSUM!r} is not a mapping of tensor names to sha256 digests")
    def checked(k):
        return not k.startswith(tuple(skip)) and (only is None or k.startswith(tuple(only)))
    wanted = {k: v for k, v in stored.items() if checked(k)}
    have = {k for k in tensors if checked(k)}
    missing, extra = sorted(set(wanted) - have), sorted(have - set(wanted))
    changed = sorted(k for k in set(wanted) & have if _tensor_digest(k, tensors[k]) != wanted[k])
    parts = ([f"{len(missing)} tensors missing: {_listed(missing)}"] if missing else []) + \
            ([f"{len(extra)} tensors not in its checksum: {_listed(extra)}"] if extra else []) + \
            ([f"{len(changed)} tensors do not match their checksum: {_listed(changed)}"] if changed else [])
    if parts:
        raise ValueError(f"{path}: the checkpoint is damaged: {'; '.join(parts)}")


def save_checkpoint(path, model: torch.nn.Module, meta: dict, optimizer=None, extra_tensors=None,
                    with_rng: bool = True) -> Path:
    """Write a checkpoint atomically. ``meta`` (JSON-able) goes into the file's metadata."""
    path = Path(path)
    tensors = {f"model/{k}": v.detach() for k, v in model.state_dict().items()}
    meta = dict(meta)
    meta["format"] = FORMAT
    if optimizer is not None:
        t, m = optimizer_to_flat(optimizer)
        tensors.update(t)
        meta["optimizer"] = m
    if with_rng:
        t, m = rng_state()
        tensors.update(t)
        meta["rng"] = m
    tensors.update(extra_tensors or {})
    # safetensors wants contiguous CPU tensors that share no memory
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    meta[CHECKSUM] = tensor_checksums(tensors)
    data = st_save(tensors, metadata={"lga": json.dumps(_enc(meta))})
    atomic_write_bytes(path, data, durable=True)
    return path


def _too_deep(text: str, limit: int) -> bool:
    """True when the JSON ``text`` nests lists/objects deeper than ``limit`` (brackets inside strings
    do not count); stops at the first level past the limit, so a hostile file costs little."""
    depth = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def _check_stored_components(meta: dict, path: Path) -> None:
    """Refuse a stored config that names Python code the user has not allowed (nothing is imported)."""
    config = meta.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        return
    for what in ("encoder", "head", "text"):
        name = model.get(what)
        if isinstance(name, str) and ":" in name:
            try:
                check_component_name(name, what)
            except ConfigError as e:
                raise ConfigError(f"{path}: the config stored in this checkpoint is refused: {e}") from None


def read_metadata(path) -> dict:
    """The lga metadata of a checkpoint file, checked (reads the header only, not the tensors).

    Raises ValueError naming the file for anything but a well-formed lga checkpoint: unreadable
    header, metadata that is not JSON or nests deeper than :data:`MAX_METADATA_DEPTH`, another
    format, or a stored config naming code that is not allowed (:class:`~lga.config.ConfigError`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if "lga" not in md:
        raise ValueError(f"{path}: a safetensors file without lga metadata (not an lga checkpoint)")
    text = md["lga"]
    if _too_deep(text, MAX_METADATA_DEPTH):
        raise ValueError(f"{path}: the checkpoint's lga metadata nests deeper than {MAX_METADATA_DEPTH} "
                         "levels (not written by lga; refused)")
    try:
        meta = _dec(json.loads(text))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the checkpoint's lga metadata is not valid JSON ({e})") from None
    except (ValueError, TypeError) as e:    # a malformed {"__tuple__": ...} or {"__float__": ...}
        raise ValueError(f"{path}: malformed lga metadata ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the checkpoint's lga metadata must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    _check_stored_components(meta, path)
    return meta


def read_checkpoint(path, verify: bool = True) -> tuple[dict, dict]:
    """``(tensors, meta)`` of a checkpoint file (no unpickling); the metadata is checked first
    (:func:`read_metadata`), then, with ``verify``, the tensors against their checksums
    (:func:`verify_checksums`)."""
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if verify:
        verify_checksums(tensors, meta, path)
    return tensors, meta


def model_state(tensors: dict) -> dict:
    return {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}


def _listed(keys: list, limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def weights_mismatch(model_sd: dict, file_sd: dict, strict: bool = True) -> str | None:
    """What keeps ``file_sd`` from loading into a model whose ``state_dict()`` is ``model_sd``:
    missing and unexpected keys (when ``strict``) and shape mismatches, in words; None if it fits."""
    missing = sorted(set(model_sd) - set(file_sd))
    unexpected = sorted(set(file_sd) - set(model_sd))
    shapes = [f"{k} (file {list(file_sd[k].shape)}, model {list(model_sd[k].shape)})"
              for k in sorted(set(model_sd) & set(file_sd)) if file_sd[k].shape != model_sd[k].shape]
    parts = []
    if strict and missing:
        parts.append(f"{len(missing)} missing (in the model, not in the file): {_listed(missing)}")
    if strict and unexpected:
        parts.append(f"{len(unexpected)} unexpected (in the file, not in the model): {_listed(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} of another shape: {_listed(shapes)}")
    return "; ".join(parts) or None


def load_model_weights(path, model: torch.nn.Module, strict: bool = True) -> dict:
    """Load the model tensors of a checkpoint into ``model``; return the checkpoint's metadata.

    A checkpoint of another architecture raises ValueError naming the file and the keys that do
    not fit (missing, unexpected, of another shape), before anything is loaded.
    """
    tensors, meta = read_checkpoint(path)
    state = model_state(tensors)
    problem = weights_mismatch(model.state_dict(), state, strict)
    if problem:
        raise ValueError(f"{path}: its weights do not fit this {type(model).__name__}: {problem}. Was it "
                         "trained with another model config? Evaluate it with its run's config.")
    model.load_state_dict(state, strict=strict)
    return meta


#: sha256 of a file (the key of cached features): :func:`lga.util.hashing.file_sha256`
file_hash = file_sha256
