"""Masked-autoencoder pretraining through Lightning Fabric (CPU, one GPU or many).

:func:`masked_pretraining_loop` is the loop any masked autoencoder shares (it takes the mask draw and the loss);
:func:`pretrain_masked` drives it for models whose ``forward(x, mask)`` reconstructs ROI windows ``x`` and whose
config has ``segment_frames`` (BrainMAE); ``models/vsmae.py`` + ``recipes/vsmae.py`` drive it for surface clips.

Each batch draws its mask ratio uniformly from ``mask_ratio_range`` (BrainMAE: (0, 0.8)) from a seeded
generator, so a run is reproducible; validation uses a fixed ratio and a fixed mask. The learning-rate schedule,
gradient clipping and device handling are those of :mod:`brainkit.training`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from brainkit.errors import ConfigError, DataError
from brainkit.objectives.masked import masked_reconstruction_loss, random_mask
from brainkit.training import FitResult, TrainingConfig, _make_fabric, learning_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaskingConfig:
    """How tokens are hidden. ``masking=False`` trains a plain autoencoder (the BrainAE ablation)."""

    masking: bool = True
    mask_ratio_range: tuple[float, float] = (0.0, 0.8)  # BrainMAE: a random ratio per batch in (0, 0.8)
    eval_mask_ratio: float = (
        0.7  # BrainMAE's quoted ratio (METHODS.md: unverified), for validation/evaluation
    )
    masked_weight: float = 0.75  # lambda: 0.75 masked + 0.25 visible (METHODS.md sec. 5)


def _check_windows(windows: np.ndarray, model: nn.Module, name: str) -> torch.Tensor:
    windows = np.asarray(windows, dtype=np.float32)
    n_rois = model.config.n_rois
    if windows.ndim != 3 or windows.shape[2] != n_rois or len(windows) == 0:
        raise DataError(
            f"{name}: expected windows (n_windows, n_frames, {n_rois} ROIs), found {windows.shape}."
        )
    if not np.isfinite(windows).all():
        raise DataError(f"{name}: windows contain NaN or inf.")
    return torch.from_numpy(windows)


@torch.no_grad()
def reconstruction_error(
    model: nn.Module, windows: np.ndarray, mask: torch.Tensor, batch_size: int = 64
) -> dict[str, float]:
    """MSE of the masked and the visible tokens for a given mask (batch, n_segments, n_rois)."""
    was_training = model.training
    model.eval()
    x = _check_windows(windows, model, "reconstruction_error")
    t = model.config.segment_frames
    parts = [model(x[i : i + batch_size], mask[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    error = ((torch.cat(parts) - x) ** 2).reshape(len(x), -1, t, x.shape[2]).mean(dim=2)  # (b, s, r)
    model.train(was_training)
    return {
        "masked_mse": float(error[mask].mean()),
        "visible_mse": float(error[~mask].mean()) if (~mask).any() else 0.0,
    }


def pretrain_masked(
    model: nn.Module,
    windows: np.ndarray,
    training: TrainingConfig,
    masking: MaskingConfig = MaskingConfig(),
    val_windows: np.ndarray | None = None,
    fabric: Any = None,
) -> FitResult:
    """Pretrain ``model`` on ``windows`` (n_windows, n_frames, n_rois); returns the per-epoch history."""
    low, high = masking.mask_ratio_range
    if not 0.0 <= low <= high < 1.0:
        raise ConfigError(
            f"mask_ratio_range must satisfy 0 <= low <= high < 1, found {masking.mask_ratio_range}."
        )
    x_all = _check_windows(windows, model, "pretraining windows")
    n_segments = x_all.shape[1] // model.config.segment_frames
    validate = None
    if val_windows is not None:
        val = _check_windows(val_windows, model, "validation windows")
        generator = torch.Generator().manual_seed(training.seed + 7)
        val_segments = val.shape[1] // model.config.segment_frames
        val_mask = random_mask(len(val), val_segments, val.shape[2], masking.eval_mask_ratio, generator)

        def validate(raw: nn.Module) -> dict[str, float]:
            return {f"val_{k}": v for k, v in reconstruction_error(raw, val_windows, val_mask).items()}

    def draw_mask(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if masking.masking:
            ratio = float(low + (high - low) * torch.rand(1, generator=generator))
            return random_mask(len(xb), n_segments, xb.shape[2], ratio, generator)
        return torch.zeros(len(xb), n_segments, xb.shape[2], dtype=torch.bool)

    weight = masking.masked_weight if masking.masking else 0.0

    def loss(model: nn.Module, raw: nn.Module, xb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_reconstruction_loss(model(xb, mask), xb, mask, raw.config.segment_frames, weight)

    return masked_pretraining_loop(model, x_all, training, draw_mask, loss, validate, fabric)


def masked_pretraining_loop(
    model: nn.Module,
    x_all: torch.Tensor,
    training: TrainingConfig,
    draw_mask: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    loss: Callable[[nn.Module, nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    fabric: Any = None,
    betas: tuple[float, float] = (0.9, 0.999),
) -> FitResult:
    """The loop every masked autoencoder shares: seeded shuffling, a mask per batch from ``draw_mask(batch,
    generator)``, ``loss(model, raw_model, batch, mask)``, AdamW with the warmup + cosine schedule, gradient
    clipping, and ``validate(raw_model)`` after each epoch. ``x_all`` (n_samples, ...) is already checked.
    ``betas``: AdamW's (beta1, beta2) (MAE-style pretraining uses (0.9, 0.95))."""
    start = time.perf_counter()
    if training.threads:
        torch.set_num_threads(training.threads)
    if fabric is None:
        fabric = _make_fabric(training)
        fabric.launch()
    n = len(x_all)
    batch = min(training.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.lr, weight_decay=training.weight_decay, betas=betas
    )
    model, optimizer = fabric.setup(model, optimizer)
    raw = model.module if hasattr(model, "module") else model
    torch.manual_seed(training.seed)
    generator = torch.Generator().manual_seed(training.seed + 1)
    history: list[dict[str, Any]] = []
    step = 0
    bar = tqdm(
        range(training.epochs),
        desc=f"{type(raw).__name__} pretraining",
        disable=not training.progress,
        leave=False,
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator)
        losses = []
        for b in range(steps_per_epoch):
            xb = x_all[order[b * batch : (b + 1) * batch]]
            mask = draw_mask(xb, generator)
            xb, mask = fabric.to_device((xb, mask))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(training, step, steps_per_epoch)
            value = loss(model, raw, xb, mask)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(value)
            if training.grad_clip:
                fabric.clip_gradients(model, optimizer, max_norm=training.grad_clip)
            optimizer.step()
            losses.append(float(value.detach()))
            step += 1
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
        if validate is not None:
            record.update(validate(raw))
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        log.info("pretraining epoch %d: %s", epoch + 1, record)
    return FitResult(history=history, seconds=time.perf_counter() - start)
