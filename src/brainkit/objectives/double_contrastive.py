"""DC-MAE's loss (Vis-Dec phase 1): masked MSE plus two InfoNCE terms over two masked views of each sample.

For a batch ``x`` (batch, n_voxels) the model reconstructs two independently masked views, ``a`` and ``b``
(each (batch, n_voxels)). With ``InfoNCE`` the CLIP-style loss of :mod:`brainkit.objectives.contrastive`
(cosine logits / tau, row i of both sides the positive pair, the other rows of the batch the negatives,
averaged over both directions)::

    mse   = mean over the two views of MSE(hidden patches of the view)
    self  = (InfoNCE(a, x) + InfoNCE(b, x)) / 2          reconstruction of a masked view vs the signal
    cross = InfoNCE(a, b)                                 the two views' reconstructions
    loss  = mse_weight * mse + contrast_weight * (self_weight * self + cross_weight * cross)

Vis-Dec's README run sets contrast weight 1, self 1, cross 0.5 (METHODS.md sec. 4.2), which we read as above:
the loss is mse + 1 * self + 0.5 * cross (``LOSS_WEIGHTS["as_described"]``, the default). tau = 0.1.

``form="released"`` computes what the released ``MAEforFMRIContrast.forward`` computes (sc_mbm/mae_for_fmri.py,
sep_loss off, the default of its training script)::

    mse   = MSE(hidden patches of view a)                 view b enters only through cross
    self  = InfoNCE_a->x                                  one direction: each row of a picks its x
    cross = InfoNCE_a->b                                  each row of a picks its b
    loss  = mse_weight * mse + contrast_weight * (self_weight * self + cross_weight * cross)

Its training script (stageA1_mbm_pretrain_contrast.py) passes ``contrast_loss_weight`` to an attribute the
loss never reads; the loss multiplies by ``contrastive_loss_weight`` (constructor default 0.5) and by
``self_contrast_loss_weight`` (default 0.5; the script has no flag for it), so whatever the README's flags say,
it runs contrast 0.5, self 0.5, cross 0.5 (the README's cross flag): ``LOSS_WEIGHTS["as_run"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError, DataError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.objectives.masked import masked_patch_loss


@dataclass(frozen=True)
class DoubleContrastiveConfig(Checked):
    """Weights of the DC-MAE loss terms (README run of Vis-Dec: 1 / 1 / 0.5), the InfoNCE temperature and the
    form: ``"ours"`` (both views in every term, two-way InfoNCE) or ``"released"`` (the released code's: see the
    module docstring). :func:`loss_weights` builds one from a named weight set."""

    contrast_weight: float = bounded(1.0, ge=0)
    self_weight: float = bounded(1.0, ge=0)
    cross_weight: float = bounded(0.5, ge=0)
    temperature: float = bounded(0.1, gt=0, le=100)  # tau [code/config.py; METHODS.md sec. 4.2]
    mse_weight: float = bounded(1.0, ge=0)  # the released mask_loss_weight (config.py: 1)
    form: str = choice("ours", ("ours", "released"))


# The two readings of Vis-Dec's phase-1 loss weights (docs/methods/vis_dec.md, "Reference mode").
LOSS_WEIGHTS: dict[str, dict[str, float]] = {
    # the README's command: contrast 1, self 1, cross 0.5 (and the mask loss at the config's weight 1)
    "as_described": {"mse_weight": 1.0, "contrast_weight": 1.0, "self_weight": 1.0, "cross_weight": 0.5},
    # what the released script computes: contrastive_loss_weight and self_contrast_loss_weight stay at their
    # constructor defaults 0.5 (its contrast flag sets an unused attribute, it has no self flag); cross 0.5
    "as_run": {"mse_weight": 1.0, "contrast_weight": 0.5, "self_weight": 0.5, "cross_weight": 0.5},
}


def loss_weights(name: str, form: str = "ours", temperature: float = 0.1) -> DoubleContrastiveConfig:
    """The loss config of the weight set ``name`` (a key of :data:`LOSS_WEIGHTS`) in ``form``."""
    if name not in LOSS_WEIGHTS:
        raise ConfigError(f"DC-MAE loss weights must be one of {sorted(LOSS_WEIGHTS)}, found {name!r}.")
    return DoubleContrastiveConfig(temperature=temperature, form=form, **LOSS_WEIGHTS[name])


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
        self.infonce = InfoNCE(InfoNCEConfig(temperature=self.config.temperature))
        # InfoNCE(brain, stimulus) one-way: each stimulus row picks its brain row, so query = the stimulus side
        self.one_way = InfoNCE(InfoNCEConfig(temperature=self.config.temperature, bidirectional=False))

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
        released = c.form == "released"
        if released:
            terms = {"mse": masked_mse(recon_a, x, mask_a, patch_size)}
        else:
            terms = {
                "mse": 0.5
                * (masked_mse(recon_a, x, mask_a, patch_size) + masked_mse(recon_b, x, mask_b, patch_size))
            }
        loss = c.mse_weight * terms["mse"]
        if c.contrast_weight * c.self_weight > 0:
            if released:
                terms["self"] = self.one_way(x, recon_a)
            else:
                terms["self"] = 0.5 * (self.infonce(recon_a, x) + self.infonce(recon_b, x))
            loss = loss + c.contrast_weight * c.self_weight * terms["self"]
        if c.contrast_weight * c.cross_weight > 0:
            terms["cross"] = self.one_way(recon_b, recon_a) if released else self.infonce(recon_a, recon_b)
            loss = loss + c.contrast_weight * c.cross_weight * terms["cross"]
        terms["loss"] = loss
        return terms


__all__ = ["LOSS_WEIGHTS", "DoubleContrastiveConfig", "DoubleContrastiveLoss", "loss_weights", "masked_mse"]
