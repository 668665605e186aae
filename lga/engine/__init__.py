"""Training and evaluation (book chapters 1, 8 and 9): one engine behind every reported number.

- :mod:`lga.engine.train`       ``train(cfg, out_dir, resume=...)``: episodic meta-training with gradient
                                accumulation, warm-up + step schedule, AMP on CUDA, clipping, a
                                non-finite-loss guard, validation-based model selection, exact resume,
                                DDP under torchrun; a fine-tuned or a frozen backbone (heads trained on
                                cached features); in named pieces (``setup_run``, ``train_step``,
                                ``validate_run``, ``save_last``); ``train_step``, the step a teaching
                                loop calls too.
- :mod:`lga.engine.optim`       the optimizer factory, the learning-rate schedule and the optimizer step,
                                shared by the meta-training and the tiny CLIP's training (defined in
                                :mod:`lga.optim`, below the models).
- :mod:`lga.engine.evaluate`    thousands of episodes in batches on features computed once, mean and 95%
                                CI, ``compare`` (paired interval), ``evaluate_checkpoint``.
- :mod:`lga.engine.protocol`    the results table: rows x shots x seeds through ``train``, shared test
                                episodes, spread across seeds and paired intervals within each seed.
- :mod:`lga.engine.features`    a frozen backbone's features: every training frame, val/test splits, class
                                texts, cached on disk by encoder key (``SplitFeatures`` for analysis).
- :mod:`lga.engine.augment`     spatial crops of training clips (CLIP-FSAR's 224 of 256), cacheable.
- :mod:`lga.engine.model`       encoder + head as one module, built and seeded from a config.
- :mod:`lga.engine.checkpoint`  atomic safetensors checkpoints (no pickle), RNG states, tensor checksums.
- :mod:`lga.engine.runlock`     one run per run folder (a lock the kernel drops when its process dies).
- :mod:`lga.engine.device`      the placement rule (everything a model computes on moves to its device),
                                the run's device and processes.
- :mod:`lga.engine.build`       the component registry: config -> encoder, head, text bank.
- :mod:`lga.engine.cli`         ``python -m lga train`` / ``python -m lga eval``.

Shortcuts (each imported on first use from the module that defines it; submodules as usual):
:obj:`build_model <lga.engine.model.build_model>`,
:obj:`EpisodicModel <lga.engine.model.EpisodicModel>`,
:obj:`register_head <lga.config.components.register_head>`,
:obj:`register_encoder <lga.config.components.register_encoder>`,
:obj:`allow_component <lga.config.components.allow_component>`,
:obj:`episode_loss <lga.engine.train.episode_loss>`,
:obj:`RunResult <lga.engine.train.RunResult>`,
:obj:`evaluate_split <lga.engine.evaluate.evaluate_split>`,
:obj:`evaluate_episodes <lga.engine.evaluate.evaluate_episodes>`,
:obj:`evaluate_checkpoint <lga.engine.evaluate.evaluate_checkpoint>`,
:obj:`compare <lga.engine.evaluate.compare>`,
:obj:`EvalResult <lga.engine.evaluate.EvalResult>`,
:obj:`Comparison <lga.engine.evaluate.Comparison>`,
:obj:`GroupResult <lga.engine.evaluate.GroupResult>`,
:obj:`group_result <lga.engine.evaluate.group_result>`,
:obj:`compare_groups <lga.engine.evaluate.compare_groups>`,
:obj:`FrozenFeatures <lga.engine.features.FrozenFeatures>`,
:obj:`SplitFeatures <lga.engine.features.SplitFeatures>`,
:obj:`encode_split <lga.engine.features.encode_split>`,
:obj:`run_protocol <lga.engine.protocol.run_protocol>`,
:obj:`ProtocolResult <lga.engine.protocol.ProtocolResult>`,
:obj:`Row <lga.engine.protocol.Row>`,
:obj:`headline_rows <lga.engine.protocol.headline_rows>`,
:obj:`baseline_rows <lga.engine.protocol.baseline_rows>`,
:obj:`tuned_baseline_rows <lga.engine.protocol.tuned_baseline_rows>`,
:obj:`ablation_rows <lga.engine.protocol.ablation_rows>`,
:obj:`load_head <lga.engine.protocol.load_head>`,
:obj:`save_checkpoint <lga.engine.checkpoint.save_checkpoint>`,
:obj:`load_model_weights <lga.engine.checkpoint.load_model_weights>`.
``lga.engine.train`` stays the module :mod:`lga.engine.train`; its function is
``lga.engine.train.train``, or ``lga.train``.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "build_model": "lga.engine.model",
    "EpisodicModel": "lga.engine.model",
    "register_head": "lga.config.components",
    "register_encoder": "lga.config.components",
    "allow_component": "lga.config.components",
    "episode_loss": "lga.engine.train",
    "RunResult": "lga.engine.train",
    "evaluate_split": "lga.engine.evaluate",
    "evaluate_episodes": "lga.engine.evaluate",
    "evaluate_checkpoint": "lga.engine.evaluate",
    "compare": "lga.engine.evaluate",
    "EvalResult": "lga.engine.evaluate",
    "Comparison": "lga.engine.evaluate",
    "GroupResult": "lga.engine.evaluate",
    "group_result": "lga.engine.evaluate",
    "compare_groups": "lga.engine.evaluate",
    "FrozenFeatures": "lga.engine.features",
    "SplitFeatures": "lga.engine.features",
    "encode_split": "lga.engine.features",
    "run_protocol": "lga.engine.protocol",
    "ProtocolResult": "lga.engine.protocol",
    "Row": "lga.engine.protocol",
    "headline_rows": "lga.engine.protocol",
    "baseline_rows": "lga.engine.protocol",
    "tuned_baseline_rows": "lga.engine.protocol",
    "ablation_rows": "lga.engine.protocol",
    "load_head": "lga.engine.protocol",
    "save_checkpoint": "lga.engine.checkpoint",
    "load_model_weights": "lga.engine.checkpoint",
})

del attach
