"""The tiny CLIP shipped in the package: shipping (fp16, untrained token rows zeroed, record), installing
(sha256 checked, atomic, never over a foreign folder), book_tiny_clip's use of it, and that the shipped
files are the recipe's on the default AtomicActions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lga.data.atomic_actions import AtomicActionsConfig
from lga.models import tiny_clip as tc
from lga.models import tiny_clip_shipped as ts
from lga.models.backbone import encode_images, is_clip_checkpoint, load_clip

from test_backbone import MICRO, Squares

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

RECIPE_HINT = "make tiny-clip"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A micro CLIP trained for a few steps and shipped into a folder of its own: (trained, shipped, tokens)."""
    tmp = tmp_path_factory.mktemp("ship")
    pairs = Squares(48, seed=0)
    trained = tmp / "trained"
    tc.train_tiny_clip(pairs, MICRO, seed=0, steps=6, batch_size=16, lr=3e-3, out_dir=trained, progress=False)
    (trained / "lga_train_pairs.json").write_text(json.dumps({"pairs": {}, "dataset": {"name": "squares"}}))
    tokens = tc.read_train_log(trained)["tokens_used"]
    record = ts.ship_tiny_clip(trained, tokens, {"test": {"step": 0.5}}, out=tmp / "shipped", about={"steps": 6})
    return trained, tmp / "shipped", tokens, record


def test_ship_stores_fp16_with_untrained_token_rows_zeroed(shipped):
    trained, out, tokens, record = shipped
    assert sorted(p.name for p in out.iterdir()) == sorted(ts.SHIPPED_FILES)
    full, half = load_file(str(trained / "open_clip_model.safetensors")), load_file(str(out / "open_clip_model.safetensors"))
    assert set(full) == set(half)
    assert all(v.dtype == torch.float16 for v in half.values() if v.is_floating_point())
    emb, emb16 = full["token_embedding.weight"], half["token_embedding.weight"].float()
    used = torch.zeros(emb.shape[0], dtype=torch.bool)
    used[tokens] = True
    assert 0 < used.sum() < 100 and record["token_rows_kept"] == int(used.sum())
    assert (emb16[~used] == 0).all() and (emb16[used] != 0).any(dim=1).all()
    assert torch.allclose(emb16[used], emb[used], atol=1e-3)                   # fp16 rounding only
    for k in full:
        if k != "token_embedding.weight" and full[k].is_floating_point():
            assert torch.allclose(half[k].float(), full[k], rtol=1e-2, atol=1e-3), k
    assert record["sha256"] == ts.file_sha256(out / "open_clip_model.safetensors")
    assert ts.verify_shipped_tiny_clip(out)["figures"] == {"test": {"step": 0.5}}
    # the shipped model gives the trained model's image features up to fp16 rounding
    m32, _, _ = load_clip(trained)
    m16, _, _ = load_clip(out)
    x = np.stack([Squares(8, seed=3)[i][0] for i in range(8)])
    assert next(m16.parameters()).dtype == torch.float32
    assert (encode_images(m32, x) - encode_images(m16, x)).abs().max() < 0.02


def test_rows_of_unused_tokens_are_never_changed_by_training(shipped):
    """Why zeroing them loses nothing that training learned: AdamW leaves rows with zero gradient at their
    initial values (no weight decay on embeddings)."""
    trained, _, tokens, _ = shipped
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        init, _, _ = load_clip(MICRO)
    emb0 = init.token_embedding.weight.detach()
    emb = load_file(str(trained / "open_clip_model.safetensors"))["token_embedding.weight"]
    unused = torch.ones(emb.shape[0], dtype=torch.bool)
    unused[tokens] = False
    assert torch.equal(emb[unused], emb0[unused])
    assert not torch.equal(emb[~unused], emb0[~unused])


def test_install_checks_sha_replaces_other_models_and_refuses_foreign_folders(shipped, tmp_path):
    _, out, _, record = shipped
    dest = tmp_path / "data" / "tiny_clip" / "atomic_actions"
    assert ts.install_shipped_tiny_clip(dest, out) == dest
    assert is_clip_checkpoint(dest) and ts.file_sha256(dest / "open_clip_model.safetensors") == record["sha256"]
    mtime = (dest / "open_clip_model.safetensors").stat().st_mtime_ns
    ts.install_shipped_tiny_clip(dest, out)                                        # already there: untouched
    assert (dest / "open_clip_model.safetensors").stat().st_mtime_ns == mtime
    (dest / "open_clip_model.safetensors").write_bytes(b"another model")            # e.g. an older tiny CLIP
    ts.install_shipped_tiny_clip(dest, out)
    assert ts.file_sha256(dest / "open_clip_model.safetensors") == record["sha256"]
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]         # no temporary folders left
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a CLIP checkpoint"):
        ts.install_shipped_tiny_clip(foreign, out)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_a_damaged_or_missing_shipped_model_is_refused_by_name(shipped, tmp_path):
    import shutil

    _, out, _, _ = shipped
    bad = Path(shutil.copytree(out, tmp_path / "bad"))
    data = bytearray((bad / "open_clip_model.safetensors").read_bytes())
    data[-1] ^= 1
    (bad / "open_clip_model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ts.ShippedTinyClipError, match=r"open_clip_model.safetensors: sha256 .*make tiny-clip"):
        ts.install_shipped_tiny_clip(tmp_path / "dest", bad)
    assert not (tmp_path / "dest").exists()
    with pytest.raises(ts.ShippedTinyClipError, match=r"lga_shipped.json: missing.*make tiny-clip"):
        ts.shipped_record(tmp_path / "nowhere")


def test_book_tiny_clip_loads_the_shipped_model_and_seed_trains_another(shipped, tmp_path, monkeypatch):
    _, out, _, record = shipped
    monkeypatch.setenv("LGA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(tc.TINY_CLIP_SEED_ENV, raising=False)
    monkeypatch.setattr(tc, "install_shipped_tiny_clip", lambda dest: ts.install_shipped_tiny_clip(dest, out))
    model, _, _ = tc.book_tiny_clip()
    assert tc.book_tiny_clip_dir() == tmp_path / "tiny_clip" / "atomic_actions"
    assert ts.file_sha256(tc.book_tiny_clip_dir() / "open_clip_model.safetensors") == record["sha256"]
    assert model.token_embedding.weight.dtype == torch.float32
    monkeypatch.setenv(tc.TINY_CLIP_SEED_ENV, "3")
    assert tc.book_tiny_clip_dir() == tmp_path / "tiny_clip" / "atomic_actions-seed3"


# --------------------------------------------------------------------------- the package's shipped model
def test_the_package_ships_a_tiny_clip_that_matches_its_record():
    record = ts.verify_shipped_tiny_clip()
    about = record["about"]
    assert about["recipe"] == tc.TINY_CLIP_RECIPE, f"the recipe changed since the tiny CLIP was shipped: run `{RECIPE_HINT}`"
    assert about["pairs"] == tc.TINY_CLIP_PAIRS, f"the training pairs changed: run `{RECIPE_HINT}`"
    train_log = tc.read_train_log(ts.SHIPPED_DIR)
    assert len(train_log["losses"]) == tc.TINY_CLIP_RECIPE["steps"]
    assert {k: train_log["settings"][k] for k in tc.TINY_CLIP_RECIPE} == tc.TINY_CLIP_RECIPE
    # on the test classes' frames (held-out wording): the motion of a frame is read from the frame, and
    # its step description comes first nearly as often as the sentences per atom allow
    test = record["figures"]["test"]
    assert test["motion"] >= 0.8 and test["atom"] >= 0.9 and test["step"] >= 0.9 * test["step_ceiling"], test


def test_the_shipped_tiny_clip_was_trained_on_the_default_atomic_actions():
    """Fails when the default AtomicActions config (or its version) changes: the shipped CLIP learned from
    other frames than the book's dataset shows, and must be retrained."""
    trained_on = json.loads((ts.SHIPPED_DIR / "lga_train_pairs.json").read_text())
    cfg = AtomicActionsConfig()
    now = {"name": "atomic_actions", "version": cfg.version, "config": cfg.recorded()}
    assert trained_on["dataset"] == json.loads(json.dumps(now)), (
        f"the default AtomicActions config differs from the one the shipped tiny CLIP was trained on "
        f"({ts.SHIPPED_DIR / 'lga_train_pairs.json'}): run `{RECIPE_HINT}` (about half an hour), then `make execute`")
    assert trained_on["pairs"] == tc.TINY_CLIP_PAIRS


@pytest.mark.slow
def test_the_shipped_weights_come_from_the_recipe():
    """Replay the first steps of the recipe on the default AtomicActions (generated into the data dir if
    needed) and match the losses the shipped train log recorded."""
    from lga.data.atomic_actions import get_atomic_actions, phase_pairs

    root = get_atomic_actions(progress=False)
    steps = 20
    pairs = phase_pairs(root, "train", **tc.TINY_CLIP_PAIRS)
    _, losses = tc.train_tiny_clip(pairs, progress=False, stop_after=steps, **tc.tiny_clip_recipe())
    recorded = tc.read_train_log(ts.SHIPPED_DIR)["losses"][:steps]
    assert len(losses) == steps
    np.testing.assert_allclose(losses, recorded, rtol=0, atol=2e-3,
                               err_msg=f"the shipped tiny CLIP's recorded losses are not the recipe's: run `{RECIPE_HINT}`")


def test_a_cpu_profile_config_installs_the_shipped_model(shipped, tmp_path, monkeypatch):
    """`model.encoder_args.model: tiny_clip/atomic_actions` works on a fresh data dir (no chapter run)."""
    from lga.engine import build

    _, out, _, record = shipped
    monkeypatch.setenv("LGA_DATA_DIR", str(tmp_path))
    real = ts.install_shipped_tiny_clip
    monkeypatch.setattr(ts, "install_shipped_tiny_clip", lambda dest: real(dest, out))
    assert not (tmp_path / "tiny_clip").exists()
    path = build.resolve_checkpoint_dir(ts.SHIPPED_NAME)
    assert path == tmp_path / "tiny_clip" / "atomic_actions"
    assert ts.file_sha256(path / "open_clip_model.safetensors") == record["sha256"]
    assert build.resolve_checkpoint_dir("tiny_clip/other") == tmp_path / "tiny_clip" / "other"   # not installed
    assert not (tmp_path / "tiny_clip" / "other").exists()


@pytest.mark.slow
def test_the_wheel_carries_the_shipped_tiny_clip(tmp_path):
    """A plain `pip install` (Colab) gets the weights and their record, not only the code."""
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(repo)], check=True, capture_output=True, timeout=600)
    wheel = next(tmp_path.glob("lga-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ts.SHIPPED_FILES:
        assert f"lga/models/tiny_clip_weights/{f}" in names, f
