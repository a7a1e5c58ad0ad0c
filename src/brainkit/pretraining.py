"""Kept until vsMAE and Vis-Dec are ported (other branches); delete then.

:func:`masked_pretraining_loop`, the old loop ``recipes/vsmae.py``, ``dc_mae_training.py`` and
``cross_modal_training.py`` still drive (it takes the mask draw and the loss). BrainMAE runs on the one trainer
(:class:`brainkit.recipes.brain_mae.MaskedPretraining`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from brainkit.training import FitResult, TrainingConfig, _make_fabric, learning_rate

log = logging.getLogger(__name__)


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
