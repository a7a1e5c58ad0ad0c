"""One resumable phase of a recipe: train a task into its own folder, or reload it when it already finished.

A recipe with several networks or phases (CLIP-MUSED's ablations, BrainMAE's pretraining then fine-tuning, SIM,
Vis-Dec's three phases) calls :func:`train_phase` once per network with its own ``folder``. While training, the
folder holds the loop's ``state/`` (resumable) and ``history.jsonl``; when training ends it holds ``final/`` (the
task's weights) and ``done.json`` (the loop's result), and ``state/`` is removed. With ``resume=True`` a finished
phase is reloaded into the task (not retrained), an interrupted one continues from ``state/`` bit for bit, and one
that never started trains from the beginning, so a recipe resumed after a kill ends exactly where the
uninterrupted run does.

Order of the writes (each one atomic): ``final/``, then ``done.json``, then ``state/`` removed. A kill between two
of them resumes correctly: without ``done.json`` the loop resumes from ``state/`` at its last step (nothing left to
train) and the phase is finished again.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from brainkit.checkpoint import atomic_write_text, recover_folder, remove_folder
from brainkit.config import to_dict
from brainkit.errors import CheckpointError
from brainkit.training.config import TrainingConfig
from brainkit.training.loop import HISTORY, STATE, FitResult, train
from brainkit.training.processes import primary_path
from brainkit.training.state import load_weights, save_weights
from brainkit.training.task import Task

log = logging.getLogger(__name__)
FINAL, DONE = "final", "done.json"


def phase_done(folder: str | Path) -> bool:
    """Whether the phase in ``folder`` finished (its weights and result are there)."""
    folder = Path(folder)
    return (folder / DONE).is_file() and recover_folder(folder / FINAL)


def train_phase(
    task: Task,
    config: TrainingConfig,
    folder: str | Path,
    resume: bool = False,
    name: str | None = None,
    **train_options: Any,
) -> FitResult:
    """Train ``task`` with ``config`` into ``folder`` (see the module docstring); returns the loop's result.

    ``resume=False`` starts over (an old ``folder`` is removed); ``resume=True`` reloads a finished phase, continues
    an interrupted one, or starts one that never began. ``train_options`` go to :func:`train` (``fabric``).
    """
    folder = Path(folder)
    name = name or type(task).__name__
    source = primary_path(folder)  # a secondary process reads what rank 0 wrote (training/processes.py)
    if resume and phase_done(source):
        return _reload(task, config, source, name)
    continuing = resume and recover_folder(source / STATE)
    if not continuing:
        shutil.rmtree(folder, ignore_errors=True)
    result = train(task, config, out_dir=folder, resume=continuing, name=name, **train_options)
    save_weights(folder / FINAL, task, {"task": name, "step": result.steps})
    done = {
        "task": name,
        "training": to_dict(config),
        "history": result.history,
        "seconds": result.seconds,
        "best": result.best,
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "changes": result.changes,  # settings changed on resumption, with the step from which they held
    }
    atomic_write_text(folder / DONE, json.dumps(done, indent=1))
    remove_folder(folder / STATE)
    return result


def write_imported_phase(
    task: Task, config: TrainingConfig, folder: str | Path, name: str, source: dict[str, Any]
) -> None:
    """Write ``task`` (its weights already loaded from a released checkpoint) into ``folder`` as a finished phase:
    ``final/`` and a ``done.json`` with no steps and no history, and ``source`` (file, sha256) as its
    ``imported`` record. :func:`train_phase` with ``resume=True`` and the recipe's ``evaluate`` reload it like a
    trained one; ``config`` must be the training settings the recipe would train that phase with.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    save_weights(folder / FINAL, task, {"task": name, "step": 0, "imported": source})
    done = {
        "task": name,
        "training": to_dict(config),
        "history": [],
        "seconds": 0.0,
        "best": None,
        "steps": 0,
        "imported": source,
    }
    atomic_write_text(folder / DONE, json.dumps(done, indent=1))


def _read_done(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / DONE).read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{folder / DONE} does not exist: that phase never finished. Resume an interrupted run "
            "(brainkit run NAME --out DIR --resume), or run the recipe again."
        ) from None
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{folder / DONE} is truncated or not JSON ({err}); delete {folder} to train that phase again."
        ) from None


def load_result(folder: str | Path) -> FitResult:
    """The loop's result (history, seconds, best, steps) of the finished phase in ``folder``, read from its
    ``done.json`` without touching any weights: what a recipe's ``evaluate`` reports beside re-scored models."""
    return _result(_read_done(Path(folder)))


def _result(done: dict[str, Any]) -> FitResult:
    return FitResult(
        history=done["history"],
        seconds=done["seconds"],
        best=done["best"],
        steps=done["steps"],
        stopped_early=done.get("stopped_early", False),
    )


def _reload(task: Task, config: TrainingConfig, folder: Path, name: str) -> FitResult:
    done = _read_done(folder)
    if done.get("training") != to_dict(config) or done.get("task") != name:
        raise CheckpointError(
            f"The finished phase in {folder} was trained as {done.get('task')!r} with other training settings "
            f"than this run's {name!r}; delete {folder} to train it again with the new settings."
        )
    load_weights(folder / FINAL, task)
    log.info("%s finished before the interruption; reloaded from %s", name, folder)
    return _result(done)


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    """The per-period history of the phase in ``folder`` (empty when it has none)."""
    path = Path(folder) / HISTORY
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


__all__ = [
    "DONE",
    "FINAL",
    "load_result",
    "phase_done",
    "read_history",
    "train_phase",
    "write_imported_phase",
]
