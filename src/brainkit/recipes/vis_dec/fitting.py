"""How every Vis-Dec driver trains its task: a resumable phase in its own folder, or a plain run without one.

With ``folder`` the task is a phase of :func:`brainkit.training.train_phase` (``folder`` is the phase's own:
``state/`` while it trains, ``final/`` + ``done.json`` when done; ``resume=False`` replaces it, ``resume=True``
reloads a finished phase or continues an interrupted one). Without ``folder`` it is one :func:`~brainkit.training.train`
call that writes nothing (the tests' and notebooks' use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brainkit.errors import ConfigError
from brainkit.training import FitResult, Task, TrainingConfig, train, train_phase


def fit_task(
    task: Task,
    training: TrainingConfig,
    folder: str | Path | None,
    name: str,
    resume: bool = False,
    **options: Any,
) -> FitResult:
    """Train ``task`` as the phase ``name`` in ``folder`` (see the module docstring); ``options`` go to the loop."""
    if folder is None:
        if resume:
            raise ConfigError(f"{name}: resume=True needs the phase's folder (the one it was trained into).")
        return train(task, training, name=name, **options)
    return train_phase(task, training, folder, resume, name=name, **options)


__all__ = ["fit_task"]
