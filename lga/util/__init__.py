"""Generic helpers that every layer of ``lga`` may use; this package imports nothing else of ``lga``.

- :mod:`lga.util.files`: atomic writes (temporary file + rename), :class:`DiskFullError`, JSON out.
- :mod:`lga.util.hashing`: sha256 of a file, of bytes, of a JSON-able object.
- :mod:`lga.util.processes`: worker processes that end with their parent (:func:`die_with_parent`).
- :mod:`lga.util.paths`: the folder where ``lga`` keeps data (:func:`data_dir`).

Every name is importable from ``lga.util`` itself.
"""

from .files import (DISK_FULL_ERRNOS, DiskFullError, atomic_path, atomic_write_bytes, atomic_write_text,
                    make_readable, write_json)
from .hashing import bytes_sha256, file_sha256, json_sha256
from .paths import data_dir
from .processes import die_with_parent

__all__ = ["DISK_FULL_ERRNOS", "DiskFullError", "atomic_path", "atomic_write_bytes", "atomic_write_text",
           "make_readable", "write_json", "bytes_sha256", "file_sha256", "json_sha256", "data_dir",
           "die_with_parent"]
