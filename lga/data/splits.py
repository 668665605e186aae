"""The standard few-shot splits of the five real benchmarks: where they live, how to read them.

Every few-shot action recognition paper since 2018 uses the same handful of list files, published
in three repositories. This module is their single source of truth:

* a **registry** (:data:`REGISTRY`) of every list file as a public raw URL pinned to a commit, with
  its sha256 and the relative path it gets in the local cache;
* a **downloader** (:func:`fetch_split_file`) that fetches a list on first use into a cache folder
  (``~/.cache/lga/splits``, or ``$LGA_SPLITS_DIR``, or an argument), writes it atomically and
  verifies its checksum every time it is used (``$LGA_SPLITS_MIRROR``, if set, is a base URL that
  serves the same ``<owner>/<repo>/<commit>/<path>`` tree: an offline mirror, or a test server);
* **parsers** for the four list formats, all giving the same :class:`SplitEntry` rows
  (:func:`load_split`, :func:`parse_split_lines`).

=============== =========================================== =========================================================
dataset         split (``fmt="standard"``)                  lines look like
=============== =========================================== =========================================================
``hmdb51``      ARN (tobyperrett/trx ``splits/hmdb_ARN``)   ``brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0``
``ucf101``      ARN (tobyperrett/trx ``splits/ucf_ARN``)    ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01``
``kinetics100`` CMN (ffmpbgrnn/CMN ``kinetics-100``)        ``air drumming/-VtLx-mcPds_000012_000022``
``ssv2_small``  CMN (ffmpbgrnn/CMN ``smsm-100``)            ``Pouring something into something/51958``
``ssv2_full``   OTAM (tobyperrett/trx ``splits/ssv2_OTAM``) ``train8/78687``
=============== =========================================== =========================================================

``fmt="clipfsar"`` selects the lists of alibaba-mmai-research/CLIP-FSAR
(``configs/projects/CLIPFSAR/<dataset>/<split>_few_shot.txt``): ``train0//videos/brush_hair/x.avi``
(HMDB51, UCF101, Kinetics-100) or ``train0/51958`` (SSv2). They hold the same videos as the
standard lists, except Kinetics-100, where CLIP-FSAR swapped 179/41/57 videos for others of the
same class. For SSv2-Full the CLIP-FSAR lists are byte-identical to the OTAM ones, so both
formats share one cached file.

Label indices: ARN and CMN lines carry a class name only, so classes are numbered from 0 **in order
of first appearance** in the file (which is how CLIP-FSAR numbered them: the two agree on every
dataset). OTAM and CLIP-FSAR lines carry the index in their ``trainN`` / ``valN`` / ``testN``
prefix, and it is taken from there.

Class names: from the line itself where it has one (the class folder). Kinetics-100 CLIP-FSAR
folders use ``_`` for spaces and are given back with spaces, as in CMN. SSv2-Small CLIP-FSAR lines
have ids only; their names come from the CMN list of the same split, matched by video id. SSv2-Full
lines have ids only; the train and test names ship with the package (``ssv2_full_classes.json``,
from CLIP-FSAR's configs); no public file names the 12 val classes, so their ``class_name`` is
``None`` here and the preparer recovers them from the SSv2 annotations.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..util.files import make_readable
from ..util.hashing import file_sha256

#: the five real benchmarks, by the names every ``lga`` function and command uses
DATASETS = ("hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full")
SPLIT_NAMES = ("train", "val", "test")
FORMATS = ("standard", "clipfsar")
LIST_FORMATS = ("arn", "cmn", "otam", "clipfsar")

TRX = ("tobyperrett", "trx", "390c20aa8ed7e309ae4949464fdcf015c4009329")
CMN = ("ffmpbgrnn", "CMN", "23b5ef3e6defd4ee93e97131eb3c0b7926481f56")
CLIPFSAR = ("alibaba-mmai-research", "CLIP-FSAR", "30cf0a8cf5287a56a9f37bfceb28e82be776fc5d")

DEFAULT_CACHE_DIR = Path("~/.cache/lga/splits")
CACHE_ENV = "LGA_SPLITS_DIR"
MIRROR_ENV = "LGA_SPLITS_MIRROR"  # optional base URL serving <owner>/<repo>/<commit>/<path> (offline mirrors, tests)
DEFAULT_TIMEOUT = 60.0


class SplitFileError(RuntimeError):
    """A split list that cannot be fetched, fails its checksum, or cannot be parsed."""


class ChecksumError(SplitFileError):
    """A cached or downloaded split list whose sha256 is not the registered one."""

    def __init__(self, path, expected: str, actual: str, url: str | None = None):
        self.path, self.expected, self.actual, self.url = str(path), expected, actual, url
        src = f" (downloaded from {url})" if url else ""
        super().__init__(f"{path}{src}: sha256 mismatch: expected {expected}, got {actual}. "
                         "The file is not the registered split list; it was not used.")


@dataclass(frozen=True)
class SplitFile:
    """One registered list file: where it is published and what its bytes must hash to."""

    dataset: str
    split: str
    fmt: str            # "standard" or "clipfsar"
    list_format: str    # "arn", "cmn", "otam" or "clipfsar": which parser reads it
    owner: str
    repo: str
    commit: str
    path: str           # path inside the repository
    sha256: str
    cache_path: str     # path relative to the cache folder (the layout of the published lists)

    @property
    def url(self) -> str:
        """The public raw URL, pinned to the commit."""
        return f"https://raw.githubusercontent.com/{self.owner}/{self.repo}/{self.commit}/{self.path}"

    def download_url(self) -> str:
        """:attr:`url`, or the same path under ``$LGA_SPLITS_MIRROR`` when that is set."""
        mirror = os.environ.get(MIRROR_ENV)
        if not mirror:
            return self.url
        return f"{mirror.rstrip('/')}/{self.owner}/{self.repo}/{self.commit}/{self.path}"


@dataclass(frozen=True)
class SplitEntry:
    """One video of a split list.

    ``class_name`` is the class as the list names it (``None`` where no public file names it:
    SSv2-Full val); ``video_id`` is the file stem of the video in its dataset (HMDB51/UCF101 video
    name, Kinetics ``<youtube_id>_<start>_<end>`` or ``<youtube_id>``, SSv2 numeric id);
    ``label_index`` numbers the classes of ``split`` from 0.
    """

    class_name: str | None
    video_id: str
    split: str
    label_index: int


def _entry(dataset, split, fmt, list_format, src, path, sha256, cache_path) -> SplitFile:
    owner, repo, commit = src
    return SplitFile(dataset, split, fmt, list_format, owner, repo, commit, path, sha256, cache_path)


def _build_registry() -> dict[tuple[str, str, str], SplitFile]:
    sha = {  # sha256 of the published bytes (checked by tests/data/test_splits.py against a local copy)
        ("hmdb51", "standard", "train"): "2524450b6d7b18775411361fbc366c30345d83516a2d6eec12b6af04c884ec88",
        ("hmdb51", "standard", "val"): "85458cf86f85354b411080f6aea3157c5831b1a3bf40fed24e4a2c7a17f8027c",
        ("hmdb51", "standard", "test"): "e2ce039f857287cb943a00d27ac6d2559a434e7bde5722d350c269253160d388",
        ("hmdb51", "clipfsar", "train"): "59a5a0fe9c831bf9b46f05082a25828196a1b44ce4a2ab2dc64b17dead845069",
        ("hmdb51", "clipfsar", "val"): "33703ba18c1f036607b2c4872b1bb1c8e0290dcaaf9671264f7ec2ed1cf7de9a",
        ("hmdb51", "clipfsar", "test"): "ee8fa2c56e3ace7dcb2b025ea5c7ebf6d2c56f2f114c0bd3a992a894ace9b997",
        ("ucf101", "standard", "train"): "5513fc00bdba74ae84ee721fc1cc2bae0aa2d4fb7883b9b6f90387ca1a54ddb8",
        ("ucf101", "standard", "val"): "5482ce6d2f2db2568a8cd41158ab5a406fad36fcc9940c1811573937ad6bfc4f",
        ("ucf101", "standard", "test"): "0887937010eee99ae3baf3178227ac35daebf6a35431b2df051fcf682b48bc31",
        ("ucf101", "clipfsar", "train"): "faeb4941e197fc6cefb603f7c277dffa854a5dac74a3ad11ce6955441751c3d5",
        ("ucf101", "clipfsar", "val"): "aec8242d1f0af0da107eac5fd7be699f639bcb04078dcbb445fbe7bc8500acbd",
        ("ucf101", "clipfsar", "test"): "160ae01885fb33b435e6312234e722f56c1016f2fe34a63c364c29ea4556c957",
        ("kinetics100", "standard", "train"): "d0cbdcaa6fd4a28c8a514e85dd47407a4124ba3d8187aadd0a41c47636d592ae",
        ("kinetics100", "standard", "val"): "e3144200327ce31bc5be0e1efb1107c6c7f2912c95eb2457095374b2c22bf74a",
        ("kinetics100", "standard", "test"): "9c2351cf070ad7d052f1fb2885e5e4b246da7a38d06cb730bf7473eeb7173d09",
        ("kinetics100", "clipfsar", "train"): "92cac54f79940ab50bb296c48048260238ce82349ad87424994c9839c24a40c6",
        ("kinetics100", "clipfsar", "val"): "635b5e78f0031f1823379675cde8f1ffe7bedb1025a817df214a03b0c1674932",
        ("kinetics100", "clipfsar", "test"): "c43ada5179a8c402405849f1bab0df7cfa5d2e103fd943e5672f90ba188add53",
        ("ssv2_small", "standard", "train"): "fd15c2eff0065ef3e70a3b4f364b9d7e1c1d2581ce73d22b83d0e4c91e799fb1",
        ("ssv2_small", "standard", "val"): "aa280e1ece78dc248ae3bda9668bbc549d4837a8dc1e1699f13525d32c1ece43",
        ("ssv2_small", "standard", "test"): "4e8b9ae7446331c47ece4c342cfe4f67896b717f4dea92ffd7659e72baeeddd6",
        ("ssv2_small", "clipfsar", "train"): "724c01ee6595639d0829874e503936596de6564f7bf4293cf332b0f7891e0696",
        ("ssv2_small", "clipfsar", "val"): "7b0162b14e42186122677eba5679b7b133017c46fbbfa8638682675aad9f4c0a",
        ("ssv2_small", "clipfsar", "test"): "e8b4b69302bd85522fffdaebedd212557a8088e76df6dfcc76a82ac953fe739a",
        ("ssv2_full", "standard", "train"): "886fdd2b9215328efaee7e73ae2ea8f5b3e99fd3732679481652bad1506df5c0",
        ("ssv2_full", "standard", "val"): "b9884e9e716fbb9a902121d797c0a43ec04517085eb6b36a2804e037db63d6eb",
        ("ssv2_full", "standard", "test"): "83a1ac8e7c6f720c55dced1dc9deae1c11fb8271f8a3bb1f0952aed068646a1e",
    }
    # the CLIP-FSAR copies of the OTAM lists are byte-identical (same sha256, one cache file)
    for split in SPLIT_NAMES:
        sha[("ssv2_full", "clipfsar", split)] = sha[("ssv2_full", "standard", split)]

    reg: dict[tuple[str, str, str], SplitFile] = {}
    for split in SPLIT_NAMES:
        key = lambda ds, fmt: (ds, fmt, split)  # noqa: E731
        for ds, folder in (("hmdb51", "hmdb_ARN"), ("ucf101", "ucf_ARN")):
            reg[key(ds, "standard")] = _entry(ds, split, "standard", "arn", TRX,
                                              f"splits/{folder}/{split}list03.txt",
                                              sha[key(ds, "standard")], f"{ds}/{split}list03.txt")
        for ds, folder in (("kinetics100", "kinetics-100"), ("ssv2_small", "smsm-100")):
            reg[key(ds, "standard")] = _entry(ds, split, "standard", "cmn", CMN,
                                              f"{folder}/{split}.list",
                                              sha[key(ds, "standard")], f"{ds}/{split}.list")
        reg[key("ssv2_full", "standard")] = _entry("ssv2_full", split, "standard", "otam", TRX,
                                                   f"splits/ssv2_OTAM/{split}list07.txt",
                                                   sha[key("ssv2_full", "standard")],
                                                   f"ssv2_full/{split}list07.txt")
        for ds in DATASETS:
            cache = (f"ssv2_full/{split}list07.txt" if ds == "ssv2_full"
                     else f"{ds}/clipfsar_format/{split}_few_shot.txt")
            reg[key(ds, "clipfsar")] = _entry(ds, split, "clipfsar", "clipfsar", CLIPFSAR,
                                              f"configs/projects/CLIPFSAR/{ds}/{split}_few_shot.txt",
                                              sha[key(ds, "clipfsar")], cache)
    return reg


#: (dataset, fmt, split) -> :class:`SplitFile`
REGISTRY: dict[tuple[str, str, str], SplitFile] = _build_registry()


def split_file(dataset: str, split: str, fmt: str = "standard") -> SplitFile:
    """The registry entry of one list file (raises ``KeyError`` naming the valid choices)."""
    if dataset not in DATASETS:
        raise KeyError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if split not in SPLIT_NAMES:
        raise KeyError(f"unknown split {split!r}; choose one of {SPLIT_NAMES}")
    if fmt not in FORMATS:
        raise KeyError(f"unknown split format {fmt!r}; choose one of {FORMATS}")
    return REGISTRY[(dataset, fmt, split)]


def resolve_cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The split cache folder: ``path`` if given, else ``$LGA_SPLITS_DIR``, else ``~/.cache/lga/splits``."""
    if path is None:
        path = os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(path).expanduser()


#: the sha256 of a file's bytes (hex): :func:`lga.util.hashing.file_sha256`
sha256_file = file_sha256


def download(url: str, dest: str | os.PathLike, sha256: str | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` atomically; verify ``sha256`` before the file gets its final name.

    Raises:
        SplitFileError: network or HTTP error (the message names the URL).
        ChecksumError: the downloaded bytes do not hash to ``sha256`` (nothing is left at ``dest``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for block in iter(lambda: resp.read(1 << 16), b""):
                        h.update(block)
                        out.write(block)
            except urllib.error.HTTPError as e:
                raise SplitFileError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError) as e:
                raise SplitFileError(f"cannot download {url}: {e}") from e
        actual = h.hexdigest()
        if sha256 is not None and actual != sha256:
            raise ChecksumError(dest, sha256, actual, url)
        make_readable(tmp)  # mkstemp makes 0600
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def fetch_split_file(dataset: str, split: str, fmt: str = "standard",
                     cache_dir: str | os.PathLike | None = None,
                     timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Path of a verified local copy of one list file, downloading it on first use.

    A cached copy is re-hashed on every call; one that does not match the registry raises
    :class:`ChecksumError` (delete it to download it again) and is never used. The cache folder is
    ``cache_dir``, else ``$LGA_SPLITS_DIR``, else ``~/.cache/lga/splits``; files keep the relative
    paths of :attr:`SplitFile.cache_path` (e.g. ``hmdb51/trainlist03.txt``).
    """
    entry = split_file(dataset, split, fmt)
    path = resolve_cache_dir(cache_dir) / entry.cache_path
    if not path.is_file():
        download(entry.download_url(), path, entry.sha256, timeout=timeout)
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ChecksumError(path, entry.sha256, actual)
    return path


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

_PREFIX = re.compile(r"^(train|val|test)(\d+)/(.+)$")


def _err(source, n, msg, line) -> SplitFileError:
    return SplitFileError(f"{source}:{n}: {msg}, got {line!r}")


def parse_split_lines(lines, list_format: str, split: str, source: str = "<lines>",
                      kinetics_names: bool = False) -> list[SplitEntry]:
    """Parse the lines of a list file in one of :data:`LIST_FORMATS`.

    Args:
        lines: the file's lines (blank lines are skipped).
        list_format: ``"arn"`` (``class/video``), ``"cmn"`` (``label/video``; the label may hold
            spaces), ``"otam"`` (``trainN/id``) or ``"clipfsar"`` (``trainN//folder/class/video.ext``
            or ``trainN/id``).
        split: ``train``, ``val`` or ``test``; a prefixed line for another split is an error.
        source: the file name used in error messages.
        kinetics_names: CLIP-FSAR Kinetics folders: turn ``_`` back into spaces.

    Raises:
        SplitFileError: a malformed line, naming ``source`` and the line number.
    """
    if list_format not in LIST_FORMATS:
        raise ValueError(f"list_format must be one of {LIST_FORMATS}, got {list_format!r}")
    out: list[SplitEntry] = []
    first_seen: dict[str, int] = {}
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if list_format in ("arn", "cmn"):
            if list_format == "arn" and line.count("/") != 1:
                raise _err(source, n, "expected 'class_folder/video_name'", line)
            name, _, vid = line.rpartition("/")
            if not name or not vid or name != name.strip() or vid != vid.strip():
                raise _err(source, n, "expected 'class/video' with both parts non-empty", line)
            idx = first_seen.setdefault(name, len(first_seen))
            out.append(SplitEntry(name, vid, split, idx))
            continue
        m = _PREFIX.match(line)
        if not m:
            raise _err(source, n, f"expected '{split}N/...'", line)
        prefix, idx, rest = m.group(1), int(m.group(2)), m.group(3)
        if prefix != split:
            raise _err(source, n, f"line belongs to split {prefix!r}, not {split!r}", line)
        if rest.startswith("/"):  # CLIP-FSAR path form: trainN//<folder>/<class>/<video>.<ext>
            if list_format != "clipfsar":
                raise _err(source, n, "expected 'trainN/video_id'", line)
            parts = rest.lstrip("/").split("/")
            if len(parts) < 2 or not parts[-1] or not parts[-2]:
                raise _err(source, n, "expected 'trainN//folder/class/video.ext'", line)
            name, vid = parts[-2], parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
            if kinetics_names:
                name = name.replace("_", " ")
            if not vid:
                raise _err(source, n, "empty video name", line)
            out.append(SplitEntry(name, vid, split, idx))
        else:
            if "/" in rest or rest != rest.strip():
                raise _err(source, n, "expected 'trainN/video_id'", line)
            out.append(SplitEntry(None, rest, split, idx))
    return out


def parse_split_file(path: str | os.PathLike, list_format: str, split: str,
                     kinetics_names: bool = False) -> list[SplitEntry]:
    """Parse a list file on disk (see :func:`parse_split_lines`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SplitFileError(f"{path}: not UTF-8 text ({e})") from e
    return parse_split_lines(text.splitlines(), list_format, split, str(path), kinetics_names)


def ssv2_full_class_names() -> dict[str, list[str | None]]:
    """The packaged SSv2-Full class names by split and label index (val: all ``None``)."""
    with open(Path(__file__).with_name("ssv2_full_classes.json"), encoding="utf-8") as f:
        data = json.load(f)
    return {s: list(data[s]) for s in SPLIT_NAMES}


def load_split(dataset: str, split: str, fmt: str = "standard",
               cache_dir: str | os.PathLike | None = None) -> list[SplitEntry]:
    """Fetch (if needed), verify and parse one split list of a benchmark.

    Class names are filled in where the line has none (see the module docstring): SSv2-Small
    CLIP-FSAR lists from the CMN list of the same split; SSv2-Full from the packaged names (val:
    ``None``).
    """
    entry = split_file(dataset, split, fmt)
    path = fetch_split_file(dataset, split, fmt, cache_dir)
    entries = parse_split_file(path, entry.list_format, split,
                               kinetics_names=(dataset == "kinetics100"))
    if dataset == "ssv2_full":
        names = ssv2_full_class_names()[split]
        bad = [e for e in entries if e.label_index >= len(names)]
        if bad:
            raise SplitFileError(f"{path}: label index {bad[0].label_index} has no class name "
                                 f"({len(names)} {split} classes are known)")
        entries = [SplitEntry(names[e.label_index], e.video_id, e.split, e.label_index) for e in entries]
    elif dataset == "ssv2_small" and fmt == "clipfsar":
        by_id = {e.video_id: e.class_name for e in load_split(dataset, split, "standard", cache_dir)}
        missing = [e.video_id for e in entries if e.video_id not in by_id]
        if missing:
            raise SplitFileError(f"{path}: {len(missing)} video ids are not in the CMN {split} list "
                                 f"(first: {missing[0]})")
        entries = [SplitEntry(by_id[e.video_id], e.video_id, e.split, e.label_index) for e in entries]
    return entries


def class_names(entries: list[SplitEntry]) -> list[str | None]:
    """Class names of a split ordered by label index (checks that each index has one name)."""
    by_index: dict[int, str | None] = {}
    for e in entries:
        if by_index.setdefault(e.label_index, e.class_name) != e.class_name:
            raise SplitFileError(f"label index {e.label_index} has two class names: "
                                 f"{by_index[e.label_index]!r} and {e.class_name!r}")
    if sorted(by_index) != list(range(len(by_index))):
        raise SplitFileError(f"label indices are not 0..{len(by_index) - 1}: {sorted(by_index)}")
    return [by_index[i] for i in range(len(by_index))]
