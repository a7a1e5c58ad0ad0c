"""The steps of the ``vis_dec`` recipe: data arrays, the latent diffusion stage (phase 3) and reconstruction.

Phases 1 and 2 (DC-MAE pretraining, cross-modal tuning) are :mod:`brainkit.dc_mae_training` and
:mod:`brainkit.models.cross_modal`; this module builds the arrays they take and runs phase 3 on their encoder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.checkpoint import save_checkpoint
from brainkit.config import to_dict
from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import ConfigError, DataError
from brainkit.models.ldm import (
    FMRIConditioner,
    FMRIContextMapper,
    LDMConfig,
    NullConditioner,
    build_scheduler,
    build_unet,
    build_vae,
    images_to_tensor,
    load_pretrained_ldm,
    sample_images,
    save_pretrained_ldm,
    tensor_to_images,
)
from brainkit.models.ldm_training import batched_moments, finetune_ldm, pretrain_unet, pretrain_vae
from brainkit.training import TrainingConfig

log = logging.getLogger(__name__)


@dataclass
class VisDecArrays:
    """One subject's arrays. Voxels are z-scored with training statistics and wrapped to a multiple of the
    patch size (Mind-Vis' padding).

    train_voxels (n_trials, n_voxels) float32, single trials; train_image_index (n_trials,) row of train_images;
    train_images uint8 (n_train_images, H, W, 3); test_voxels (n_test, n_voxels) averaged over repeats;
    test_images uint8 (n_test, H, W, 3); test_ids (n_test,); val_voxels (n_val, n_voxels) and val_images uint8
    (n_val, H, W, 3): training images held out of every phase (their trials averaged, like the test set), for
    choices such as the guidance scale; (0, ...) when none are held out.
    """

    train_voxels: np.ndarray
    train_image_index: np.ndarray
    train_images: np.ndarray
    test_voxels: np.ndarray
    test_images: np.ndarray
    test_ids: np.ndarray
    n_raw_voxels: int
    val_voxels: np.ndarray
    val_images: np.ndarray


def wrap_pad(x: np.ndarray, multiple: int) -> np.ndarray:
    """(n, v) -> (n, ceil(v / multiple) * multiple): the first voxels repeated at the end (Mind-Vis' padding)."""
    extra = (-x.shape[1]) % multiple
    return np.concatenate([x, x[:, :extra]], axis=1) if extra else x


def prepare_arrays(
    dataset: DecodingDataset, subject: str, n_test: int, patch_size: int, n_val: int = 0, seed: int = 0
) -> VisDecArrays:
    """The arrays of ``subject``; ``n_test`` > 0 keeps the first ``n_test`` test stimuli (0: all). ``n_val`` training
    images (a seeded draw) and all their trials leave the training set and become the validation split."""
    dataset.check_subject(subject)
    stimuli = dataset.stimuli
    if stimuli.images is None:
        raise DataError(f"Dataset {dataset.name!r} has no stimulus images; Vis-Dec reconstructs images.")
    train, test = dataset.train[subject], dataset.test[subject]
    if n_test and n_test < len(test.values):
        test = test.select(np.arange(n_test))
    all_ids = np.unique(train.stimulus_ids)
    if not 0 <= n_val <= len(all_ids) - 2:
        raise ConfigError(
            f"vis_dec: n_val_images must be between 0 and {len(all_ids) - 2} (the subject has {len(all_ids)} "
            f"training images), found {n_val}."
        )
    held = np.random.default_rng(seed).choice(all_ids, n_val, replace=False)
    is_val = np.isin(train.stimulus_ids, held)
    val = train.select(is_val).average_repeats() if n_val else None
    train = train.select(~is_val)
    scaler = Standardizer().fit(train.values)
    train_ids, image_index = np.unique(train.stimulus_ids, return_inverse=True)
    return VisDecArrays(
        train_voxels=wrap_pad(scaler.transform(train.values), patch_size),
        train_image_index=image_index.astype(np.int64),
        train_images=stimuli.images[stimuli.positions(train_ids)],
        test_voxels=wrap_pad(scaler.transform(test.values), patch_size),
        test_images=stimuli.images[stimuli.positions(test.stimulus_ids)],
        test_ids=np.asarray(test.stimulus_ids),
        n_raw_voxels=train.values.shape[1],
        val_voxels=wrap_pad(
            scaler.transform(val.values if val is not None else train.values[:0]), patch_size
        ),
        val_images=stimuli.images[stimuli.positions(val.stimulus_ids if val is not None else [])],
    )


@dataclass
class LatentDiffusion:
    """The phase-3 networks and what they were trained with."""

    unet: nn.Module
    vae: nn.Module
    scheduler: Any
    image_size: int
    histories: dict[str, list[dict]]
    source: str  # "trained here" or the folder it was loaded from


def ldm_image_size(unet: nn.Module, vae: nn.Module) -> int:
    """The pixel side the loaded pair works at: the UNet's latent side times the VAE's down-sampling factor."""
    return int(unet.config.sample_size) * 2 ** (len(vae.config.block_out_channels) - 1)


def latent_diffusion(
    config: LDMConfig,
    ldm_dir: str | None,
    train_images: np.ndarray,
    val_images: np.ndarray,
    vae_training: TrainingConfig,
    unet_training: TrainingConfig,
    folder: Path,
) -> LatentDiffusion:
    """Load the LDM from ``ldm_dir``, or train a small one on ``train_images`` (VAE, then the UNet without
    conditioning); either way ``folder/ldm_pretrained`` holds it in the diffusers layout."""
    if ldm_dir:
        unet, vae, scheduler_config = load_pretrained_ldm(ldm_dir)
        scheduler = build_scheduler(config, scheduler_config)
        log.info("Loaded the latent diffusion model from %s", ldm_dir)
        return LatentDiffusion(unet, vae, scheduler, ldm_image_size(unet, vae), {}, str(ldm_dir))
    torch.manual_seed(vae_training.seed)
    vae, unet, scheduler = build_vae(config), build_unet(config), build_scheduler(config)
    size = config.image_size
    x, vx = images_to_tensor(train_images, size), images_to_tensor(val_images, size)
    histories = {"VAE (images)": pretrain_vae(vae, x, vae_training, val_images=vx)}
    moments, val_moments = batched_moments(vae, x), batched_moments(vae, vx)
    histories["UNet, unconditional (images)"] = pretrain_unet(
        unet, vae, scheduler, moments, unet_training, val_moments=val_moments
    )
    save_pretrained_ldm(folder / "ldm_pretrained", unet, vae, scheduler)
    return LatentDiffusion(unet, vae, scheduler, size, histories, "trained here")


def fmri_conditioner(encoder: nn.Module, n_voxels: int, cross_attention_dim: int, train_encoder: bool):
    """The fMRI encoder + the 77-token mapper; the token shape is read off the encoder's output."""
    with torch.no_grad():
        was = encoder.training
        encoder.eval()
        tokens = encoder.encode(torch.zeros(2, n_voxels))
        encoder.train(was)
    if tokens.ndim != 3:
        raise ConfigError(
            f"The fMRI encoder's encode() gave shape {tuple(tokens.shape)}; expected (batch, n_tokens, dim)."
        )
    mapper = FMRIContextMapper(tokens.shape[1], tokens.shape[2], cross_attention_dim)
    return FMRIConditioner(encoder, mapper, train_encoder=train_encoder)


def finetune_on_fmri(
    ldm: LatentDiffusion,
    conditioner: FMRIConditioner,
    arrays: VisDecArrays,
    training: TrainingConfig,
    folder: Path,
) -> list[dict]:
    """Phase 3 on (trial, image) pairs; saves ``folder/ldm_finetuned`` and ``folder/fmri_conditioner``."""
    size = ldm.image_size
    moments = batched_moments(ldm.vae, images_to_tensor(arrays.train_images, size))
    test_moments = batched_moments(ldm.vae, images_to_tensor(arrays.test_images, size))
    train_x, test_x, trained = arrays.train_voxels, arrays.test_voxels, conditioner
    if not any(p.requires_grad for p in conditioner.encoder.parameters()):
        # a frozen encoder: its tokens once, instead of a forward pass per batch and epoch
        train_x, test_x = (
            encode_tokens(conditioner.encoder, train_x),
            encode_tokens(conditioner.encoder, test_x),
        )
        trained = FMRIConditioner(GivenTokens(), conditioner.mapper, train_encoder=False)
    val = (test_x, test_moments, np.arange(len(arrays.test_images)))
    history = finetune_ldm(
        ldm.unet,
        ldm.vae,
        ldm.scheduler,
        trained,
        train_x,
        moments,
        arrays.train_image_index,
        training,
        val=val,
    )
    save_pretrained_ldm(folder / "ldm_finetuned", ldm.unet, ldm.vae, ldm.scheduler)
    meta = {
        "n_tokens": conditioner.mapper.n_tokens,
        "fmri_dim": conditioner.mapper.fmri_dim,
        "cross_attention_dim": ldm.unet.config.cross_attention_dim,
        "training": to_dict(training),
    }
    save_checkpoint(folder / "fmri_conditioner", conditioner.state_dict(), meta)
    return history


class GivenTokens(nn.Module):
    """An "encoder" whose input already is the tokens (batch, n_tokens, dim): for a frozen, precomputed encoder."""

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens


@torch.no_grad()
def encode_tokens(encoder: nn.Module, voxels: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(n, n_voxels) -> float32 tokens (n, n_tokens, dim) from ``encoder.encode`` in eval mode."""
    encoder.eval()
    x = torch.as_tensor(np.asarray(voxels, np.float32))
    return torch.cat([encoder.encode(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


@torch.no_grad()
def reconstruct(
    ldm: LatentDiffusion,
    conditioner: nn.Module,
    voxels: np.ndarray,
    n_samples: int,
    n_steps: int,
    seed: int,
    batch_size: int = 64,
    guidance_scale: float = 1.0,
) -> np.ndarray:
    """uint8 (n, n_samples, S, S, 3): ``n_samples`` images per fMRI row, reproducible from ``seed``."""
    conditioner.eval()
    device = next(ldm.unet.parameters()).device
    x = torch.as_tensor(np.asarray(voxels, np.float32), device=device)
    context = torch.cat([conditioner(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    start = time.perf_counter()
    images = sample_images(
        ldm.unet, ldm.vae, ldm.scheduler, context, n_samples, n_steps, seed, batch_size, guidance_scale
    )
    log.info("Sampled %d images in %.0f s", images.shape[0] * images.shape[1], time.perf_counter() - start)
    return images


def unconditional_samples(
    ldm_folder: Path, config: LDMConfig, n: int, n_samples: int, n_steps: int, seed: int
):
    """The "no fMRI" baseline: samples of the LDM before phase 3, from a zero context (same seeds)."""
    unet, vae, scheduler_config = load_pretrained_ldm(ldm_folder)
    scheduler = build_scheduler(config, scheduler_config)
    context = NullConditioner(unet.config.cross_attention_dim)(torch.zeros(n, 1))
    return sample_images(unet, vae, scheduler, context, n_samples, n_steps, seed)


@torch.no_grad()
def vae_reconstructions(ldm: LatentDiffusion, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The VAE's own reconstruction of the real images (latent mean, no diffusion): the ceiling of any LDM output."""
    ldm.vae.eval()
    x = images_to_tensor(images, ldm.image_size)
    out = []
    for i in range(0, len(x), batch_size):
        encoded = ldm.vae.encode(x[i : i + batch_size])
        z = encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents
        out.append(tensor_to_images(ldm.vae.decode(z).sample))
    return np.concatenate(out)


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, H, W, 3) at size x size (for the report grid and the metrics, the LDM's own resolution)."""
    return tensor_to_images(images_to_tensor(images, size))
