"""Baselines: ridge regression fitted in closed form, and a MindEye-style residual MLP.

Both map (batch, n_voxels) -> (batch, *output_shape) like every registered model.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.base import VoxelModel, check_input
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import ResidualMLPBlock
from brainkit.registry import MODELS

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- ridge
@dataclass(frozen=True)
class RidgeConfig(Checked):
    """Ridge regression on standardised voxels; ``alphas`` is the grid searched by leave-one-out CV."""

    n_voxels: int | None = bounded(
        None, le=10_000_000, gt=0, fix="set by the data; more than 10 million voxels is not a brain recording"
    )
    output_shape: tuple[int, ...] | None = bounded(None, ge=1)
    alphas: tuple[float, ...] = bounded((1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6), gt=0, fix="ridge penalties")
    standardize: bool = True


@MODELS.register("ridge", help="Ridge regression voxels -> flattened embedding, alpha by leave-one-out CV.")
class Ridge(nn.Module, VoxelModel):
    """Ridge regression from voxels to the flattened target, fitted with :meth:`fit_closed_form`.

    The fitted coefficients ``weight`` (n_voxels, n_outputs) and ``bias`` (n_outputs,) are frozen parameters:
    ``count_parameters(model)`` (trainable only) reports 0 and ``count_parameters(model, trainable_only=False)``
    reports ``n_voxels * n_outputs + n_outputs``. The standardisation (``x_mean``, ``x_scale``), the chosen
    ``alpha`` and a ``fitted`` flag are buffers; everything travels through safetensors.
    """

    Config = RidgeConfig
    battery_skips = {
        "one_step": "closed form: fitted by fit_closed_form, no optimiser step",
        "paper_count": "a baseline with no paper preset",
    }
    PRESETS: dict[str, RidgeConfig] = {
        "default": RidgeConfig(),  # ours: a log grid over 6 decades (voxels standardised)
        "testing": RidgeConfig(alphas=(1e-2, 1e0, 1e2)),
    }

    def __init__(self, config: RidgeConfig) -> None:
        super().__init__()
        if not config.alphas or any(a <= 0 for a in config.alphas):
            raise ConfigError(f"ridge config: alphas must be positive numbers, found {config.alphas}.")
        self.config = config
        self.output_shape = tuple(config.output_shape)
        n_outputs = math.prod(self.output_shape)
        self.weight = nn.Parameter(torch.zeros(config.n_voxels, n_outputs), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(n_outputs), requires_grad=False)
        self.register_buffer("x_mean", torch.zeros(config.n_voxels))
        self.register_buffer("x_scale", torch.ones(config.n_voxels))
        self.register_buffer("alpha", torch.zeros(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_closed_form(self, x: torch.Tensor, y: torch.Tensor) -> Ridge:
        """Fit on training data: standardise voxels, pick alpha by exact leave-one-out error, solve.

        Uses one eigendecomposition of the smaller Gram matrix (n x n or n_voxels x n_voxels); every alpha
        then costs a few matrix products. The intercept is unpenalised, so the hat matrix gains ``1/n`` on its
        diagonal and the leave-one-out errors are exact. Computed in float32.

        Parameters
        ----------
        x : Tensor, (n_samples, n_voxels)
        y : Tensor, (n_samples, *output_shape)
        """
        check_input(self, x)
        if y.shape[0] != x.shape[0] or tuple(y.shape[1:]) != self.output_shape:
            raise DataError(
                f"ridge: targets of shape {tuple(y.shape)} do not fit x {tuple(x.shape)}; expected "
                f"({x.shape[0]}, *{self.output_shape}). Pass one target row per sample."
            )
        if x.shape[0] < 3:
            raise DataError(f"ridge: leave-one-out needs at least 3 samples, found {x.shape[0]}.")
        x = x.float()
        y = y.reshape(len(y), -1).float()
        mean = x.mean(0)
        scale = x.std(0).clamp_min(1e-8) if self.config.standardize else torch.ones_like(mean)
        x = (x - mean) / scale
        y_mean = y.mean(0)
        y = y - y_mean
        n, p = x.shape
        complete = n <= p  # the eigenvectors of x x^T span all n samples
        if complete:
            eigvals, u = torch.linalg.eigh(x @ x.T)
            eigvals = torch.where(eigvals > eigvals.max() * n * 1e-6, eigvals, 0.0)  # the null space exactly
        else:
            eigvals, v = torch.linalg.eigh(x.T @ x)
            keep = eigvals > eigvals.max() * p * 1e-6
            eigvals, v = eigvals[keep], v[:, keep]
            u = (x @ v) / eigvals.sqrt()
        z = u.T @ y  # (rank, n_outputs)
        outside = None if complete else y - u @ z  # the part of y no alpha can fit
        u_squared = u.square()
        errors = []
        for alpha in self.config.alphas:
            kept = alpha / (eigvals + alpha)  # 1 - shrinkage, per eigenvector
            # Residuals and 1 - hat diagonal (the intercept adds 1/n) without cancellation near interpolation.
            residual = u @ (kept[:, None] * z)
            if complete:
                one_minus_hat = u_squared @ kept - 1.0 / n
            else:
                residual = residual + outside
                one_minus_hat = 1.0 - 1.0 / n - u_squared @ (1.0 - kept)
            errors.append((residual / one_minus_hat[:, None]).square().mean().item())
        best = min(range(len(errors)), key=errors.__getitem__)
        alpha = self.config.alphas[best]
        if best in (0, len(errors) - 1):
            log.warning("ridge: the chosen alpha %g is at the end of the grid %s.", alpha, self.config.alphas)
        weight = x.T @ (u / (eigvals + alpha)) @ z  # (n_voxels, n_outputs)
        self.weight.copy_(weight.float())
        self.bias.copy_(y_mean.float())
        self.x_mean.copy_(mean.float())
        self.x_scale.copy_(scale.float())
        self.alpha.fill_(alpha)
        self.fitted.fill_(True)
        self.cv_errors_ = dict(zip(self.config.alphas, errors))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> (batch, *output_shape)."""
        check_input(self, x)
        if not bool(self.fitted):
            raise ConfigError("ridge: the model is not fitted; call fit_closed_form(x_train, y_train) first.")
        out = torch.addmm(self.bias, (x - self.x_mean) / self.x_scale, self.weight)
        return out.reshape(len(x), *self.output_shape)


# ---------------------------------------------------------------------------------------------- MindEye MLP
@dataclass(frozen=True)
class MindEyeMLPConfig(Checked):
    """MindEye's voxel backbone: Linear + LayerNorm + GELU + dropout, residual blocks, a linear head."""

    n_voxels: int | None = bounded(
        None, le=10_000_000, gt=0, fix="set by the data; more than 10 million voxels is not a brain recording"
    )
    output_shape: tuple[int, ...] | None = bounded(None, ge=1)
    hidden_dim: int = bounded(4096, ge=1, fix="the width of every block")
    n_blocks: int = bounded(4, ge=0, fix="residual blocks")
    input_dropout: float = bounded(0.5, ge=0, lt=1, fix="the share of voxels dropped in training")
    dropout: float = bounded(0.15, ge=0, lt=1)


@MODELS.register("mindeye_mlp", help="MindEye-style residual MLP backbone (Scotti et al., NeurIPS 2023).")
class MindEyeMLP(nn.Module, VoxelModel):
    """MindEye-style residual MLP: (batch, n_voxels) -> (batch, *output_shape).

    Without MindEye's per-token projector and diffusion prior (see docs/methods/lite_mind.md for the counts).
    """

    Config = MindEyeMLPConfig
    PRESETS: dict[str, MindEyeMLPConfig] = {
        # MindEye (Scotti et al. 2023) high-level backbone for NSD subject 1: 15,724 nsdgeneral voxels, hidden 4096,
        # 4 residual blocks, dropout 0.5 / 0.15, output CLIP ViT-L/14 257 x 768. 940,225,280 parameters
        # (docs/methods/lite_mind.md).
        "mindeye_nsd_subj01": MindEyeMLPConfig(
            n_voxels=15724,
            output_shape=(257, 768),
            hidden_dim=4096,
            n_blocks=4,
            input_dropout=0.5,
            dropout=0.15,
        ),
        # Ours, for the built-in demo (~3,900 voxels -> 1,280-d): ~2.9 M parameters there.
        "cpu_small": MindEyeMLPConfig(hidden_dim=512, n_blocks=2, input_dropout=0.3, dropout=0.15),
        "testing": MindEyeMLPConfig(hidden_dim=16, n_blocks=1, input_dropout=0.0, dropout=0.0),
    }

    def __init__(self, config: MindEyeMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.output_shape = tuple(config.output_shape)
        h = config.hidden_dim
        self.stem = nn.Sequential(
            CPULinear(config.n_voxels, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(config.input_dropout)
        )
        self.blocks = nn.Sequential(*(ResidualMLPBlock(h, config.dropout) for _ in range(config.n_blocks)))
        self.head = CPULinear(h, math.prod(self.output_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> (batch, *output_shape)."""
        check_input(self, x)
        return self.head(self.blocks(self.stem(x))).reshape(len(x), *self.output_shape)
