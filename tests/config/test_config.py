"""Run configs: every shipped file validates, YAML round trips, overrides convert, errors name the key."""

from pathlib import Path

import pytest

from lga.config import (Config, ConfigError, apply_override, config_from_dict, default_config, list_configs,
                        load_config, select_profile)
from lga.yaml_io import load_yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SHIPPED_FILES = sorted(CONFIG_DIR.rglob("*.yaml"))
#: run configs and their bases (configs/tiny_clip/ holds the tiny CLIP's recipe, not a run config)
CONFIG_FILES = [p for p in SHIPPED_FILES if p.relative_to(CONFIG_DIR).parts[0] != "tiny_clip"]
#: every shipped config name: the files of configs/ (not configs/_base) and the ablation rows
CONFIG_NAMES = list_configs()
#: the conv4 ProtoNet recipe of chapter 1 (the cpu profile's recipe is LGA on the tiny CLIP)
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"
HASHES = Path(__file__).resolve().parents[1] / "fixtures" / "resolved_config_hashes.json"


def test_configs_folder_covers_every_benchmark_shot_and_ablation_row():
    from lga.models.lga import ABLATION_CONFIG_NAMES
    names = set(CONFIG_NAMES)
    for ds in ("hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full"):
        for k in (1, 5):
            assert f"{ds}_5way_{k}shot" in names
    for k in (1, 5):
        assert f"atomic_actions_5way_{k}shot_cpu" in names
        assert f"atomic_actions_5way_{k}shot_label_only_cpu" in names and f"hmdb51_5way_{k}shot_label_only" in names
        for row in ABLATION_CONFIG_NAMES.values():
            assert f"ablations/hmdb51_5way_{k}shot_{row}" in names
            assert f"ablations/atomic_actions_5way_{k}shot_{row}_cpu" in names
    assert len(names) == 54 and not any(n.startswith("_base") for n in names)


def _canonical_hash(data: dict) -> str:
    import hashlib
    import json
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
                          .encode()).hexdigest()


def _project(data: dict, like: dict) -> dict:
    """``data`` restricted to the keys of ``like``: a field added to the config classes later is no
    change of a recipe (its default then shows in every config)."""
    return {k: _project(data[k], v) if isinstance(v, dict) and isinstance(data.get(k), dict) and not k.endswith("_args")
            else data.get(k, "<missing>") for k, v in like.items()}


def test_no_recipe_changed_every_config_name_resolves_to_its_recorded_hash():
    """tests/fixtures/resolved_config_hashes.json was written by benchmarks/config_hashes.py from the 54
    full YAML files before configs/ became base recipes plus differences: each name must still
    resolve to exactly the same config (sha256 of its canonical JSON)."""
    import json

    from lga.config import config_diff
    recorded = json.loads(HASHES.read_text())
    assert sorted(recorded) == CONFIG_NAMES, "config names added or lost"
    changed = []
    for name, entry in recorded.items():
        now = _project(load_config(name).to_dict(), entry["resolved"])
        if _canonical_hash(now) != entry["sha256"]:
            changed.append(f"{name}: {', '.join(config_diff(now, entry['resolved']))}")
    assert not changed, "recipes changed (config: keys):\n" + "\n".join(changed)


def test_the_hash_test_names_the_config_and_the_keys_that_differ(tmp_path, monkeypatch):
    """The check above must fail, and say where, when a recipe changes."""
    import json

    from lga.config import config_diff
    entry = json.loads(HASHES.read_text())["hmdb51_5way_1shot"]
    now = _project(load_config("hmdb51_5way_1shot", ["train.lr=2e-5"]).to_dict(), entry["resolved"])
    assert _canonical_hash(now) != entry["sha256"]
    assert config_diff(now, entry["resolved"]) == ["train.lr"]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_loads_and_its_components_check(name):
    from lga.engine.build import check_components
    from lga.models.lga import LGAConfig
    cfg = load_config(name)
    check_components(cfg.model)                     # classes exist, arguments are accepted
    if cfg.model.head == "lga":
        LGAConfig(**cfg.model.head_args)
    assert cfg.name == name.rsplit("/", 1)[-1]
    assert cfg.data.k_shot == int(name.split("_5way_")[1][0])
    if cfg.profile == "paper":                      # CLIP-FSAR's recipe
        t = cfg.train
        assert (cfg.data.num_frames, t.optimizer, t.lr, t.epochs, t.milestones, t.tasks_per_step,
                t.warmup_epochs) == (8, "adam", 1e-5, 10, [6, 9], 4, 1.0)
        assert cfg.data.train_queries == 5 and cfg.data.test_queries == 1 and cfg.eval.episodes == 10_000
        assert cfg.eval.split == "test"


def test_ablation_rows_come_from_the_models_table_by_either_name():
    from lga.models.lga import ABLATION_CHAIN, ABLATION_CONFIG_NAMES, LGAConfig
    for row, short in ABLATION_CONFIG_NAMES.items():
        for k in (1, 5):
            for base, name in ((f"hmdb51_5way_{k}shot", f"hmdb51_5way_{k}shot_{short}"),
                               (f"atomic_actions_5way_{k}shot_cpu", f"atomic_actions_5way_{k}shot_{short}_cpu")):
                cfg = load_config(f"ablations/{name}")
                assert LGAConfig(**cfg.model.head_args) == ABLATION_CHAIN[row], name
                assert load_config(f"{base}/ablation={short}") == cfg
                assert load_config(f"configs/ablations/{name}.yaml") == cfg      # the old file path
                main = load_config(base)
                cfg.model.head_args, cfg.name = main.model.head_args, main.name
                assert cfg == main, name                                      # only the row's switches differ
    with pytest.raises(ConfigError, match="unknown ablation row 'nope'"):
        load_config("hmdb51_5way_1shot/ablation=nope")
    with pytest.raises(ConfigError, match="switches of the LGA head.*'label_only'"):
        load_config("hmdb51_5way_1shot_label_only/ablation=full")
    with pytest.raises(FileNotFoundError, match="not a file: load it with lga.config.load_config"):
        from lga.config import find_config
        find_config("ablations/hmdb51_5way_1shot_full")


def _set_leaves(data: dict, prefix: str = ""):
    for k, v in data.items():
        if isinstance(v, dict) and v and not k.endswith("_args"):
            yield from _set_leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_shipped_configs_hold_only_what_differs(tmp_path):
    """Configs are data: under a third of the 3,924 lines the 54 copies had, the paper learning rate
    written nowhere in configs/ (it is TrainConfig's default), and no file sets a value that what it
    builds on (its base files and its profile's recipe; for a base file, the field defaults) has."""
    from lga.config import TrainConfig
    lines = sum(len(p.read_text().splitlines()) for p in CONFIG_FILES)
    assert lines < 3924 / 3, lines
    for path in CONFIG_FILES:
        assert (load_yaml(path).get("train") or {}).get("lr") != TrainConfig().lr, path
    field_defaults = Config().to_dict()
    for path in CONFIG_FILES:
        own = load_yaml(path)
        if path.parent.name == "_base":
            below = field_defaults
        else:                                     # the same file without its own values
            bases = own.get("base", [])
            bases = [bases] if isinstance(bases, str) else bases
            paths = [str(path.parent / f"{b}.yaml") if (path.parent / f"{b}.yaml").is_file() else b for b in bases]
            parent = tmp_path / f"{path.stem}.yaml"
            parent.write_text(f"base: {paths}\n" if paths else f"profile: {own['profile']}\n")
            below = load_config(parent).to_dict()
        for key, value in _set_leaves({k: v for k, v in own.items() if k not in ("base", "name", "profile")}):
            ref = below
            for part in key.split("."):
                ref = ref[part]
            assert ref != value or key.endswith("_args"), f"{path.name}: {key} repeats {value!r}"


def test_the_cpu_profile_is_defined_once():
    """select_profile, default_config and the cpu configs tell the same profile: its base file."""
    cpu = default_config("cpu")
    name = "atomic_actions_5way_1shot_cpu"
    assert load_config(name).to_dict() == {**cpu.to_dict(), "name": name}
    p = select_profile("cpu")
    assert (p.backbone, p.pretrained, p.dataset) == (cpu.model.encoder_args["model"], None, cpu.data.dataset)
    paper = default_config("paper")
    assert load_config("hmdb51_5way_1shot").to_dict() == {**paper.to_dict(), "name": "hmdb51_5way_1shot"}
    p = select_profile("paper")
    assert (p.backbone, p.pretrained, p.dataset) == ("ViT-B-16", "openai", "hmdb51")


def test_config_show_says_where_every_value_came_from():
    from lga.config import resolve_config, show_config
    cfg, sources = resolve_config("ablations/hmdb51_5way_5shot_text_anatomy", ["train.epochs=12"])
    assert sources["train.lr"] == "default (TrainConfig)"
    assert sources["data.k_shot"] == "configs/hmdb51_5way_5shot.yaml"
    assert sources["model.encoder_args.model"] == "configs/_base/paper.yaml"
    assert sources["model.head_args.alpha"] == "configs/_base/lga.yaml"
    assert sources["model.head_args.plain_phases"].startswith("ablation table, row '+ textual anatomy'")
    assert sources["train.epochs"] == "--set train.epochs=12" and cfg.train.epochs == 12
    text = show_config(CONV4)
    assert 'model.encoder_args.dim: 64' in text and "# configs/atomic_actions_5way_1shot_protonet_cpu.yaml" in text
    assert 'train.lr: 0.002' in text and "head_args.alpha" not in text     # another head: LGA's switches dropped
    assert len(text.splitlines()) == 1 + len(resolve_config(CONV4)[1])


def test_base_files_merge_in_order_and_refuse_circles(tmp_path):
    (tmp_path / "a.yaml").write_text("profile: cpu\ntrain: {lr: 1.0e-3, epochs: 2}\n")
    (tmp_path / "b.yaml").write_text("base: [a, hmdb51_5way_5shot]\ntrain: {epochs: 12}\n")
    cfg = load_config(tmp_path / "b.yaml")       # a local file, then a shipped one, then the file itself
    assert cfg.profile == "paper" and cfg.data.k_shot == 5 and cfg.train.lr == 1e-3 and cfg.train.epochs == 12
    (tmp_path / "c.yaml").write_text("base: d\n")
    (tmp_path / "d.yaml").write_text("base: c\n")
    with pytest.raises(ConfigError, match="in a circle"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "e.yaml").write_text("base: no_such_base\n")
    with pytest.raises(ConfigError, match="e.yaml: base: no config file no_such_base"):
        load_config(tmp_path / "e.yaml")
    (tmp_path / "f.yaml").write_text("base: {x: 1}\n")
    with pytest.raises(ConfigError, match="f.yaml: base: expected a config name"):
        load_config(tmp_path / "f.yaml")


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_yaml_round_trip(profile, tmp_path):
    cfg = default_config(profile)
    cfg.model.head_args = {**cfg.model.head_args, "alpha": 0.3, "nested": {"a": [1, 2]}}
    cfg.train.grad_clip = None
    text = cfg.to_yaml(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert config_from_dict(load_yaml(text)) == cfg


def test_profile_defaults():
    paper, cpu = default_config("paper"), default_config("cpu")
    assert paper.model.encoder == "clip" and paper.model.encoder_args["model"] == "ViT-B-16"
    assert paper.train.lr == 1e-5 and paper.train.tasks_per_step == 4 and paper.train.milestones == [6, 9]
    assert cpu.data.dataset == "atomic_actions" and cpu.model.encoder_args["model"] == "tiny_clip/atomic_actions"
    assert cpu.model.head == "lga" and cpu.train.device == "cpu"
    assert load_config(None) == cpu
    assert select_profile("cpu").name == "cpu"      # the lead's profile API still works


def test_partial_file_takes_profile_defaults(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("profile: paper\ntrain:\n  lr: 2.0e-5\n")
    cfg = load_config(p)
    assert cfg.train.lr == 2e-5 and cfg.train.tasks_per_step == 4 and cfg.data.dataset == "hmdb51"
    p.write_text("model:\n  encoder: conv4\n  encoder_args: {dim: 8}\n")
    assert load_config(p).model.encoder_args == {"dim": 8}   # the cpu recipe's CLIP arguments dropped


def test_overrides_convert_types():
    cfg = load_config(CONV4, ["train.lr=1e-4", "train.epochs=3", "train.amp=false", "train.grad_clip=null",
                             "train.milestones=[1, 2]", "data.anatomy=hmdb51", "train.warmup_epochs=1",
                             "model.head_args.alpha=0.25", "model.encoder_args={dim: 16}", "eval.episodes=1_000"])
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 3 and cfg.train.amp is False and cfg.train.grad_clip is None
    assert cfg.train.milestones == [1, 2] and cfg.train.warmup_epochs == 1.0
    assert isinstance(cfg.train.warmup_epochs, float)
    assert cfg.model.head_args == {"alpha": 0.25}                # a new mapping: protonet's are empty
    assert cfg.model.encoder_args == {"dim": 16}   # replaces the file's; the profile's recipe has another encoder
    merged = load_config(None, ["model.encoder_args={train_last_blocks: 1}"]).model.encoder_args
    assert merged == {"model": "tiny_clip/atomic_actions", "train_last_blocks": 1}   # same encoder: merged
    assert cfg.eval.episodes == 1000
    assert apply_override({}, "model.head_args.alpha=1") == {"model": {"head_args": {"alpha": 1}}}


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", r"unknown key train.lrr; allowed keys of train: seed, epochs"),
    ("trian.lr=1", r"unknown key trian; allowed keys of the config: profile, name, data"),
    ("train.lr=fast", r"train.lr: expected a number, got 'fast'"),
    ("data.k_shot=1.5", r"data.k_shot: expected an integer, got 1.5"),
    ("train.amp=maybe", r"train.amp: expected true/false"),
    ("train.optimizer=rmsprop", r"train.optimizer: must be one of adam, adamw, sgd; got 'rmsprop'"),
    ("data.dataset=imagenet", r"data.dataset: must be one of atomic_actions, hmdb51"),
    ("train.milestones=[9, 6]", r"train.milestones: must be increasing epochs"),
    ("data.n_way=1", r"data.n_way: must be >= 2"),
    ("train.lr=-1", r"train.lr: must be > 0"),
    ("train=3", r"train is a section"),
    ("train.lr", r"--set expects key=value"),
    ("train.lr.x=1", r"train.lr is not a section"),
    ("model.encoder_args=3", r"model.encoder_args: expected a mapping"),
    ("train.backbone=half", r"train.backbone: must be one of auto, finetune, frozen; got 'half'"),
    ("data.augment=flip", r"data.augment: must be one of none, crop; got 'flip'"),
])
def test_bad_values_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: train.epochs: expected an integer, got 'ten'"):
        load_config(p)
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(p)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "none.yaml")


def test_unknown_component_arguments_are_named():
    from lga.engine.build import check_components
    with pytest.raises(ConfigError, match=r"model.head_args.alhpa; LGAConfig fields: .*alpha"):
        check_components(load_config(CONFIG_DIR / "hmdb51_5way_1shot.yaml", ["model.head_args.alhpa=1"]).model)
    with pytest.raises(ConfigError, match=r"model.encoder_args.wdth; FrameEncoder accepts: dim, width"):
        check_components(load_config(CONV4, ["model.encoder_args.wdth=1"]).model)
    with pytest.raises(ConfigError, match=r"model.head: unknown head 'protonett'"):
        check_components(load_config(None, ["model.head=protonett"]).model)
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\]"):
        check_components(load_config(CONFIG_DIR / "hmdb51_5way_1shot.yaml", ["model.head_args.alpha=2"]).model)
    assert isinstance(default_config("cpu"), Config)


def test_shipped_configs_resolve_by_name_and_unknown_names_are_reported(tmp_path):
    from lga.config import find_config, list_configs
    names = list_configs()
    assert "hmdb51_5way_1shot" in names and "ablations/hmdb51_5way_1shot_full" in names
    assert len(names) == 54
    assert find_config("hmdb51_5way_1shot") == CONFIG_DIR / "hmdb51_5way_1shot.yaml"
    assert find_config("configs/hmdb51_5way_1shot.yaml").read_text() == \
        (CONFIG_DIR / "hmdb51_5way_1shot.yaml").read_text()
    cfg = load_config("ablations/atomic_actions_5way_5shot_full_cpu", ["train.lr=0.1"])
    assert cfg.data.k_shot == 5 and cfg.train.lr == 0.1
    own = tmp_path / "hmdb51_5way_1shot"            # an existing file wins over a shipped name
    own.write_text("profile: cpu\n")
    assert find_config(own) == own
    with pytest.raises(FileNotFoundError, match="no_such_config.*list_configs"):
        load_config("no_such_config")


def test_the_wheel_ships_every_config(tmp_path):
    """Colab installs lga with pip, without the repository: configs/ must be inside the wheel."""
    import subprocess
    import sys
    import zipfile
    root = CONFIG_DIR.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(root)], check=True, capture_output=True)
    wheel, = tmp_path.glob("lga-*.whl")
    shipped = {n.removeprefix("lga/configs/") for n in zipfile.ZipFile(wheel).namelist()
               if n.startswith("lga/configs/") and n.endswith(".yaml")}
    assert shipped == {p.relative_to(CONFIG_DIR).as_posix() for p in SHIPPED_FILES}
    assert "_base/paper.yaml" in shipped and "_base/cpu.yaml" in shipped
    assert "tiny_clip/atomic_actions.yaml" in shipped


@pytest.mark.parametrize("section", ["data", "model", "train", "eval"])
def test_an_empty_section_is_an_error_and_braces_mean_the_defaults(tmp_path, section):
    """``train:`` with nothing under it is most often keys lost to a bad edit: refused, naming the
    section; ``train: {}`` says "the profile's defaults" on purpose (issue 15)."""
    p = tmp_path / "c.yaml"
    p.write_text(f"profile: cpu\n{section}:\n")
    with pytest.raises(ConfigError, match=rf"c.yaml: {section}: empty section .*'{section}: {{}}'"):
        load_config(p)
    p.write_text(f"profile: cpu\n{section}: {{}}\n")
    assert load_config(p) == default_config("cpu")      # the cpu profile's, not the paper recipe
    p.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match="c.yaml: the file is empty"):
        load_config(p)
    p.write_text("{}\n")
    assert load_config(p) == default_config("cpu")


BAD_NUMBERS = [(key, value) for key, values in {
    "train.lr": [".nan", ".inf", "-.inf", "-1e-3", "0"],
    "train.grad_clip": [".nan", ".inf", "-1", "0"],
    "train.gamma": [".nan", ".inf", "-0.1", "0"],
    "train.weight_decay": [".nan", "-1e-4"],
    "train.momentum": [".nan", "-0.5"],
    "train.warmup_epochs": [".nan", ".inf", "-1"],
    "train.warmup_factor": [".nan", "0", "1.5"],
    "train.seed": ["-1"],
    "train.cache_frames": ["-1"],
    "data.crop_scale": ["0", "1.5", ".nan"],
    "data.crop_grid": ["0"],
    "model.head_args.temperature": [".nan", "0", "-1"],            # ProtoNet's
    "model.encoder_args.dim": [".inf"],
}.items() for value in values]


@pytest.mark.parametrize("key, value", BAD_NUMBERS)
def test_nan_infinite_and_out_of_range_numbers_are_refused_naming_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"^{key}: (must be|a temperature must be)"):
        load_config(None, [f"{key}={value}"])
    section, rest = key.split(".", 1)
    inner = f"{rest.split('.')[0]}:\n    {rest.split('.')[1]}: {value}" if "." in rest else f"{rest}: {value}"
    p = tmp_path / "c.yaml"
    p.write_text(f"{section}:\n  {inner}\n")
    with pytest.raises(ConfigError, match=rf"c.yaml: {key}: "):
        load_config(p)


def test_lga_temperatures_must_be_positive_and_finite():
    for key in ("vv_temperature", "vt_temperature"):
        for value in (".nan", "0", "-0.07"):
            with pytest.raises(ConfigError, match=rf"model.head_args.{key}: "):
                load_config(CONFIG_DIR / "hmdb51_5way_1shot.yaml", [f"model.head_args.{key}={value}"])


def test_every_number_field_is_checked_including_ones_added_later():
    """The check is a loop over the dataclass fields, so a new number field is covered without new code."""
    import dataclasses
    import math
    import typing

    from lga.config import validate
    checked = 0
    for section in ("data", "train", "eval"):
        cls = type(getattr(default_config("cpu"), section))
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
            if tp[0] not in (int, float):
                continue
            bad = [float("nan"), math.inf] if tp[0] is float else []
            if f.metadata.get("low", 0) is not None:
                bad.append(-1)
            for value in bad:
                cfg = default_config("cpu")
                setattr(getattr(cfg, section), f.name, value)
                with pytest.raises(ConfigError, match=rf"^{section}.{f.name}: must be"):
                    validate(cfg)
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize("name, text, message", [
    # 22 lines of aliases stand for 2**22 numbers: read through, about 9 s (each line more doubles it)
    ("aliases", "model:\n  head_args:\n    x0: &a0 [1, 2]\n"
     + "".join(f"    x{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 22)), "holds more than 100000 values"),
    ("itself", "model:\n  head_args:\n    x: &a [1, *a]\n", "nests deeper than 32 levels"),
    ("deep", "model:\n  head_args:\n    x: " + "[" * 200 + "]" * 200 + "\n", "nests deeper than 32 levels"),
])
def test_a_config_file_too_large_or_deep_is_refused_at_once(tmp_path, name, text, message):
    import time
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"{p}: the config {message}"):
        load_config(p)
    assert time.perf_counter() - t0 < 3
    # anchors and aliases of a normal size still work
    p.write_text("model:\n  head_args: &h {temperature: 0.5}\n  text_args: *h\n")
    cfg = load_config(p)
    assert cfg.model.head_args["temperature"] == cfg.model.text_args["temperature"] == 0.5


def test_config_diff_names_dotted_keys_treats_args_as_one_value_and_ignores_below_a_prefix():
    from lga.config import config_diff
    a = load_config(None).to_dict()
    b = load_config(None, ["train.lr=0.5", "train.epochs=6", "data.n_way=3"]).to_dict()
    assert config_diff(a, a) == []
    assert config_diff(a, b) == ["data.n_way", "train.epochs", "train.lr"]
    assert config_diff(a, b, ignore=("train",)) == ["data.n_way"]
    assert config_diff(a, b, ignore=("train.lr", "data.n")) == ["data.n_way", "train.epochs"]   # prefixes are keys
    b["model"]["encoder_args"] = {**a["model"]["encoder_args"], "extra": 1}
    assert "model.encoder_args" in config_diff(a, b)


# ------------------------------------------------------------------ a key given twice (issue 23)
@pytest.mark.parametrize("text, key, lines", [
    ("profile: cpu\ntrain:\n  lr: 1.0e-3\n  epochs: 2\n  lr: 5.0e-4\n", "lr", (3, 5)),
    # a second train: block would replace the first one whole
    ("profile: cpu\ntrain:\n  lr: 1.0e-3\neval:\n  episodes: 10\ntrain:\n  epochs: 2\n", "train", (2, 6)),
    ("profile: cpu\nmodel:\n  head_args: {alpha: 0.3, alpha: 0.7}\n", "alpha", (3, 3)),
])
def test_a_key_given_twice_in_a_config_file_is_an_error_naming_file_key_and_lines(tmp_path, text, key, lines):
    p = tmp_path / "twice.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and f"key {key!r} is given twice" in msg, msg
    assert f"line {lines[0]}" in msg and f"line {lines[1]}" in msg, msg


def test_a_key_given_twice_in_a_set_value_is_an_error():
    with pytest.raises(ConfigError, match=r"--set model.head_args=\{a: 1, a: 2\}: key 'a' is given twice"):
        load_config(None, ["model.head_args={a: 1, a: 2}"])


def test_the_project_reads_yaml_only_through_the_loader_that_refuses_duplicate_keys():
    """PyYAML's own loaders keep the last of two equal keys silently: every YAML the project reads
    (configs, _config.yml, _toc.yml, environment.yml, run configs) goes through lga.yaml_io."""
    import re
    root = CONFIG_DIR.parent
    pattern = re.compile(r"\byaml\.(safe_load|load|full_load|unsafe_load|load_all|safe_load_all)\b")
    offenders = []
    for folder in ("lga", "benchmarks", "book", "data_scripts", "tests"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".py", ".ipynb") or path.name == "yaml_io.py" or ".ipynb_checkpoints" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            if path.name == Path(__file__).name:                  # this test's own pattern
                text = text.replace(pattern.pattern, "")
            offenders += [f"{path.relative_to(root)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not offenders, offenders


def test_yaml_merge_keys_still_override_without_counting_as_duplicates():
    from lga.yaml_io import load_yaml
    assert load_yaml("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  x: 3\n") == {"d": {"x": 1, "y": 2}, "e": {"x": 3, "y": 2}}


def test_the_config_command_shows_and_lists(capsys):
    from lga.__main__ import main
    assert main(["config", "show", "ablations/atomic_actions_5way_1shot_full_cpu", "--set", "train.lr=1e-3"]) == 0
    out = capsys.readouterr().out
    assert "train.lr: 0.001" in out and "# --set train.lr=1e-3" in out
    assert 'name: "atomic_actions_5way_1shot_full_cpu"' in out and "# configs/_base/cpu.yaml" in out
    assert main(["config", "list"]) == 0
    assert capsys.readouterr().out.split() == CONFIG_NAMES
    assert main(["config", "show", "no_such_config"]) == 2
    assert "no shipped config named 'no_such_config'" in capsys.readouterr().err


def test_a_head_with_an_args_schema_is_checked_through_it_like_lga(monkeypatch):
    """No head is a special case of lga.engine.build: any head naming a dataclass as ``args_schema``
    (as LGA names LGAConfig) has its ``head_args`` checked against that dataclass's fields and checks."""
    import dataclasses

    from lga.config import ModelConfig
    from lga.engine import build
    from lga.models.lga import LGA, LGAConfig

    @dataclasses.dataclass
    class WidthArgs:
        width: int = 1

        def __post_init__(self):
            if self.width < 1:
                raise ValueError(f"WidthArgs.width must be >= 1, got {self.width}")

    class WidthHead:
        args_schema = WidthArgs

        def __init__(self, dim, **overrides):
            self.args = WidthArgs(**overrides)

    monkeypatch.setitem(build.HEADS, "width_head", WidthHead)
    build.check_components(ModelConfig(encoder="conv4", head="width_head", head_args={"width": 2}))
    with pytest.raises(ConfigError, match=r"unknown key model.head_args.wdth; WidthArgs fields: width"):
        build.check_components(ModelConfig(encoder="conv4", head="width_head", head_args={"wdth": 2}))
    with pytest.raises(ConfigError, match=r"model.head_args: WidthArgs.width must be >= 1, got 0"):
        build.check_components(ModelConfig(encoder="conv4", head="width_head", head_args={"width": 0}))
    assert LGA.args_schema is LGAConfig
