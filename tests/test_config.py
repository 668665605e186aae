"""Run configs: every shipped file validates, YAML round trips, overrides convert, errors name the key."""

from pathlib import Path

import pytest
import yaml

from lga.config import (Config, ConfigError, apply_override, config_from_dict, default_config,
                        load_config, select_profile)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SHIPPED_FILES = sorted(CONFIG_DIR.rglob("*.yaml"))
#: run configs (configs/tiny_clip/ holds the tiny CLIP's recipe, not a run config)
CONFIG_FILES = [p for p in SHIPPED_FILES if p.relative_to(CONFIG_DIR).parts[0] != "tiny_clip"]


def test_configs_folder_covers_every_benchmark_shot_and_ablation_row():
    names = {p.stem for p in CONFIG_FILES}
    for ds in ("hmdb51", "ucf101", "kinetics100", "ssv2_small", "ssv2_full"):
        for k in (1, 5):
            assert f"{ds}_5way_{k}shot" in names
    for k in (1, 5):
        assert f"atomic_actions_5way_{k}shot_cpu" in names
        assert f"atomic_actions_5way_{k}shot_label_only_cpu" in names and f"hmdb51_5way_{k}shot_label_only" in names
        for row in ABLATION_FILES:
            assert f"hmdb51_5way_{k}shot_{row}" in names and f"atomic_actions_5way_{k}shot_{row}_cpu" in names


#: ablation config stems -> rows of lga.models.lga.ABLATION_CHAIN (the paper's six and our three)
ABLATION_FILES = {"video_video": "video-video", "uniform_thirds": "uniform thirds",
                  "uniform_thirds_overlap": "uniform thirds + overlap", "visual_anatomy": "+ visual anatomy",
                  "text_anatomy": "+ textual anatomy", "text_anatomy_overlap": "+ textual anatomy + overlap",
                  "both_anatomies": "both anatomies", "both_anatomies_vt_only": "both anatomies, video-text only",
                  "full": "full LGA"}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_config_file_loads_and_its_components_check(path):
    from lga.engine.build import check_components
    from lga.models.lga import LGAConfig
    cfg = load_config(path)
    check_components(cfg.model)                     # classes exist, arguments are accepted
    if cfg.model.head == "lga":
        LGAConfig(**cfg.model.head_args)
    assert cfg.name == path.stem
    assert cfg.data.k_shot == int(path.stem.split("_5way_")[1][0])
    if cfg.profile == "paper":                      # the recipe of PAPER.md
        t = cfg.train
        assert (cfg.data.num_frames, t.optimizer, t.lr, t.epochs, t.milestones, t.tasks_per_step,
                t.warmup_epochs) == (8, "adam", 1e-5, 10, [6, 9], 4, 1.0)
        assert cfg.data.train_queries == 5 and cfg.data.test_queries == 1 and cfg.eval.episodes == 10_000
        assert cfg.eval.split == "test"


def test_ablation_rows_match_the_models_table():
    from lga.models.lga import ABLATION_CHAIN, LGAConfig
    for stem, row in ABLATION_FILES.items():
        for k in (1, 5):
            for name in (f"hmdb51_5way_{k}shot_{stem}", f"atomic_actions_5way_{k}shot_{stem}_cpu"):
                cfg = load_config(CONFIG_DIR / "ablations" / f"{name}.yaml")
                assert LGAConfig(**cfg.model.head_args) == ABLATION_CHAIN[row], name


def test_cpu_lga_configs_train_a_head_on_a_frozen_backbone_and_paper_configs_crop_like_clip_fsar():
    for path in CONFIG_FILES:
        cfg = load_config(path)
        if cfg.profile == "paper":
            assert (cfg.data.augment, cfg.data.crop_scale) == ("crop", 0.875), path.name    # 224 of 256
        elif cfg.model.encoder == "clip":
            assert cfg.model.encoder_args["train_last_blocks"] == 0 and cfg.train.backbone == "auto", path.name
            assert cfg.train.feature_cache == "features" and cfg.train.tasks_per_step == 4, path.name


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_yaml_round_trip(profile, tmp_path):
    cfg = default_config(profile)
    cfg.model.head_args = {"alpha": 0.3, "nested": {"a": [1, 2]}}
    cfg.train.grad_clip = None
    text = cfg.to_yaml(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert config_from_dict(yaml.safe_load(text)) == cfg


def test_profile_defaults():
    paper, cpu = default_config("paper"), default_config("cpu")
    assert paper.model.encoder == "clip" and paper.model.encoder_args["model"] == "ViT-B-16"
    assert paper.train.lr == 1e-5 and paper.train.tasks_per_step == 4 and paper.train.milestones == [6, 9]
    assert cpu.data.dataset == "atomic_actions" and cpu.train.device == "auto"
    assert load_config(None) == cpu
    assert select_profile("cpu").name == "cpu"      # the lead's profile API still works


def test_partial_file_takes_profile_defaults(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("profile: paper\ntrain:\n  lr: 2.0e-5\n")
    cfg = load_config(p)
    assert cfg.train.lr == 2e-5 and cfg.train.tasks_per_step == 4 and cfg.data.dataset == "hmdb51"
    p.write_text("model:\n  encoder: clip\n  encoder_args: {model: lga-tiny-vit-64}\n")
    assert load_config(p).model.encoder_args == {"model": "lga-tiny-vit-64"}   # cpu's conv4 args dropped


def test_overrides_convert_types():
    cfg = load_config(None, ["train.lr=1e-4", "train.epochs=3", "train.amp=false", "train.grad_clip=null",
                             "train.milestones=[1, 2]", "data.anatomy=hmdb51", "train.warmup_epochs=1",
                             "model.head_args.alpha=0.25", "model.encoder_args={dim: 16}", "eval.episodes=1_000"])
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 3 and cfg.train.amp is False and cfg.train.grad_clip is None
    assert cfg.train.milestones == [1, 2] and cfg.train.warmup_epochs == 1.0
    assert isinstance(cfg.train.warmup_epochs, float)
    assert cfg.model.head_args == {"alpha": 0.25}
    assert cfg.model.encoder_args == {"dim": 16, "width": 16}   # merged into the profile's (same encoder)
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
        check_components(load_config(None, ["model.encoder_args.wdth=1"]).model)
    with pytest.raises(ConfigError, match=r"model.head: unknown head 'protonett'"):
        check_components(load_config(None, ["model.head=protonett"]).model)
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\]"):
        check_components(load_config(CONFIG_DIR / "hmdb51_5way_1shot.yaml", ["model.head_args.alpha=2"]).model)
    assert isinstance(default_config("cpu"), Config)


def test_shipped_configs_resolve_by_name_and_unknown_names_are_reported(tmp_path):
    from lga.config import find_config, list_configs
    names = list_configs()
    assert "hmdb51_5way_1shot" in names and "ablations/hmdb51_5way_1shot_full" in names
    assert len(names) == len(CONFIG_FILES)
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
    assert load_config(p).model.head_args == {"temperature": 0.5}


def test_config_diff_names_dotted_keys_treats_args_as_one_value_and_ignores_below_a_prefix():
    from lga.config import config_diff
    a = load_config(None).to_dict()
    b = load_config(None, ["train.lr=0.5", "train.epochs=3", "data.n_way=3"]).to_dict()
    assert config_diff(a, a) == []
    assert config_diff(a, b) == ["data.n_way", "train.epochs", "train.lr"]
    assert config_diff(a, b, ignore=("train",)) == ["data.n_way"]
    assert config_diff(a, b, ignore=("train.lr", "data.n")) == ["data.n_way", "train.epochs"]   # prefixes are keys
    b["model"]["encoder_args"] = {**a["model"]["encoder_args"], "extra": 1}
    assert "model.encoder_args" in config_diff(a, b)
