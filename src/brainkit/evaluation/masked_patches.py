"""Masked-patch reconstruction error of a voxel MAE (DC-MAE, Vis-Dec phase 1) beside two baselines.

:func:`masked_patch_errors` scores held-out patterns with a fixed seeded mask, beside two baselines that need no
training: the training-set mean of each voxel, and linear interpolation across each hole from the nearest
visible voxels on both sides (the voxel order is the patch order). The model is used through its declared
interface: ``config.n_voxels``, ``config.patch_size``, ``random_mask(batch, generator)`` and
``forward(voxels, mask) -> voxels``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brainkit.errors import DataError


def check_voxels(voxels: np.ndarray, model: nn.Module, name: str) -> torch.Tensor:
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


def _interpolate(x: np.ndarray, hidden_voxels: np.ndarray) -> np.ndarray:
    """Fill the hidden voxels of each row by linear interpolation between the nearest visible ones."""
    out = x.copy()
    index = np.arange(x.shape[1])
    for row, hide in enumerate(hidden_voxels):
        out[row, hide] = np.interp(index[hide], index[~hide], x[row, ~hide])
    return out


@torch.no_grad()
def masked_patch_errors(
    model: nn.Module,
    train_voxels: np.ndarray,
    test_voxels: np.ndarray,
    seed: int = 0,
    batch_size: int = 256,
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


__all__ = ["check_voxels", "masked_patch_errors"]
