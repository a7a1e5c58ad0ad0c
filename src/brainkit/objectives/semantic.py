"""CLIP-MUSED's semantic objective: multi-label BCE + representational-similarity (RSM) + orthogonality losses.

Shapes: ``logits`` and ``labels`` (batch, n_classes); the two subject tokens ``high`` and ``low``
(batch, dim); the stimulus features ``high_features`` (batch, d_high) and ``low_features`` (batch, d_low), any
width (they are compared through their batch x batch dissimilarity matrices, never directly).

- RDM (representational dissimilarity matrix) of a batch: ``1 - cosine(x_i, x_j)``, (batch, batch).
- RSM loss: mean squared difference of two RDMs (the released code's squared Frobenius norm / batch^2).
- Orthogonality: ``||high low^T||_F^2 / batch^2`` (the released ``calculate_orthogonal_regularization_F``,
  its default ``--orth_type F``) on the RAW tokens with ``orthogonality_tokens="raw"`` (the released code), or on
  the L2-normalised tokens with ``"normalized"`` (brainkit's default: a departure from the released code that
  bounds the term by 1 whatever the token norms, so its 1e-3 weight means the same at any width).
- Total (paper, HCP): ``1 * bce + 1e-3 * orth + 1e-3 * rsm_high + 0.1 * rsm_low``.

Across processes (a global batch split by the trainer) BCE is a per-row mean, so DDP's gradient average is
exact; the RSM and orthogonality terms pair every row with every other, so their inputs are gathered from all
processes first (``gather=True``), as InfoNCE gathers its negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError, DataError
from brainkit.objectives.contrastive import gather_batch
from brainkit.registry import OBJECTIVES


def rdm(x: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between the rows of ``x``: (batch, ...) -> (batch, batch)."""
    flat = F.normalize(x.flatten(1), dim=1, eps=1e-8)
    return 1.0 - flat @ flat.T


def rsm_loss(tokens: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the RDMs of ``tokens`` and ``features`` (same batch, any widths)."""
    return (rdm(tokens) - rdm(features)).square().mean()


ORTHOGONALITY_TOKENS = ("normalized", "raw")


def orthogonality_loss(high: torch.Tensor, low: torch.Tensor, tokens: str = "normalized") -> torch.Tensor:
    """``||high low^T||_F^2 / batch^2`` of (batch, dim) tokens, L2-normalised first unless ``tokens="raw"``
    (the released computation): 0 when every high token is orthogonal to every low one."""
    if tokens == "normalized":
        high, low = F.normalize(high, dim=1, eps=1e-8), F.normalize(low, dim=1, eps=1e-8)
    elif tokens != "raw":
        raise ConfigError(f"orthogonality tokens {tokens!r}: choose one of {ORTHOGONALITY_TOKENS}.")
    return (high @ low.T).square().mean()


@dataclass(frozen=True)
class SemanticLossConfig(Checked):
    """Loss weights; defaults are the paper's HCP settings (README command = argparse defaults)."""

    bce: float = bounded(1.0, ge=0, fix="a loss weight; 0 turns the term off")
    orthogonality: float = bounded(1e-3, ge=0, fix="a loss weight; 0 turns the term off")
    rsm_high: float = bounded(1e-3, ge=0, fix="a loss weight; 0 turns the term off")
    rsm_low: float = bounded(0.1, ge=0, fix="a loss weight; 0 turns the term off")
    # several processes: the RSM and orthogonality terms over the global batch (all_gather with gradients)
    gather: bool = True
    # "raw": the released code (see the module docstring)
    orthogonality_tokens: str = choice("normalized", ORTHOGONALITY_TOKENS)


@OBJECTIVES.register("clip_mused_semantic", help="Multi-label BCE + RSM (high, low) + orthogonality.")
class SemanticLoss(nn.Module):
    """The weighted sum of CLIP-MUSED's four losses; ``forward`` returns (total, parts by name)."""

    def __init__(self, config: SemanticLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or SemanticLossConfig()

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
        given = {"high": high, "low": low, "high_features": high_features, "low_features": low_features}
        for name, x in given.items():
            if x is not None and x.shape[0] != batch:
                raise DataError(
                    f"SemanticLoss: {name} has {x.shape[0]} rows, the logits {batch} (the batch); give one row "
                    "per sample."
                )
        if self.config.gather:  # the batch x batch terms over the GLOBAL batch (identity in one process)
            high, low, high_features, low_features = (
                None if x is None else gather_batch(x) for x in (high, low, high_features, low_features)
            )
        for name, tokens, features in (("rsm_high", high, high_features), ("rsm_low", low, low_features)):
            weight = getattr(self.config, name)
            if weight > 0 and tokens is not None and features is not None:
                parts[name], weights[name] = rsm_loss(tokens, features), weight
        if self.config.orthogonality > 0 and high is not None and low is not None:
            parts["orthogonality"] = orthogonality_loss(high, low, self.config.orthogonality_tokens)
            weights["orthogonality"] = self.config.orthogonality
        total = sum(weights[name] * value for name, value in parts.items())
        return total, parts
