"""sha256 digests (hex) of a file, of bytes, and of a JSON-able object."""

from __future__ import annotations

import hashlib
import json
import os


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (hex), read in ``chunk``-byte pieces (1 MiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """The sha256 of ``data`` (hex)."""
    return hashlib.sha256(data).hexdigest()


def json_sha256(obj) -> str:
    """The sha256 (hex) of ``obj`` as JSON with sorted keys: equal for equal objects, whatever the key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
