"""Datasets are checked before use: ``lga train`` and ``lga eval`` verify the folder against the manifest in
its ``dataset.json`` (:mod:`lga.data.manifest`), and the reader reads nothing outside the dataset folder."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lga.__main__ import main
from lga.config import load_config
from lga.data import layout
from lga.data import manifest as M
from lga.data.dataset import VideoDataset
from lga.data.video import VideoError, read_video

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "atomic_actions_5way_1shot_protonet_cpu.yaml")


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """A data cache of the test's own, which holds the verification cache."""
    monkeypatch.setenv("LGA_DATA_DIR", str(tmp_path / "cache"))


@pytest.fixture
def aa(tiny_atomic_actions, tmp_path):
    """A copy of the tiny AtomicActions dataset that a test may damage."""
    out = tmp_path / "aa"
    shutil.copytree(tiny_atomic_actions, out)
    return out


def sets(root):
    out = []
    for s in [f"data.root={root}", "data.n_way=3", "model.encoder_args={dim: 32, width: 8}", "train.epochs=2",
              "train.steps_per_epoch=2", "train.milestones=[1]", "train.eval_interval=2",
              "train.val_episodes=5", "train.log_interval=1"]:
        out += ["--set", s]
    return out


def video(root, split="test", i=0, allow=False) -> Path:
    return layout.find_video(root, layout.read_split_list(root, split)[i], allow_symlinks=allow)


def _other_content(root):
    p = video(root)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF              # same size, one byte changed: only its sha256 tells
    p.write_bytes(bytes(data))
    return p


def _another_video(root):
    p, other = video(root), video(root, i=5)
    p.write_bytes(other.read_bytes())         # a real video, of another class
    return p


def _deleted(root):
    p = video(root)
    p.unlink()
    return p


def _truncated(root):
    p = video(root)
    p.write_bytes(p.read_bytes()[:300])
    return p


def _split_names_a_missing_video(root):
    key = layout.read_split_list(root, "test")[0]
    with open(root / "splits" / "test.txt", "a", encoding="utf-8") as f:
        f.write(key.split("/")[0] + "/no_such_video\n")
    return root / "splits" / "test.txt"


def _oracle_anatomy(root):
    shutil.copy(root / "anatomy_oracle.json", root / "anatomy.json")
    return root / "anatomy.json"


def _a_stray_frame_folder(root):
    key = layout.read_split_list(root, "test")[0]
    folder = root / "frames" / key                 # would be read instead of the video
    folder.mkdir(parents=True)
    for i in range(16):
        (folder / f"{i:06d}.png").write_bytes(b"")
    return folder / "000000.png"


DAMAGE = {"other content, same size": _other_content, "another video": _another_video, "deleted": _deleted,
          "truncated": _truncated, "split list names a missing video": _split_names_a_missing_video,
          "anatomy_oracle.json over anatomy.json": _oracle_anatomy, "a stray frame folder": _a_stray_frame_folder}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_train_and_eval_refuse_a_damaged_dataset_naming_the_file(aa, tmp_path, capsys, damage):
    from lga.engine.evaluate import evaluate_checkpoint

    bad = DAMAGE[damage](aa)
    run = tmp_path / "run"
    assert main(["train", "--config", CONFIG, "--out", str(run), "--no-progress", *sets(aa)]) == 2
    err = capsys.readouterr().err
    assert f"{aa} does not match the manifest" in err and str(bad) in err, err
    assert "To repair it" in err and "make-atomic-actions" in err and "--no-verify" in err
    assert not run.exists()                                    # refused before anything was written
    cfg = load_config(CONFIG, [s for s in sets(aa) if s != "--set"])
    with pytest.raises(M.DatasetMismatchError, match="does not match the manifest") as e:
        evaluate_checkpoint(cfg, None, episodes=5, progress=False)
    assert any(str(bad) in p for p in e.value.problems)


def test_no_verify_uses_the_dataset_and_the_run_records_it(aa, tmp_path, capsys):
    bad = _other_content(aa)
    run = tmp_path / "run"
    argv = ["train", "--config", CONFIG, "--out", str(run), "--no-progress", *sets(aa), "--stop-after", "1"]
    with pytest.warns(UserWarning, match="without checking it against its manifest"):
        assert main(argv + ["--no-verify"]) == 0
    assert load_config(run / "config.yaml").data.verify is False          # recorded with the run
    # an evaluation from that run's checkpoint checks the data again unless told not to
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.safetensors"), "--episodes", "5",
                 "--no-progress"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_a_second_check_reads_no_file_and_a_changed_file_is_read_again(aa, monkeypatch):
    calls = []
    real = M.file_sha256
    monkeypatch.setattr(M, "file_sha256", lambda p: calls.append(Path(p)) or real(p))
    files = json.loads((aa / "dataset.json").read_text())["files"]
    first = M.verify_dataset(aa)
    assert first.files == len(files) and first.hashed == len(calls) == len(files)
    calls.clear()
    assert M.verify_dataset(aa).hashed == 0 and calls == []                  # nothing read again
    original = video(aa).read_bytes()
    bad = _other_content(aa)
    with pytest.raises(M.DatasetMismatchError, match="content differs"):
        M.verify_dataset(aa)
    assert calls == [bad]                                                    # only the changed file
    calls.clear()
    bad.write_bytes(original)                                                # repaired
    assert M.verify_dataset(aa).hashed == 1 and calls == [bad]
    assert M.verify_dataset(aa).hashed == 0


def test_a_folder_without_a_manifest_is_refused_until_one_is_written(aa, capsys):
    meta = json.loads((aa / "dataset.json").read_text())
    del meta["files"]
    meta["created_by"] = "my own script"
    (aa / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(M.DatasetMismatchError, match="no file manifest") as e:
        M.verify_dataset(aa)
    assert f"python -m lga.data.manifest --write {aa}" in str(e.value)
    assert M.main(["--write", str(aa)]) == 0
    assert M.main([str(aa)]) == 0 and "match the manifest" in capsys.readouterr().out
    assert M.verify_dataset(aa).files == len(json.loads((aa / "dataset.json").read_text())["files"])


# ----------------------------------------------------------------------------- reads outside the root
def _outside_video(aa, tmp_path):
    """The first test video moved out of the dataset and linked back in."""
    p = video(aa)
    elsewhere = tmp_path / "elsewhere" / p.name
    elsewhere.parent.mkdir()
    shutil.move(p, elsewhere)
    os.symlink(elsewhere, p)
    return p, elsewhere


def test_a_symlinked_video_out_of_the_root_is_refused_unless_allowed(aa, tmp_path):
    p, elsewhere = _outside_video(aa, tmp_path)
    with pytest.raises(layout.OutsideRootError, match="outside the dataset folder") as e:
        VideoDataset(aa, "test")
    assert str(p) in str(e.value) and str(elsewhere) in str(e.value) and "allow_symlinks" in str(e.value)
    with pytest.raises(VideoError, match="outside"):
        read_video(p, 8, root=aa)
    with pytest.raises(M.DatasetMismatchError, match=f"{p}: leads to {elsewhere} through a symlink"):
        M.verify_dataset(aa)
    ds = VideoDataset(aa, "test", allow_symlinks=True)                       # the explicit option
    assert ds.items[0].path == p and ds[0][0].shape == (8, 32, 32, 3)
    assert M.verify_dataset(aa, allow_symlinks=True).files > 0


def test_a_symlinked_videos_folder_is_refused_in_one_message_naming_the_split_list(aa, tmp_path):
    shutil.move(aa / "videos", tmp_path / "videos")
    os.symlink(tmp_path / "videos", aa / "videos")
    with pytest.raises(layout.OutsideRootError) as e:
        VideoDataset(aa, "test")
    n = len(layout.read_split_list(aa, "test"))
    assert str(e.value).startswith(f"{aa / 'splits' / 'test.txt'}: {n} videos lead outside the dataset folder {aa}: "
                                   f"{video(aa, allow=True)} -> {tmp_path / 'videos'}")
    assert f"and {n - 2} more" in str(e.value) and "data.allow_symlinks=true" in str(e.value)
    assert len(VideoDataset(aa, "test", allow_symlinks=True)) == n


def _frames_in(folder: Path, n=16):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((32, 32, 3), 10 * i, np.uint8)).save(folder / f"{i:06d}.png")


def test_a_symlinked_frame_folder_out_of_the_root_is_refused(aa, tmp_path):
    key = layout.read_split_list(aa, "test")[0]
    outside = tmp_path / "private_frames"
    _frames_in(outside)
    (aa / "frames" / key).parent.mkdir(parents=True)
    os.symlink(outside, aa / "frames" / key)
    with pytest.raises(layout.OutsideRootError, match=str(outside)):
        VideoDataset(aa, "test")
    assert VideoDataset(aa, "test", allow_symlinks=True).items[0].path == aa / "frames" / key


def test_a_frame_image_linked_out_of_its_folder_is_refused(tmp_path):
    folder = tmp_path / "video"
    _frames_in(folder)
    _frames_in(tmp_path / "secret", 1)
    (folder / "000003.png").unlink()
    os.symlink(tmp_path / "secret" / "000000.png", folder / "000003.png")
    with pytest.raises(VideoError, match="000003.png: a symlink to .*secret"):
        read_video(folder, 16)
    assert read_video(folder, 16, allow_symlinks=True).shape == (16, 32, 32, 3)


def test_split_lines_leading_out_of_the_root_are_refused_naming_the_line(aa):
    lines = (aa / "splits" / "test.txt").read_text().splitlines()
    for bad in ("../..", "/etc", "a/.."):
        (aa / "splits" / "test.txt").write_text("\n".join(lines[:2] + [bad]) + "\n")
        with pytest.raises(ValueError, match=rf"test.txt:3: '{bad}' does not name a video inside the dataset"):
            layout.read_split_list(aa, "test")
        with pytest.raises(ValueError, match="test.txt:3"):
            VideoDataset(aa, "test")
    for bad in ("../..", "/etc", "..\\..\\x/y"):
        with pytest.raises(layout.OutsideRootError):
            layout.find_video(aa, bad)


def test_a_class_folder_dot_dot_cannot_read_the_images_above_the_root(tmp_path, tiny_atomic_actions):
    """``..`` as a class folder in classes.tsv and ``../..`` in a split list named the root's parent."""
    parent = tmp_path / "parent"
    root = parent / "aa"
    shutil.copytree(tiny_atomic_actions, root)
    _frames_in(parent)                                           # images beside the dataset folder
    rows = (root / "classes.tsv").read_text().splitlines()
    test_rows = [r for r in rows if r.startswith("test\t")]
    rows[rows.index(test_rows[0])] = "test\t0\t..\tescape"
    (root / "classes.tsv").write_text("\n".join(rows) + "\n")
    (root / "splits" / "test.txt").write_text("../..\n")
    with pytest.raises(ValueError, match=r"classes.tsv:\d+: field 'class_dir' must be one folder name"):
        VideoDataset(root, "test")
