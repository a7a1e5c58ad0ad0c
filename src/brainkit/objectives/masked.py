"""Masked reconstruction losses: BrainMAE's token mask and weighted loss, and the hidden-patch MSE of vsMAE
and DC-MAE.

BrainMAE's mask hides whole (segment, ROI) tokens; its loss weighs hidden tokens by ``masked_weight`` (0.75 in
BrainMAE) and visible ones by the rest, so the model also keeps what it sees (the paper's lambda).
:func:`masked_patch_loss` scores hidden patches only (vsMAE on surface patches; DC-MAE through
:func:`brainkit.objectives.double_contrastive.masked_mse`).
"""

from __future__ import annotations

import torch
from einops import rearrange

from brainkit.errors import ConfigError


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
