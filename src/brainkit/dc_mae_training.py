"""Vis-Dec phase 1: pretrain a DC-MAE (:mod:`brainkit.models.dc_mae`) on voxel patterns, and score it.

:func:`pretrain_dc_mae` drives :func:`brainkit.pretraining.masked_pretraining_loop` (seeded shuffling, warmup +
cosine schedule, gradient clipping, Lightning Fabric): every batch gets two independent masks (the two views of
the double-contrastive loss, :mod:`brainkit.objectives.double_contrastive`); AdamW with betas (0.9, 0.95)
[Vis-Dec code/config.py]. With ``folder`` it writes ``folder/checkpoint`` (safetensors + config.json, loadable
with :func:`brainkit.models.load_model`) and ``folder/history.jsonl``.

:func:`masked_patch_errors` scores held-out patterns with a fixed seeded mask, beside two baselines that need no
training: the training-set mean of each voxel, and linear interpolation across each hole from the nearest
visible voxels on both sides (the voxel order is the patch order).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text
from brainkit.errors import DataError
from brainkit.models.base import save_model
from brainkit.models.dc_mae import DCMAE
from brainkit.objectives.double_contrastive import DoubleContrastiveConfig, DoubleContrastiveLoss
from brainkit.pretraining import masked_pretraining_loop
from brainkit.training import FitResult, TrainingConfig

log = logging.getLogger(__name__)

# Vis-Dec phase 1 optimiser facts [code/config.py; METHODS.md sec. 4.2]: AdamW (0.9, 0.95), lr 2.5e-4, wd 0.05,
# warmup 40 of 140 epochs, grad-clip 0.8, batch 250. Epochs here are the caller's; warmup keeps the 40/140 share.
PAPER_TRAINING = TrainingConfig(
    epochs=140, batch_size=250, lr=2.5e-4, weight_decay=0.05, warmup_epochs=40, min_lr=0.0, grad_clip=0.8,
    seed=2022,
)  # fmt: skip
BETAS = (0.9, 0.95)


def check_voxels(voxels: np.ndarray, model: DCMAE, name: str) -> torch.Tensor:
    """(n, n_voxels) float32 -> tensor, with clear errors for the wrong width or NaN."""
    voxels = np.asarray(voxels, dtype=np.float32)
    n = model.config.n_voxels
    if voxels.ndim != 2 or voxels.shape[1] != n or len(voxels) < 2:
        raise DataError(
            f"{name}: expected voxels (n_samples >= 2, {n}), found {voxels.shape}. Pad to a multiple of "
            f"{model.config.patch_size} with brainkit.models.dc_mae.pad_voxels."
        )
    if not np.isfinite(voxels).all():
        raise DataError(f"{name}: voxels contain NaN or inf; drop or impute those voxels first.")
    return torch.from_numpy(voxels)


def pretrain_dc_mae(
    model: DCMAE,
    voxels: np.ndarray,
    training: TrainingConfig,
    folder: str | Path | None = None,
    loss: DoubleContrastiveConfig | None = None,
    val_voxels: np.ndarray | None = None,
    fabric: Any = None,
) -> FitResult:
    """Pretrain ``model`` on ``voxels`` (n, n_voxels) float32; returns the per-epoch history.

    Each history row has ``train_loss`` (the weighted total) and, with ``val_voxels``, ``val_masked_mse``,
    ``val_self`` and ``val_cross`` on a fixed seeded mask pair (the terms with weight 0 are still measured).
    """
    loss = loss or DoubleContrastiveConfig()
    x_all = check_voxels(voxels, model, "pretraining voxels")
    objective = DoubleContrastiveLoss(loss)
    probe = DoubleContrastiveLoss(DoubleContrastiveConfig(temperature=loss.temperature))  # every term, to log
    patch = model.config.patch_size

    def draw_mask(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(batch, 2, n_patches): two independent masks per sample."""
        return torch.stack([model.random_mask(len(xb), generator), model.random_mask(len(xb), generator)], 1)

    def terms(net: torch.nn.Module, xb: torch.Tensor, masks: torch.Tensor, fn: DoubleContrastiveLoss) -> dict:
        recon = net(torch.cat([xb, xb]), torch.cat([masks[:, 0], masks[:, 1]]))
        a, b = recon.chunk(2)
        return fn(xb, a, b, masks[:, 0], masks[:, 1], patch)

    def step_loss(net: torch.nn.Module, raw: torch.nn.Module, xb: torch.Tensor, masks: torch.Tensor):
        return terms(net, xb, masks, objective)["loss"]

    validate = None
    if val_voxels is not None:
        val = check_voxels(val_voxels, model, "validation voxels")
        generator = torch.Generator().manual_seed(training.seed + 7)
        val_masks = draw_mask(val, generator)

        @torch.no_grad()
        def validate(raw: torch.nn.Module) -> dict[str, float]:
            was = raw.training
            raw.eval()
            out = {f"val_{'masked_mse' if k == 'mse' else k}": float(v)
                   for k, v in terms(raw, val, val_masks, probe).items() if k != "loss"}  # fmt: skip
            raw.train(was)
            return out

    result = masked_pretraining_loop(
        model, x_all, training, draw_mask, step_loss, validate, fabric, betas=BETAS
    )
    if folder is not None:
        folder = Path(folder)
        save_model(folder / "checkpoint", model, metadata={"phase": "dc_mae", "loss": loss.__dict__})
        atomic_write_text(folder / "history.jsonl", "".join(json.dumps(r) + "\n" for r in result.history))
    return result


def _interpolate(x: np.ndarray, hidden_voxels: np.ndarray) -> np.ndarray:
    """Fill the hidden voxels of each row by linear interpolation between the nearest visible ones."""
    out = x.copy()
    index = np.arange(x.shape[1])
    for row, hide in enumerate(hidden_voxels):
        out[row, hide] = np.interp(index[hide], index[~hide], x[row, ~hide])
    return out


@torch.no_grad()
def masked_patch_errors(
    model: DCMAE, train_voxels: np.ndarray, test_voxels: np.ndarray, seed: int = 0, batch_size: int = 256
) -> dict[str, float]:
    """Held-out MSE on hidden patches (one seeded mask per test row) for the model and two baselines.

    Returns ``model``, ``train_mean`` (each voxel's training mean) and ``interpolation`` (linear across each
    hole), plus ``variance`` (the hidden voxels' MSE around 0, the predict-zero level for z-scored data).
    """
    test = check_voxels(test_voxels, model, "test voxels")
    train_mean = check_voxels(train_voxels, model, "training voxels").mean(dim=0)
    mask = model.random_mask(len(test), torch.Generator().manual_seed(seed))
    hidden = mask.repeat_interleave(model.config.patch_size, dim=1).numpy()
    was = model.training
    model.eval()
    recon = torch.cat(
        [model(test[i : i + batch_size], mask[i : i + batch_size]) for i in range(0, len(test), batch_size)]
    )
    model.train(was)
    x = test.numpy()

    def error(prediction: np.ndarray) -> float:
        return float(((prediction - x) ** 2)[hidden].mean())

    return {
        "model": error(recon.numpy()),
        "train_mean": error(np.broadcast_to(train_mean.numpy(), x.shape)),
        "interpolation": error(_interpolate(x, hidden)),
        "variance": error(np.zeros_like(x)),
    }


__all__ = ["BETAS", "PAPER_TRAINING", "masked_patch_errors", "pretrain_dc_mae"]
