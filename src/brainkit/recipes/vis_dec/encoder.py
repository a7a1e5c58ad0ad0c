"""Vis-Dec phases 1 and 2 as tasks of the one trainer (:func:`brainkit.training.train`): the fMRI encoder.

- :class:`DCMAETask` (phase 1): a DC-MAE (:mod:`brainkit.models.dc_mae`) on voxel patterns; every sample gets two
  independent masks, drawn in ``draw`` from the step's generator (the two views of the double-contrastive loss,
  :mod:`brainkit.objectives.double_contrastive`);
- :class:`ImageMAETask` (phase 2a, when no pretrained image MAE is at hand): a ViTMAEForPreTraining on images with
  its own masked-patch loss; the patch noise (which patches hide) is drawn in ``draw``;
- :class:`CrossModalTask` (phase 2): both MAEs tuned jointly on (voxels, image) pairs
  (:class:`~brainkit.models.cross_modal.CrossModalMAE`); the fMRI mask and the image noise are drawn in ``draw``.

Validation uses fixed seeded masks (``seed + 7``), so the curves are comparable across epochs. The drivers
(:func:`pretrain_dc_mae`, :func:`pretrain_image_mae`, :func:`tune_cross_modal`) run a task and, with ``folder``,
run it as a resumable phase there (:func:`~brainkit.recipes.vis_dec.fitting.fit_task`: ``folder/state`` while it
trains, ``folder/final`` + ``done.json`` when done, ``folder/history.jsonl``) and leave the model in its own layout:
``folder/checkpoint`` (:func:`brainkit.models.load_model`, or
:func:`~brainkit.models.cross_modal.load_cross_modal` for phase 2), ``folder/fmri_encoder`` (phase 2's tuned DC-MAE
alone, what phase 3 conditions on) and ``folder/image_mae`` (Hugging Face layout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.errors import DataError
from brainkit.evaluation.masked_patches import check_voxels
from brainkit.models.base import save_model
from brainkit.models.cross_modal import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CrossModalConfig,
    CrossModalMAE,
    preprocess_images,
    save_cross_modal,
    save_image_mae,
)
from brainkit.models.dc_mae import DCMAE, patch_mask
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.objectives.double_contrastive import DoubleContrastiveConfig, DoubleContrastiveLoss
from brainkit.recipes.vis_dec.fitting import fit_task
from brainkit.training import FitResult, Task, TrainingConfig

BETAS = (0.9, 0.95)  # AdamW's (beta1, beta2) of MAE pretraining [Vis-Dec code/config.py]
# Vis-Dec phase 1 optimiser facts [code/config.py; METHODS.md sec. 4.2]: AdamW (0.9, 0.95), lr 2.5e-4, wd 0.05,
# warmup 40 of 140 epochs, grad-clip 0.8, batch 250.
DC_MAE_PAPER_TRAINING = TrainingConfig(
    epochs=140, batch_size=250, lr=2.5e-4, weight_decay=0.05, betas=BETAS, warmup_epochs=40, min_lr=0.0,
    grad_clip=0.8, seed=2022,
)  # fmt: skip
# Vis-Dec phase 2 [README, GOD subject 3; METHODS.md sec. 4.3]: AdamW lr 5.3e-5, batch 4 (x 4 GPUs), 60 epochs.
CROSS_MODAL_PAPER_TRAINING = TrainingConfig(
    epochs=60, batch_size=16, lr=5.3e-5, weight_decay=0.05, betas=BETAS, warmup_epochs=2, grad_clip=0.8
)
VAL_SEED = 7  # validation masks: Generator(seed + 7)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class DCMAETask(Task):
    """Phase 1: the double-contrastive loss of two masked views per sample. Logs ``train_mse`` / ``_self`` /
    ``_cross`` beside ``train_loss``; validation (with ``val_voxels``): ``val_masked_mse``, ``val_self`` and
    ``val_cross`` on a fixed mask pair (a term with weight 0 is still measured). Checkpoint keys: ``model.*``."""

    def __init__(
        self,
        model: DCMAE,
        voxels: np.ndarray,
        loss: DoubleContrastiveConfig | None = None,
        val_voxels: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model, self.loss_config = model, loss or DoubleContrastiveConfig()
        self.objective = DoubleContrastiveLoss(self.loss_config)
        # every term, to log; validation runs whole on each process, so its InfoNCE gathers nothing
        self.probe = DoubleContrastiveLoss(DoubleContrastiveConfig(temperature=self.loss_config.temperature))
        self.probe.infonce = InfoNCE(InfoNCEConfig(temperature=self.loss_config.temperature, gather=False))
        self.x = check_voxels(voxels, model, "pretraining voxels")
        self.val = None if val_voxels is None else check_voxels(val_voxels, model, "validation voxels")
        if self.val is not None:
            self.val_masks = self.draw(self.val, torch.Generator().manual_seed(seed + VAL_SEED))

    def n_samples(self) -> int:
        return len(self.x)

    def draw(self, rows: Any, generator: torch.Generator) -> torch.Tensor:
        """(batch, 2, n_patches) bool: two independent masks per sample."""
        first = self.model.random_mask(len(rows), generator)
        return torch.stack([first, self.model.random_mask(len(rows), generator)], 1)

    def load(self, rows: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], drawn

    def terms(self, x: torch.Tensor, masks: torch.Tensor, objective: nn.Module) -> dict[str, torch.Tensor]:
        recon = self.model(torch.cat([x, x]), torch.cat([masks[:, 0], masks[:, 1]]))
        a, b = recon.chunk(2)
        return objective(x, a, b, masks[:, 0], masks[:, 1], self.model.config.patch_size)

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.terms(*batch, self.objective)

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        device = _device(self.model)
        terms = self.terms(self.val.to(device), self.val_masks.to(device), self.probe)
        return {f"val_{'masked_mse' if k == 'mse' else k}": float(v) for k, v in terms.items() if k != "loss"}


class ImageMAETask(Task):
    """Phase 2a: ViTMAEForPreTraining's own masked-patch loss on images preprocessed to its size (mask ratio
    ``model.config.mask_ratio``); validation ``val_image_mse`` on fixed noise. Checkpoint keys: ``model.*``."""

    def __init__(
        self,
        model: nn.Module,
        images: np.ndarray,
        val_images: np.ndarray | None = None,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        size = model.config.image_size
        size = size if isinstance(size, int) else size[0]
        self.n_patches = model.vit.embeddings.patch_embeddings.num_patches
        self.pixels = preprocess_images(images, size, mean, std)
        self.val = None if val_images is None else preprocess_images(val_images, size, mean, std)
        if self.val is not None:
            self.val_noise = self.draw(self.val, torch.Generator().manual_seed(seed + VAL_SEED))

    def n_samples(self) -> int:
        return len(self.pixels)

    def draw(self, rows: Any, generator: torch.Generator) -> torch.Tensor:
        """(batch, n_patches) uniform noise: ViT-MAE hides the patches with the highest values."""
        return torch.rand(len(rows), self.n_patches, generator=generator)

    def load(self, rows: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pixels[rows], drawn

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        pixels, noise = batch
        return self.model(pixel_values=pixels, noise=noise).loss

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        device = _device(self.model)
        return {"val_image_mse": float(self((self.val.to(device), self.val_noise.to(device))))}


class CrossModalTask(Task):
    """Phase 2: :class:`CrossModalMAE` on (voxels, image) pairs: ``loss``, ``fmri_mse`` and ``image_mse``;
    validation ``val_fmri_mse``, ``val_image_mse``, ``val_loss`` on fixed masks. Checkpoint keys: ``model.*``.
    With ``released=True`` the image MAE's encoder (``model.image.vit``) is frozen, as the released script freezes
    it (``phase2_finetune_cross.load_model_image``: only its cross layers and decoder train)."""

    def __init__(
        self,
        model: CrossModalMAE,
        voxels: np.ndarray,
        images: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        if model.config.released:
            model.image.vit.requires_grad_(False)
        self.x, self.pixels = self._pairs(voxels, images, "training")
        self.val = None if val is None else self._pairs(*val, "validation")
        if self.val is not None:
            self.val_drawn = self.draw(self.val[0], torch.Generator().manual_seed(seed + VAL_SEED))

    def _pairs(self, voxels: np.ndarray, images: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        x = check_voxels(voxels, m.fmri, f"{name} voxels")
        pixels = preprocess_images(images, m.image_size, m.config.image_mean, m.config.image_std)
        if len(x) != len(pixels):
            raise DataError(
                f"{name}: {len(x)} fMRI samples but {len(pixels)} images; pass one image per sample."
            )
        return x, pixels

    def n_samples(self) -> int:
        return len(self.x)

    def draw(self, rows: Any, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The fMRI mask (batch, n_fmri_patches) bool (True = hidden; released: MAE's count of kept patches) and
        the image noise (batch, n_image)."""
        m = self.model
        mask = patch_mask(len(rows), m.fmri.n_patches, m.config.fmri_mask_ratio, m.config.released, generator)
        return mask, torch.rand(len(rows), m.n_image_patches, generator=generator)

    def load(self, rows: torch.Tensor, drawn: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return self.x[rows], self.pixels[rows], *drawn

    def forward(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        out = self.model(*batch)
        return {k: out[k] for k in ("loss", "fmri_mse", "image_mse")}

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        device = _device(self.model)
        out = self([t.to(device) for t in (*self.val, *self.val_drawn)])
        return {f"val_{k}": float(v) for k, v in out.items()}


def pretrain_dc_mae(
    model: DCMAE,
    voxels: np.ndarray,
    training: TrainingConfig,
    folder: str | Path | None = None,
    loss: DoubleContrastiveConfig | None = None,
    val_voxels: np.ndarray | None = None,
    fabric: Any = None,
    resume: bool = False,
    name: str = "DC-MAE pretraining",
) -> FitResult:
    """Phase 1: pretrain ``model`` on ``voxels`` (n, n_voxels) float32 in place; returns the history (one row per
    epoch: ``train_loss``, its terms and, with ``val_voxels``, :class:`DCMAETask`'s validation values).
    ``folder`` is the phase's own (:func:`~brainkit.recipes.vis_dec.fitting.fit_task`: ``resume`` reloads or
    continues it); ``folder/checkpoint`` holds the model (:func:`brainkit.models.load_model`)."""
    task = DCMAETask(model, voxels, loss, val_voxels, seed=training.seed)
    result = fit_task(task, training, folder, name, resume, fabric=fabric)
    if folder is not None and (fabric is None or fabric.global_rank == 0):
        meta = {"phase": "dc_mae", "loss": task.loss_config.__dict__}
        save_model(Path(folder) / "checkpoint", model, metadata=meta)
    return result


def pretrain_image_mae(
    model: nn.Module,
    images: np.ndarray,
    training: TrainingConfig,
    folder: str | Path | None = None,
    val_images: np.ndarray | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    resume: bool = False,
    name: str = "image MAE pretraining",
) -> FitResult:
    """Phase 2a: train a ViTMAEForPreTraining on ``images`` uint8 (n, H, W, 3); ``folder`` (the phase's own, as in
    :func:`pretrain_dc_mae`) then holds it as ``folder/image_mae``."""
    task = ImageMAETask(model, images, val_images, mean, std, seed=training.seed)
    result = fit_task(task, training, folder, name, resume)
    if folder is not None:
        save_image_mae(Path(folder) / "image_mae", model)
    return result


def tune_cross_modal(
    fmri_model: DCMAE,
    image_model: nn.Module,
    voxels: np.ndarray,
    images: np.ndarray,
    training: TrainingConfig,
    folder: str | Path | None = None,
    config: CrossModalConfig | None = None,
    val_voxels: np.ndarray | None = None,
    val_images: np.ndarray | None = None,
    resume: bool = False,
    name: str = "cross-modal tuning",
) -> tuple[CrossModalMAE, FitResult]:
    """Phase 2: tune both MAEs jointly on paired ``voxels`` (n, n_voxels) float32 and ``images`` uint8
    (n, H, W, 3). Returns the :class:`CrossModalMAE` (its ``fmri`` is ``fmri_model``, tuned in place;
    ``encode(voxels)`` is what phase 3 uses) and the history. ``folder``: the phase's own, as in
    :func:`pretrain_dc_mae`. The cross-attention stacks start from the global torch generator: seed it first."""
    model = CrossModalMAE(fmri_model, image_model, config)
    val = None if val_voxels is None or val_images is None else (val_voxels, val_images)
    task = CrossModalTask(model, voxels, images, val, seed=training.seed)
    result = fit_task(task, training, folder, name, resume)
    if folder is not None:
        folder = Path(folder)
        save_cross_modal(folder / "checkpoint", model, metadata={"phase": "cross_modal"})
        save_model(folder / "fmri_encoder", fmri_model, metadata={"phase": "cross_modal"})
    return model, result


__all__ = ["BETAS", "CROSS_MODAL_PAPER_TRAINING", "DC_MAE_PAPER_TRAINING", "CrossModalTask", "DCMAETask",
           "ImageMAETask", "pretrain_dc_mae", "pretrain_image_mae", "tune_cross_modal"]  # fmt: skip
