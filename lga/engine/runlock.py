"""One run per run folder: an exclusive lock on ``RUN/run.lock`` for as long as the run lives.

Two trainings started on the same ``--out`` would interleave their ``log.csv`` rows and overwrite
each other's ``config.yaml`` and checkpoints. :class:`RunLock` takes an exclusive ``flock`` on
``run.lock`` in the run folder before anything there is read or written, and writes who holds it
(process id, host, start time) into the file; a second run is refused with :class:`RunLockedError`
naming the holder. The kernel drops a ``flock`` when its process dies, however it dies, so the
``run.lock`` of a killed run holds no lock: the next run takes it over and says whose it was. A run
that ends (normally or with an error) removes the file.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import warnings
from pathlib import Path

from ..util.files import DISK_FULL_ERRNOS, DiskFullError

try:
    import fcntl
except ImportError:      # Windows: no flock; runs are not locked there
    fcntl = None

__all__ = ["RunLock", "RunLockedError", "LOCK_FILE"]

LOCK_FILE = "run.lock"


class RunLockedError(FileExistsError):
    """The run folder is in use by another run (the message names it)."""


def _describe(text: str) -> str:
    try:
        h = json.loads(text)
        return f"process {h['pid']} on {h['host']}, started {h['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no readable record"


class RunLock:
    """``with RunLock(run_dir):`` holds the run folder ``run_dir`` (created if needed) exclusively.

    Raises :class:`RunLockedError` when another process (or another run of this process) holds it.
    ``created``: whether the folder was made here (:meth:`release` with ``remove_dir`` then removes
    it again if nothing else was written into it). ``previous``: the record of a killed run whose
    lock was taken over (None otherwise).
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.fd = None
        self.created = False
        self.previous = None

    def acquire(self) -> "RunLock":
        self.created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    # a file system without locks (some network and FUSE mounts): run unlocked, and say so
                    os.close(fd)
                    if os.path.getsize(self.path) == 0:
                        os.unlink(self.path)
                    warnings.warn(f"{self.path}: this file system cannot lock files ({e.strerror}); nothing "
                                  "stops a second run from using the same folder", stacklevel=3)
                    return self
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                raise RunLockedError(
                    f"{self.run_dir} is in use by another run ({_describe(holder)}; lock file {self.path}): "
                    "two runs in one folder would mix their logs and checkpoints. Wait for it to end, stop it, "
                    "or choose another --out") from None
            try:   # the file may have been removed by the run that held it just before: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        if previous.strip():
            self.previous = previous
            warnings.warn(f"{self.path}: taking over the lock of a run that ended without releasing it "
                          f"({_describe(previous)}; killed?)", stacklevel=3)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}).encode()
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except OSError as e:
            self.release(remove_dir=True)
            if e.errno in DISK_FULL_ERRNOS:
                raise DiskFullError(self.path, len(record), e) from e
            raise
        return self

    def release(self, remove_dir: bool = False) -> None:
        """Remove the lock file, then drop the lock (with ``remove_dir``, also the folder if this lock
        made it and it is empty)."""
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)        # drops the flock
            self.fd = None
        if remove_dir and self.created:
            try:
                self.run_dir.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
