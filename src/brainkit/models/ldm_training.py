"""Training the latent diffusion pieces of Vis-Dec phase 3 (models in :mod:`brainkit.models.ldm`).

Three stages, each a plain AdamW loop with brainkit's warmup + cosine schedule (:class:`brainkit.training.
TrainingConfig`; ``accelerator`` picks the device) and a per-epoch history ``[{"epoch", "train_loss", "val_loss",
"lr", "seconds"}]``:

- :func:`pretrain_vae`: the small VAE on images (MSE + ``kl_weight`` x KL per latent element), then its
  ``scaling_factor`` set to 1 / std of the training latents (so the diffusion sees unit-variance latents);
- :func:`pretrain_unet`: the UNet unconditionally (zero context) on the VAE latents of images;
- :func:`finetune_ldm`: the paper's phase 3: UNet + context mapper (+ the fMRI encoder when it is trainable) on
  (fMRI, image) pairs with the denoising loss, the VAE frozen (METHODS.md 4.4: "first stage frozen, rest trainable").

The denoising loss is the usual epsilon-prediction MSE at a uniformly drawn timestep. Noise, timesteps and the
shuffling come from torch generators seeded by ``TrainingConfig.seed``: a run is reproducible. Not resumable
(each stage is minutes on a CPU; write checkpoints between stages instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from brainkit.errors import ConfigError, DataError
from brainkit.models.ldm import NullConditioner, encode_moments, latent_scale, sample_latents
from brainkit.training import TrainingConfig, learning_rate

log = logging.getLogger(__name__)


def _device(config: TrainingConfig) -> torch.device:
    return torch.device("cuda" if config.accelerator in ("cuda", "gpu") else config.accelerator)


def train_loop(
    name: str,
    trainable: nn.Module,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    n_rows: int,
    config: TrainingConfig,
    val_fn: Callable[[], float] | None = None,
) -> list[dict[str, float]]:
    """Minimise ``loss_fn(rows)`` (rows: a LongTensor of batch indices) over the trainable parameters.

    Returns the per-epoch history. ``val_fn()`` (optional) is called after every epoch, under no_grad.
    """
    params = [p for p in trainable.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{name}: nothing to train (every parameter is frozen).")
    if n_rows < 1:
        raise DataError(f"{name}: no training rows.")
    batch = min(config.batch_size, n_rows)
    steps_per_epoch = max(1, n_rows // batch)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    torch.manual_seed(config.seed)  # noise, timesteps and VAE posterior draws
    history, step, start = [], 0, time.perf_counter()
    for epoch in tqdm(range(config.epochs), desc=name, disable=not config.progress, leave=False):
        trainable.train()
        order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        losses = []
        for b in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, steps_per_epoch)
            loss = loss_fn(order[b * batch : (b + 1) * batch])
            if not torch.isfinite(loss):
                raise DataError(f"{name}: the loss became {float(loss)} at epoch {epoch + 1}; lower the lr.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        record = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "lr": optimizer.param_groups[0]["lr"],
        }
        if val_fn is not None:
            trainable.eval()
            with torch.no_grad():
                record["val_loss"] = float(val_fn())
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        log.info("%s epoch %d: %s", name, epoch + 1, record)
    trainable.eval()
    return history


def _fixed_seed(fn: Callable[[], torch.Tensor], seed: int) -> Callable[[], float]:
    """``fn`` evaluated with the same noise every time (a validation loss comparable across epochs)."""

    def run() -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return float(fn())

    return run


# --- stage 1: the VAE ------------------------------------------------------------------------------------------


def pretrain_vae(
    vae: nn.Module,
    images: torch.Tensor,
    config: TrainingConfig,
    kl_weight: float = 1e-3,
    val_images: torch.Tensor | None = None,
) -> list[dict[str, float]]:
    """Train an ``AutoencoderKL`` on images (n, 3, S, S) in [-1, 1]; sets ``vae.config.scaling_factor``."""
    device = _device(config)
    vae.to(device).requires_grad_(True)

    def loss_on(x: torch.Tensor) -> torch.Tensor:
        dist = vae.encode(x).latent_dist
        recon = vae.decode(dist.sample()).sample
        kl = 0.5 * (dist.mean**2 + dist.var - 1.0 - dist.logvar).mean()
        return nn.functional.mse_loss(recon, x) + kl_weight * kl

    def val() -> torch.Tensor:
        return loss_on(val_images.to(device))

    history = train_loop(
        "vae",
        vae,
        lambda rows: loss_on(images[rows].to(device)),
        len(images),
        config,
        None if val_images is None else _fixed_seed(val, config.seed + 1),
    )
    moments = batched_moments(vae, images, device=device)
    mean, logvar = moments.chunk(2, dim=1)
    spread = float(torch.sqrt(mean.var() + logvar.exp().mean()))
    vae.register_to_config(scaling_factor=1.0 / max(spread, 1e-6))
    vae.requires_grad_(False)
    return history


def batched_moments(
    vae: nn.Module, images: torch.Tensor, batch_size: int = 64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Latent moments (n, 2 * c, s, s) of images (n, 3, S, S), on the CPU."""
    vae.eval()
    parts = [
        encode_moments(vae, images[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts)


# --- stages 2 and 3: the denoising UNet ------------------------------------------------------------------------


def denoising_loss(unet: nn.Module, scheduler, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Epsilon-prediction MSE: latents (b, c, s, s) scaled, context (b, n_tokens, cross_dim)."""
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), device=latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    return nn.functional.mse_loss(unet(noisy, timesteps, encoder_hidden_states=context).sample, noise)


def _check_moments(unet: nn.Module, moments: torch.Tensor) -> None:
    side, channels = unet.config.sample_size, unet.config.in_channels
    if moments.ndim != 4 or moments.shape[1:] != (2 * channels, side, side):
        raise DataError(
            f"latent moments must be (n, {2 * channels}, {side}, {side}) for this UNet, found {tuple(moments.shape)}; "
            "the VAE and UNet do not fit together (latent channels or image size)."
        )


def pretrain_unet(
    unet: nn.Module,
    vae: nn.Module,
    scheduler,
    moments: torch.Tensor,
    config: TrainingConfig,
    val_moments: torch.Tensor | None = None,
) -> list[dict[str, float]]:
    """Train the UNet unconditionally (zero context) on latent moments (n, 2c, s, s) from :func:`batched_moments`."""
    _check_moments(unet, moments)
    device = _device(config)
    unet.to(device).requires_grad_(True)
    null = NullConditioner(unet.config.cross_attention_dim)
    scale = latent_scale(vae)

    def loss_on(m: torch.Tensor) -> torch.Tensor:
        m = m.to(device)
        return denoising_loss(unet, scheduler, sample_latents(m, scale), null(m))

    val = None if val_moments is None else _fixed_seed(lambda: loss_on(val_moments), config.seed + 1)
    return train_loop("unet", unet, lambda rows: loss_on(moments[rows]), len(moments), config, val)


class _Trainable(nn.Module):
    def __init__(self, unet: nn.Module, conditioner: nn.Module):
        super().__init__()
        self.unet, self.conditioner = unet, conditioner


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
) -> list[dict[str, float]]:
    """Phase 3: train UNet + conditioner on (fMRI trial, image) pairs, the VAE frozen.

    Parameters
    ----------
    voxels : float32 (n_trials, n_voxels), or whatever the conditioner takes per row (precomputed tokens)
    moments : (n_images, 2c, s, s) latent moments of the images
    image_index : int (n_trials,), the row of ``moments`` each trial saw
    val : optional (voxels, moments, image_index) of held-out pairs for a fixed-noise validation loss
    """
    _check_moments(unet, moments)
    voxels = np.asarray(voxels, dtype=np.float32)
    image_index = np.asarray(image_index)
    if voxels.ndim < 2 or len(voxels) != len(image_index):
        raise DataError(
            f"finetune_ldm: voxels {voxels.shape} and image_index {image_index.shape} must pair row by row."
        )
    if len(image_index) and (image_index.min() < 0 or image_index.max() >= len(moments)):
        raise DataError(f"finetune_ldm: image_index must lie in [0, {len(moments)}).")
    device = _device(config)
    vae.requires_grad_(False)
    unet.to(device).requires_grad_(True)
    conditioner.to(device)
    scale = latent_scale(vae)
    x_all, index = torch.as_tensor(voxels), torch.as_tensor(image_index, dtype=torch.long)

    def loss_on(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return denoising_loss(unet, scheduler, sample_latents(m.to(device), scale), conditioner(x.to(device)))

    val_fn = None
    if val is not None:
        vx, vm, vi = torch.as_tensor(np.asarray(val[0], np.float32)), val[1], torch.as_tensor(val[2])
        val_fn = _fixed_seed(lambda: loss_on(vx, vm[vi]), config.seed + 1)
    return train_loop(
        "ldm",
        _Trainable(unet, conditioner),
        lambda rows: loss_on(x_all[rows], moments[index[rows]]),
        len(voxels),
        config,
        val_fn,
    )
