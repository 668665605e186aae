"""Every preparer end to end, on small raw downloads fabricated here in each dataset's packaging.

The videos are real encoded files (``write_video``: .avi/MPEG-4 for HMDB51 and UCF101, .mp4/H.264
for Kinetics, .webm/VP8 for SSv2) named after real entries of the real split lists (read from the
shared copies, used as the split cache), so the split matching is exercised; most of each split
is therefore "missing", which is what ``allow_missing`` is for. Archives are real zip / tar.gz
files; RAR cannot be written by free tools, so the RAR path is exercised on tiny RAR 4 archives
built here by hand (stored, uncompressed members) when libarchive-c is installed.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from lga.data import layout as L
from lga.data import prepare as P
from lga.data import splits as S
from lga.data.prepare_archives import ArchiveError, extract_archive, extract_tar_parts, have_libarchive
from lga.data.prepare_ssv2 import AnnotationError
from lga.data.video import read_video, write_video


# ---------------------------------------------------------------------------------------------
# Fabrication helpers
# ---------------------------------------------------------------------------------------------

def _frames(t: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A moving colour gradient (compresses well, decodes fast)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 255, 3)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        for c in range(3):
            out[i, :, :, c] = (base[c] + 3 * x + 2 * y + 8 * i * (c + 1)) % 256
    return out


CODEC = {".avi": "mpeg4", ".mp4": "libx264", ".webm": "libvpx"}


def make_video(path: Path, t: int = 16, fps: int = 12, seed: int = 0, h: int = 48, w: int = 64) -> Path:
    return write_video(path, _frames(t, h, w, seed), fps=fps, codec=CODEC[path.suffix])


def make_corrupt(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        good = make_video(path.with_name("tmp_" + path.name), t=16)
        path.write_bytes(good.read_bytes()[:300])
        good.unlink()
    elif kind == "short":
        make_video(path, t=4)
    return path


def pick(dataset, split, shared, n_classes, per_class, skip_classes=0):
    """The first ``per_class`` entries of classes ``skip_classes .. skip_classes+n_classes-1``."""
    entries = S.load_split(dataset, split, cache_dir=shared)
    out = []
    for i in range(skip_classes, skip_classes + n_classes):
        out += [e for e in entries if e.label_index == i][:per_class]
    return out


def _rar_block(htype: int, flags: int, body: bytes, data: bytes = b"") -> bytes:
    rest = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest + data


def make_rar4(path: Path, members: dict[str, bytes]) -> Path:
    """A RAR 4 archive with stored (uncompressed) members, built from the format's block layout."""
    out = b"Rar!\x1a\x07\x00" + _rar_block(0x73, 0, struct.pack("<HI", 0, 0))
    for name, data in members.items():
        nb = name.encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), 0x5A210000,
                           20, 0x30, len(nb), 0o100644) + nb
        out += _rar_block(0x74, 0x8000, body, data)
    out += _rar_block(0x7B, 0x4000, b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out)
    return path


def zip_folder(zip_path: Path, folder: Path, arc_root: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{arc_root}{p.relative_to(folder).as_posix()}")
    return zip_path


def read_layout(out: Path):
    return ({s: L.read_split_list(out, s) for s in L.SPLITS}, L.read_classes(out),
            json.loads((out / "dataset.json").read_text()))


def layout_bytes(out: Path) -> dict[str, bytes]:
    files = ["dataset.json", "classes.tsv"] + [f"splits/{s}.txt" for s in L.SPLITS]
    return {f: (out / f).read_bytes() for f in files}


def rel(class_dir: str, e: S.SplitEntry) -> str:
    return f"{class_dir}/{e.video_id}"


# ---------------------------------------------------------------------------------------------
# HMDB51: a zip of per-class zips (the shape of hmdb51_org.rar), bad videos, resumption
# ---------------------------------------------------------------------------------------------

def test_hmdb51_end_to_end_with_bad_videos_and_resume(shared_splits, tmp_path):
    train = pick("hmdb51", "train", shared_splits, 2, 4)          # brush_hair x4, catch x4
    val = pick("hmdb51", "val", shared_splits, 1, 2)              # cartwheel x2
    test = pick("hmdb51", "test", shared_splits, 1, 2)            # fencing x2
    good = [train[0], train[1], train[4], val[0], test[0], test[1]]
    bad = {train[2]: "empty", train[3]: "garbage", train[5]: "short", val[1]: "truncated"}
    # train[6], train[7] are listed but never downloaded: missing
    staging = tmp_path / "staging"
    for i, e in enumerate(good):
        make_video(staging / e.class_name / e.class_name / f"{e.video_id}.avi", t=14, fps=30, seed=i)
    for e, kind in bad.items():
        make_corrupt(staging / e.class_name / e.class_name / f"{e.video_id}.avi", kind)
    inner = tmp_path / "inner"
    inner.mkdir()
    for cls_folder in sorted(staging.iterdir()):
        zip_folder(inner / f"{cls_folder.name}.zip", cls_folder)
    raw = tmp_path / "download"
    raw.mkdir()
    zip_folder(raw / "hmdb51_org.zip", inner)
    out = tmp_path / "hmdb51"

    with pytest.raises(P.MissingVideosError) as info:
        P.prepare("hmdb51", raw, out, workers=2, cache_dir=shared_splits, progress=False)
    msg = str(info.value)
    assert "train/brush_hair: 107 missing" not in msg and "train/wave: 104 missing" in msg
    assert "--allow-missing" in msg and (out / "missing.tsv").is_file()
    assert not (out / "videos").exists()

    report = P.prepare("hmdb51", raw, out, workers=2, cache_dir=shared_splits, progress=False,
                       allow_missing=True)
    assert sorted(report.prepared) == sorted(rel(e.class_name, e) for e in good)
    reasons = {r: why for r, _, why in report.corrupt}
    assert set(reasons) == {rel(e.class_name, e) for e in bad}
    assert "0 bytes" in reasons[rel(train[2].class_name, train[2])]
    assert "cannot be decoded" in reasons[rel(train[3].class_name, train[3])]
    assert "fewer than the 8 needed" in reasons[rel(train[5].class_name, train[5])]
    assert len(report.missing) == 6766 - len(good) - len(bad)
    assert ("train", "catch", train[6].video_id) in report.missing
    assert report.missing_per_class()["train/catch"] == 102 - 3 + 1  # 102 listed, 3 provided
    assert "corrupt (left out)" in report.summary()

    lists, classes, meta = read_layout(out)
    assert lists["train"] == [rel(e.class_name, e) for e in (train[0], train[1], train[4])]
    assert lists["val"] == [rel(val[0].class_name, val[0])]
    assert lists["test"] == [rel(e.class_name, e) for e in test]
    assert [sum(c.split == s for c in classes) for s in L.SPLITS] == [31, 10, 10]
    assert classes[0] == L.ClassEntry("train", 0, "brush_hair", "brush_hair")
    assert meta["name"] == "hmdb51" and meta["num_classes"] == 51
    assert meta["splits"]["train"] == {"num_classes": 31, "num_videos": 3, "num_listed": 4280}
    assert meta["split_files"]["train"]["sha256"] == S.split_file("hmdb51", "train").sha256
    assert len(meta["left_out"]["corrupt"]) == 4
    for entry in lists["train"] + lists["val"] + lists["test"]:
        video = L.find_video(out, entry)
        assert video.suffix == ".mp4"
        x = read_video(video)
        assert tuple(x.shape) == (8, 256, 342, 3)  # 48x64 -> short side 256, even width
    assert not (out / P.EXTRACT_DIRNAME).exists()  # extracted raw videos removed

    before = layout_bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mp4")}
    again = P.prepare("hmdb51", raw, out, workers=2, cache_dir=shared_splits, progress=False,
                      allow_missing=True)
    assert again.prepared == [] and sorted(again.skipped) == sorted(report.prepared)
    assert len(again.corrupt) == 4  # bad videos are tried (and reported) again
    assert layout_bytes(out) == before
    assert {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mp4")} == mtimes


@pytest.mark.skipif(not have_libarchive(), reason="libarchive-c is not installed")
def test_hmdb51_from_a_rar_of_rars(shared_splits, tmp_path):
    """The real packaging of HMDB51 (hmdb51_org.rar holding <class>.rar files), read by libarchive."""
    picks = pick("hmdb51", "val", shared_splits, 2, 2)
    inner = {}
    for i, e in enumerate(picks):
        v = make_video(tmp_path / "v" / f"{e.video_id}.avi", t=10, seed=i)
        inner.setdefault(e.class_name, {})[f"{e.class_name}/{e.video_id}.avi"] = v.read_bytes()
    members = {f"{c}.rar": make_rar4(tmp_path / "r" / f"{c}.rar", m).read_bytes() for c, m in inner.items()}
    raw = make_rar4(tmp_path / "dl" / "hmdb51_org.rar", members)
    out = tmp_path / "out"
    report = P.prepare("hmdb51", raw, out, workers=1, cache_dir=shared_splits, progress=False,
                       allow_missing=True, short_side=32)
    assert sorted(report.prepared) == sorted(rel(e.class_name, e) for e in picks)
    assert not report.corrupt
    assert L.read_split_list(out, "val") == [rel(e.class_name, e) for e in picks]
    assert read_video(L.find_video(out, rel(picks[0].class_name, picks[0]))).shape[1:] == (32, 42, 3)


# ---------------------------------------------------------------------------------------------
# UCF101: a .tar.gz of UCF-101/<Class>/v_*.avi; resampling options
# ---------------------------------------------------------------------------------------------

def test_ucf101_from_tarball_with_fps_and_max_frames(shared_splits, tmp_path):
    picks = (pick("ucf101", "train", shared_splits, 2, 1) + pick("ucf101", "val", shared_splits, 1, 1)
             + pick("ucf101", "test", shared_splits, 1, 2))
    raw = tmp_path / "UCF101.tar.gz"
    with tarfile.open(raw, "w:gz") as tar:
        for i, e in enumerate(picks):
            v = make_video(tmp_path / "v" / f"{e.video_id}.avi", t=50, fps=25, seed=i)
            tar.add(v, f"UCF-101/{e.class_name}/{e.video_id}.avi")
    out = tmp_path / "ucf"
    report = P.prepare("ucf101", [raw], out, workers=2, cache_dir=shared_splits, progress=False,
                       allow_missing=True, short_side=32, fps=10)
    assert len(report.prepared) == 5 and not report.corrupt
    lists, classes, meta = read_layout(out)
    assert lists["test"] == [rel(e.class_name, e) for e in picks[3:]]
    assert [sum(c.split == s for c in classes) for s in L.SPLITS] == [70, 10, 21]
    assert meta["video"]["fps"] == 10
    from lga.data.video import count_frames

    video = L.find_video(out, lists["train"][0])
    assert count_frames(video) == 20  # 2 s at 25 fps -> 10 fps
    # max_frames: a fresh output, frames evenly spaced over the whole video
    out2 = tmp_path / "ucf2"
    P.prepare("ucf101", [raw], out2, workers=0, cache_dir=shared_splits, progress=False,
              allow_missing=True, short_side=32, max_frames=12)
    assert count_frames(L.find_video(out2, lists["train"][0])) == 12


# ---------------------------------------------------------------------------------------------
# Kinetics-100: mp4 per YouTube id, missing videos, trimming
# ---------------------------------------------------------------------------------------------

def test_kinetics100_missing_videos_and_youtube_id_matching(shared_splits, tmp_path):
    train = pick("kinetics100", "train", shared_splits, 2, 3)
    val = pick("kinetics100", "val", shared_splits, 1, 1)
    test = pick("kinetics100", "test", shared_splits, 1, 2)
    raw = tmp_path / "k400"
    exact = [train[0], train[1], train[3], test[0]]
    for i, e in enumerate(exact):
        make_video(raw / "train" / e.class_name.replace(" ", "_") / f"{e.video_id}.mp4", t=12, seed=i)
    # named by YouTube id only, untrimmed: 30 s at 2 fps; the split's window is cut out of it
    untrimmed = train[4]
    start, end = (int(x) for x in untrimmed.video_id.split("_")[-2:])
    make_video(raw / "full" / f"{untrimmed.video_id[:11]}.mp4", t=2 * max(30, end + 2), fps=2)
    # other timestamps than the list's
    make_video(raw / "val" / f"{val[0].video_id[:11]}_000001_000011.mp4", t=12)
    # a CVDF-style tarball holding one more
    v = make_video(tmp_path / "tmp" / f"{test[1].video_id}.mp4", t=12)
    with tarfile.open(raw / "part_0.tar.gz", "w:gz") as tar:
        tar.add(v, f"train/{v.name}")
    out = tmp_path / "k100"
    code = P.main(["--raw", str(raw), "--out", str(out), "--cache-dir", str(shared_splits),
                   "--workers", "2", "--no-progress", "--short-side", "32"], dataset="kinetics100")
    assert code == 1  # missing videos, no --allow-missing
    missing = (out / "missing.tsv").read_text().splitlines()
    assert missing[0] == "split\tclass_name\tvideo_id" and len(missing) == 1 + 10000 - 7
    assert f"train\t{train[2].class_name}\t{train[2].video_id}" in missing

    report = P.prepare("kinetics100", [raw], out, workers=2, cache_dir=shared_splits, progress=False,
                       allow_missing=True, short_side=32)
    cd = lambda e: e.class_name.replace(" ", "_")  # noqa: E731
    assert sorted(report.prepared) == sorted(rel(cd(e), e) for e in exact + [untrimmed, val[0], test[1]])
    assert report.missing_per_class()[f"train/{train[0].class_name}"] == 100 - 2
    _, classes, meta = read_layout(out)
    assert classes[0] == L.ClassEntry("train", 0, "air_drumming", "air drumming")
    assert meta["splits"]["val"]["num_videos"] == 1 and len(meta["left_out"]["missing"]) == 10000 - 7
    trimmed = read_video(L.find_video(out, rel(cd(untrimmed), untrimmed)), num_frames=8, return_indices=True)
    from lga.data.video import count_frames

    assert count_frames(L.find_video(out, rel(cd(untrimmed), untrimmed))) == 2 * (end - start)
    assert trimmed[0].shape == (8, 32, 42, 3)


# ---------------------------------------------------------------------------------------------
# SSv2-Small: webm inside the numbered pieces of one tar.gz (some zipped, as Qualcomm ships them)
# ---------------------------------------------------------------------------------------------

def test_ssv2_small_from_archive_pieces(shared_splits, tmp_path):
    picks = (pick("ssv2_small", "train", shared_splits, 2, 2) + pick("ssv2_small", "val", shared_splits, 1, 1)
             + pick("ssv2_small", "test", shared_splits, 1, 1))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, e in enumerate(picks[:-1]):
            v = make_video(tmp_path / "v" / f"{e.video_id}.webm", t=10, seed=i)
            tar.add(v, f"20bn-something-something-v2/{v.name}")
        bad = make_corrupt(tmp_path / "v" / f"{picks[-1].video_id}.webm", "truncated")
        tar.add(bad, f"20bn-something-something-v2/{bad.name}")
    data = buf.getvalue()
    raw = tmp_path / "ssv2"
    raw.mkdir()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for k in range(3):
        piece = data[cuts[k]:cuts[k + 1]]
        name = f"20bn-something-something-v2-{k:02d}"
        if k < 2:
            with zipfile.ZipFile(raw / f"{name}.zip", "w") as z:
                z.writestr(name, piece)
        if k > 0:  # piece 01 is there both zipped and unzipped: read once
            (raw / name).write_bytes(piece)
    out = tmp_path / "small"
    report = P.prepare("ssv2_small", raw, out, workers=2, cache_dir=shared_splits, progress=False,
                       allow_missing=True, short_side=32)
    assert sorted(report.prepared) == sorted(rel(P.class_dir_name(e.class_name), e) for e in picks[:-1])
    assert [r for r, _, _ in report.corrupt] == [rel(P.class_dir_name(picks[-1].class_name), picks[-1])]
    lists, classes, _ = read_layout(out)
    assert classes[0] == L.ClassEntry("train", 0, "Pouring_something_into_something",
                                      "Pouring something into something")
    assert lists["test"] == []
    assert read_video(L.find_video(out, lists["val"][0])).shape == (8, 32, 42, 3)


def test_archive_pieces_with_one_missing_is_a_clear_error(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("x/1.webm")
        payload = os.urandom(50000)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    (tmp_path / "20bn-something-something-v2-00").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="some missing or incomplete"):
        extract_tar_parts([tmp_path / "20bn-something-something-v2-00"], tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# SSv2-Full: class names from the annotations, the val names included
# ---------------------------------------------------------------------------------------------

def test_ssv2_full_names_classes_from_annotations(shared_splits, tmp_path):
    full = {s: S.load_split("ssv2_full", s, cache_dir=shared_splits) for s in L.SPLITS}
    train = [e for e in full["train"] if e.label_index == 0][:2] + [e for e in full["train"] if e.label_index == 5][:1]
    val0 = [e for e in full["val"] if e.label_index == 0][:2]
    val8 = [e for e in full["val"] if e.label_index == 8][:1]
    test = [e for e in full["test"] if e.label_index == 3][:1]
    raw = tmp_path / "ssv2"
    for i, e in enumerate(train + val0 + val8 + test):
        make_video(raw / "20bn-something-something-v2" / f"{e.video_id}.webm", t=9, seed=i)
    names = S.ssv2_full_class_names()
    ann_train = [{"id": e.video_id, "label": "x", "template": names["train"][e.label_index], "placeholders": []}
                 for e in train]
    ann_train.append({"id": "999999999", "label": "y", "template": "Unrelated [something]", "placeholders": []})
    ann_val = ([{"id": e.video_id, "label": "x", "template": "Pretending to poke [something]"} for e in val0]
               + [{"id": val8[0].video_id, "template": "Scooping [something] up with [something]"}]
               + [{"id": test[0].video_id, "template": names["test"][3].replace("[something]", "[Something]", 1)}])
    labels = tmp_path / "labels.zip"
    with zipfile.ZipFile(labels, "w") as z:
        z.writestr("labels/train.json", json.dumps(ann_train))
        z.writestr("labels/validation.json", json.dumps(ann_val))
        z.writestr("labels/labels.json", json.dumps({"Unrelated something": "0"}))

    with pytest.raises(AnnotationError, match="--annotations"):
        P.prepare("ssv2_full", raw, tmp_path / "nolabels", workers=1, cache_dir=shared_splits,
                  progress=False, allow_missing=True)
    out = tmp_path / "full"
    report = P.prepare("ssv2_full", raw, out, workers=2, cache_dir=shared_splits, progress=False,
                       allow_missing=True, short_side=32, annotations=labels)
    assert len(report.prepared) == 7 and not report.corrupt
    lists, classes, meta = read_layout(out)
    by = {(c.split, c.label_index): c for c in classes}
    assert by[("val", 0)] == L.ClassEntry("val", 0, "Pretending_to_poke_something", "Pretending to poke [something]")
    assert by[("val", 8)].class_name == "Scooping [something] up with [something]"
    assert by[("val", 1)] == L.ClassEntry("val", 1, "val_class_01", "val class 1 (unnamed)")
    assert by[("train", 0)].class_name == "Bending [something] until it breaks"
    assert by[("train", 1)].class_name == names["train"][1]  # no video here: the shipped name
    assert by[("test", 3)].class_name.lower() == names["test"][3].lower()  # same label, other case
    assert lists["val"] == [f"Pretending_to_poke_something/{e.video_id}" for e in val0] + \
        [f"Scooping_something_up_with_something/{val8[0].video_id}"]
    assert meta["class_names"]["val"]["source"][0] == "annotations"
    assert meta["class_names"]["val"]["source"][1] == "none"
    assert meta["class_names"]["train"]["source"][1] == "package"


# ---------------------------------------------------------------------------------------------
# Pieces: worker pool, conversion, archives, command line
# ---------------------------------------------------------------------------------------------

def _task(kind, x=0.0):
    if kind == "sleep":
        time.sleep(x)
        return x
    if kind == "die":
        os._exit(3)
    raise ValueError("bad input")


def test_run_parallel_survives_errors_crashes_and_hangs():
    tasks = [(("sleep", 0.01), {}), (("sleep", 60.0), {}), (("die",), {}), (("boom",), {}),
             (("sleep", 0.02), {})]
    results = {i: (ok, res) for i, ok, res in P.run_parallel(_task, tasks, workers=2, timeout=2.0)}
    assert results[0] == (True, 0.01) and results[4] == (True, 0.02)
    assert results[1][0] is False and "timed out after 2 s" in results[1][1]
    assert results[2][0] is False and "worker process died (exit code 3)" in results[2][1]
    assert results[3] == (False, "ValueError: bad input")
    assert [r for _, r, _ in P.run_parallel(_task, tasks[:1] + tasks[3:4], workers=0)] == [True, False]


def test_output_size_keeps_aspect_and_even_sizes():
    assert P.output_size(320, 240, 256) == (342, 256)
    assert P.output_size(240, 320, 256) == (256, 342)
    assert P.output_size(455, 256, 256) == (456, 256)
    assert P.output_size(175, 99, 0) == (174, 98)


def test_convert_video_errors_name_the_file(tmp_path):
    with pytest.raises(P.VideoError, match="does not exist"):
        P.convert_video(tmp_path / "nope.avi", tmp_path / "o.mp4")
    p = make_corrupt(tmp_path / "a.webm", "garbage")
    with pytest.raises(P.VideoError, match=f"{p}: cannot be decoded"):
        P.convert_video(p, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_extract_skips_unsafe_member_names(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("../evil.avi", b"x")
        f.writestr("/abs.avi", b"x")
        f.writestr("ok/good.avi", b"y")
        f.writestr("ok/skip.txt", b"z")
    got = extract_archive(z, tmp_path / "d", want=lambda n: n.endswith(".avi"))
    assert got == [tmp_path / "d" / "ok" / "good.avi"]
    assert not (tmp_path / "evil.avi").exists()


@pytest.mark.skipif(not have_libarchive(), reason="libarchive-c is not installed")
def test_libarchive_backend_on_zip_and_hand_made_rar(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("c/v.avi", b"abc")
    assert extract_archive(z, tmp_path / "z", backend="libarchive") == [tmp_path / "z" / "c" / "v.avi"]
    r = make_rar4(tmp_path / "a.rar", {"c/v.avi": b"hello", "c/w.txt": b"no"})
    got = extract_archive(r, tmp_path / "r", want=lambda n: n.endswith(".avi"))
    assert got == [tmp_path / "r" / "c" / "v.avi"] and got[0].read_bytes() == b"hello"
    (tmp_path / "bad.rar").write_bytes(b"Rar!\x1a\x07\x00garbage")
    with pytest.raises(ArchiveError, match="bad.rar: cannot be extracted"):
        extract_archive(tmp_path / "bad.rar", tmp_path / "b")


def test_rar_without_any_backend_says_what_to_install(tmp_path, monkeypatch):
    import lga.data.prepare_archives as A

    monkeypatch.setattr(A, "have_libarchive", lambda: False)
    monkeypatch.setattr(A, "find_tool", lambda: None)
    with pytest.raises(ArchiveError, match="pip install libarchive-c"):
        extract_archive(make_rar4(tmp_path / "x.rar", {"a": b"b"}), tmp_path / "o")


def test_data_scripts_call_main(repo_root, tmp_path, monkeypatch, capsys):
    import runpy

    for ds in S.DATASETS:
        script = repo_root / "data_scripts" / f"prepare_{ds}.py"
        monkeypatch.setattr(sys, "argv", [str(script), "--help"])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(script), run_name="__main__")
        assert info.value.code == 0
        text = capsys.readouterr().out
        assert f"prepare_{ds}.py" in text and "--allow-missing" in text
        assert P.DATASETS[ds]["download"].split()[0] in text


def test_main_with_dataset_argument(shared_splits, tmp_path, capsys):
    e = pick("hmdb51", "test", shared_splits, 1, 1)[0]
    make_video(tmp_path / "raw" / e.class_name / f"{e.video_id}.avi", t=9)
    code = P.main(["hmdb51", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                   "--cache-dir", str(shared_splits), "--workers", "1", "--no-progress",
                   "--allow-missing", "--short-side", "32"])
    assert code == 0
    assert "prepared 1, skipped (already done) 0, corrupt 0" in capsys.readouterr().out
    assert P.main(["hmdb51", "--raw", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2"),
                   "--cache-dir", str(shared_splits), "--no-progress"]) == 1


# ---------------------------------------------------------------------------------------------
# Reproducible, self-consistent output folders (issue 15)
# ---------------------------------------------------------------------------------------------

def _hmdb_raw(shared_splits, tmp_path, n=4, size=(48, 64)) -> tuple[Path, list]:
    """A folder of HMDB51-style .avi files (MPEG-4: a blob moving over noise) for ``n`` test-split videos."""
    picks = pick("hmdb51", "test", shared_splits, 2, n // 2)
    raw = tmp_path / "raw"
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    for i, e in enumerate(picks):
        rng = np.random.default_rng(i)
        (cx, cy), (vx, vy), color = rng.uniform(10, 38, 2), rng.uniform(-1.5, 1.5, 2), rng.integers(60, 200, 3)
        frames = [np.clip(40 + ((x - cx - vx * t) ** 2 + (y - cy - vy * t) ** 2 < 60)[..., None] * color
                          + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8) for t in range(24)]
        write_video(raw / e.class_name / f"{e.video_id}.avi", np.stack(frames), fps=12, codec="mpeg4")
    return raw, picks


def _prepare_hmdb(raw, out, shared_splits, **kw):
    kw = {"workers": 2, "short_side": 96, **kw}
    return P.prepare("hmdb51", raw, out, cache_dir=shared_splits, progress=False, allow_missing=True, **kw)


@pytest.mark.slow          # prepares twice, once by the command line in a fresh process under CPU load
def test_preparing_twice_gives_the_same_videos(shared_splits, tmp_path):
    """Same raw input: once here (all CPUs), once by the command line in a fresh process with other
    leftover memory (``MALLOC_PERTURB_``), 2 workers on one CPU and the CPU loaded: the same bytes and
    decoded frames (see tests/data/test_reproducible_data.py for what each condition provokes)."""
    from test_reproducible_data import assert_same_videos, cpu_load, in_fresh_process

    raw, picks = _hmdb_raw(shared_splits, tmp_path)
    _prepare_hmdb(raw, tmp_path / "a", shared_splits, workers=0, short_side=256)
    with cpu_load():
        in_fresh_process("-m", "lga", "prepare", "hmdb51", "--raw", str(raw), "--out", str(tmp_path / "b"),
                         "--cache-dir", str(shared_splits), "--workers", "2", "--allow-missing", "--no-progress",
                         perturb="165", one_cpu=True, timeout=300)
    assert assert_same_videos(tmp_path / "a", tmp_path / "b") == len(picks)


def test_rerun_with_other_settings_is_refused_or_redone(shared_splits, tmp_path):
    raw, picks = _hmdb_raw(shared_splits, tmp_path, n=2)
    out = tmp_path / "out"
    _prepare_hmdb(raw, out, shared_splits, short_side=32)
    before = layout_bytes(out)
    video = L.find_video(out, rel(picks[0].class_name, picks[0]))
    for other, named in ((dict(short_side=48), "short_side=32 (asked: 48)"),
                         (dict(short_side=32, max_frames=10), "max_frames=None (asked: 10)")):
        with pytest.raises(P.PrepareError) as info:
            _prepare_hmdb(raw, out, shared_splits, **other)
        msg = str(info.value)
        assert str(out) in msg and named in msg and "--overwrite" in msg and "--out" in msg
        assert layout_bytes(out) == before                       # the folder is left as it was
        assert read_video(video).shape[1:] == (32, 42, 3)
    assert P.main(["hmdb51", "--raw", str(raw), "--out", str(out), "--cache-dir", str(shared_splits),
                   "--no-progress", "--allow-missing", "--short-side", "48"]) == 1
    report = _prepare_hmdb(raw, out, shared_splits, short_side=48, overwrite=True)
    assert sorted(report.prepared) == sorted(rel(e.class_name, e) for e in picks) and not report.skipped
    _, _, meta = read_layout(out)
    assert meta["video"]["short_side"] == 48 and not (out / P.SETTINGS_FILE).exists()
    assert read_video(video).shape[1:] == (48, 64, 3)


def test_full_disk_stops_the_run_and_the_folder_is_refused_until_completed(shared_splits, tmp_path, monkeypatch):
    import errno

    from lga.data import prepare_convert   # convert_video writes the videos
    from lga.data.dataset import VideoDataset

    raw, picks = _hmdb_raw(shared_splits, tmp_path, n=4)
    full = picks[2].video_id
    real_write = prepare_convert.write_video

    def write_or_fail(path, *a, **kw):  # runs in the (forked) workers too
        if full in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, *a, **kw)

    monkeypatch.setattr(prepare_convert, "write_video", write_or_fail)
    out = tmp_path / "out"
    for workers in (2, 0):
        with pytest.raises(P.PrepareError) as info:
            _prepare_hmdb(raw, out, shared_splits, short_side=32, workers=workers)
        msg = str(info.value)
        assert "No space left on device" in msg and "disk" in msg and "full" in msg and "corrupt" not in msg
        assert "run the same command again" in msg and "no dataset.json" in msg
        assert not (out / "dataset.json").exists() and not (out / "splits").exists()
        assert not [p for p in (out / "videos").rglob(".*")]     # no partial files left behind
        with pytest.raises(FileNotFoundError, match="not a complete dataset.*run the same command again"):
            VideoDataset(out, "test")
    with pytest.raises(P.PrepareError, match="short_side=32"):   # the record of the run says how
        _prepare_hmdb(raw, out, shared_splits, short_side=64)
    monkeypatch.setattr(prepare_convert, "write_video", real_write)
    report = _prepare_hmdb(raw, out, shared_splits, short_side=32)
    everything = {rel(e.class_name, e) for e in picks}
    assert rel(picks[2].class_name, picks[2]) in report.prepared and len(report.skipped) >= 2
    assert set(report.prepared) | set(report.skipped) == everything and not report.corrupt
    assert len(VideoDataset(out, "test")) == 4 and not (out / P.SETTINGS_FILE).exists()


def test_dataset_json_that_cannot_be_written_leaves_the_folder_incomplete(shared_splits, tmp_path, monkeypatch):
    import errno

    raw, _ = _hmdb_raw(shared_splits, tmp_path, n=2)
    real = P.write_json

    def write_json(path, obj):
        if Path(path).name == "dataset.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(P, "write_json", write_json)
    with pytest.raises(P.PrepareError, match="dataset.json.*full"):
        _prepare_hmdb(raw, tmp_path / "out", shared_splits, short_side=32)
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_full_disk_while_listing_missing_videos_says_what_to_do(shared_splits, tmp_path, monkeypatch):
    """missing.tsv is the first file a run writes: a full disk there is the guided error, not a
    traceback; and the message tells a complete folder (left as it was) from an incomplete one."""
    import errno

    raw, _ = _hmdb_raw(shared_splits, tmp_path, n=2)
    out = tmp_path / "out"
    real = L.atomic_write_text

    def full(path, text):
        if Path(path).name == "missing.tsv":
            raise OSError(errno.ENOSPC, "No space left on device")   # as f.write raises it: no file name
        real(path, text)

    monkeypatch.setattr(L, "atomic_write_text", full)
    with pytest.raises(P.PrepareError) as info:
        _prepare_hmdb(raw, out, shared_splits, short_side=32)
    assert f"{out} is incomplete (it has no dataset.json" in str(info.value) and "full" in str(info.value)
    monkeypatch.setattr(L, "atomic_write_text", real)
    _prepare_hmdb(raw, out, shared_splits, short_side=32)
    before = layout_bytes(out)
    monkeypatch.setattr(L, "atomic_write_text", full)
    with pytest.raises(P.PrepareError) as info:
        _prepare_hmdb(raw, out, shared_splits, short_side=32)
    msg = str(info.value)
    assert "as the earlier preparation left it" in msg and "no dataset.json" not in msg and "full" in msg
    assert layout_bytes(out) == before


WORKER_PARENT = """
import multiprocessing as mp, sys, time
from lga.data.prepare import run_parallel

def task(x):
    time.sleep(x)
    return x

results = run_parallel(task, [((0.01,), {}), ((300,), {}), ((300,), {})], workers=2, timeout=None)
next(results)
print(" ".join(str(p.pid) for p in mp.active_children()), flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie is dead
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_workers_die_with_a_killed_parent(repo_root):
    import signal

    parent = subprocess.Popen([sys.executable, "-c", WORKER_PARENT], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(repo_root)))
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors


# ---------------------------------------------------------------------------------------------
# Archives: caps and members Python cannot read
# ---------------------------------------------------------------------------------------------

def _patch_zip(path: Path, method: int | None = None, flags: int | None = None) -> Path:
    """Rewrite the compression method / flag bits of every member (local and central headers)."""
    data = bytearray(path.read_bytes())
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = data.find(sig)
        while i >= 0:
            if flags is not None:
                data[i + flag_at:i + flag_at + 2] = struct.pack("<H", flags)
            if method is not None:
                data[i + method_at:i + method_at + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("patch, says", [(dict(method=9), "Deflate64"), (dict(flags=1), "encrypted"),
                                         (dict(flags=0x41), "encrypted"),          # strong encryption
                                         (dict(flags=0x40), "encrypted"),          # (bit 6 alone: crafted)
                                         (dict(flags=0x20), "compressed patched data")])
def test_zip_members_python_cannot_read_are_named_with_what_to_do(tmp_path, patch, says):
    z = tmp_path / "videos.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as f:
        f.writestr("cls/v1.avi", b"x" * 100)
    _patch_zip(z, **patch)
    with pytest.raises(ArchiveError) as info:
        extract_archive(z, tmp_path / "d")
    msg = str(info.value)
    assert str(z) in msg and "cls/v1.avi" in msg and "7z x" in msg and "unzip" in msg and says in msg
    assert "password" in msg if says == "encrypted" else "password" not in msg
    (tmp_path / "p").mkdir()
    piece = tmp_path / "p" / "20bn-something-something-v2-00.zip"
    z.rename(piece)
    with pytest.raises(ArchiveError, match="cls/v1.avi"):
        extract_tar_parts([piece], tmp_path / "o")


def test_member_and_total_size_caps(tmp_path):
    from lga.data.prepare_archives import ArchiveLimits

    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("c/one.avi", b"\0" * 6000)
        f.writestr("c/two.avi", b"\0" * 6000)
    with pytest.raises(ArchiveError, match=r"a.zip: member c/one.avi declares 6000 bytes, over the limit of 5000"):
        extract_archive(z, tmp_path / "d1", limits=ArchiveLimits(member_bytes=5000))
    with pytest.raises(ArchiveError, match=r"member c/two.avi takes the archive's extracted size over .* 10000"):
        extract_archive(z, tmp_path / "d2", limits=ArchiveLimits(total_bytes=10000))
    assert not (tmp_path / "d2" / "c" / "two.avi").exists() and not list((tmp_path / "d2").rglob(".*"))
    # a tar member is counted as it is written
    t = tmp_path / "a.tar"
    with tarfile.open(t, "w") as tar:
        info = tarfile.TarInfo("c/big.avi")
        info.size = 7000
        tar.addfile(info, io.BytesIO(b"\1" * 7000))
    with pytest.raises(ArchiveError, match="c/big.avi"):
        extract_archive(t, tmp_path / "d3", limits=ArchiveLimits(total_bytes=4096))
    assert extract_archive(t, tmp_path / "d4") == [tmp_path / "d4" / "c" / "big.avi"]


def test_archives_nested_too_deep_are_refused(tmp_path):
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as f:
        f.writestr("v_x_g01_c01.avi", b"not a video")
    for level in range(3, 0, -1):   # level3.zip inside level2.zip inside level1.zip inside top.zip
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as f:
            f.writestr(f"level{level}.zip", payload.getvalue())
        payload = outer
    raw = tmp_path / "top.zip"
    raw.write_bytes(payload.getvalue())
    with pytest.raises(ArchiveError) as info:
        P.gather_sources("ucf101", [raw], tmp_path / "work", {"v_x_g01_c01"})
    msg = str(info.value)
    assert str(raw) in msg and "member level1.zip" in msg and "member level3.zip" in msg and "2 levels" in msg
    found = P.gather_sources("ucf101", [raw], tmp_path / "work2", {"v_x_g01_c01"},
                             limits=__import__("lga.data.prepare_archives", fromlist=["x"]).ArchiveLimits(depth=3))
    assert list(found) == ["v_x_g01_c01"]


def test_encrypted_ssv2_labels_are_named_with_what_to_do(tmp_path):
    from lga.data.prepare_ssv2 import load_templates

    labels = tmp_path / "labels.zip"
    with zipfile.ZipFile(labels, "w", zipfile.ZIP_STORED) as z:
        z.writestr("labels/train.json", json.dumps([{"id": "1", "template": "Holding [something]"}]))
    _patch_zip(labels, flags=1)
    with pytest.raises(AnnotationError, match=r"labels.zip: member labels/train.json is encrypted.*password"):
        load_templates([labels])


def test_oversized_ssv2_annotation_member_is_refused_unread(tmp_path, monkeypatch):
    import lga.data.prepare_ssv2 as A

    labels = tmp_path / "labels.zip"
    with zipfile.ZipFile(labels, "w", zipfile.ZIP_DEFLATED) as z:   # 2 kB that deflate to little
        z.writestr("labels/train.json", json.dumps([{"id": "1", "template": "Holding [something]"}] * 50))
    assert labels.stat().st_size < 1000
    monkeypatch.setattr(A, "MAX_ANNOTATION_BYTES", 1000)
    with pytest.raises(AnnotationError, match=r"labels.zip: member labels/train.json declares \d+ bytes, over "
                                              r"the limit of 1000"):
        A.load_templates([labels])


def test_overwrite_deletes_only_a_folder_prepare_made(shared_splits, tmp_path):
    raw, _ = _hmdb_raw(shared_splits, tmp_path, n=2)
    stranger = tmp_path / "home"
    (stranger / "videos" / "holiday").mkdir(parents=True)
    (stranger / "videos" / "holiday" / "beach.mov").write_bytes(b"precious")
    with pytest.raises(P.PrepareError, match="not deleting anything"):
        _prepare_hmdb(raw, stranger, shared_splits, short_side=32, overwrite=True)
    assert (stranger / "videos" / "holiday" / "beach.mov").read_bytes() == b"precious"


def test_prepare_records_a_manifest_that_train_and_eval_check(shared_splits, tmp_path, monkeypatch):
    """Every video, split list and classes.tsv is recorded (size, sha256) in dataset.json; a damaged
    video is refused by name with the command that repairs it, and that command does."""
    from lga.data import manifest as M

    monkeypatch.setenv("LGA_DATA_DIR", str(tmp_path / "cache"))
    raw, picks = _hmdb_raw(shared_splits, tmp_path, n=2)
    out = tmp_path / "out"
    _prepare_hmdb(raw, out, shared_splits, short_side=32, workers=0)
    files = json.loads((out / "dataset.json").read_text())["files"]
    videos = sorted(f"videos/{rel(e.class_name, e)}.mp4" for e in picks)
    assert sorted(files) == sorted(["classes.tsv"] + [f"splits/{s}.txt" for s in L.SPLITS] + videos)
    video = out / videos[0]
    assert files[videos[0]] == {"bytes": video.stat().st_size, "sha256": M.file_sha256(video)}
    assert M.verify_dataset(out).hashed == 0          # prepare hashed them already: nothing is read again
    video.write_bytes(video.read_bytes()[:300])
    with pytest.raises(M.DatasetMismatchError) as info:
        M.verify_dataset(out)
    msg = str(info.value)
    assert f"{video}: 300 bytes, the manifest says {files[videos[0]]['bytes']}" in msg
    assert f"delete the files named above and run the same `python -m lga prepare hmdb51 --raw ... --out {out}`" in msg
    video.unlink()                                     # the repair the message gives
    _prepare_hmdb(raw, out, shared_splits, short_side=32, workers=0)
    assert M.verify_dataset(out).files == len(files)
    meta = json.loads((out / "dataset.json").read_text())
    del meta["files"]                                  # a folder prepared before manifests existed
    (out / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(M.DatasetMismatchError, match="no file manifest") as info:
        M.verify_dataset(out)
    assert "run the same `python -m lga prepare hmdb51 --raw ... --out" in str(info.value)
    assert "converts nothing already done" in str(info.value) and "delete" not in str(info.value)
    assert not _prepare_hmdb(raw, out, shared_splits, short_side=32, workers=0).prepared
    assert M.verify_dataset(out).files == len(files)
