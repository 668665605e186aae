"""Files written atomically: a reader, or a run killed mid-write, sees the old file or the new one,
never half of one; a full disk is a :class:`DiskFullError` that names the file and the space needed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


#: errno values of a full disk (or a quota, or a file too large for it)
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(OSError):
    """A file could not be written for lack of space: the message names the file, the bytes it needed
    and the bytes free there. ``errno`` is the original one (``ENOSPC``, ``EDQUOT`` or ``EFBIG``)."""

    def __init__(self, path, needed: int | None, err: OSError | None = None, note: str = ""):
        path = Path(path)
        try:
            free = shutil.disk_usage(path.parent if path.parent.exists() else ".").free
        except OSError:
            free = None
        code = err.errno if err is not None and err.errno else errno.ENOSPC
        super().__init__(code, os.strerror(code), str(path))
        self.path, self.needed, self.free, self._note = path, needed, free, note
        size = f"{needed:,} bytes" if needed is not None else "an unknown number of bytes"
        room = f"{free:,} bytes are free there" if free is not None else "the free space is unknown"
        self.message = (f"{path}: {os.strerror(code)} (the disk is full): writing it needs {size}, {room}. "
                        f"A file already there is unchanged{note or '. Free some space and run again'}")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):     # across processes (a worker's error reaches its parent)
        return type(self), (self.path, self.needed, OSError(self.errno, self.strerror), self._note)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp"):
    """Yield a temporary file name beside ``path``; when the block ends normally, the file gets the
    usual permissions and is renamed to ``path``, and when it raises, it is removed. A reader (or a
    run killed mid-write) thus sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`). ``durable`` also fsyncs the
    file and the folder, so the new file survives a power cut."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS and not isinstance(e, DiskFullError):
            raise DiskFullError(path, len(data), e) from e
        raise
    if durable:
        try:  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:  # some file systems cannot fsync a folder
            pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(tmp: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Move the finished folder ``tmp`` to ``dest`` (a sibling), replacing any folder there: the old one
    is renamed aside first and removed last, so ``dest`` is never half written."""
    tmp, dest = Path(tmp), Path(dest)
    if not dest.exists():
        os.replace(tmp, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.rmdir(old)
    os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def make_readable(path: str | os.PathLike) -> None:
    """Give a file made by ``mkstemp`` (mode 0600) or a folder made by ``mkdtemp`` (0700) the usual
    permissions: 0666 (files) or 0777 (folders), less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as pretty, key-stable JSON, atomically (byte-identical for equal objects)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
