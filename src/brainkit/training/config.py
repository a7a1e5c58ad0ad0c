"""How to train: one frozen config for every phase of every method (optimiser, schedule, length, devices)."""

from __future__ import annotations

from dataclasses import dataclass

from brainkit.config import bounded, check_bounds, choice
from brainkit.errors import ConfigError
from brainkit.training.heap import MODES as HEAP_MODES

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "step", "constant")
MONITOR_MODES = ("max", "min")
LOGGERS = ("csv", "tensorboard")


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
    history key, e.g. ``"val_top1"``) the best period by it (``monitor_mode``) is kept beside the last;
    ``restore_best`` ends training with those best weights (what the phase then saves and scores) instead of the
    last; ``patience`` stops training once ``monitor`` has not improved (by more than ``min_delta``) for that many
    validation periods (early stopping; the learning-rate schedule still spans the planned length).
    ``loggers``: Lightning's ``"csv"`` and/or ``"tensorboard"`` loggers of every history record, written to
    ``OUT/logs`` (TensorBoard needs ``pip install tensorboardX`` or tensorboard: ``pip install brainkit[loggers]``).
    ``precision``: Lightning Fabric's (``"32-true"``, ``"bf16-mixed"``, ...): ``"bf16-mixed"`` runs the forward under
    bf16 autocast with float32 weights, gradients and optimiser, on a GPU or on a CPU with bf16 units (AVX512-BF16,
    AMX; without them bf16 is emulated and slower; docs/benchmarks.md measures it on 2 AMD cores).
    ``sync_batchnorm``: with several processes, BatchNorm layers normalise by the statistics of the whole global
    batch (SyncBatchNorm; GPU only: on CPU they keep per-process statistics, with a warning). ``compile``: train
    through ``torch.compile`` (Inductor fuses the elementwise work between the GEMMs and convolutions; the first
    steps pay the compilation, minutes for a paper-size model on 2 CPU cores, and a new batch shape recompiles
    once); weights, checkpoints and validation are those of the uncompiled task. ``cpu_memory``: on a CPU run with glibc, ``"reuse"`` keeps
    the memory a step frees in the process for the next step (no fresh pages to fault in each step: the LDM's step
    1.3x faster on 2 cores; see :mod:`brainkit.training.heap`), and gives it back when training ends; ``"release"``
    leaves the C library's allocator as it is.
    """

    epochs: int = bounded(20, ge=1, fix="passes over the training data")
    steps: int | None = bounded(None, ge=1, fix="optimiser steps; null: epochs counts")
    batch_size: int = bounded(128, ge=1, fix="the global batch of one forward pass")
    accumulate: int = bounded(1, ge=1, fix="forward passes per optimiser step")
    optimizer: str = choice("adamw", OPTIMIZERS)
    lr: float = bounded(1e-3, gt=0, fix="the peak learning rate")
    weight_decay: float = bounded(0.1, ge=0)
    betas: tuple[float, float] = bounded((0.9, 0.999), ge=0, lt=1, fix="Adam's moment decay rates")
    schedule: str = choice("cosine", SCHEDULES)
    warmup_epochs: float = bounded(1.0, ge=0)
    warmup_steps: int | None = bounded(None, ge=0, fix="null: warmup_epochs counts")
    min_lr: float = bounded(1e-5, ge=0, fix="the cosine schedule's floor, at most lr")
    lr_step_epochs: int = bounded(25, ge=1)
    lr_decay: float = bounded(0.7, gt=0, le=1)
    grad_clip: float | None = bounded(1.0, gt=0, fix="the gradient norm limit; null: off")
    accelerator: str = "cpu"
    devices: int = bounded(1, ge=1)
    num_nodes: int = bounded(1, ge=1)
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = True
    validate_every: int | None = bounded(None, ge=1, fix="steps between validations; null: every epoch")
    checkpoint_every: int = bounded(1, ge=1, fix="validation periods between checkpoints")
    monitor: str | None = None
    monitor_mode: str = choice("max", MONITOR_MODES)
    restore_best: bool = False
    patience: int | None = bounded(
        None, ge=1, fix="validation periods without improvement; null: no early stop"
    )
    min_delta: float = bounded(0.0, ge=0, fix="the least change of monitor that counts as an improvement")
    loggers: tuple[str, ...] = ()
    seed: int = bounded(0, ge=0)
    progress: bool = True
    threads: int | None = bounded(None, ge=0, fix="torch threads; 0 or null: as they are")
    compile: bool = False
    cpu_memory: str = choice(
        "reuse",
        HEAP_MODES,
        fix="reuse: freed memory kept for the next step; release: glibc's default",
    )

    def __post_init__(self) -> None:
        check_bounds(self, "training")
        unknown = [name for name in self.loggers if name not in LOGGERS]
        if unknown:
            raise ConfigError(f"training.loggers: unknown {unknown}; choose from {list(LOGGERS)}.")
        if (self.patience is not None or self.restore_best) and self.monitor is None:
            raise ConfigError(
                "training.patience and training.restore_best need training.monitor (the validation value to "
                "follow, e.g. val_top1)."
            )
        if self.min_lr > self.lr:
            raise ConfigError(
                f"training.min_lr={self.min_lr!r} is out of range: allowed 0 <= x <= lr ({self.lr!r}). Lower min_lr "
                "or raise lr."
            )

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes


# Fields that may change between a run and its resumption: display, threads, compilation, and where it runs (the
# global batch, and so the computation, stays the same; only floating-point summation order may differ across
# devices, and the dropout masks between compiled and eager steps).
RESUMABLE_CHANGES = (
    "progress", "threads", "compile", "cpu_memory", "accelerator", "devices", "num_nodes", "strategy", "loggers"
)  # fmt: skip
