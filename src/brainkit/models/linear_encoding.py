"""A voxel-wise linear encoding model: stimulus features -> every voxel's response (Naselaris et al. 2011).

The standard model of encoding studies: each voxel's response is a weighted sum of the stimulus's features plus a
bias. It is brainkit's sixth method, added to show that a method is new files only (docs/design.md, "Adding a
method"): this model, its objective (``objectives/regression.py``), its recipe (``recipes/linear_encoding.py``,
trained by the one trainer, with a closed-form ridge reference) and its report (``report/linear_encoding.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.registry import MODELS


@dataclass(frozen=True)
class LinearEncodingConfig(Checked):
    """Sizes from the data: ``n_features`` (the stimulus features' width) and ``n_voxels`` (the outputs)."""

    n_features: int | None = bounded(None, ge=1, le=10_000_000, fix="set by the stimulus features")
    n_voxels: int | None = bounded(
        None, ge=1, le=10_000_000, fix="set by the data; more than 10 million voxels is not a brain recording"
    )
    bias: bool = True


@MODELS.register("linear_encoding", help="Voxel-wise linear encoding model: stimulus features -> voxels.")
class LinearEncoding(nn.Module):
    """(batch, n_features) stimulus features -> (batch, n_voxels) predicted responses."""

    Config = LinearEncodingConfig
    PRESETS: dict[str, LinearEncodingConfig] = {
        "default": LinearEncodingConfig(),  # one weight per (feature, voxel) and a bias per voxel
        "testing": LinearEncodingConfig(),
    }
    # the battery's tiny inputs: 13 features -> 29 voxels (unequal, so a swapped axis cannot pass)
    testing_sizes = {"n_features": 13, "n_voxels": 29}
    battery_skips = {"paper_count": "its size is the data's (n_features x n_voxels): no paper preset"}

    def __init__(self, config: LinearEncodingConfig) -> None:
        super().__init__()
        if config.n_features is None or config.n_features < 1:
            raise ConfigError(
                f"linear_encoding: n_features must be set from the data (>= 1), found {config.n_features}."
            )
        self.config = config
        self.linear = CPULinear(config.n_features, config.n_voxels, bias=config.bias)

    @classmethod
    def example(
        cls, config: LinearEncodingConfig, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor]:
        return (torch.randn(batch, config.n_features, generator=generator),)

    def output_shape_for(self, batch: int) -> tuple[int, int]:
        return (batch, self.config.n_voxels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, n_features) -> (batch, n_voxels)."""
        n = self.config.n_features
        if features.ndim != 2 or features.shape[1] != n:
            raise DataError(
                f"LinearEncoding expects stimulus features of shape (batch, {n}), found {tuple(features.shape)}. "
                "Use the same stimulus encoder the model was trained with."
            )
        if not torch.isfinite(features).all():
            raise DataError("LinearEncoding: the stimulus features contain NaN or inf.")
        return self.linear(features)
