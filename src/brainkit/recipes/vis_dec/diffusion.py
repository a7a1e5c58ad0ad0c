"""Vis-Dec phase 3 as tasks of the one trainer: the latent diffusion pieces (models in :mod:`brainkit.models.ldm`).

- :class:`VAETask`: the small VAE on images (MSE + ``kl_weight`` x KL per latent element); :func:`pretrain_vae`
  then sets its ``scaling_factor`` to 1 / std of the training latents (unit-variance latents for the diffusion);
- :class:`UNetTask`: the UNet unconditionally (zero context) on the VAE latents of images;
- :class:`LDMTask`: the paper's phase 3: UNet + context mapper (+ the fMRI encoder when it is trainable) on
  (fMRI, image) pairs with the denoising loss, the VAE frozen (METHODS.md 4.4: "first stage frozen, rest
  trainable").

The denoising loss is the usual epsilon-prediction MSE at a uniformly drawn timestep; noise, timesteps and the
VAE's posterior draws come from the global torch generator, which the trainer re-seeds at every step (so a run is
reproducible and resumes exactly). Validation losses use fixed noise (``seed + 1``), comparable across epochs.

The frozen VAE stays OUT of the tasks: the latent moments of the images are computed once before the UNet and
LDM phases (:func:`batched_moments`) and the tasks keep only its scaling factor, so checkpoints hold what is
trained (a pretrained first stage is large and never changes here) and distributed training wraps only the
trained modules.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.errors import DataError
from brainkit.models.ldm import (
    NullConditioner,
    encode_moments,
    latent_scale,
    sample_latents,
    set_unet_trained,
)
from brainkit.recipes.vis_dec.fitting import fit_task
from brainkit.training import FitResult, Task, TrainingConfig

# Vis-Dec phase 3 [README, GOD; METHODS.md sec. 4.4]: batch 8, lr 5.3e-5, 700 epochs (a pretrained 256 px LDM).
LDM_PAPER_TRAINING = TrainingConfig(epochs=700, batch_size=8, lr=5.3e-5, weight_decay=0.0)


@contextlib.contextmanager
def fixed_noise(seed: int, device: torch.device):
    """Run the block with the global torch generators seeded with ``seed``, then restore them."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def denoising_loss(unet: nn.Module, scheduler, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Epsilon-prediction MSE: latents (b, c, s, s) scaled, context (b, n_tokens, cross_dim)."""
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), device=latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    return nn.functional.mse_loss(unet(noisy, timesteps, encoder_hidden_states=context).sample, noise)


@torch.no_grad()
def batched_moments(vae: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Latent moments (n, 2 * c, s, s) of images (n, 3, S, S), on the CPU (computed on the VAE's device)."""
    vae.eval()
    device = _device(vae)
    parts = [
        encode_moments(vae, images[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts)


def _check_moments(unet: nn.Module, moments: torch.Tensor) -> None:
    side, channels = unet.config.sample_size, unet.config.in_channels
    if moments.ndim != 4 or moments.shape[1:] != (2 * channels, side, side):
        raise DataError(
            f"latent moments must be (n, {2 * channels}, {side}, {side}) for this UNet, found {tuple(moments.shape)}; "
            "the VAE and UNet do not fit together (latent channels or image size)."
        )


class VAETask(Task):
    """An ``AutoencoderKL`` on images (n, 3, S, S) in [-1, 1]; ``val_loss`` on fixed posterior draws."""

    def __init__(
        self, vae: nn.Module, images: torch.Tensor, kl_weight: float = 1e-3, val_images=None, seed: int = 0
    ):
        super().__init__()
        self.vae, self.images, self.kl_weight = vae.requires_grad_(True), images, kl_weight
        self.val_images, self.seed = val_images, seed

    def n_samples(self) -> int:
        return len(self.images)

    def load(self, rows: torch.Tensor, drawn: Any) -> torch.Tensor:
        return self.images[rows]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dist = self.vae.encode(x).latent_dist
        recon = self.vae.decode(dist.sample()).sample
        kl = 0.5 * (dist.mean**2 + dist.var - 1.0 - dist.logvar).mean()
        return nn.functional.mse_loss(recon, x) + self.kl_weight * kl

    def validate(self) -> dict[str, float]:
        if self.val_images is None:
            return {}
        device = _device(self.vae)
        with fixed_noise(self.seed + 1, device):
            return {"val_loss": float(self(self.val_images.to(device)))}


class UNetTask(Task):
    """The UNet unconditionally (zero context) on latent moments (n, 2c, s, s); ``val_loss`` on fixed noise."""

    def __init__(self, unet: nn.Module, scheduler, scale: float, moments: torch.Tensor, val_moments=None,
                 seed: int = 0):  # fmt: skip
        super().__init__()
        _check_moments(unet, moments)
        self.unet, self.scheduler, self.scale = unet.requires_grad_(True), scheduler, scale
        self.null = NullConditioner(unet.config.cross_attention_dim)
        self.moments, self.val_moments, self.seed = moments, val_moments, seed

    def n_samples(self) -> int:
        return len(self.moments)

    def load(self, rows: torch.Tensor, drawn: Any) -> torch.Tensor:
        return self.moments[rows]

    def forward(self, moments: torch.Tensor) -> torch.Tensor:
        latents = sample_latents(moments, self.scale)
        return denoising_loss(self.unet, self.scheduler, latents, self.null(moments))

    def validate(self) -> dict[str, float]:
        if self.val_moments is None:
            return {}
        device = _device(self.unet)
        with fixed_noise(self.seed + 1, device):
            return {"val_loss": float(self(self.val_moments.to(device)))}


class LDMTask(Task):
    """Phase 3: UNet + conditioner on (fMRI trial, image) pairs; the VAE is represented by its scaling factor.

    Parameters
    ----------
    voxels : float32 (n_trials, n_voxels), or whatever the conditioner takes per row (precomputed tokens)
    moments : (n_images, 2c, s, s) latent moments of the images
    image_index : int (n_trials,), the row of ``moments`` each trial saw
    val : optional (voxels, moments, image_index) of held-out pairs for a fixed-noise ``val_loss``

    Checkpoint keys: ``unet.*`` and ``conditioner.*``.
    """

    def __init__(self, unet: nn.Module, conditioner: nn.Module, scheduler, scale: float, voxels: np.ndarray,
                 moments: torch.Tensor, image_index: np.ndarray, val=None, seed: int = 0,
                 unet_trained: str = "all"):  # fmt: skip
        super().__init__()
        _check_moments(unet, moments)
        self.x, self.index = self._pairs(voxels, image_index, len(moments))
        set_unet_trained(unet, unet_trained)
        self.unet, self.conditioner = unet, conditioner
        self.scheduler, self.scale, self.moments, self.seed = scheduler, scale, moments, seed
        self.val = None
        if val is not None:
            val_x, val_index = self._pairs(val[0], val[2], len(val[1]))
            self.val = (val_x, val[1][val_index])

    @staticmethod
    def _pairs(
        voxels: np.ndarray, image_index: np.ndarray, n_images: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        voxels, image_index = np.asarray(voxels, dtype=np.float32), np.asarray(image_index)
        if voxels.ndim < 2 or len(voxels) != len(image_index):
            raise DataError(
                f"finetune_ldm: voxels {voxels.shape} and image_index {image_index.shape} must pair row by row."
            )
        if len(image_index) and (image_index.min() < 0 or image_index.max() >= n_images):
            raise DataError(f"finetune_ldm: image_index must lie in [0, {n_images}).")
        return torch.as_tensor(voxels), torch.as_tensor(image_index, dtype=torch.long)

    def n_samples(self) -> int:
        return len(self.x)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.moments[self.index[rows]]

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, moments = batch
        latents = sample_latents(moments, self.scale)
        return denoising_loss(self.unet, self.scheduler, latents, self.conditioner(x))

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        device = _device(self.unet)
        with fixed_noise(self.seed + 1, device):
            return {"val_loss": float(self(tuple(t.to(device) for t in self.val)))}


def pretrain_vae(
    vae: nn.Module,
    images: torch.Tensor,
    config: TrainingConfig,
    kl_weight: float = 1e-3,
    val_images: torch.Tensor | None = None,
    folder: str | Path | None = None,
    resume: bool = False,
    name: str = "VAE",
) -> FitResult:
    """Train an ``AutoencoderKL`` on images (n, 3, S, S) in [-1, 1]; sets ``vae.config.scaling_factor`` (from the
    trained weights, so a reloaded phase gets it too) and freezes it. ``folder``: the phase's own
    (:func:`~brainkit.recipes.vis_dec.fitting.fit_task`; ``resume`` reloads or continues it)."""
    result = fit_task(VAETask(vae, images, kl_weight, val_images, config.seed), config, folder, name, resume)
    moments = batched_moments(vae, images)
    mean, logvar = moments.chunk(2, dim=1)
    spread = float(torch.sqrt(mean.var() + logvar.exp().mean()))
    vae.register_to_config(scaling_factor=1.0 / max(spread, 1e-6))
    vae.requires_grad_(False)
    return result


def pretrain_unet(
    unet: nn.Module,
    vae: nn.Module,
    scheduler,
    moments: torch.Tensor,
    config: TrainingConfig,
    val_moments: torch.Tensor | None = None,
    folder: str | Path | None = None,
    resume: bool = False,
    name: str = "UNet",
) -> FitResult:
    """Train the UNet unconditionally on latent moments (n, 2c, s, s) from :func:`batched_moments` (``folder``,
    ``resume``: as in :func:`pretrain_vae`)."""
    task = UNetTask(unet, scheduler, latent_scale(vae), moments, val_moments, config.seed)
    return fit_task(task, config, folder, name, resume)


def finetune_ldm(
    unet: nn.Module,
    vae: nn.Module,
    scheduler,
    conditioner: nn.Module,
    voxels: np.ndarray,
    moments: torch.Tensor,
    image_index: np.ndarray,
    config: TrainingConfig,
    val: tuple[np.ndarray, torch.Tensor, np.ndarray] | None = None,
    folder: str | Path | None = None,
    resume: bool = False,
    name: str = "LDM fine-tuning",
    unet_trained: str = "all",
) -> FitResult:
    """Phase 3: train UNet + conditioner on (fMRI trial, image) pairs (see :class:`LDMTask`), the VAE frozen
    (``folder``, ``resume``: as in :func:`pretrain_vae`); ``unet_trained``: what of the UNet is trained
    (:func:`brainkit.models.ldm.set_unet_trained`)."""
    vae.requires_grad_(False)
    task = LDMTask(unet, conditioner, scheduler, latent_scale(vae), voxels, moments, image_index, val,
                   config.seed, unet_trained)  # fmt: skip
    return fit_task(task, config, folder, name, resume)


__all__ = ["LDM_PAPER_TRAINING", "LDMTask", "UNetTask", "VAETask", "batched_moments", "denoising_loss",
           "finetune_ldm", "pretrain_unet", "pretrain_vae"]  # fmt: skip
