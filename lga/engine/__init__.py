"""Training and evaluation (book chapters 1, 8 and 9): one engine behind every reported number.

- :mod:`lga.engine.train`       ``train(cfg, out_dir, resume=...)``: episodic meta-training with gradient
                                accumulation, warm-up + step schedule, AMP on CUDA, clipping, a
                                non-finite-loss guard, validation-based model selection, exact resume,
                                DDP under torchrun; a fine-tuned or a frozen backbone (heads trained on
                                cached features); in named pieces (``setup_run``, ``train_step``,
                                ``validate_run``, ``save_last``); ``train_step``, the step a teaching
                                loop calls too.
- :mod:`lga.engine.optim`       the optimizer factory, the learning-rate schedule and the optimizer step,
                                shared by the meta-training and the tiny CLIP's training.
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
"""
