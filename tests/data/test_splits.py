"""The split registry, the checksummed downloader (against a loopback server) and the list parsers.

The shared copies of the split lists (fixture ``shared_splits``) serve as a pre-filled cache; no
test reaches the internet.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from lga.data import splits as S

# classes (train/val/test) and videos (train/val/test) per dataset, from the published split lists
COUNTS = {
    "hmdb51": ((31, 10, 10), (4280, 1194, 1292)),
    "ucf101": ((70, 10, 21), (9154, 1421, 2745)),
    "kinetics100": ((64, 12, 24), (6400, 1200, 2400)),
    "ssv2_small": ((64, 12, 24), (6400, 1200, 2400)),
    "ssv2_full": ((64, 12, 24), (67013, 1926, 2857)),
}


def test_registry_covers_every_dataset_split_and_format():
    assert set(S.REGISTRY) == {(d, f, s) for d in S.DATASETS for f in S.FORMATS for s in S.SPLIT_NAMES}
    commits = {"tobyperrett/trx": S.TRX[2], "ffmpbgrnn/CMN": S.CMN[2],
               "alibaba-mmai-research/CLIP-FSAR": S.CLIPFSAR[2]}
    for (ds, fmt, split), e in S.REGISTRY.items():
        assert (e.dataset, e.fmt, e.split) == (ds, fmt, split)
        assert e.url == f"https://raw.githubusercontent.com/{e.owner}/{e.repo}/{e.commit}/{e.path}"
        assert commits[f"{e.owner}/{e.repo}"] == e.commit and len(e.commit) == 40
        assert len(e.sha256) == 64
    assert S.split_file("hmdb51", "train").path == "splits/hmdb_ARN/trainlist03.txt"
    assert S.split_file("kinetics100", "val").path == "kinetics-100/val.list"
    assert S.split_file("ssv2_small", "test").path == "smsm-100/test.list"
    assert S.split_file("ssv2_full", "val").path == "splits/ssv2_OTAM/vallist07.txt"
    assert S.split_file("ucf101", "test", "clipfsar").path == "configs/projects/CLIPFSAR/ucf101/test_few_shot.txt"
    with pytest.raises(KeyError, match="unknown dataset"):
        S.split_file("hmdb", "train")


def test_registry_sha256_matches_the_shared_copies(shared_splits):
    for e in S.REGISTRY.values():
        path = shared_splits / e.cache_path
        assert path.is_file(), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e.sha256, e.cache_path


@pytest.mark.parametrize("fmt", S.FORMATS)
@pytest.mark.parametrize("dataset", S.DATASETS)
def test_class_and_video_counts(shared_splits, dataset, fmt):
    n_classes, n_videos = COUNTS[dataset]
    for split, nc, nv in zip(S.SPLIT_NAMES, n_classes, n_videos):
        entries = S.load_split(dataset, split, fmt, cache_dir=shared_splits)
        assert len(entries) == nv
        names = S.class_names(entries)
        assert len(names) == nc
        assert all(e.split == split for e in entries)
        if dataset != "ssv2_full" or split != "val":
            assert None not in names
        if dataset in ("kinetics100", "ssv2_small"):
            assert all(sum(e.label_index == i for e in entries) == 100 for i in range(nc))


@pytest.mark.parametrize("dataset", S.DATASETS)
def test_formats_agree_on_class_names_and_indices(shared_splits, dataset):
    """First-appearance numbering of ARN/CMN lists is CLIP-FSAR's numbering (and the derived tables')."""
    for split in S.SPLIT_NAMES:
        std = S.class_names(S.load_split(dataset, split, "standard", cache_dir=shared_splits))
        clip = S.class_names(S.load_split(dataset, split, "clipfsar", cache_dir=shared_splits))
        assert std == clip
        with open(shared_splits / dataset / f"classes_{split}.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        table = [r["class_name"] for r in rows]
        if dataset == "ssv2_full" and split == "val":
            assert std == [None] * 12
        else:
            assert std == table


def test_same_videos_in_both_formats_except_kinetics(shared_splits):
    for ds in ("hmdb51", "ucf101", "ssv2_small", "ssv2_full"):
        for split in S.SPLIT_NAMES:
            a = S.load_split(ds, split, "standard", cache_dir=shared_splits)
            b = S.load_split(ds, split, "clipfsar", cache_dir=shared_splits)
            assert a == b, (ds, split)
    a = S.load_split("kinetics100", "val", "standard", cache_dir=shared_splits)
    b = S.load_split("kinetics100", "val", "clipfsar", cache_dir=shared_splits)
    assert len({e.video_id[:11] for e in a} - {e.video_id[:11] for e in b}) == 41  # 41 videos differ between the two lists


def test_packaged_ssv2_full_names_match_the_derived_tables(shared_splits):
    names = S.ssv2_full_class_names()
    for split in ("train", "test"):
        with open(shared_splits / "ssv2_full" / f"classes_{split}.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert names[split] == [r["clipfsar_text_name"] for r in rows]
    assert names["val"] == [None] * 12


# ---------------------------------------------------------------------------------------------
# Downloader, against a loopback HTTP server
# ---------------------------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/error500/"):
            self.send_error(500, "boom")
            return
        super().do_GET()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A loopback HTTP server serving <owner>/<repo>/<commit>/<path> from a temporary folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _Handler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(S.MIRROR_ENV, base)
    try:
        yield root, base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _publish(root: Path, entry: S.SplitFile, data: bytes):
    p = root / entry.owner / entry.repo / entry.commit / entry.path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_download_good_file_then_served_from_cache(mirror, shared_splits, tmp_path):
    root, _ = mirror
    entry = S.split_file("hmdb51", "val")
    _publish(root, entry, (shared_splits / entry.cache_path).read_bytes())
    cache = tmp_path / "cache"
    path = S.fetch_split_file("hmdb51", "val", cache_dir=cache)
    assert path == cache / "hmdb51" / "vallist03.txt"
    assert S.sha256_file(path) == entry.sha256
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    # the server no longer has it: the cached copy is used
    shutil.rmtree(root / entry.owner)
    assert S.fetch_split_file("hmdb51", "val", cache_dir=cache) == path
    assert len(S.load_split("hmdb51", "val", cache_dir=cache)) == 1194


def test_cache_dir_from_environment(mirror, shared_splits, tmp_path, monkeypatch):
    root, _ = mirror
    entry = S.split_file("ssv2_small", "val", "clipfsar")
    _publish(root, entry, (shared_splits / entry.cache_path).read_bytes())
    monkeypatch.setenv(S.CACHE_ENV, str(tmp_path / "envcache"))
    path = S.fetch_split_file("ssv2_small", "val", "clipfsar")
    assert path == tmp_path / "envcache" / "ssv2_small" / "clipfsar_format" / "val_few_shot.txt"
    assert S.resolve_cache_dir("/x") == Path("/x")


def test_download_checksum_mismatch_is_an_error(mirror, shared_splits, tmp_path):
    root, base = mirror
    entry = S.split_file("ucf101", "val")
    good = (shared_splits / entry.cache_path).read_bytes()
    _publish(root, entry, good + b"Extra/v_Extra_g01_c01\n")
    cache = tmp_path / "cache"
    with pytest.raises(S.ChecksumError) as info:
        S.fetch_split_file("ucf101", "val", cache_dir=cache)
    msg = str(info.value)
    assert "vallist03.txt" in msg and entry.sha256 in msg and base in msg
    assert info.value.actual == hashlib.sha256(good + b"Extra/v_Extra_g01_c01\n").hexdigest()
    assert not (cache / entry.cache_path).exists()
    assert not list((cache / "ucf101").iterdir())  # the partial download is gone too


def test_corrupted_cached_file_is_never_used(tmp_path, shared_splits):
    entry = S.split_file("hmdb51", "test")
    cached = tmp_path / entry.cache_path
    cached.parent.mkdir(parents=True)
    cached.write_bytes((shared_splits / entry.cache_path).read_bytes().replace(b"fencing", b"fenzing", 1))
    with pytest.raises(S.ChecksumError, match="testlist03.txt.*expected " + entry.sha256):
        S.load_split("hmdb51", "test", cache_dir=tmp_path)


def test_download_server_errors(mirror, tmp_path, monkeypatch):
    root, base = mirror
    with pytest.raises(S.SplitFileError, match="HTTP 404"):  # not published
        S.fetch_split_file("hmdb51", "train", cache_dir=tmp_path)
    monkeypatch.setenv(S.MIRROR_ENV, base + "/error500")
    with pytest.raises(S.SplitFileError, match=r"cannot download .*error500.*HTTP 500"):
        S.fetch_split_file("hmdb51", "train", cache_dir=tmp_path)
    assert not (tmp_path / "hmdb51" / "trainlist03.txt").exists()


def test_download_connection_refused(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(S.SplitFileError, match="cannot download"):
        S.download(f"http://127.0.0.1:{port}/x.txt", tmp_path / "x.txt", timeout=5)


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

def test_parse_arn_numbers_classes_by_first_appearance():
    lines = ["brush_hair/a_0", "brush_hair/a_1", "", "catch/b_0", "brush_hair/a_2", "chew/c_0"]
    out = S.parse_split_lines(lines, "arn", "train")
    assert [e.label_index for e in out] == [0, 0, 1, 0, 2]
    assert out[2] == S.SplitEntry("catch", "b_0", "train", 1)


def test_parse_cmn_labels_with_spaces_and_brackets():
    lines = ["Twisting (wringing) something wet until water comes out/88644",
             "air drumming/-VtLx-mcPds_000012_000022"]
    out = S.parse_split_lines(lines, "cmn", "test")
    assert out[0] == S.SplitEntry("Twisting (wringing) something wet until water comes out", "88644", "test", 0)
    assert out[1].video_id == "-VtLx-mcPds_000012_000022" and out[1].label_index == 1


def test_parse_otam_and_clipfsar():
    assert S.parse_split_lines(["train8/78687", "train50/42326"], "otam", "train") == [
        S.SplitEntry(None, "78687", "train", 8), S.SplitEntry(None, "42326", "train", 50)]
    out = S.parse_split_lines(["val0//val_256/baking_cookies/-514AQUrSow.mp4",
                               "val3//videos/brush_hair/(Rad)x_f_0.avi", "val2/51958"],
                              "clipfsar", "val", kinetics_names=True)
    assert out == [S.SplitEntry("baking cookies", "-514AQUrSow", "val", 0),
                   S.SplitEntry("brush hair", "(Rad)x_f_0", "val", 3),
                   S.SplitEntry(None, "51958", "val", 2)]
    out = S.parse_split_lines(["test1//videos/brush_hair/x.avi"], "clipfsar", "test")
    assert out[0].class_name == "brush_hair"


@pytest.mark.parametrize("fmt,line,why", [
    ("arn", "brush_hair", "class_folder/video_name"),
    ("arn", "a/b/c", "class_folder/video_name"),
    ("arn", "/video", "non-empty"),
    ("cmn", "label/", "non-empty"),
    ("otam", "train/123", "trainN"),
    ("otam", "trainx3/123", "trainN"),
    ("otam", "test3/123", "belongs to split 'test'"),
    ("otam", "train3//videos/a/b.avi", "trainN/video_id"),
    ("clipfsar", "train3//videos/", "folder/class/video"),
    ("clipfsar", "train3/a/b", "trainN/video_id"),
])
def test_malformed_lines_name_file_and_line(fmt, line, why):
    with pytest.raises(S.SplitFileError) as info:
        S.parse_split_lines(["train0/1" if fmt in ("otam", "clipfsar") else "ok/1", "", line],
                            fmt, "train", source="lists/x.txt")
    assert str(info.value).startswith("lists/x.txt:3: ")
    assert why in str(info.value) and repr(line) in str(info.value)


def test_parse_split_file_reports_the_path(tmp_path):
    p = tmp_path / "trainlist03.txt"
    p.write_text("a/1\nb/2/3\n")
    with pytest.raises(S.SplitFileError, match=f"{p}:2: "):
        S.parse_split_file(p, "arn", "train")
    p.write_bytes(b"\xff\xfe/1\n")
    with pytest.raises(S.SplitFileError, match="not UTF-8"):
        S.parse_split_file(p, "arn", "train")


def test_class_names_checks_consistency():
    with pytest.raises(S.SplitFileError, match="two class names"):
        S.class_names([S.SplitEntry("a", "1", "train", 0), S.SplitEntry("b", "2", "train", 0)])
    with pytest.raises(S.SplitFileError, match="not 0..1"):
        S.class_names([S.SplitEntry("a", "1", "train", 0), S.SplitEntry("b", "2", "train", 2)])
