"""Training and evaluation (book chapters 1, 8 and 9).

- :mod:`lga.engine.train`       ``train(cfg, out_dir, resume=...)``: episodic meta-training with gradient
                                accumulation, warm-up + step schedule, AMP on CUDA, clipping, a
                                non-finite-loss guard, validation-based model selection, exact resume,
                                DDP under torchrun; ``train_episodic`` is chapter 1's minimal loop.
- :mod:`lga.engine.evaluate`    features once per video, thousands of episodes in batches, mean and 95%
                                CI, ``compare`` (paired interval), ``evaluate_checkpoint``.
- :mod:`lga.engine.frozen`      heads on a frozen backbone: ``SplitFeatures`` (a split encoded once, with
                                its class texts) and ``train_head`` (seconds on cached features).
- :mod:`lga.engine.checkpoint`  atomic safetensors checkpoints (no pickle), RNG states.
- :mod:`lga.engine.build`       config -> encoder, head, text bank.
- :mod:`lga.engine.cli`         ``python -m lga train`` / ``python -m lga eval``.
"""
