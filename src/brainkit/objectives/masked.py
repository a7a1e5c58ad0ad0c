"""Masked reconstruction: BrainMAE's token mask, how tokens are hidden and the weighted loss, and the hidden-patch
MSE of vsMAE and DC-MAE.

BrainMAE's mask hides whole (segment, ROI) tokens; its loss weighs hidden tokens by ``masked_weight`` (0.75 in
BrainMAE) and visible ones by the rest, so the model also keeps what it sees (the paper's lambda). Each training
batch draws its mask ratio uniformly from ``mask_ratio_range`` (BrainMAE: (0, 0.8)); evaluation uses
``eval_mask_ratio``. :func:`masked_patch_loss` scores hidden patches only (vsMAE on surface patches; DC-MAE through
:func:`brainkit.objectives.double_contrastive.masked_mse`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from brainkit.config import bounded, check_bounds
from brainkit.errors import ConfigError


@dataclass(frozen=True)
class MaskingConfig:
    """How tokens are hidden. ``masking=False`` trains a plain autoencoder (the BrainAE ablation)."""

    masking: bool = True
    # BrainMAE: a random ratio per batch in (0, 0.8)
    mask_ratio_range: tuple[float, float] = bounded((0.0, 0.8), ge=0, lt=1)
    # BrainMAE's quoted ratio (METHODS.md: unverified), for validation/evaluation
    eval_mask_ratio: float = bounded(0.7, gt=0, lt=1)
    # lambda: 0.75 masked + 0.25 visible (METHODS.md sec. 5)
    masked_weight: float = bounded(0.75, ge=0, le=1)

    def __post_init__(self) -> None:
        check_bounds(self, "masking")
        low, high = self.mask_ratio_range
        if not 0.0 <= low <= high < 1.0:
            raise ConfigError(
                f"mask_ratio_range must satisfy 0 <= low <= high < 1, found {self.mask_ratio_range}."
            )

    @property
    def loss_weight(self) -> float:
        """The masked tokens' weight in the loss (0 without masking: every token is visible)."""
        return self.masked_weight if self.masking else 0.0


def random_mask(
    batch: int, n_segments: int, n_rois: int, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hide ``round(ratio * n_rois)`` ROIs in every segment, drawn independently: (batch, n_segments, n_rois) bool."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"mask ratio must be in [0, 1), found {ratio}.")
    n_hidden = int(round(ratio * n_rois))
    scores = torch.rand(batch, n_segments, n_rois, generator=generator)
    ranks = scores.argsort(dim=-1).argsort(dim=-1)
    return ranks < n_hidden


def masked_reconstruction_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    segment_frames: int,
    masked_weight: float = 0.75,
) -> torch.Tensor:
    """lambda * MSE(masked tokens) + (1 - lambda) * MSE(visible tokens), lambda = 0.75 (the paper).

    prediction, target (batch, n_times, n_rois); mask (batch, n_segments, n_rois). A term with no tokens is 0.
    """
    error = rearrange((prediction - target) ** 2, "b (s t) r -> b s r t", t=segment_frames).mean(dim=-1)
    hidden = mask.to(error.dtype)
    masked = (error * hidden).sum() / hidden.sum().clamp(min=1)
    visible = (error * (1 - hidden)).sum() / (1 - hidden).sum().clamp(min=1)
    return masked_weight * masked + (1 - masked_weight) * visible


def masked_patch_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    vertex_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE over the hidden patches: prediction, target (b, c, n, v); mask (b, n) bool; vertex_weight (n, v) or
    None (1 everywhere; 0 on the medial wall)."""
    error = (prediction - target) ** 2  # (b, c, n, v)
    weight = mask[:, None, :, None].to(error.dtype)
    if vertex_weight is not None:
        weight = weight * vertex_weight.to(error.dtype)
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


def draw_mask(
    masking: MaskingConfig, batch: int, n_segments: int, n_rois: int, generator: torch.Generator
) -> torch.Tensor:
    """One training batch's mask: a ratio drawn from ``mask_ratio_range``, then :func:`random_mask`; all visible
    without masking. (batch, n_segments, n_rois) bool."""
    if not masking.masking:
        return torch.zeros(batch, n_segments, n_rois, dtype=torch.bool)
    low, high = masking.mask_ratio_range
    ratio = float(low + (high - low) * torch.rand(1, generator=generator))
    return random_mask(batch, n_segments, n_rois, ratio, generator)
