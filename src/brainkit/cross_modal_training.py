"""Vis-Dec phase 2 training: a small image MAE when no pretrained one is at hand, then cross-modal tuning.

Both drive :func:`brainkit.pretraining.masked_pretraining_loop` (seeded shuffling, warmup + cosine schedule,
gradient clipping, Lightning Fabric, AdamW). The loop shuffles rows of one tensor; for paired data that tensor is
the row index, and the loss gathers the (voxels, image) pair of each index. Masks come from the loop's seeded
generator, so a run is reproducible from ``training.seed``.

- :func:`pretrain_image_mae`: images uint8 (n, H, W, 3) -> ViTMAEForPreTraining's own masked-patch loss;
  ``folder/image_mae`` in the Hugging Face layout.
- :func:`tune_cross_modal`: paired voxels (n, n_voxels) float32 and images; ``folder/checkpoint`` (the whole
  cross-modal model), ``folder/fmri_encoder`` (the tuned DC-MAE alone, :func:`brainkit.models.load_model`; what
  phase 3 conditions on), ``folder/history.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.checkpoint import atomic_write_text
from brainkit.dc_mae_training import BETAS, check_voxels
from brainkit.errors import DataError
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
from brainkit.models.dc_mae import DCMAE
from brainkit.models.vsmae import random_patch_mask
from brainkit.pretraining import masked_pretraining_loop
from brainkit.training import FitResult, TrainingConfig

# Vis-Dec phase 2 [README, GOD subject 3; METHODS.md sec. 4.3]: AdamW lr 5.3e-5, batch 4 (x 4 GPUs), 60 epochs.
PAPER_TRAINING = TrainingConfig(
    epochs=60, batch_size=16, lr=5.3e-5, weight_decay=0.05, warmup_epochs=2, grad_clip=0.8
)


def _image_size(model: nn.Module) -> int:
    size = model.config.image_size
    return size if isinstance(size, int) else size[0]


def _write_history(folder: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(folder / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def pretrain_image_mae(
    model: nn.Module,
    images: np.ndarray,
    training: TrainingConfig,
    folder: str | Path | None = None,
    val_images: np.ndarray | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> FitResult:
    """Train a ViTMAEForPreTraining on ``images`` uint8 (n, H, W, 3) with its own masked-patch loss (mask ratio
    ``model.config.mask_ratio``); history rows have ``train_loss`` and, with ``val_images``, ``val_image_mse``."""
    size = _image_size(model)
    pixels = preprocess_images(images, size, mean, std)
    n_patches = model.vit.embeddings.patch_embeddings.num_patches

    def draw_noise(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(len(xb), n_patches, generator=generator)

    def loss(net: nn.Module, raw: nn.Module, xb: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return net(pixel_values=xb, noise=noise).loss

    validate = None
    if val_images is not None:
        val = preprocess_images(val_images, size, mean, std)
        val_noise = torch.rand(
            len(val), n_patches, generator=torch.Generator().manual_seed(training.seed + 7)
        )

        @torch.no_grad()
        def validate(raw: nn.Module) -> dict[str, float]:
            was = raw.training
            raw.eval()
            device = next(raw.parameters()).device
            value = float(raw(pixel_values=val.to(device), noise=val_noise.to(device)).loss)
            raw.train(was)
            return {"val_image_mse": value}

    result = masked_pretraining_loop(model, pixels, training, draw_noise, loss, validate, betas=BETAS)
    if folder is not None:
        save_image_mae(Path(folder) / "image_mae", model)
        _write_history(Path(folder), result.history)
    return result


def _pairs(voxels: np.ndarray, images: np.ndarray, model: CrossModalMAE, name: str):
    x = check_voxels(voxels, model.fmri, f"{name} voxels")
    pixels = preprocess_images(images, model.image_size, model.config.image_mean, model.config.image_std)
    if len(x) != len(pixels):
        raise DataError(f"{name}: {len(x)} fMRI samples but {len(pixels)} images; pass one image per sample.")
    return x, pixels


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
) -> tuple[CrossModalMAE, FitResult]:
    """Tune both MAEs jointly on paired ``voxels`` (n, n_voxels) float32 and ``images`` uint8 (n, H, W, 3).

    Returns the :class:`CrossModalMAE` (its ``fmri`` is ``fmri_model``, tuned in place; ``encode(voxels)`` is
    what phase 3 uses) and the history: ``train_loss`` and, with validation pairs, ``val_fmri_mse``,
    ``val_image_mse`` and ``val_loss`` on fixed seeded masks.
    """
    model = CrossModalMAE(fmri_model, image_model, config)
    c = model.config
    x_all, pixels = _pairs(voxels, images, model, "training")
    n_fmri, n_image = fmri_model.n_patches, model.n_image_patches

    def draw(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(batch, n_fmri + n_image): fMRI mask (1 = hidden) then the image noise, in one tensor."""
        fmri_mask = random_patch_mask(len(rows), n_fmri, c.fmri_mask_ratio, generator).float()
        return torch.cat([fmri_mask, torch.rand(len(rows), n_image, generator=generator)], dim=1)

    def terms(
        net: nn.Module, x: torch.Tensor, px: torch.Tensor, masks: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        device = masks.device
        return net(x.to(device), px.to(device), masks[:, :n_fmri].bool(), masks[:, n_fmri:])

    def loss(net: nn.Module, raw: nn.Module, rows: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        index = rows.long().cpu()
        return terms(net, x_all[index], pixels[index], masks)["loss"]

    validate = None
    if val_voxels is not None and val_images is not None:
        val_x, val_pixels = _pairs(val_voxels, val_images, model, "validation")
        val_masks = draw(torch.arange(len(val_x)), torch.Generator().manual_seed(training.seed + 7))

        @torch.no_grad()
        def validate(raw: nn.Module) -> dict[str, float]:
            was = raw.training
            raw.eval()
            out = terms(raw, val_x, val_pixels, val_masks.to(next(raw.parameters()).device))
            raw.train(was)
            return {f"val_{k}": float(out[k]) for k in ("fmri_mse", "image_mse", "loss")}

    rows = torch.arange(len(x_all), dtype=torch.float32)
    result = masked_pretraining_loop(model, rows, training, draw, loss, validate, betas=BETAS)
    if folder is not None:
        folder = Path(folder)
        save_cross_modal(folder / "checkpoint", model, metadata={"phase": "cross_modal"})
        save_model(folder / "fmri_encoder", fmri_model, metadata={"phase": "cross_modal"})
        _write_history(folder, result.history)
    return model, result


__all__ = ["PAPER_TRAINING", "pretrain_image_mae", "tune_cross_modal"]
