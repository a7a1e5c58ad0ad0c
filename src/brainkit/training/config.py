"""How to train: one frozen config for every phase of every method (optimiser, schedule, length, devices)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainkit.errors import ConfigError

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "step", "constant")
MONITOR_MODES = ("max", "min")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train.

    Length: ``epochs`` passes over the training set, or, when ``steps`` is set, exactly that many optimiser steps
    (the epoch count then follows from the data). Warmup likewise: ``warmup_steps`` when set, else
    ``warmup_epochs`` x steps per epoch. ``batch_size`` is the GLOBAL batch of one forward pass, split evenly
    across ``devices * num_nodes``; ``accumulate`` forward passes make one optimiser step.

    Schedule: ``cosine`` (linear warmup, then cosine decay to ``min_lr``), ``step`` (x ``lr_decay`` every
    ``lr_step_epochs`` epochs, CLIP-MUSED's StepLR) or ``constant`` (after the warmup).

    Validation and checkpoints: the task is validated after every epoch, or every ``validate_every`` steps when
    set; checkpoints are written every ``checkpoint_every`` of those periods and at the end. With ``monitor`` (a
    history key, e.g. ``"val_top1"``) the best period by it (``monitor_mode``) is kept beside the last.
    ``precision``: Lightning Fabric's (``"32-true"``, ``"bf16-mixed"`` on a GPU, ...). ``sync_batchnorm``: with
    several processes, BatchNorm layers normalise by the statistics of the whole global batch (SyncBatchNorm; GPU
    only: on CPU they keep per-process statistics, with a warning).
    """

    epochs: int = 20
    steps: int | None = None
    batch_size: int = 128
    accumulate: int = 1
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    warmup_steps: int | None = None
    min_lr: float = 1e-5
    lr_step_epochs: int = 25
    lr_decay: float = 0.7
    grad_clip: float | None = 1.0
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = True
    validate_every: int | None = None
    checkpoint_every: int = 1
    monitor: str | None = None
    monitor_mode: str = "max"
    seed: int = 0
    progress: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, found: object) -> None:
            if not ok:
                raise ConfigError(f"training.{what}, found {found!r}.")

        need(self.epochs >= 1, "epochs must be >= 1 (the run's length in passes over the data)", self.epochs)
        need(
            self.steps is None or self.steps >= 1,
            "steps must be >= 1 or null (then epochs counts)",
            self.steps,
        )
        need(self.batch_size >= 1, "batch_size must be >= 1", self.batch_size)
        need(
            self.accumulate >= 1, "accumulate must be >= 1 forward passes per optimiser step", self.accumulate
        )
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}", self.optimizer)
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}", self.schedule)
        need(self.lr > 0 and math.isfinite(self.lr), "lr must be a finite number > 0", self.lr)
        need(0 <= self.min_lr <= self.lr, "min_lr must lie in [0, lr]", self.min_lr)
        need(self.weight_decay >= 0, "weight_decay must be >= 0", self.weight_decay)
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas must be two numbers in [0, 1)",
             self.betas)  # fmt: skip
        need(self.warmup_epochs >= 0, "warmup_epochs must be >= 0", self.warmup_epochs)
        need(self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps must be >= 0 or null",
             self.warmup_steps)  # fmt: skip
        need(self.lr_step_epochs >= 1, "lr_step_epochs must be >= 1", self.lr_step_epochs)
        need(0 < self.lr_decay <= 1, "lr_decay must lie in (0, 1]", self.lr_decay)
        need(
            self.grad_clip is None or self.grad_clip > 0,
            "grad_clip must be > 0 or null (off)",
            self.grad_clip,
        )
        need(self.devices >= 1 and self.num_nodes >= 1, "devices and num_nodes must be >= 1",
             (self.devices, self.num_nodes))  # fmt: skip
        need(self.validate_every is None or self.validate_every >= 1, "validate_every must be >= 1 step or null",
             self.validate_every)  # fmt: skip
        need(self.checkpoint_every >= 1, "checkpoint_every must be >= 1", self.checkpoint_every)
        need(
            self.monitor_mode in MONITOR_MODES,
            f"monitor_mode must be one of {MONITOR_MODES}",
            self.monitor_mode,
        )
        need(self.threads is None or self.threads >= 0, "threads must be >= 0 or null", self.threads)

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes


# Fields that may change between a run and its resumption: display, threads, and where it runs (the global batch,
# and so the computation, stays the same; only floating-point summation order may differ across devices).
RESUMABLE_CHANGES = ("progress", "threads", "accelerator", "devices", "num_nodes", "strategy")
