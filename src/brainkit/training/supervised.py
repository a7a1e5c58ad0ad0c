"""Paired (brain, target) training: a model whose output an objective compares with a target (Lite-Mind, the
MLP baseline, any regression head), as a :class:`~brainkit.training.task.Task` for the one loop; closed-form
models (ridge: ``fit_closed_form``) are fitted in one shot instead."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data.disk_rows import is_lazy
from brainkit.data.paired import Arrays
from brainkit.training.config import TrainingConfig
from brainkit.training.loop import FitResult, torch_threads, train
from brainkit.training.task import Task


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model outputs for ``x`` (n, n_voxels) -> (n, *output_shape), in eval mode, on the model's device."""
    was_training = model.training
    model.eval()
    device = next(iter(model.buffers()), next(iter(model.parameters()), torch.empty(0))).device
    parts = [
        model(torch.as_tensor(x[i : i + batch_size], device=device)).float().cpu().numpy()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return np.concatenate(parts)


def top1_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose most similar target (cosine) is their own; quick validation metric."""
    p = pred.reshape(len(pred), -1)
    t = target.reshape(len(target), -1)
    p = p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-8)
    t = t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-8)
    return float(np.mean(np.argmax(p @ t.T, axis=1) == np.arange(len(p))))


class SupervisedTask(Task):
    """``objective(model(x), y)`` over paired arrays; validation: ``val_top1`` (cosine identification) and
    ``val_loss`` on the whole validation set. Checkpoint keys: ``model.*`` and ``objective.*``."""

    def __init__(self, model: nn.Module, objective: nn.Module, data: Arrays, val: Arrays | None = None):
        super().__init__()
        self.model, self.objective = model, objective
        # rows on disk (a streamed subject) stay there: each batch reads its rows
        self.x = data.x if is_lazy(data.x) else torch.as_tensor(data.x)
        self.y = torch.as_tensor(data.y)
        self.val = val

    def n_samples(self) -> int:
        return len(self.x)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if is_lazy(self.x):
            return torch.from_numpy(self.x[np.asarray(rows)]), self.y[rows]
        return self.x[rows], self.y[rows]

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return self.objective(self.model(x), y)

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        pred = predict(self.model, self.val.x)
        device = next(self.objective.parameters(), torch.empty(0)).device
        loss = self.objective(
            torch.as_tensor(pred, device=device), torch.as_tensor(self.val.y, device=device)
        )
        return {"val_top1": top1_accuracy(pred, self.val.y), "val_loss": float(loss)}


def fit(
    model: nn.Module,
    objective: nn.Module,
    data: Arrays,
    config: TrainingConfig,
    val: Arrays | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    fabric: Any = None,
    until_epoch: int | None = None,
) -> FitResult:
    """Train ``model`` with ``objective`` on paired ``data`` through :func:`brainkit.training.train`.

    A model with ``fit_closed_form`` (ridge) is fitted in one shot on the training rows instead.
    """
    if hasattr(model, "fit_closed_form"):
        start = time.perf_counter()
        with torch_threads(config.threads):
            # the closed form needs every row at once: rows on disk are read whole here
            model.fit_closed_form(torch.as_tensor(np.asarray(data.x)), torch.as_tensor(data.y))
        record: dict[str, Any] = {"step": 1, "epoch": 1}
        if val is not None:
            record["val_top1"] = top1_accuracy(predict(model, val.x), val.y)
        return FitResult(history=[record], seconds=time.perf_counter() - start, steps=1)
    task = SupervisedTask(model, objective, data, val)
    name = type(model).__name__
    return train(task, config, out_dir, resume=resume, fabric=fabric, until_epoch=until_epoch, name=name)
