"""Training and prediction for the CLIP-MUSED recipe: masked voxels -> volumes in each batch, Adam, step decay.

The released schedule (decoding_HCP_MS.py): Adam, lr 1e-3, x0.7 every 25 epochs, attention parameters at 0.1 x
the learning rate, batch 64. Volumes are rebuilt per batch from the masked voxel values (a scatter into the
grid), so the data stay (n_samples, n_voxels) in memory.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from brainkit.errors import DataError
from brainkit.models.clip_mused import CLIPMUSED
from brainkit.objectives.semantic import SemanticLoss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.7
    lr_step_epochs: int = 25
    attention_lr_multiplier: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = True
    device: str = "cpu"  # e.g. "cuda" for the hcp preset


@dataclass
class SampleArrays:
    """Rows of one or several subjects: ``values`` (n, n_voxels) masked, ``subject`` (n,) model indices,
    ``labels`` (n, n_classes) 0/1, ``high`` (n, d_high) and ``low`` (n, d_low) stimulus targets."""

    values: np.ndarray
    subject: np.ndarray
    labels: np.ndarray
    high: np.ndarray
    low: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.values)
        if any(len(a) != n for a in (self.subject, self.labels, self.high, self.low)):
            raise DataError(
                "SampleArrays: values, subject, labels, high and low need the same number of rows."
            )

    def select(self, rows: np.ndarray) -> SampleArrays:
        return SampleArrays(*(a[rows] for a in (self.values, self.subject, self.labels, self.high, self.low)))


class VolumeGrid:
    """Scatter masked voxel values into the model grid: (batch, n_voxels) -> (batch, X, Y, Z)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.shape = tuple(int(s) for s in mask.shape)
        self.flat = torch.from_numpy(np.flatnonzero(mask))

    def __call__(self, values: np.ndarray) -> torch.Tensor:
        values = torch.as_tensor(values, dtype=torch.float32)
        out = values.new_zeros(len(values), math.prod(self.shape))
        out[:, self.flat] = values
        return out.view(len(values), *self.shape)


def _batch(arrays: SampleArrays, rows: np.ndarray, grid: VolumeGrid, device: torch.device | str = "cpu"):
    parts = (
        grid(arrays.values[rows]),
        torch.from_numpy(arrays.subject[rows].astype(np.int64)),
        torch.from_numpy(arrays.labels[rows].astype(np.float32)),
        torch.from_numpy(arrays.high[rows]),
        torch.from_numpy(arrays.low[rows]),
    )
    return tuple(part.to(device) for part in parts)


def fit(
    model: CLIPMUSED,
    arrays: SampleArrays,
    grid: VolumeGrid,
    loss: SemanticLoss,
    settings: FitSettings,
    name: str,
) -> list[dict]:
    """Train ``model`` in place; returns one record per epoch (mean loss parts, seconds)."""
    model.to(settings.device)
    attention = {id(p) for p in model.attention_parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in attention], "lr": settings.lr},
        {"params": model.attention_parameters(), "lr": settings.lr * settings.attention_lr_multiplier},
    ]
    optimiser = torch.optim.Adam(groups, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, settings.lr_step_epochs, settings.lr_decay)
    rng = np.random.default_rng(settings.seed)
    history = []
    model.train()
    bar = tqdm(range(settings.epochs), desc=f"train {name}", disable=not settings.progress, leave=False)
    for epoch in bar:
        start, sums, count = time.perf_counter(), {}, 0
        order = rng.permutation(len(arrays.values))
        n_batches = max(1, len(order) // settings.batch_size)  # drop the ragged end: BatchNorm needs > 1 row
        for rows in np.array_split(order[: n_batches * settings.batch_size], n_batches):
            x, subject, labels, high_target, low_target = _batch(arrays, rows, grid, settings.device)
            out = model(x, subject)
            total, parts = loss(out.logits, labels, out.high, out.low, high_target, low_target)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            for key, value in {"loss": total, **parts}.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(rows)
            count += len(rows)
        schedule.step()
        record = {"epoch": epoch + 1, **{k: v / count for k, v in sums.items()}}
        history.append(record | {"seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{record['loss']:.4f}")
    log.info("Trained %s: final loss %.4f", name, history[-1]["loss"])
    return history


@torch.no_grad()
def predict(
    model: CLIPMUSED, arrays: SampleArrays, grid: VolumeGrid, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Sigmoid probabilities (n, n_classes), the high/low tokens (n, dim) and the mean token attention (2, n_tokens)."""
    model.eval()
    device = next(model.parameters()).device
    scores, highs, lows, attention = [], [], [], None
    for start in range(0, len(arrays.values), batch_size):
        rows = np.arange(start, min(start + batch_size, len(arrays.values)))
        x, subject, *_ = _batch(arrays, rows, grid, device)
        out = model(x, subject, return_attention=True)
        scores.append(torch.sigmoid(out.logits).cpu().numpy())
        highs.append(out.high.cpu().numpy())
        lows.append(out.low.cpu().numpy())
        if out.attention is not None:
            part = out.attention.sum(0).cpu()
            attention = part if attention is None else attention + part
    result = {"scores": np.concatenate(scores), "high": np.concatenate(highs), "low": np.concatenate(lows)}
    if attention is not None:
        result["attention"] = (attention / len(arrays.values)).numpy()
    return result
