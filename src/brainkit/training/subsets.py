"""What the new-subject adaptation protocols share (recipes ``adaptation`` and ``clip_mused``'s adaptation): the
seeded, nested draw of k of a subject's training rows, and the training length of a fit on k rows."""

from __future__ import annotations

import dataclasses

import numpy as np

from brainkit.training.config import TrainingConfig


def nested_rows(n_rows: int, k: int, seed: int) -> np.ndarray:
    """The first ``k`` of a seeded permutation of ``n_rows`` rows, in ascending order: for one seed the draws are
    nested over k (k=50 is inside k=150)."""
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:k])


def k_training(config: TrainingConfig, k: int, seed: int, min_steps: int) -> TrainingConfig:
    """``config`` for k rows: ``epochs`` passes (at least ``min_steps`` steps), seeded with ``seed``; unless
    ``validate_every`` is set, validated (and its resumable state written) 4 times, not after every pass (a pass
    over 50 rows is one step)."""
    per_epoch = max(1, k // min(config.batch_size, k))
    steps = config.steps if config.steps is not None else max(min_steps, config.epochs * per_epoch)
    every = config.validate_every if config.validate_every is not None else max(1, steps // 4)
    return dataclasses.replace(config, steps=steps, seed=seed, validate_every=every)


__all__ = ["k_training", "nested_rows"]
