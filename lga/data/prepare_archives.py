"""Unpacking what users download: zip, tar(.gz/.bz2/.xz), rar (HMDB51, UCF101), split tar parts (SSv2).

Only the members a preparer asks for are written (``want(member_name) -> bool``), so a Kinetics
tarball or the 19 GB SSv2 archive is streamed once and only the videos of the split land on disk.
Every member is written to a temporary name and renamed when complete; a member that is already
on disk with the right size is skipped, so an interrupted extraction resumes.

Backends:

* zip and tar: Python's ``zipfile`` / ``tarfile`` (always available).
* rar (and 7z): ``libarchive-c`` (``pip install libarchive-c``), a ctypes binding to the system's
  libarchive (Debian/Ubuntu ``libarchive13``, macOS ships one), which reads RAR 4 and RAR 5 with
  selective, streaming extraction. Without it, the first command-line tool found on ``PATH`` among
  ``bsdtar`` (``libarchive-tools``), ``unar``, ``7z`` / ``7zz`` (``7zip``) and ``unrar`` extracts the
  whole archive instead.
* SSv2's ``20bn-something-something-v2-00`` ... ``-19`` (or the ``.zip`` files holding them) are the
  pieces of one ``.tar.gz``: :func:`extract_tar_parts` reads them as one stream, without first
  concatenating them on disk.

Limits (:class:`ArchiveLimits`): a member larger than 8 GiB, more than 256 GiB written from one
archive, or archives nested more than 2 levels below the one the user passed (HMDB51 needs 1) stop
the run with an :class:`ArchiveError` naming the archive and the member: no benchmark comes packed
like that, a crafted "zip bomb" does. Sizes are counted while writing, so a header that lies about a
member's size does not get past them. (The command-line tools extract whole archives at once and are
checked only after.) Zip members that Python cannot read, encrypted ones or ones compressed with
Deflate64, are an :class:`ArchiveError` that says to extract the archive with 7-Zip or ``unzip``
first.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from ..util.files import make_readable

log = logging.getLogger("lga.prepare")

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".rar", ".7z")
TOOLS = ("bsdtar", "unar", "7z", "7zz", "unrar")
#: errors of a full disk: the fault of no archive
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
SSV2_PART = re.compile(r"^20bn-something-something-v2-(\d\d)(\.zip)?$")


class ArchiveError(RuntimeError):
    """An archive that cannot be read, or no backend able to read it."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what extraction may write (see the module docstring)."""

    member_bytes: int = 8 << 30     # one member
    total_bytes: int = 256 << 30    # everything written from one archive (or one set of SSv2 pieces)
    depth: int = 2                  # archives inside archives, below the one the user passed


_EXTRACT_YOURSELF = "if it is genuine, extract it yourself and pass the extracted folder as --raw"


class _Budget:
    """Bytes left to write from one archive; raises :class:`ArchiveError` when a cap is passed."""

    def __init__(self, archive, limits: ArchiveLimits | None):
        self.archive, self.limits = archive, limits or ArchiveLimits()
        self.total = 0

    def _over(self, member, what: str, limit: int) -> ArchiveError:
        return ArchiveError(f"{self.archive}: member {member} {what} the limit of {limit} bytes "
                            f"(lga.data.prepare_archives.ArchiveLimits); {_EXTRACT_YOURSELF}")

    def check_declared(self, member, size: int | None) -> None:
        if size is not None and size > self.limits.member_bytes:
            raise self._over(member, f"declares {size} bytes, over", self.limits.member_bytes)

    def add(self, member, member_size: int, more: int) -> None:
        """Count ``more`` bytes written to ``member``, which has ``member_size`` bytes so far."""
        self.total += more
        if member_size > self.limits.member_bytes:
            raise self._over(member, "is larger than", self.limits.member_bytes)
        if self.total > self.limits.total_bytes:
            raise self._over(member, "takes the archive's extracted size over", self.limits.total_bytes)

    def count(self, member, chunks: Iterable[bytes]) -> Iterable[bytes]:
        """Pass ``chunks`` on, counting them against the caps."""
        written = 0
        for chunk in chunks:
            written += len(chunk)
            self.add(member, written, len(chunk))
            yield chunk


#: zip compression methods that Python's zipfile reads (stored, deflate, bzip2, lzma)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_METHOD_NAMES = {9: "Deflate64", 10: "PKWARE implode", 93: "Zstandard", 95: "xz", 98: "PPMd",
                     99: "AES encryption"}


def check_zip_member(archive, info: zipfile.ZipInfo) -> None:
    """Raise :class:`ArchiveError` naming ``archive`` and the member if Python cannot read it
    (encrypted, or compressed with a method zipfile lacks, such as Deflate64), saying what to do."""
    todo = "extract the archive with 7-Zip (`7z x ARCHIVE`) or `unzip`, and pass the extracted folder as --raw"
    if info.flag_bits & 0x41 or info.compress_type == 99:   # bit 0: encrypted, bit 6: strong encryption
        raise ArchiveError(f"{archive}: member {info.filename} is encrypted; {todo} (giving its password)")
    if info.flag_bits & 0x20:
        raise ArchiveError(f"{archive}: member {info.filename} holds compressed patched data (zip flag bit 5), "
                           f"which Python cannot read; {todo}")
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise ArchiveError(f"{archive}: member {info.filename} is compressed with {method} "
                           f"(zip method {info.compress_type}), which Python cannot read; {todo}")


def archive_kind(path: str | os.PathLike) -> str | None:
    """``"zip"``, ``"tar"``, ``"rar"``, ``"7z"`` or ``None`` from the file name."""
    name = Path(path).name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return {".zip": "zip", ".rar": "rar", ".7z": "7z"}.get(suffix, "tar")
    return None


def is_ssv2_part(path: str | os.PathLike) -> bool:
    return bool(SSV2_PART.match(Path(path).name))


def safe_member_path(name: str) -> PurePosixPath | None:
    """A member name as a relative path, or ``None`` if it is absolute or climbs out (``..``)."""
    name = name.replace("\\", "/")
    p = PurePosixPath(name)
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts):
        return None
    parts = [x for x in p.parts if x != "."]
    return PurePosixPath(*parts) if parts else None


def _write_member(dest: Path, rel: PurePosixPath, size: int | None, chunks: Iterable[bytes],
                  budget: _Budget) -> Path | None:
    """Write one member atomically under ``dest``; skip it if a file of the same size is there."""
    budget.check_declared(rel, size)
    target = dest.joinpath(*rel.parts)
    if size is not None and target.is_file() and target.stat().st_size == size:
        return target
    chunks = budget.count(rel, chunks)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        make_readable(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _chunks(f, size: int = 1 << 20):
    return iter(lambda: f.read(size), b"")


def _accept(name: str, want: Callable[[str], bool] | None, archive) -> PurePosixPath | None:
    rel = safe_member_path(name)
    if rel is None:
        log.warning("%s: skipping unsafe member name %r", archive, name)
        return None
    if want is not None and not want(str(rel)):
        return None
    return rel


def _extract_zip(archive: Path, dest: Path, want, budget: _Budget) -> list[Path]:
    out = []
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            rel = _accept(info.filename, want, archive)
            if rel is None:
                continue
            check_zip_member(archive, info)
            with z.open(info) as f:
                out.append(_write_member(dest, rel, info.file_size, _chunks(f), budget))
    return out


def _extract_tar_stream(tar: tarfile.TarFile, dest: Path, want, archive, budget: _Budget) -> list[Path]:
    out = []
    for member in tar:
        if not member.isfile():
            continue
        rel = _accept(member.name, want, archive)
        if rel is None:
            continue
        f = tar.extractfile(member)
        if f is None:
            continue
        with f:
            out.append(_write_member(dest, rel, member.size, _chunks(f), budget))
    return out


def _extract_tar(archive: Path, dest: Path, want, budget: _Budget) -> list[Path]:
    with tarfile.open(archive, mode="r|*") as tar:  # streaming: one pass, no seeking
        return _extract_tar_stream(tar, dest, want, archive, budget)


def have_libarchive() -> bool:
    try:
        import libarchive  # noqa: F401  (optional: needs the libarchive shared library)
    except (ImportError, OSError):  # OSError: the package is there but the shared library is not
        return False
    return True


def _extract_libarchive(archive: Path, dest: Path, want, budget: _Budget) -> list[Path]:
    import libarchive   # optional: needs the libarchive shared library

    out = []
    with libarchive.file_reader(str(archive)) as entries:
        for entry in entries:
            if entry.isdir or entry.issym or entry.islnk:
                continue
            rel = _accept(entry.pathname, want, archive)
            if rel is None:
                continue
            out.append(_write_member(dest, rel, entry.size, entry.get_blocks(), budget))
    return out


def find_tool() -> str | None:
    """The first archive tool on ``PATH`` among :data:`TOOLS`, or ``None``."""
    for tool in TOOLS:
        if shutil.which(tool):
            return tool
    return None


def _extract_tool(tool: str, archive: Path, dest: Path, want, budget: _Budget) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    exe = shutil.which(tool) or tool
    cmd = {
        "bsdtar": [exe, "-x", "-f", str(archive), "-C", str(dest)],
        "unar": [exe, "-q", "-f", "-D", "-o", str(dest), str(archive)],
        "7z": [exe, "x", "-y", f"-o{dest}", str(archive)],
        "7zz": [exe, "x", "-y", f"-o{dest}", str(archive)],
        "unrar": [exe, "x", "-o+", "-y", str(archive), str(dest) + os.sep],
    }[tool]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise ArchiveError(f"{archive}: {tool} failed (exit {r.returncode}): {r.stdout.strip()[-500:]}")
    files = [p for p in dest.rglob("*") if p.is_file()]
    for p in files:  # after the fact: a tool extracts everything at once
        size = p.stat().st_size
        budget.add(p.relative_to(dest).as_posix(), size, size)
    return [p for p in files if want is None or want(p.relative_to(dest).as_posix())]


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike,
                    want: Callable[[str], bool] | None = None, backend: str = "auto",
                    limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract the members of ``archive`` that ``want`` accepts (all if ``None``) into ``dest``.

    Args:
        backend: ``"auto"`` (zip/tar: Python; rar/7z: libarchive-c, else a tool),
            ``"python"``, ``"libarchive"`` or ``"tool:<name>"`` (one of :data:`TOOLS`).
        limits: caps on member and total size (default ``ArchiveLimits()``).

    Returns:
        the paths of the extracted (or already present) files.

    Raises:
        ArchiveError: an unreadable archive, a member over the limits, one Python cannot read
            (encrypted, Deflate64), or no backend for its format (the message says what to do).
        OSError: ``dest`` cannot be written because its disk is full (not the archive's fault).
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    if backend == "auto":
        if kind in ("zip", "tar"):
            backend = "python"
        elif have_libarchive():
            backend = "libarchive"
        elif find_tool():
            backend = f"tool:{find_tool()}"
        else:
            raise ArchiveError(
                f"{archive}: no reader for .{kind} archives. Install one: `pip install libarchive-c` "
                "(uses the system libarchive: `apt-get install libarchive13`), or a tool: "
                "`apt-get install unar` / `libarchive-tools` (bsdtar) / `7zip`; or extract it yourself "
                "and pass the folder as --raw.")
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(archive, limits)
    try:
        if backend == "python":
            if kind == "zip":
                return _extract_zip(archive, dest, want, budget)
            if kind == "tar":
                return _extract_tar(archive, dest, want, budget)
            raise ArchiveError(f"{archive}: Python cannot read .{kind} archives")
        if backend == "libarchive":
            return _extract_libarchive(archive, dest, want, budget)
        if backend.startswith("tool:"):
            return _extract_tool(backend[5:], archive, dest, want, budget)
    except ArchiveError:
        raise
    except OSError as e:
        if e.errno in DISK_FULL:
            raise
        raise ArchiveError(f"{archive}: cannot be extracted ({type(e).__name__}: {e})") from e
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, NotImplementedError) as e:
        raise ArchiveError(f"{archive}: cannot be extracted ({type(e).__name__}: {e})") from e
    except Exception as e:  # libarchive.ArchiveError and friends
        if type(e).__module__.startswith("libarchive"):
            raise ArchiveError(f"{archive}: cannot be extracted ({type(e).__name__}: {e})") from e
        raise
    raise ValueError(f"unknown backend {backend!r}")


class ConcatReader(io.RawIOBase):
    """Read several binary streams, opened one after the other, as one stream."""

    def __init__(self, openers: list[Callable[[], io.BufferedIOBase]]):
        self._openers = list(openers)
        self._current = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while True:
            if self._current is None:
                if not self._openers:
                    return 0
                self._current = self._openers.pop(0)()
            n = self._current.readinto(buf) if hasattr(self._current, "readinto") else None
            if n is None:
                data = self._current.read(len(buf))
                n = len(data)
                buf[:n] = data
            if n:
                return n
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


def _part_opener(path: Path) -> Callable[[], io.BufferedIOBase]:
    if path.suffix.lower() != ".zip":
        return lambda: open(path, "rb")

    def open_zip_member():
        z = zipfile.ZipFile(path)
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) != 1:
            z.close()
            raise ArchiveError(f"{path}: expected one member (an SSv2 archive part), found {len(infos)}")
        try:
            check_zip_member(path, infos[0])
        except ArchiveError:
            z.close()
            raise
        member = z.open(infos[0])
        close = member.close

        def close_both():  # close the zip when the member stream is done
            close()
            z.close()

        member.close = close_both
        return member

    return open_zip_member


def extract_tar_parts(parts: list[str | os.PathLike], dest: str | os.PathLike,
                      want: Callable[[str], bool] | None = None,
                      limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract from a ``.tar(.gz)`` split into numbered pieces (SSv2), streaming across them.

    ``parts`` may be the pieces themselves (``20bn-something-something-v2-00``) or the ``.zip``
    files each holding one piece; they are read in the order of their number. ``limits`` as for
    :func:`extract_archive`.
    """
    parts = sorted((Path(p) for p in parts), key=lambda p: p.name)
    stream = io.BufferedReader(ConcatReader([_part_opener(p) for p in parts]), buffer_size=1 << 20)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            return _extract_tar_stream(tar, Path(dest), want, parts[0], _Budget(parts[0], limits))
    except OSError as e:
        if e.errno in DISK_FULL:
            raise
        raise ArchiveError(f"{parts[0].parent}: the archive parts {[p.name for p in parts]} cannot be "
                           f"extracted ({type(e).__name__}: {e}); are some missing or incomplete?") from e
    except (tarfile.TarError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        raise ArchiveError(f"{parts[0].parent}: the archive parts {[p.name for p in parts]} cannot be "
                           f"extracted ({type(e).__name__}: {e}); are some missing or incomplete?") from e
    finally:
        stream.close()
