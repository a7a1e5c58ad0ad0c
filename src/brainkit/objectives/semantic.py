"""CLIP-MUSED's semantic objective: multi-label BCE + representational-similarity (RSM) + orthogonality losses.

Shapes: ``logits`` and ``labels`` (batch, n_classes); the two subject tokens ``high`` and ``low``
(batch, dim); the stimulus features ``high_features`` (batch, d_high) and ``low_features`` (batch, d_low), any
width (they are compared through their batch x batch dissimilarity matrices, never directly).

- RDM (representational dissimilarity matrix) of a batch: ``1 - cosine(x_i, x_j)``, (batch, batch).
- RSM loss: mean squared difference of two RDMs (the released code's squared Frobenius norm / batch^2).
- Orthogonality: ``||high_n low_n^T||_F^2 / batch^2`` on the L2-normalised tokens (the released ``F`` type).
- Total (paper, HCP): ``1 * bce + 1e-3 * orth + 1e-3 * rsm_high + 0.1 * rsm_low``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brainkit.errors import ConfigError, DataError
from brainkit.registry import OBJECTIVES


def rdm(x: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between the rows of ``x``: (batch, ...) -> (batch, batch)."""
    flat = F.normalize(x.flatten(1), dim=1, eps=1e-8)
    return 1.0 - flat @ flat.T


def rsm_loss(tokens: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the RDMs of ``tokens`` and ``features`` (same batch, any widths)."""
    return (rdm(tokens) - rdm(features)).square().mean()


def orthogonality_loss(high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """``||normalize(high) normalize(low)^T||_F^2 / batch^2``: 0 when every high token is orthogonal to every low."""
    product = F.normalize(high, dim=1, eps=1e-8) @ F.normalize(low, dim=1, eps=1e-8).T
    return product.square().mean()


@dataclass(frozen=True)
class SemanticLossConfig:
    """Loss weights; defaults are the paper's HCP settings (README command = argparse defaults)."""

    bce: float = 1.0
    orthogonality: float = 1e-3
    rsm_high: float = 1e-3
    rsm_low: float = 0.1


@OBJECTIVES.register("clip_mused_semantic", help="Multi-label BCE + RSM (high, low) + orthogonality.")
class SemanticLoss(nn.Module):
    """The weighted sum of CLIP-MUSED's four losses; ``forward`` returns (total, parts by name)."""

    def __init__(self, config: SemanticLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or SemanticLossConfig()
        for name in ("bce", "orthogonality", "rsm_high", "rsm_low"):
            if getattr(self.config, name) < 0:
                raise ConfigError(
                    f"SemanticLoss: weight {name} must be >= 0, found {getattr(self.config, name)}."
                )

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        high: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
        high_features: torch.Tensor | None = None,
        low_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its unweighted parts (``bce`` always; the others when their inputs are given)."""
        if logits.shape != labels.shape or logits.ndim != 2:
            raise DataError(
                f"SemanticLoss: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must both be "
                "(batch, n_classes)."
            )
        parts = {"bce": F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))}
        weights = {"bce": self.config.bce}
        batch = logits.shape[0]
        for name, tokens, features in (("rsm_high", high, high_features), ("rsm_low", low, low_features)):
            weight = getattr(self.config, name)
            if weight == 0 or tokens is None or features is None:
                continue
            if tokens.shape[0] != batch or features.shape[0] != batch:
                raise DataError(
                    f"SemanticLoss: {name} needs tokens and features with {batch} rows (the batch), found "
                    f"{tuple(tokens.shape)} and {tuple(features.shape)}."
                )
            parts[name], weights[name] = rsm_loss(tokens, features), weight
        if self.config.orthogonality > 0 and high is not None and low is not None:
            parts["orthogonality"] = orthogonality_loss(high, low)
            weights["orthogonality"] = self.config.orthogonality
        total = sum(weights[name] * value for name, value in parts.items())
        return total, parts
