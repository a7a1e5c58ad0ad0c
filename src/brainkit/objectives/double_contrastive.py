"""DC-MAE's loss (Vis-Dec phase 1): masked MSE plus two InfoNCE terms over two masked views of each sample.

For a batch ``x`` (batch, n_voxels) the model reconstructs two independently masked views, ``a`` and ``b``
(each (batch, n_voxels)). With ``InfoNCE`` the CLIP-style loss of :mod:`brainkit.objectives.contrastive`
(cosine logits / tau, row i of both sides the positive pair, the other rows of the batch the negatives,
averaged over both directions)::

    mse   = mean over the two views of MSE(hidden patches of the view)
    self  = (InfoNCE(a, x) + InfoNCE(b, x)) / 2          reconstruction of a masked view vs the signal
    cross = InfoNCE(a, b)                                 the two views' reconstructions
    loss  = mse + contrast_weight * (self_weight * self + cross_weight * cross)

Vis-Dec's README run sets contrast weight 1, self 1, cross 0.5 (METHODS.md sec. 4.2), which we read as above:
the loss is mse + 1 * self + 0.5 * cross. tau = 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from brainkit.errors import ConfigError, DataError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.objectives.masked import masked_patch_loss


@dataclass(frozen=True)
class DoubleContrastiveConfig:
    """Weights of the DC-MAE loss terms (README run of Vis-Dec: 1 / 1 / 0.5) and the InfoNCE temperature."""

    contrast_weight: float = 1.0
    self_weight: float = 1.0
    cross_weight: float = 0.5
    temperature: float = 0.1  # tau [code/config.py; METHODS.md sec. 4.2]


def masked_mse(
    recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """MSE over the hidden patches' voxels: recon, target (batch, n_voxels); mask (batch, n_patches) bool."""
    if recon.shape != target.shape or recon.ndim != 2:
        raise DataError(f"masked_mse: recon {tuple(recon.shape)} and target {tuple(target.shape)} differ.")
    if mask.shape != (len(recon), recon.shape[1] // patch_size) or recon.shape[1] % patch_size:
        raise DataError(
            f"masked_mse: mask {tuple(mask.shape)} does not fit {recon.shape[1]} voxels in patches of {patch_size}."
        )
    patches = "b (n p) -> b 1 n p"
    return masked_patch_loss(
        rearrange(recon, patches, p=patch_size), rearrange(target, patches, p=patch_size), mask
    )


class DoubleContrastiveLoss(torch.nn.Module):
    """``forward(x, recon_a, recon_b, mask_a, mask_b, patch_size) -> dict`` of scalar tensors: ``loss``,
    ``mse``, ``self`` and ``cross`` (a term with weight 0 is not computed and not in the dict)."""

    def __init__(self, config: DoubleContrastiveConfig | None = None) -> None:
        super().__init__()
        self.config = config or DoubleContrastiveConfig()
        for name in ("contrast_weight", "self_weight", "cross_weight"):
            if getattr(self.config, name) < 0:
                raise ConfigError(f"DC-MAE loss: {name} must be >= 0, found {getattr(self.config, name)}.")
        self.infonce = InfoNCE(InfoNCEConfig(temperature=self.config.temperature))

    def forward(
        self,
        x: torch.Tensor,
        recon_a: torch.Tensor,
        recon_b: torch.Tensor,
        mask_a: torch.Tensor,
        mask_b: torch.Tensor,
        patch_size: int,
    ) -> dict[str, torch.Tensor]:
        c = self.config
        terms = {
            "mse": 0.5
            * (masked_mse(recon_a, x, mask_a, patch_size) + masked_mse(recon_b, x, mask_b, patch_size))
        }
        loss = terms["mse"]
        if c.contrast_weight * c.self_weight > 0:
            terms["self"] = 0.5 * (self.infonce(recon_a, x) + self.infonce(recon_b, x))
            loss = loss + c.contrast_weight * c.self_weight * terms["self"]
        if c.contrast_weight * c.cross_weight > 0:
            terms["cross"] = self.infonce(recon_a, recon_b)
            loss = loss + c.contrast_weight * c.cross_weight * terms["cross"]
        terms["loss"] = loss
        return terms


__all__ = ["DoubleContrastiveConfig", "DoubleContrastiveLoss", "masked_mse"]
