"""lga: Language-Guided Action Anatomy for few-shot action recognition.

A small, readable re-implementation of LGA (ICCV 2025) and its baselines, written to be
taught from (see the book in ``book/``) and reused in research. What a study needs is one import
away; each name is imported on first use (``import lga`` loads neither torch nor open_clip)::

    import lga

    cfg = lga.load_config("atomic_actions_5way_1shot_cpu", ["train.lr=1e-4"])
    run = lga.train(cfg, "runs/lga_1shot")                       # episodic training, checkpoints
    result = lga.evaluate_checkpoint(cfg, run.best_checkpoint)   # mean and 95% interval
    print(result)

    features = lga.FrozenFeatures.from_config(cfg)               # a frozen backbone's features, cached
    head = lga.build_model(cfg, dim=features.dim).head
    lga.evaluate_split(head, features.test, num_episodes=1000)   # any head on a split's episodes

**Configs.**
:func:`lga.load_config <lga.config.load_config>` (a shipped config by name, or a YAML file, with
``key=value`` overrides),
:func:`lga.list_configs <lga.config.list_configs>`,
:func:`lga.select_profile <lga.config.select_profile>` (``paper`` on a GPU, ``cpu`` otherwise),
:class:`lga.Config <lga.config.Config>`,
:class:`lga.ConfigError <lga.config.ConfigError>`,
:func:`lga.data_dir <lga.config.data_dir>` (where datasets and models are cached).

**Data.**
:class:`lga.VideoDataset <lga.data.dataset.VideoDataset>` and
:func:`lga.load_clips <lga.data.dataset.load_clips>` (a prepared benchmark's videos),
:class:`lga.EpisodeSampler <lga.data.episodes.EpisodeSampler>` and
:class:`lga.Episode <lga.data.episodes.Episode>` (seeded N-way K-shot episodes),
:func:`lga.get_atomic_actions <lga.data.atomic_actions.get_atomic_actions>`,
:func:`lga.generate_atomic_actions <lga.data.atomic_actions.generate>` and
:class:`lga.AtomicActionsConfig <lga.data.atomic_actions.AtomicActionsConfig>` (the synthetic benchmark),
:func:`lga.prepare_dataset <lga.data.prepare.prepare>` (a real benchmark from its archives),
:func:`lga.load_split <lga.data.splits.load_split>` (the standard split lists).

**Anatomy.**
:func:`lga.load_anatomy <lga.anatomy.shipped.load_anatomy>`,
:func:`lga.load_shipped_anatomy <lga.anatomy.shipped.load_shipped_anatomy>` and
:class:`lga.Anatomy <lga.anatomy.shipped.Anatomy>` (class anatomy: shipped, or a file),
:func:`lga.generate_anatomy <lga.anatomy.backends.generate_anatomy>` with
:func:`lga.make_backend <lga.anatomy.backends.make_backend>` (an LLM writes it),
:func:`lga.parse_anatomy <lga.anatomy.parse.parse_anatomy>`,
:func:`lga.check_anatomy <lga.anatomy.quality.check_anatomy>`,
:func:`lga.anatomy_agreement <lga.anatomy.agreement.anatomy_agreement>`.

**Models.**
:class:`lga.LGA <lga.models.lga.LGA>`, :class:`lga.LGAConfig <lga.models.lga.LGAConfig>` and
:func:`lga.ablation_config <lga.models.lga.ablation_config>` (the method and its ablation rows),
:class:`lga.ProtoNet <lga.models.baselines.ProtoNet>`,
:class:`lga.OTAMHead <lga.models.baselines.OTAMHead>`,
:class:`lga.LabelOnlyHead <lga.models.baselines.LabelOnlyHead>` (the baselines),
:class:`lga.TextBank <lga.models.text_bank.TextBank>` (class texts, encoded once),
:func:`lga.load_clip <lga.models.backbone.load_clip>` and
:class:`lga.ClipFrameEncoder <lga.models.backbone_encoder.ClipFrameEncoder>` (the backbone).

**Build, train, evaluate.**
:func:`lga.build_model <lga.engine.model.build_model>` and
:class:`lga.EpisodicModel <lga.engine.model.EpisodicModel>` (a config's encoder and head),
:func:`lga.register_head <lga.config.components.register_head>` and
:func:`lga.register_encoder <lga.config.components.register_encoder>` (your own components),
:func:`lga.train <lga.engine.train.train>` and :class:`lga.RunResult <lga.engine.train.RunResult>`,
:func:`lga.load_model_weights <lga.engine.checkpoint.load_model_weights>`,
:class:`lga.FrozenFeatures <lga.engine.features.FrozenFeatures>` and
:class:`lga.SplitFeatures <lga.engine.features.SplitFeatures>` (features encoded once),
:func:`lga.evaluate_split <lga.engine.evaluate.evaluate_split>`,
:func:`lga.evaluate_episodes <lga.engine.evaluate.evaluate_episodes>`,
:func:`lga.evaluate_checkpoint <lga.engine.evaluate.evaluate_checkpoint>`,
:class:`lga.EvalResult <lga.engine.evaluate.EvalResult>` and
:func:`lga.compare <lga.engine.evaluate.compare>` (paired intervals),
:func:`lga.run_protocol <lga.engine.protocol.run_protocol>` with
:class:`lga.Row <lga.engine.protocol.Row>`,
:func:`lga.headline_rows <lga.engine.protocol.headline_rows>`,
:func:`lga.baseline_rows <lga.engine.protocol.baseline_rows>`,
:func:`lga.tuned_baseline_rows <lga.engine.protocol.tuned_baseline_rows>` and
:func:`lga.ablation_rows <lga.engine.protocol.ablation_rows>` (the results table).

**Layers.** The modules form layers that import one way only, lowest first:
utilities < data < anatomy < config < models < engine < front.
*utilities*: ``lga`` itself (lazy exports), :mod:`lga._lazy`, :mod:`lga.yaml_io`, :mod:`lga.reported`
(and any other top-level module of generic helpers); *data*: :mod:`lga.data`; *anatomy*:
:mod:`lga.anatomy`; *config*: :mod:`lga.config` (parsing and checking configs; the registry of
component names); *models*: :mod:`lga.optim`, :mod:`lga.models`; *engine*: :mod:`lga.engine`;
*front*: :mod:`lga.viz`, :mod:`lga.book`, the command lines (``lga.__main__``, :mod:`lga.anatomy.cli`,
:mod:`lga.engine.cli`). A module imports from its own layer or lower ones, never in a circle
(``tests/test_layers.py`` checks every import, function-local ones included).

Sub-packages follow the book's chapters, and export their own shortcuts the same way:

- :mod:`lga.data`     videos, frame sampling, episodes, the AtomicActions benchmark
- :mod:`lga.anatomy`  text anatomy (LLM prompting, parsing, cache) and visual anatomy
- :mod:`lga.models`   backbones, fusion, matching, LGA and its baselines
- :mod:`lga.engine`   training and evaluation
"""

from ._lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(__name__, {
    # configs
    "load_config": "lga.config", "list_configs": "lga.config", "select_profile": "lga.config",
    "Config": "lga.config", "ConfigError": "lga.config", "data_dir": "lga.config",
    # data
    "VideoDataset": "lga.data.dataset", "load_clips": "lga.data.dataset",
    "EpisodeSampler": "lga.data.episodes", "Episode": "lga.data.episodes",
    "get_atomic_actions": "lga.data.atomic_actions", "generate_atomic_actions": "lga.data.atomic_actions:generate",
    "AtomicActionsConfig": "lga.data.atomic_actions", "prepare_dataset": "lga.data.prepare:prepare",
    "load_split": "lga.data.splits",
    # anatomy
    "load_anatomy": "lga.anatomy.shipped", "load_shipped_anatomy": "lga.anatomy.shipped", "Anatomy": "lga.anatomy.shipped",
    "generate_anatomy": "lga.anatomy.backends", "make_backend": "lga.anatomy.backends",
    "parse_anatomy": "lga.anatomy.parse", "check_anatomy": "lga.anatomy.quality",
    "anatomy_agreement": "lga.anatomy.agreement",
    # models
    "LGA": "lga.models.lga", "LGAConfig": "lga.models.lga", "ablation_config": "lga.models.lga",
    "ProtoNet": "lga.models.baselines", "OTAMHead": "lga.models.baselines", "LabelOnlyHead": "lga.models.baselines",
    "TextBank": "lga.models.text_bank", "load_clip": "lga.models.backbone",
    "ClipFrameEncoder": "lga.models.backbone_encoder",
    # build, train, evaluate
    "build_model": "lga.engine.model", "EpisodicModel": "lga.engine.model",
    "register_head": "lga.config.components", "register_encoder": "lga.config.components",
    "train": "lga.engine.train", "RunResult": "lga.engine.train",
    "load_model_weights": "lga.engine.checkpoint",
    "FrozenFeatures": "lga.engine.features", "SplitFeatures": "lga.engine.features",
    "evaluate_split": "lga.engine.evaluate", "evaluate_episodes": "lga.engine.evaluate",
    "evaluate_checkpoint": "lga.engine.evaluate", "EvalResult": "lga.engine.evaluate", "compare": "lga.engine.evaluate",
    "run_protocol": "lga.engine.protocol", "Row": "lga.engine.protocol", "headline_rows": "lga.engine.protocol",
    "baseline_rows": "lga.engine.protocol", "tuned_baseline_rows": "lga.engine.protocol",
    "ablation_rows": "lga.engine.protocol",
})

del attach
