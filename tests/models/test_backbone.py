"""Tests for lga.models.backbone (the CLIP loader) and lga.models.tiny_clip (the tiny CLIP trainer).

Everything runs offline on a CPU: no test downloads weights (ViT-B-16 is built with random weights).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from lga.models import backbone as bb
from lga.models import tiny_clip as tc

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

# a CLIP small enough to train for a few dozen steps inside a unit test
MICRO = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 60, 230),
           "yellow": (230, 220, 40), "white": (240, 240, 240), "purple": (150, 40, 200)}


class Squares:
    """(image uint8 [32,32,3], "a <colour> square") pairs on a noisy dark background."""

    def __init__(self, n: int, seed: int, size: int = 32):
        rng = np.random.default_rng(seed)
        names = list(COLOURS)
        self.items = []
        for i in range(n):
            colour = names[i % len(names)]
            img = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)
            r = int(rng.integers(4, 9))
            cy, cx = rng.integers(r, size - r, 2)
            img[cy - r:cy + r, cx - r:cx + r] = COLOURS[colour]
            self.items.append((img, f"a {colour} square"))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def random_tiny(name: str = "lga-tiny-vit-64", seed: int = 0):
    torch.manual_seed(seed)
    return bb.load_clip(name)


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- configs and loading

def test_tiny_configs_are_registered_with_open_clip():
    assert set(bb.TINY_MODEL_NAMES) <= set(open_clip.list_models())
    assert set(bb.register_tiny_configs()) == set(bb.TINY_MODEL_NAMES)  # idempotent
    for name in bb.TINY_MODEL_NAMES:
        cfg = open_clip.get_model_config(name)
        assert cfg["vision_cfg"]["image_size"] in (64, 96, 112)
    model, info, tok = random_tiny()
    assert info.image_size == (64, 64)
    assert 1_000_000 < bb.count_parameters(model) < 10_000_000
    assert bb.count_parameters(model.visual) < 1_500_000
    assert tok.context_length == 32
    assert model.lga_precision == "fp32"  # no mixed precision on CPU


def test_load_clip_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        bb.load_clip("no-such-clip")
    with pytest.raises(ValueError):
        bb.load_clip(MICRO, pretrained="openai")
    model, _, _ = bb.load_clip(MICRO)
    bb.save_clip_checkpoint(model, tmp_path / "ck")
    with pytest.raises(ValueError):
        bb.load_clip(tmp_path / "ck", pretrained="openai")
    (tmp_path / "ck" / bb.WEIGHTS_FILE).unlink()  # a config without weights must not load as random
    with pytest.raises(FileNotFoundError):
        bb.load_clip(tmp_path / "ck")
    assert bb.resolve_precision("auto", "cpu") == "fp32"
    assert bb.resolve_precision("amp", "cpu") == "fp32"


@pytest.mark.parametrize("name", ["lga-tiny-vit-64", "lga-tiny-rn-64"])
def test_checkpoint_round_trips_bit_for_bit(tmp_path, name):
    model, info, _ = random_tiny(name, seed=1)
    with torch.no_grad():  # make every tensor distinctive, BatchNorm buffers included
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)
    out = bb.save_clip_checkpoint(model, tmp_path / "ck")
    assert sorted(os.listdir(out)) == [bb.CONFIG_FILE, bb.WEIGHTS_FILE]
    assert bb.is_clip_checkpoint(out)
    cfg = json.loads((out / bb.CONFIG_FILE).read_text())
    assert cfg["model_cfg"] == open_clip.get_model_config(name)
    assert cfg["preprocess_cfg"]["mean"] == list(info.mean)

    for how in (f"local-dir:{out}", out, str(out)):
        loaded, info2, tok = bb.load_clip(how)
        assert state_equal(model, loaded)
        assert (info2.image_size, info2.mean, info2.std) == (info.image_size, info.mean, info.std)
        assert tok.context_length == 32
    # a second save replaces the first atomically and leaves no temporary folders behind
    bb.save_clip_checkpoint(loaded, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    again, _, _ = bb.load_clip(out)
    assert state_equal(model, again)


def test_save_refuses_to_replace_a_foreign_folder(tmp_path):
    model, _, _ = bb.load_clip(MICRO)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        bb.save_clip_checkpoint(model, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        bb.save_clip_checkpoint(model, tmp_path / "ck", extra_files={"more.safetensors": b""})


def test_loading_and_tokenizing_use_no_network(tmp_path, monkeypatch):
    model, _, _ = bb.load_clip(MICRO)
    bb.save_clip_checkpoint(model, tmp_path / "ck")

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", no_network)
    monkeypatch.setattr(open_clip.factory, "download_pretrained", no_network)

    loaded, _, tok = bb.load_clip(tmp_path / "ck")
    assert state_equal(model, loaded)
    assert isinstance(tok, open_clip.SimpleTokenizer)
    ids = tok(["the hand pushes the ball to the left"])
    assert ids.shape == (1, 16) and ids[0, 0] == tok.sot_token_id
    # the BPE vocabulary ships inside the open_clip package
    bpe = Path(open_clip.tokenizer.default_bpe())
    assert bpe.is_file() and Path(open_clip.__file__).parent in bpe.parents
    with gzip.open(bpe) as f:
        assert f.readline()
    _, _, tok_b16 = bb.load_clip("lga-tiny-vit-96")
    assert tok_b16.context_length == 32


def test_openai_weights_switch_on_quick_gelu(monkeypatch):
    seen = {}

    def fake_create(model_name, pretrained=None, **kwargs):
        seen.update(kwargs, model_name=model_name, pretrained=pretrained)
        raise RuntimeError("stop before downloading")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake_create)
    with pytest.raises(RuntimeError, match="stop before"):
        bb.load_clip(bb.PAPER_MODEL, pretrained=bb.PAPER_PRETRAINED)
    assert seen["model_name"] == "ViT-B-16" and seen["pretrained"] == "openai"
    assert seen["force_quick_gelu"] is True


def test_vit_b16_random_weights_encodes_a_clip_in_chunks():
    torch.manual_seed(0)
    model, info, tok = bb.load_clip("ViT-B-16", pretrained=None)
    assert info.image_size == (224, 224)
    assert tok.context_length == 77
    frames = torch.randint(0, 256, (1, 3, 224, 224, 3), dtype=torch.uint8)    # chunks of 2 and 1 frames
    with torch.no_grad():
        feats = bb.encode_frames(model, frames, chunk_size=2)
        text = bb.encode_text(model, tok, ["a person jumps into a pool"])
    assert feats.shape == (1, 3, 512) and feats.dtype == torch.float32
    assert torch.allclose(feats.norm(dim=-1), torch.ones(1, 3), atol=1e-5)
    assert text.shape == (1, 512)
    # the paper's fine-tuning setting: last block of the vision tower only
    names = bb.set_trainable(model, train_last_blocks=1)
    assert names and all(n.startswith(("visual.transformer.resblocks.11.", "visual.ln_post", "visual.proj"))
                         for n in names)


# --------------------------------------------------------------------------- fine-tuning switches

def test_set_trainable_vit():
    model, _, _ = random_tiny()
    assert bb.set_trainable(model) == []
    assert bb.count_parameters(model, trainable_only=True) == 0

    names = set(bb.set_trainable(model, train_last_blocks=1))
    assert names == {n for n, _ in model.named_parameters()
                     if n.startswith(("visual.transformer.resblocks.3.", "visual.ln_post.")) or n == "visual.proj"}
    trainable = sum(p.numel() for n, p in model.named_parameters() if n in names)
    assert bb.count_parameters(model, trainable_only=True) == trainable

    names = set(bb.set_trainable(model, train_last_blocks=4))
    assert names == {n for n, _ in model.named_parameters() if n.startswith("visual.")}

    names = set(bb.set_trainable(model, train_last_blocks=0, train_text=True))
    assert names == {n for n, _ in model.named_parameters()
                     if not n.startswith("visual.") and n != "logit_scale"}

    names = set(bb.set_trainable(model, train_text=1, train_logit_scale=True))
    assert names == {n for n, _ in model.named_parameters()
                     if n.startswith(("transformer.resblocks.3.", "ln_final."))
                     or n in ("text_projection", "logit_scale")}
    with pytest.raises(ValueError):
        bb.set_trainable(model, train_last_blocks=-1)


def test_set_trainable_resnet():
    model, _, _ = random_tiny("lga-tiny-rn-64")
    names = set(bb.set_trainable(model, train_last_blocks=1))
    assert names == {n for n, _ in model.named_parameters()
                     if n.startswith(("visual.layer4.", "visual.attnpool."))}
    names = set(bb.set_trainable(model, train_last_blocks=10))
    assert names == {n for n, _ in model.named_parameters() if n.startswith("visual.")}


# --------------------------------------------------------------------------- encoding

def test_encode_frames_chunking_and_layouts():
    model, info, _ = random_tiny()
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 5, 48, 80, 3), dtype=torch.uint8, generator=gen)  # needs resizing
    with torch.no_grad():
        whole = bb.encode_frames(model, frames, chunk_size=100)
        chunked = bb.encode_frames(model, frames, chunk_size=3)
        from_numpy = bb.encode_frames(model, frames.numpy(), chunk_size=4)
        channels_first = bb.encode_frames(model, frames.permute(0, 1, 4, 2, 3).float() / 255.0, chunk_size=7)
    assert whole.shape == (2, 5, 128)
    assert torch.allclose(whole.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    for other in (chunked, from_numpy, channels_first):
        assert torch.allclose(whole, other, atol=1e-5)
    # frames already at the model's size are only normalised, not resampled
    small = torch.randint(0, 256, (1, 2, 64, 64, 3), dtype=torch.uint8, generator=gen)
    x = bb.prepare_images(small[0].permute(0, 3, 1, 2), info.image_size, info.mean, info.std)
    mean = torch.tensor(info.mean).view(3, 1, 1)
    std = torch.tensor(info.std).view(3, 1, 1)
    assert torch.allclose(x, (small[0].permute(0, 3, 1, 2) / 255.0 - mean) / std, atol=1e-6)
    with pytest.raises(ValueError):
        bb.encode_frames(model, frames[0])  # 4-D is not a batch of clips


def test_prepare_images_resizes_shortest_side_and_centre_crops():
    img = torch.zeros(1, 3, 32, 64)
    img[..., :, 16:48] = 1.0  # a bright centre band exactly as wide as the crop
    x = bb.prepare_images(img, 16)
    assert x.shape == (1, 3, 16, 16)
    interior = x[..., 1:-1]  # the outermost columns see a little of the dark sides through the filter
    assert torch.allclose(interior, torch.ones_like(interior), atol=1e-3)
    assert x.min() > 0.9
    assert bb.prepare_images(img, (16, 16), resize_mode="squash").shape == (1, 3, 16, 16)


def test_encode_text_chunking():
    model, _, tok = random_tiny()
    texts = [f"a {c} square" for c in COLOURS] + ["the hand pushes the ball to the left"]
    with torch.no_grad():
        whole = bb.encode_text(model, tok, texts, chunk_size=64)
        chunked = bb.encode_text(model, tok, texts, chunk_size=2)
    assert whole.shape == (len(texts), 128)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert torch.allclose(whole.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)
    with pytest.raises(TypeError):
        bb.encode_text(model, tok, "one string")


# --------------------------------------------------------------------------- the tiny CLIP trainer

def test_contrastive_loss_matches_clip_when_texts_are_distinct():
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen), dim=-1)
    scale = torch.tensor(2.0)
    logits = scale.exp() * img @ txt.T
    labels = torch.arange(5)
    clip = (torch.nn.functional.cross_entropy(logits, labels)
            + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
    assert torch.allclose(tc.contrastive_loss(img, txt, labels, scale), clip, atol=1e-6)
    # duplicates: two images of text 0 share it as their positive, and text 0 has two positives
    loss = tc.contrastive_loss(img[:3], txt[:2], torch.tensor([0, 0, 1]), scale)
    assert torch.isfinite(loss)


def test_training_is_deterministic_from_the_seed():
    pairs = Squares(24, seed=0)
    state = torch.random.get_rng_state()
    _, h1 = tc.train_tiny_clip(pairs, MICRO, seed=3, steps=4, batch_size=8, lr=1e-3, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    _, h2 = tc.train_tiny_clip(pairs, MICRO, seed=3, steps=4, batch_size=8, lr=1e-3, progress=False)
    _, h3 = tc.train_tiny_clip(pairs, MICRO, seed=4, steps=4, batch_size=8, lr=1e-3, progress=False)
    assert len(h1) == 4 and all(np.isfinite(h1))
    assert h1 == h2
    assert h1 != h3


def test_short_training_retrieves_above_chance_and_is_cached(tmp_path):
    calls = []

    def make_pairs():
        calls.append(1)
        return Squares(240, seed=0)

    kw = dict(config=MICRO, seed=0, steps=50, batch_size=24, lr=3e-3)
    model, info, tok = tc.get_or_train_tiny_clip(tmp_path / "tiny", make_pairs, progress=False, **kw)
    assert calls == [1]
    assert bb.is_clip_checkpoint(tmp_path / "tiny")
    train_log = tc.read_train_log(tmp_path / "tiny")
    assert len(train_log["losses"]) == 50
    assert np.mean(train_log["losses"][-10:]) < np.mean(train_log["losses"][:5])

    held_out = Squares(60, seed=1)
    texts = [f"a {c} square" for c in COLOURS]
    with torch.no_grad():
        img = bb.encode_images(model, np.stack([im for im, _ in held_out.items]))
        txt = bb.encode_text(model, tok, texts)
    truth = torch.tensor([texts.index(t) for _, t in held_out.items])
    accuracy = ((img @ txt.T).argmax(dim=1) == truth).float().mean().item()
    assert accuracy >= 0.5, accuracy  # chance is 1/6

    # second call: loaded from disk through load_clip, not retrained
    again, _, _ = tc.get_or_train_tiny_clip(tmp_path / "tiny", make_pairs, progress=False, **kw)
    assert calls == [1]
    assert state_equal(model, again)
