"""Regression objectives: the mean squared error of predicted voxel responses (encoding models)."""

from __future__ import annotations

import torch
from torch import nn

from brainkit.errors import DataError
from brainkit.registry import OBJECTIVES


@OBJECTIVES.register("voxel_mse", help="Mean squared error over samples and voxels (encoding models).")
class VoxelMSE(nn.Module):
    """``(prediction, target)``, both (batch, n_voxels) -> the mean of the squared differences (a scalar)."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape:
            raise DataError(
                f"voxel_mse: predictions {tuple(prediction.shape)} and targets {tuple(target.shape)} differ in shape."
            )
        return ((prediction - target) ** 2).mean()
