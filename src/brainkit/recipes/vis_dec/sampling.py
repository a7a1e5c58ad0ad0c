"""Sampling in the ``vis_dec`` recipe: reconstructions from test fMRI, the two image baselines, and the guidance
scale chosen on the validation split.

- :func:`reconstruct`: ``n_samples`` images per fMRI row from the fine-tuned LDM, reproducible from a seed;
- :func:`unconditional_samples`: the "no fMRI" baseline (the LDM before phase 3, a zero context, same seeds);
- :func:`vae_reconstructions`: the VAE's own reconstruction of the real image (the ceiling of any LDM output);
- :func:`select_guidance`: the classifier-free guidance scale, by 2-way identification on held-out training images;
- :func:`sample_run`: all of them for a run (what ``run`` and ``evaluate`` both score). Every draw is seeded
  (``sample_seed``, ``seed``), so the same weights give the same images, bit for bit on CPU.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.evaluation.reconstruction import reconstruction_metrics
from brainkit.models.ldm import (
    LDMConfig,
    NullConditioner,
    build_scheduler,
    images_to_tensor,
    load_pretrained_ldm,
    sample_images,
    tensor_to_images,
)
from brainkit.recipes.vis_dec.arrays import VisDecArrays, resized
from brainkit.recipes.vis_dec.phases import LDM_PRETRAINED, LatentDiffusion

log = logging.getLogger(__name__)


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
        encoded = ldm.vae.encode(x[i : i + batch_size].to(next(ldm.vae.parameters()).device))
        z = encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents
        out.append(tensor_to_images(ldm.vae.decode(z).sample))
    return np.concatenate(out)


def select_guidance(
    config: Any, ldm: LatentDiffusion, conditioner: Any, arrays: VisDecArrays
) -> tuple[float, dict[str, float]]:
    """Choose the classifier-free guidance scale on the validation split (training images held out of every
    phase), never on the test images: one sample per validation fMRI at each of ``config.guidance_candidates``
    (same seeds), scored by ``config.guidance_layer`` 2-way identification; the best scale wins, ties go to the
    smaller. Returns (scale, {"<scale>": score}); ``config.guidance_scale`` set skips the search."""
    if config.guidance_scale is not None:
        return float(config.guidance_scale), {}
    real = resized(arrays.val_images, ldm.image_size)
    key = f"{config.guidance_layer}_2way"
    scores: dict[str, float] = {}
    for scale in sorted(config.guidance_candidates):
        recon = reconstruct(
            ldm, conditioner, arrays.val_voxels, 1, config.n_steps, config.sample_seed, guidance_scale=scale
        )
        metrics = reconstruction_metrics(
            real,
            recon,
            seed=config.seed,
            n_way=(2,),
            trials=config.metric_trials,
            feature_layers=(config.guidance_layer,),
            semantic=False,
        )
        scores[f"{scale:g}"] = metrics[key]
        log.info("vis_dec: guidance %g: validation %s %.3f", scale, key, metrics[key])
    best = max(scores.values())
    return next(float(s) for s in sorted(config.guidance_candidates) if scores[f"{s:g}"] == best), scores


def sample_run(
    config: Any,
    ldm_config: LDMConfig,
    ldm: LatentDiffusion,
    conditioner: nn.Module,
    arrays: VisDecArrays,
    folder: Path,
    seconds: dict[str, float] | None = None,
) -> tuple[dict[str, np.ndarray], tuple[float, dict[str, float]]]:
    """The guidance scale (:func:`select_guidance`) and the four image sets of a run: ``"real"`` uint8 (n, S, S, 3)
    at the LDM's size, ``"Vis-Dec"`` and ``"no fMRI"`` uint8 (n, n_samples, S, S, 3), ``"VAE ceiling"`` (n, S, S,
    3). The no-fMRI baseline samples ``config.ldm_dir`` or ``folder/ldm_pretrained``. Stage times go to
    ``seconds`` when given."""
    seconds = {} if seconds is None else seconds
    start = time.perf_counter()
    guidance = select_guidance(config, ldm, conditioner, arrays)
    if config.guidance_scale is None:
        seconds["guidance scale on the validation split"] = time.perf_counter() - start
    start = time.perf_counter()
    recon = reconstruct(ldm, conditioner, arrays.test_voxels, config.n_samples, config.n_steps,
                        config.sample_seed, guidance_scale=guidance[0])  # fmt: skip
    no_fmri = unconditional_samples(
        Path(config.ldm_dir) if config.ldm_dir else folder / LDM_PRETRAINED,
        ldm_config,
        len(arrays.test_images),
        config.n_samples,
        config.n_steps,
        config.sample_seed,
    )
    ceiling = vae_reconstructions(ldm, arrays.test_images)
    seconds["sampling"] = time.perf_counter() - start
    real = resized(arrays.test_images, ldm.image_size)
    return {"real": real, "Vis-Dec": recon, "no fMRI": no_fmri, "VAE ceiling": ceiling}, guidance
