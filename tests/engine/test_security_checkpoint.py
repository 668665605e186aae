"""Checkpoints and configs are data: nothing they name is imported or called (issue 15, items 1, 5, 8).

A crafted checkpoint (or YAML config) naming ``subprocess:run``, ``os:system``, ``builtins:exec`` or a
module with an import-time side effect is refused by every entry point (``python -m lga eval``,
``evaluate_checkpoint``, ``read_checkpoint``, ``build_model``, ``load_config``); the marker files the
payloads would write never appear, no process is started and ``sys.modules`` gains no module. Bad
metadata (not JSON, nested 100,000 deep, an unclosed string that once cost quadratic time, a stored
config too large to be one) and weights of another model are errors that name the file. ``eval`` without
``--config`` uses only the run's own matching config, never a ``config.yaml`` that lies nearby.
"""

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import torch
import yaml
from safetensors.torch import save_file

from lga.__main__ import main
from lga.config import Config, ConfigError, ModelConfig, config_from_dict, load_config
from lga.engine import build
from lga.engine import checkpoint as ck
from lga.engine.cli import checkpoint_config
from lga.engine.evaluate import evaluate_checkpoint
from lga.engine.model import build_model

#: the chapter 1 recipe (conv4 frame encoder, ProtoNet) that these small runs change with --set values
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"

SMALL = {"dim": 16, "width": 4}


@pytest.fixture
def registry():
    """Restore the component registries and the allow-list after a test that changes them."""
    saved = {k: dict(v) for k, v in build._REGISTRIES.items()}
    allowed = set(build._ALLOWED)
    yield build
    for k, v in build._REGISTRIES.items():
        v.clear()
        v.update(saved[k])
    build._ALLOWED.clear()
    build._ALLOWED.update(allowed)


def small_config(root="nowhere", **model) -> Config:
    cfg = load_config(CONV4)
    cfg.data.root = str(root)
    cfg.data.n_way = 3
    cfg.model.encoder_args = dict(SMALL)
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg


def write_checkpoint(path, config: dict | None, model=None) -> str:
    """A checkpoint as ``lga train`` writes it, whose metadata stores ``config`` (any dict, unchecked)."""
    model = model if model is not None else build_model(small_config())
    meta = {"step": 0} if config is None else {"step": 0, "config": config}
    ck.save_checkpoint(path, model, meta, with_rng=False)
    return str(path)


def evil_module(tmp_path, monkeypatch):
    """A module on sys.path that writes a marker file when imported; ``(name, marker)``."""
    name = f"lga_evil_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass Encoder:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, marker


def payloads(tmp_path, monkeypatch):
    """``(target, args)`` pairs that would write ``marker`` if lga ever imported or called them."""
    marker = tmp_path / "pwned"
    module, module_marker = evil_module(tmp_path, monkeypatch)
    return marker, module_marker, module, [
        ("subprocess:run", {"args": ["sh", "-c", f"echo x > {marker}"]}),
        ("os:system", {"command": f"echo x > {marker}"}),
        ("builtins:exec", {"source": f"open({str(marker)!r}, 'w').write('x')"}),
        (f"{module}:Encoder", {}),
    ]


@pytest.mark.parametrize("slot", ["encoder", "head"])
def test_a_checkpoint_or_config_naming_code_is_refused_and_nothing_is_imported(tmp_path, monkeypatch, capsys,
                                                                               slot):
    marker, module_marker, module, attacks = payloads(tmp_path, monkeypatch)
    clean = write_checkpoint(tmp_path / "clean.safetensors", small_config().to_dict())

    def attempts(target, args, tag):
        stored = small_config().to_dict()
        stored["model"][slot], stored["model"][f"{slot}_args"] = target, args
        path = write_checkpoint(tmp_path / f"evil-{tag}.safetensors", stored)
        evil_yaml = tmp_path / f"evil-{tag}.yaml"
        evil_yaml.write_text(yaml.safe_dump(stored))
        # a Config made in Python bypasses load_config's validation: the builder refuses it too
        evil_cfg = small_config(**{slot: target, f"{slot}_args": args})

        def expect(fn, *a):
            with pytest.raises(ConfigError, match="names Python code to import") as e:
                fn(*a)
            return str(e.value)

        assert path in expect(ck.read_checkpoint, path)
        assert path in expect(ck.read_metadata, path)
        assert path in expect(ck.load_model_weights, path, build_model(small_config()))
        assert path in expect(evaluate_checkpoint, small_config(), path)
        assert path in expect(checkpoint_config, path)
        expect(config_from_dict, stored)
        assert str(evil_yaml) in expect(load_config, evil_yaml)
        expect(build_model, evil_cfg)
        expect(evaluate_checkpoint, evil_cfg, clean)
        expect({"encoder": build.build_encoder, "head": build.build_head}[slot], evil_cfg.model)
        expect(build.check_components, evil_cfg.model)
        capsys.readouterr()
        assert main(["eval", "--checkpoint", path, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert path in err and "never imports or calls" in err and "--allow-component" in err
        assert main(["eval", "--config", str(evil_yaml), "--checkpoint", clean, "--no-progress"]) == 2
        assert str(evil_yaml) in capsys.readouterr().err
        assert main(["train", "--config", str(evil_yaml), "--out", str(tmp_path / f"run-{tag}"),
                     "--no-progress"]) == 2
        assert "names Python code to import" in capsys.readouterr().err
        assert not (tmp_path / f"run-{tag}").exists()

    # the same calls once on a refused name, so that every lga module they import lazily is loaded
    attempts("lga_not_registered:Thing", {}, "warm-up")
    # spies on the ways a payload could start a process (they record, then do what they would have done)
    started = []
    for owner, name in ((subprocess, "Popen"), (os, "system")):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name,
                            lambda *a, _real=real, _name=name, **k: started.append(_name) or _real(*a, **k))
    before = set(sys.modules)
    for i, (target, args) in enumerate(attacks):
        attempts(target, args, str(i))
    assert set(sys.modules) == before, sorted(set(sys.modules) - before)
    assert not marker.exists() and not module_marker.exists() and started == []
    assert module not in sys.modules
    # the marker module is real: importing it (what an unsafe loader does) writes its marker
    importlib.import_module(module)
    assert module_marker.exists()
    del sys.modules[module]


def test_allowing_or_registering_a_component_is_explicit(tmp_path, monkeypatch, capsys, registry):
    from lga.models.frame_encoder import FrameEncoder
    name, marker = evil_module(tmp_path, monkeypatch)      # here: a component the user trusts
    target = f"{name}:Encoder"
    cfg_yaml = tmp_path / "custom.yaml"
    cfg_yaml.write_text(yaml.safe_dump({"data": {"root": str(tmp_path / "no-dataset")},
                                        "model": {"encoder": target}}))
    with pytest.raises(ConfigError, match=f"--allow-component {target}"):
        load_config(cfg_yaml)
    assert not marker.exists()
    # on the command line: allowed by name, it is imported (and the run then stops at the missing dataset)
    assert main(["train", "--config", str(cfg_yaml), "--allow-component", target, "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "names Python code" not in err and marker.exists()
    monkeypatch.delitem(sys.modules, name)
    # only that exact string is trusted, and the flag takes package.module:Class only
    with pytest.raises(ConfigError, match="names Python code"):
        load_config(CONV4, [f"model.head={name}:Other"])
    assert main(["train", "--allow-component", "not a target", "--out", str(tmp_path / "r2")]) == 2
    assert "--allow-component expects package.module:Class" in capsys.readouterr().err
    # in Python: register a class under a short name (or under the string old configs use)
    build.register_encoder("tiny_conv", FrameEncoder)
    cfg = load_config(CONV4, ["model.encoder=tiny_conv", "model.encoder_args={dim: 8, width: 4}"])
    assert isinstance(build_model(cfg).encoder, FrameEncoder)
    build.register_head("mypkg.heads:Proto", build.resolve("protonet", "head"))
    assert load_config(CONV4, ["model.head=mypkg.heads:Proto"]).model.head == "mypkg.heads:Proto"
    with pytest.raises(ValueError, match="already registered"):
        build.register_head("protonet", FrameEncoder)
    with pytest.raises(TypeError, match="needs the class itself"):
        build.register_head("by_name", "subprocess:run")


def test_bad_checkpoint_metadata_names_the_file(tmp_path, capsys):
    weights = {"model/w": torch.zeros(2)}
    cases = {
        "not_json": ("{not json", "is not valid JSON"),
        "deep": ("[" * 100_000 + "]" * 100_000, "nests deeper than 64 levels"),
        "deep_object": ('{"a":' * 50_000 + "1" + "}" * 50_000, "nests deeper than 64 levels"),
        "list": ("[1, 2]", "must be a JSON object"),
        "bad_tuple": (json.dumps({"format": ck.FORMAT, "step": {"__tuple__": 5}}), "malformed lga metadata"),
        "bad_float": (json.dumps({"format": ck.FORMAT, "x": {"__float__": "many"}}), "malformed lga metadata"),
        "other_format": (json.dumps({"format": "x"}), "checkpoint format 'x'"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(weights, str(path), metadata={"lga": text})
        with pytest.raises(ValueError, match=message) as e:
            ck.read_checkpoint(path)
        assert str(path) in str(e.value), name
        capsys.readouterr()
        assert main(["eval", "--checkpoint", str(path), "--no-progress"]) == 2
        assert str(path) in capsys.readouterr().err
    # a string of escaped quotes that never closes: refused at once (the nesting scan was quadratic in it,
    # about 60 s for this 120 kB header)
    path = tmp_path / "unclosed.safetensors"
    save_file(weights, str(path), metadata={"lga": '"' + '\\"' * 60_000})
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=f"{path}: the checkpoint's lga metadata is not valid JSON"):
        ck.read_checkpoint(path)
    assert time.perf_counter() - t0 < 3
    # brackets inside strings do not count as nesting; lga's own metadata is far from the limit
    path = tmp_path / "brackets.safetensors"
    save_file(weights, str(path), metadata={"lga": json.dumps({"format": ck.FORMAT, "name": "[" * 500 + "]" * 9})})
    assert ck.read_checkpoint(path)[1]["name"].startswith("[[[")


def test_weights_of_another_model_name_the_file_and_the_keys(tmp_path, capsys):
    cfg = small_config()
    path = write_checkpoint(tmp_path / "dim16.safetensors", cfg.to_dict())
    wider = small_config()
    wider.model.encoder_args = {"dim": 24, "width": 4}
    with pytest.raises(ValueError, match=r"dim16.safetensors: its weights do not fit this EpisodicModel: "
                                         r"\d+ of another shape: encoder\.") as e:
        ck.load_model_weights(path, build_model(wider))
    assert "[24, " in str(e.value) and "[16, " in str(e.value)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", path, "--set", "model.encoder_args.dim=24", "--no-progress"]) == 2
    assert "dim16.safetensors: its weights do not fit" in capsys.readouterr().err
    lin = tmp_path / "linear.safetensors"
    ck.save_checkpoint(lin, torch.nn.Linear(3, 2), {})
    with pytest.raises(ValueError, match=r"linear.safetensors: .* 2 missing \(in the model, not in the file\): "
                                         r"0.bias, 0.weight; 2 unexpected \(in the file, not in the model\): "
                                         r"bias, weight"):
        ck.load_model_weights(lin, torch.nn.Sequential(torch.nn.Linear(3, 2)))
    ck.load_model_weights(lin, torch.nn.Sequential(), strict=False)   # non-strict: only shapes must fit


def test_eval_uses_only_the_runs_own_matching_config(tmp_path, capsys):
    trained = small_config(root="trained-root")
    # a lone checkpoint under a folder that holds someone else's config.yaml
    other = small_config(root="other-root")
    other.model.encoder_args = {"dim": 24, "width": 4}
    other.to_yaml(tmp_path / "config.yaml")
    (tmp_path / "lone").mkdir()
    lone = write_checkpoint(tmp_path / "lone" / "best.safetensors", trained.to_dict())
    cfg, source, note = checkpoint_config(lone)
    assert cfg == trained and source == f"the config stored in {lone}" and note is None
    # RUN/checkpoints/X with RUN/config.yaml of another run: not used, and said so
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    other.to_yaml(run / "config.yaml")
    inside = write_checkpoint(run / "checkpoints" / "best.safetensors", trained.to_dict())
    cfg, source, note = checkpoint_config(inside)
    assert cfg == trained and source.startswith("the config stored in")
    assert "not using" in note and "model.encoder_args" in note and "data.root" in note
    capsys.readouterr()
    assert main(["eval", "--checkpoint", inside, "--no-progress"]) == 2      # no dataset here
    err = capsys.readouterr().err
    assert "not using" in err and "trained-root" in err and "other-root" not in err
    # the run's own config (a resumed run may have changed eval.* and name): used, with --set on top
    own = dataclasses.replace(trained, name="renamed", eval=dataclasses.replace(trained.eval, episodes=77))
    own.to_yaml(run / "config.yaml")
    cfg, source, note = checkpoint_config(inside, ["eval.batch_episodes=7"])
    assert source == str(run / "config.yaml") and note is None
    assert (cfg.name, cfg.eval.episodes, cfg.eval.batch_episodes) == ("renamed", 77, 7)
    # a checkpoint without a stored config and without its run's config: an error, not the defaults
    bare = write_checkpoint(tmp_path / "lone" / "bare.safetensors", None)
    with pytest.raises(ConfigError, match="bare.safetensors stores no config; pass --config"):
        checkpoint_config(bare)
    # bad --set values name the key (checked against the stored config, not the defaults)
    with pytest.raises(ConfigError, match="train.optimizer: must be one of adam, adamw, sgd"):
        checkpoint_config(lone, ["train.optimizer=rmsprop"])


def test_model_config_component_names_are_checked_without_importing():
    before = set(sys.modules)
    for bad in ("os:system", "x.y:Z", "protonett", "", None, 3):
        with pytest.raises(ConfigError):
            build.check_component_names({"encoder": "conv4", "head": bad})
    assert set(sys.modules) == before
    build.check_component_names(ModelConfig())


def test_a_text_bank_named_as_code_is_refused_and_nothing_is_imported(tmp_path, monkeypatch, capsys):
    """``model.text`` has no allow-list at all: a file naming code there is refused by every reader."""
    marker, module_marker, module, attacks = payloads(tmp_path, monkeypatch)
    before = set(sys.modules)
    for i, (target, args) in enumerate(attacks):
        stored = small_config().to_dict()
        stored["model"]["text"], stored["model"]["text_args"] = target, args
        path = write_checkpoint(tmp_path / f"evil-text-{i}.safetensors", stored)
        evil_yaml = tmp_path / f"evil-text-{i}.yaml"
        evil_yaml.write_text(yaml.safe_dump(stored))
        for fn in (ck.read_checkpoint, checkpoint_config):
            with pytest.raises(ConfigError, match=rf"{path}: .*model.text: {target!r} names Python code"):
                fn(path)
        with pytest.raises(ConfigError, match=rf"{evil_yaml}: model.text: must be one of none, clip"):
            load_config(evil_yaml)
        evil_cfg = small_config(text=target, text_args=args)        # made in Python: the builder refuses it
        with pytest.raises(ConfigError, match="names Python code"):
            build.build_text_bank(evil_cfg.model, ["a"], encoder=None, anatomy="x")
        capsys.readouterr()
        assert main(["eval", "--checkpoint", path, "--no-progress"]) == 2
        assert path in capsys.readouterr().err
    assert set(sys.modules) == before and not marker.exists() and not module_marker.exists()


def test_a_stored_config_too_large_to_be_a_config_names_the_file(tmp_path, capsys):
    stored = small_config().to_dict()
    stored["model"]["head_args"] = {"temperature": 1.0, "x": [0] * 200_000}
    path = write_checkpoint(tmp_path / "huge.safetensors", stored)
    with pytest.raises(ConfigError, match=rf"{path}: the config stored in this checkpoint: the config holds more "
                                          r"than 100000 values"):
        checkpoint_config(path)
    assert main(["eval", "--checkpoint", path, "--no-progress"]) == 2
    assert f"{path}: the config stored in this checkpoint" in capsys.readouterr().err
