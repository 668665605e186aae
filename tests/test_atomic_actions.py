"""AtomicActions: determinism, the split / anatomy invariants, hard pairs, and the noise option."""

import json
from collections import Counter

import numpy as np
import pytest

from lga.data import layout
from lga.data.atomic_actions import (NOISE_KINDS, PAIR_KINDS, AtomicActionsConfig, design_classes,
                                     generate, load_classes, main, noisy_anatomy, render_video)
from lga.data.dataset import VideoDataset
from lga.data.scene import MIRROR
from lga.data.video import read_video

SMALL = dict(num_classes=(16, 4, 6), videos_per_class=3, frames_per_video=24, size=32, workers=1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("aa")
    generate(root, AtomicActionsConfig(seed=7, **SMALL), progress=False)
    return root


def test_default_design_splits_64_12_24():
    classes = design_classes(AtomicActionsConfig())
    assert Counter(c.split for c in classes) == {"train": 64, "val": 12, "test": 24}
    assert len({c.name for c in classes}) == 100                       # unique labels
    assert len({(c.subject, c.object, c.motions) for c in classes}) == 100  # unique actions
    assert {c.pair_kind for c in classes} == set(PAIR_KINDS) | {None}


def test_test_classes_are_new_combinations_of_training_atoms():
    classes = design_classes(AtomicActionsConfig())
    train = [c for c in classes if c.split == "train"]
    train_atoms = {a for c in train for a in c.atoms()}
    train_seqs = {(c.subject, c.object, c.motions) for c in train}
    for c in classes:
        if c.split != "train":
            assert set(c.atoms()) <= train_atoms, c
            assert (c.subject, c.object, c.motions) not in train_seqs, c


def test_hard_pairs_differ_as_their_kind_says():
    classes = {c.name: c for c in design_classes(AtomicActionsConfig())}
    kinds = Counter()
    for c in classes.values():
        if c.partner is None:
            continue
        p = classes[c.partner]
        assert p.partner == c.name and p.split == c.split and p.pair_kind == c.pair_kind
        assert c.subject == p.subject
        diff = [i for i in range(3) if c.motions[i] != p.motions[i]]
        if c.pair_kind == "order":
            assert sorted(c.motions) == sorted(p.motions) and diff and c.object == p.object
        elif c.pair_kind == "mirror":
            assert len(diff) == 1 and MIRROR[c.motions[diff[0]]] == p.motions[diff[0]]
        elif c.pair_kind == "phase":
            assert len(diff) == 1 and c.object == p.object
        elif c.pair_kind == "object":
            assert not diff and c.object != p.object
        kinds[c.pair_kind] += 1
    assert all(kinds[k] >= 4 for k in PAIR_KINDS), kinds
    assert sum(kinds.values()) >= 40


def test_generated_layout_and_anatomy(small):
    classes = layout.read_classes(small)
    assert Counter(c.split for c in classes) == {"train": 16, "val": 4, "test": 6}
    dirs = {s: {c.class_dir for c in classes if c.split == s} for s in layout.SPLITS}
    assert not (dirs["train"] & dirs["val"] or dirs["train"] & dirs["test"] or dirs["val"] & dirs["test"])
    anatomy = layout.read_anatomy(small / "anatomy.json")
    assert anatomy["num_steps"] == 3
    for c in classes:
        steps = anatomy["classes"][c.class_name]["steps"]
        assert len(steps) == 3
        for s in steps:
            assert set(s) == {"subject", "motion", "object", "description"} and all(s.values())
            assert s["subject"].removeprefix("the ") in s["description"]
    for split in layout.SPLITS:
        entries = layout.read_split_list(small, split)
        assert len(entries) == len(dirs[split]) * 3
        assert {e.split("/")[0] for e in entries} == dirs[split]
        for e in entries:
            v = anatomy["videos"][e]
            b = v["phase_bounds"]
            assert b[0] == 0 and b[-1] == v["num_frames"] == 24 and len(b) == 4
            assert min(np.diff(b)) >= 0.2 * 24 - 1        # every phase a sizeable share
            assert layout.find_video(small, e).suffix == ".mp4"
    assert len({tuple(v["phase_bounds"]) for v in anatomy["videos"].values()}) > 10  # durations vary


def test_same_seed_same_dataset_other_seed_other_dataset(small, tmp_path):
    again = tmp_path / "again"
    generate(again, AtomicActionsConfig(seed=7, **dict(SMALL, workers=2)), progress=False)  # 2 workers
    for name in ["splits/train.txt", "splits/val.txt", "splits/test.txt", "classes.tsv", "anatomy.json",
                 "dataset.json"]:
        assert (small / name).read_bytes() == (again / name).read_bytes(), name
    for entry in layout.read_split_list(small, "test")[:4]:
        a = read_video(layout.find_video(small, entry), 8)
        b = read_video(layout.find_video(again, entry), 8)
        assert np.array_equal(a.numpy(), b.numpy()), entry
    other = design_classes(AtomicActionsConfig(seed=8, **SMALL))
    assert [c.name for c in other] != [c.name for c in load_classes(small)]


def test_rendered_frames_show_the_motion():
    """Phases move the object: the frames at a phase's start and end differ, nuisances aside."""
    cls = next(c for c in design_classes(AtomicActionsConfig()) if "push_left" in c.motions)
    cfg = AtomicActionsConfig(max_noise=0.0, occlusion_prob=0.0, max_distractors=0)
    frames, bounds = render_video(cls, cfg, 0)
    p = cls.motions.index("push_left")
    first, last = frames[bounds[p]].astype(int), frames[bounds[p + 1] - 1].astype(int)
    assert np.abs(first - last).mean() > 1.0
    again, _ = render_video(cls, cfg, 0)
    assert np.array_equal(frames, again)


def test_dataset_reader_serves_generated_videos(small):
    ds = VideoDataset(small, "val", num_frames=8)
    clip, label = ds[0]
    assert clip.shape == (8, 32, 32, 3) and 0 <= label < 4
    assert sorted(set(ds.labels.tolist())) == [0, 1, 2, 3]


def test_noisy_anatomy(small):
    anatomy = layout.read_anatomy(small / "anatomy.json")
    clean = noisy_anatomy(anatomy, 0.0, seed=1)
    assert clean["classes"] == {k: {"label": v["label"], "steps": v["steps"]} for k, v in anatomy["classes"].items()}
    noisy = noisy_anatomy(anatomy, 1.0, seed=1)
    corrupted = noisy["provenance"]["noise"]["corrupted"]
    assert set(corrupted) == set(anatomy["classes"]) and set(corrupted.values()) <= set(NOISE_KINDS)
    for name, kind in corrupted.items():
        old, new = anatomy["classes"][name]["steps"], noisy["classes"][name]["steps"]
        if kind == "object":
            assert all(a["object"] != b["object"] for a, b in zip(old, new))
        elif kind == "order":
            assert sorted(map(json.dumps, old)) == sorted(map(json.dumps, new)) and old != new
        else:
            assert sum(a != b for a, b in zip(old, new)) == 1
    assert noisy == noisy_anatomy(anatomy, 1.0, seed=1)
    half = noisy_anatomy(anatomy, 0.5, seed=1)["provenance"]["noise"]["corrupted"]
    assert 0 < len(half) < len(anatomy["classes"])
    with pytest.raises(ValueError, match="rate"):
        noisy_anatomy(anatomy, 1.5)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--videos-per-class", "1", "--size", "32", "--frames", "16",
                 "--workers", "1", "--anatomy-noise", "0.3"]) == 0
    assert "100 classes, 100 videos" in capsys.readouterr().out
    assert (out / "anatomy_noise0.30.json").is_file()
    assert len(layout.read_classes(out)) == 100


def test_get_atomic_actions_reuses_and_regenerates(tmp_path, monkeypatch):
    from lga.data import atomic_actions as aa

    cfg = AtomicActionsConfig(seed=3, **dict(SMALL, num_classes=(6, 2, 2), videos_per_class=1))
    calls = []
    real = aa.generate
    monkeypatch.setattr(aa, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    root = aa.get_atomic_actions(tmp_path / "aa", cfg, progress=False)
    assert len(calls) == 1 and (root / "dataset.json").is_file()
    assert aa.get_atomic_actions(tmp_path / "aa", cfg, progress=False) == root and len(calls) == 1
    layout.find_video(root, layout.read_split_list(root, "test")[0]).unlink()   # a lost video
    aa.get_atomic_actions(tmp_path / "aa", cfg, progress=False)
    assert len(calls) == 2
    other = AtomicActionsConfig(seed=3, **dict(SMALL, num_classes=(6, 2, 2), videos_per_class=2))
    aa.get_atomic_actions(tmp_path / "aa", other, progress=False)               # another config
    assert len(calls) == 3 and len(layout.read_split_list(root, "val")) == 4
    assert not (tmp_path / "aa.partial").exists()
