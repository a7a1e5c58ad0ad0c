"""Learning-rate schedules, per optimiser step: warmup + cosine, step decay, constant."""

from __future__ import annotations

import math

from brainkit.training.config import TrainingConfig


def total_steps(config: TrainingConfig, steps_per_epoch: int) -> int:
    """Optimiser steps in the whole run: ``config.steps``, else ``epochs x steps_per_epoch``."""
    return config.steps if config.steps is not None else max(1, config.epochs * steps_per_epoch)


def warmup_steps(config: TrainingConfig, steps_per_epoch: int) -> int:
    if config.warmup_steps is not None:
        return config.warmup_steps
    return int(config.warmup_epochs * steps_per_epoch)


def learning_rate(config: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) when an epoch has ``steps_per_epoch`` steps.

    ``cosine``: linear warmup to ``lr``, then cosine decay to ``min_lr`` at the last step. ``step``: ``lr`` x
    ``lr_decay ** (epoch // lr_step_epochs)`` (no warmup unless one is set). ``constant``: ``lr`` after warmup.
    """
    warmup = warmup_steps(config, steps_per_epoch)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return config.lr * config.lr_decay ** (epoch // config.lr_step_epochs)
    total = total_steps(config, steps_per_epoch)
    progress = (step - warmup) / max(1, total - warmup)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))
