"""The one trainer: every phase of every method is a :class:`Task` run by :func:`train` (Lightning Fabric).

- :mod:`~brainkit.training.config`: :class:`TrainingConfig`, one config for every phase;
- :mod:`~brainkit.training.task`: the task protocol (batches, draw, load, loss, validation, parameter groups);
- :mod:`~brainkit.training.loop`: the loop (devices, schedule, accumulation, precision, checkpoints, resume);
- :mod:`~brainkit.training.state`: the run's resumable state as one atomic folder;
- :mod:`~brainkit.training.phase`: one resumable phase of a recipe (train, or reload when it finished);
- :mod:`~brainkit.training.supervised`: paired (brain, target) training and prediction.
"""

from brainkit.training.config import TrainingConfig
from brainkit.training.loop import FitResult, allowing_changes, make_fabric, torch_threads, train
from brainkit.training.phase import phase_done, read_history, train_phase, write_imported_phase
from brainkit.training.schedule import learning_rate
from brainkit.training.supervised import Arrays, SupervisedTask, fit, predict, top1_accuracy
from brainkit.training.task import Task

__all__ = ["Arrays", "FitResult", "SupervisedTask", "Task", "TrainingConfig", "allowing_changes", "fit", "learning_rate",
           "make_fabric", "phase_done", "predict", "read_history", "top1_accuracy", "torch_threads", "train",
           "train_phase", "write_imported_phase"]  # fmt: skip
