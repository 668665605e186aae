"""Video round trip through PyAV, frame folders, frame sampling and the error paths for bad videos."""

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
