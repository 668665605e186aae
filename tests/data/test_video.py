"""Video round trip through PyAV, frame folders, frame sampling and the error paths for bad videos."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lga.data.sampling import sample_indices
from lga.data.video import VideoError, count_frames, read_video, write_video


def gradient_frames(t=24, h=32, w=48):
    """Frames whose brightness encodes the frame number, so we can tell which frame was read."""
    f = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        f[i] = int(10 * i) % 256
        f[i, :, : w // 2, 1] = 255 - int(10 * i) % 256
    return f


def test_round_trip_through_pyav(tmp_path):
    frames = gradient_frames()
    path = write_video(tmp_path / "v.mp4", frames)
    assert count_frames(path) == 24
    clip, idx = read_video(path, 8, "test", return_indices=True)
    assert clip.dtype == torch.uint8 and clip.shape == (8, 32, 48, 3)
    np.testing.assert_array_equal(idx, sample_indices(24, 8, "test"))
    # lossy codec, but every frame read is the frame asked for (brightness tells them apart)
    err = np.abs(clip.numpy().astype(int) - frames[idx].astype(int))
    assert err.mean() < 3, err.mean()


def test_same_frames_give_same_bytes(tmp_path):
    frames = gradient_frames()
    a = write_video(tmp_path / "a.mp4", frames).read_bytes()
    b = write_video(tmp_path / "b.mp4", frames).read_bytes()
    assert a == b


def test_frame_folder(tmp_path):
    frames = gradient_frames(t=12)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i + 1:06d}.png")
    clip, idx = read_video(folder, 4, "test", return_indices=True)
    np.testing.assert_array_equal(clip.numpy(), frames[idx])   # png is lossless


def test_test_sampling_is_uniform_and_deterministic():
    idx = sample_indices(80, 8, "test")
    np.testing.assert_array_equal(idx, [5, 15, 25, 35, 45, 55, 65, 75])
    np.testing.assert_array_equal(idx, sample_indices(80, 8, "test"))


def test_train_sampling_one_frame_per_segment_and_seeded():
    draws = np.stack([sample_indices(80, 8, "train", np.random.default_rng(s)) for s in range(200)])
    seg = draws // 10
    np.testing.assert_array_equal(seg, np.broadcast_to(np.arange(8), seg.shape))  # one per segment
    assert len(np.unique(draws[:, 0])) == 10                                       # all offsets used
    np.testing.assert_array_equal(sample_indices(80, 8, "train", np.random.default_rng(3)),
                                  sample_indices(80, 8, "train", np.random.default_rng(3)))
    with pytest.raises(ValueError, match="Generator"):
        sample_indices(80, 8, "train")


def test_missing_video(tmp_path):
    with pytest.raises(VideoError, match="does not exist") as e:
        read_video(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(e.value)


def test_empty_video(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoError, match="empty") as e:
        read_video(p)
    assert str(p) in str(e.value)


def test_corrupt_video(tmp_path):
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as e:
        read_video(p)
    assert str(p) in str(e.value)


def test_truncated_video(tmp_path):
    data = write_video(tmp_path / "full.mp4", gradient_frames()).read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError) as e:
        read_video(p)
    assert "truncated.mp4" in str(e.value)


def test_too_short_video(tmp_path):
    p = write_video(tmp_path / "short.mp4", gradient_frames(t=3))
    with pytest.raises(VideoError, match="3 frames, fewer than the 8 needed"):
        read_video(p, 8)


def test_empty_frame_folder_and_bad_image(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frames"):
        read_video(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(8):
        (bad / f"{i:06d}.jpg").write_bytes(b"not an image")
    with pytest.raises(VideoError, match="cannot be read as an image"):
        read_video(bad, 8)


def test_write_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 7, 8, 3), np.uint8))
    assert not list(tmp_path.iterdir())   # nothing half-written left behind


# ---------------------------------------------------------------------------------------------
# Resource limits and frame order (issue 15)
# ---------------------------------------------------------------------------------------------

PEAK_MEMORY = """
import sys
from lga.data.video import read_video

def high_water_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024

read_video(sys.argv[1], 8)
try:
    with open("/proc/self/clear_refs", "w") as f:   # reset the high-water mark to the current size
        f.write("5")
except OSError:
    sys.exit(3)
before = high_water_mb()
clip = read_video(sys.argv[2], 8)
print(clip.shape[0], high_water_mb() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc/self")
def test_read_video_keeps_only_the_sampled_frames(tmp_path, repo_root):
    """8 frames of a 160-frame 360x480 video: the decoded frames are not all kept (that cost +45 MB)."""
    t, h, w = 160, 360, 480
    ramp = np.arange(w, dtype=np.int64)
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i] = (((ramp + 3 * i) % 256)[None, :, None] // np.array([1, 2, 3])).astype(np.uint8)
    long = write_video(tmp_path / "long.mp4", frames)
    short = write_video(tmp_path / "short.mp4", frames[:16])
    r = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(short), str(long)], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(repo_root)), timeout=120)
    if r.returncode == 3:
        pytest.skip("cannot reset the memory high-water mark here (/proc/self/clear_refs)")
    assert r.returncode == 0, r.stderr
    n, grown_mb = (int(x) for x in r.stdout.split())
    assert n == 8
    assert grown_mb < 20, f"reading 8 frames raised the peak memory by {grown_mb} MB"


def _numbered_folder(folder, names):
    folder.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(folder / name)
    return folder


def test_frame_folder_is_read_in_numeric_order(tmp_path):
    names = [f"img_{i}.png" for i in range(1, 13)]                 # img_1 .. img_12: text order differs
    folder = _numbered_folder(tmp_path / "clip", names)
    clip = read_video(folder, 12, "test")
    np.testing.assert_array_equal(clip[:, 0, 0, 0].numpy(), 20 * np.arange(12))
    assert count_frames(folder) == 12


@pytest.mark.parametrize("kind, says", [("gap", "number 5 is missing"), ("repeat", "same number 7"),
                                        ("unnumbered", "carry no number (cover.jpg)")])
def test_frame_folder_with_a_gap_a_repeat_or_an_unnumbered_image_is_an_error(tmp_path, kind, says):
    names = [f"img_{i}.jpg" for i in range(1, 13)]
    if kind == "gap":
        names.remove("img_5.jpg")
    elif kind == "repeat":
        names.append("img_07.jpg")                                   # the number 7 twice
    else:
        names.append("cover.jpg")                                    # where does it go?
    folder = _numbered_folder(tmp_path / "clip", names)
    for read in (lambda: read_video(folder, 8), lambda: count_frames(folder)):
        with pytest.raises(VideoError) as info:
            read()
        assert str(folder) in str(info.value) and says in str(info.value)


def test_frame_folder_without_numbers_is_read_by_name(tmp_path):
    folder = _numbered_folder(tmp_path / "clip", ["b.png", "a.png", "c.png"])
    np.testing.assert_array_equal(read_video(folder, 3)[:, 0, 0, 0].numpy(), [20, 0, 40])


def _png_header_claiming(path, width, height):
    """A tiny valid PNG whose header is then rewritten to claim ``width`` x ``height`` pixels."""
    import struct
    import zlib

    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [60000, 10000, 9000])  # PIL error; PIL warning; our limit only
def test_huge_frame_image_is_a_video_error_naming_the_file(tmp_path, side):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / f"{i:06d}.png")
    bomb = _png_header_claiming(folder / "000003.png", side, side)
    with pytest.raises(VideoError) as info:
        read_video(folder, 8)
    assert str(bomb) in str(info.value) and f"{side}" in str(info.value)


def test_video_with_frames_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    """A video whose header declares frames over MAX_FRAME_PIXELS: refused by the reader and by the
    preparer, naming the file, before a frame is decoded."""
    import lga.data.prepare as P
    import lga.data.video as V

    path = write_video(tmp_path / "v.mp4", gradient_frames(t=10, h=32, w=48))
    monkeypatch.setattr(V, "MAX_FRAME_PIXELS", 32 * 48 - 1)
    monkeypatch.setattr(V.av.container.InputContainer, "decode", None)   # nothing may be decoded
    for read in (lambda: read_video(path, 8), lambda: count_frames(path),
                 lambda: P.convert_video(path, tmp_path / "out.mp4", short_side=16)):
        with pytest.raises(VideoError, match="48x32 pixels exceed the limit") as info:
            read()
        assert str(path) in str(info.value)
    assert not (tmp_path / "out.mp4").exists()


def test_container_that_miscounts_its_frames_is_sampled_from_what_decodes(tmp_path, monkeypatch):
    import lga.data.video as V

    frames = gradient_frames(t=24)
    path = write_video(tmp_path / "v.mp4", frames)
    monkeypatch.setattr(V, "_count_packets", lambda p: 30)       # the container claims 30 frames
    clip, idx = read_video(path, 8, "test", return_indices=True)
    np.testing.assert_array_equal(idx, sample_indices(24, 8, "test"))
    assert np.abs(clip.numpy().astype(int) - frames[idx].astype(int)).mean() < 3
    _, idx = read_video(path, 8, "train", np.random.default_rng(5), return_indices=True)
    np.testing.assert_array_equal(idx, sample_indices(24, 8, "train", np.random.default_rng(5)))
    monkeypatch.setattr(V, "_count_packets", lambda p: 4)        # ... or only 4
    np.testing.assert_array_equal(read_video(path, 8, "test", return_indices=True)[1], sample_indices(24, 8, "test"))
