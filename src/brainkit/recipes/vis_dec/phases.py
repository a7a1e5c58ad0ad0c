"""The three phases of the ``vis_dec`` recipe on its arrays: what each trains, in which folder, in which order.

Phase 1 pretrains a DC-MAE on the subject's z-scored training trials and phase 2 tunes it with an image MAE
(:mod:`~brainkit.recipes.vis_dec.encoder`); phase 3 trains or loads a latent diffusion model and fine-tunes it
on the fMRI encoder's tokens (:mod:`~brainkit.recipes.vis_dec.diffusion`). Each trained network is a resumable
phase (:func:`brainkit.training.train_phase`) in ``train/<name>/`` of the run folder, ``name`` one of
:data:`PHASES`; ``resume=True`` reloads the finished phases and continues the interrupted one. Every network is
built right after seeding the global torch generator, so a resumed run starts each from the same weights as an
uninterrupted one. The checkpoints :func:`load_trained` reloads for ``brainkit eval``: ``ldm_pretrained/`` (the
LDM before phase 3, diffusers layout; absent with ``ldm_dir``), ``ldm_finetuned/`` and ``fmri_conditioner/``
(encoder + mapper, safetensors).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.checkpoint import load_checkpoint, save_checkpoint
from brainkit.config import to_dict
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, count_parameters, load_model, model_config
from brainkit.models.ldm import (
    FMRIConditioner,
    FMRIContextMapper,
    LDMConfig,
    build_scheduler,
    build_unet,
    build_vae,
    images_to_tensor,
    load_pretrained_ldm,
    save_pretrained_ldm,
)
from brainkit.objectives.double_contrastive import loss_weights
from brainkit.recipes.vis_dec.arrays import VisDecArrays, phase1_voxels, resized
from brainkit.recipes.vis_dec.diffusion import batched_moments, finetune_ldm, pretrain_unet, pretrain_vae
from brainkit.recipes.vis_dec.encoder import pretrain_dc_mae, pretrain_image_mae, tune_cross_modal
from brainkit.training import TrainingConfig, phase_done
from brainkit.training.phase import DONE

log = logging.getLogger(__name__)
# the phases' names and folders (train/<name>), in training order; phase2_image_mae only without image_mae_dir,
# both phase 2 folders only with cross_modal, ldm_vae and ldm_unet only without ldm_dir
PHASES = ("phase1_dc_mae", "phase2_image_mae", "phase2_cross_modal", "ldm_vae", "ldm_unet", "phase3_ldm")
LDM_PRETRAINED, LDM_FINETUNED, CONDITIONER = "ldm_pretrained", "ldm_finetuned", "fmri_conditioner"


def phase_folder(folder: Path, name: str) -> Path:
    """Where phase ``name`` (one of :data:`PHASES`) trains: ``folder/train/name``."""
    if name not in PHASES:
        raise ValueError(f"unknown vis_dec phase {name!r}; phases: {PHASES}")
    return folder / "train" / name


def dc_mae_config(config: Any, n_voxels: int | None = None):
    """The DC-MAE config of the recipe (preset, then overrides, then the data-given voxel count)."""
    return model_config("dc_mae", config.dc_mae_preset, dict(config.dc_mae), n_voxels=n_voxels)


def cross_modal_config(config: Any):
    """The cross-modal config of the recipe (``cross_modal_preset``, then ``cross_modal_options``)."""
    from brainkit.config import from_dict
    from brainkit.models.cross_modal import CROSS_PRESETS, CrossModalConfig

    if config.cross_modal_preset not in CROSS_PRESETS:
        raise ConfigError(
            f"vis_dec: cross_modal_preset must be one of {sorted(CROSS_PRESETS)}, found {config.cross_modal_preset!r}."
        )
    base = to_dict(CROSS_PRESETS[config.cross_modal_preset])
    return from_dict(CrossModalConfig, base | dict(config.cross_modal_options), "cross_modal")


def encoder_phases(
    config: Any, arrays: VisDecArrays, folder: Path, seconds: dict[str, float], resume: bool = False
) -> tuple[nn.Module, dict[str, list[dict]], dict[str, int]]:
    """Run phase 1 (and phase 2 when ``config.cross_modal``); returns (fMRI encoder, histories, parameter counts).
    ``resume``: reload the finished phases, continue an interrupted one. A phase 2 imported from Vis-Dec's
    released checkpoint (:func:`imported_encoder`) is that encoder: phases 1 and 2 are not trained."""
    imported = imported_encoder(config, arrays.train_voxels.shape[1], folder)
    if imported is not None:
        seconds["phase 2: imported (released checkpoint)"] = 0.0
        return imported, {}, {"DC-MAE (encoder + decoder, imported)": count_parameters(imported)}
    start = time.perf_counter()
    torch.manual_seed(config.seed)  # the DC-MAE's initial weights, whatever ran before (a cache hit or miss)
    model = build_model("dc_mae", dc_mae_config(config, arrays.train_voxels.shape[1]))
    loss = loss_weights(config.dc_mae_loss, form="released" if model.config.released else "ours")
    result = pretrain_dc_mae(
        model,
        phase1_voxels(config, arrays.train_voxels),
        config.pretrain,
        phase_folder(folder, "phase1_dc_mae"),
        loss=loss,
        val_voxels=arrays.test_voxels,
        resume=resume,
        name="phase1_dc_mae",
    )
    histories = {"phase 1: DC-MAE pretraining (voxels)": result.history}
    seconds["phase 1: DC-MAE pretraining"] = time.perf_counter() - start
    counts = {"DC-MAE (encoder + decoder)": count_parameters(model)}
    if config.cross_modal:
        start = time.perf_counter()
        model, more, extra = _cross_modal(config, model, arrays, folder, resume)
        histories |= more
        counts |= extra
        seconds["phase 2: image MAE + cross-modal tuning"] = time.perf_counter() - start
    return model, histories, counts


def imported_encoder(config: Any, n_voxels: int, folder: Path) -> nn.Module | None:
    """The tuned fMRI MAE of a phase 2 imported from Vis-Dec's released checkpoint
    (:mod:`brainkit.recipes.vis_dec.imported`: ``train/phase2_cross_modal`` with an ``imported`` record in its
    ``done.json`` and the DC-MAE in ``fmri_encoder/``), or None when phase 2 was not imported."""
    phase = phase_folder(folder, "phase2_cross_modal")
    if not phase_done(phase) or "imported" not in json.loads((phase / DONE).read_text()):
        return None
    model, _ = load_model(phase / "fmri_encoder")
    expected = dc_mae_config(config, n_voxels)
    if model.config != expected:
        raise CheckpointError(
            f"{phase / 'fmri_encoder'} holds a DC-MAE {to_dict(model.config)}, this run's config gives "
            f"{to_dict(expected)}; import the released checkpoint again with this config."
        )
    return model


def _cross_modal(config: Any, dc_mae: nn.Module, arrays: VisDecArrays, folder: Path, resume: bool):
    """Phase 2: the image MAE (from ``image_mae_dir``, or a small one pretrained on the training images), then
    both MAEs tuned together on (trial, image) pairs. Returns the tuned DC-MAE (what phase 3 encodes with)."""
    from brainkit.config import from_dict
    from brainkit.models.cross_modal import (
        CrossModalConfig,
        image_norm_stats,
        load_image_mae,
        small_image_mae,
    )

    start = time.perf_counter()
    histories: dict[str, list[dict]] = {}
    cross = cross_modal_config(config)
    if config.image_mae_dir:
        image = load_image_mae(config.image_mae_dir)
        mean, std = image_norm_stats(config.image_mae_dir)
        cross = from_dict(
            CrossModalConfig, to_dict(cross) | {"image_mean": mean, "image_std": std}, "cross_modal"
        )
    else:
        image = small_image_mae(config.image_mae_preset, seed=config.seed)
    size = image.config.image_size if isinstance(image.config.image_size, int) else image.config.image_size[0]
    train_images = resized(arrays.train_images, size)  # once at the MAE's size: small arrays per trial
    test_images = resized(arrays.test_images, size)
    if not config.image_mae_dir:
        result = pretrain_image_mae(image, train_images, config.image_pretrain,
                                    phase_folder(folder, "phase2_image_mae"), val_images=test_images,
                                    resume=resume, name="phase2_image_mae")  # fmt: skip
        histories["phase 2a: image MAE pretraining (images)"] = result.history
    log.info("vis_dec: image MAE ready in %.0f s", time.perf_counter() - start)
    torch.manual_seed(config.seed)  # the cross-attention stacks' initial weights
    model, result = tune_cross_modal(
        dc_mae,
        image,
        arrays.train_voxels,
        train_images[arrays.train_image_index],
        config.tune,
        phase_folder(folder, "phase2_cross_modal"),
        cross,
        val_voxels=arrays.test_voxels,
        val_images=test_images,
        resume=resume,
        name="phase2_cross_modal",
    )
    histories["phase 2: cross-modal tuning (voxels + images)"] = result.history
    counts = {
        "image MAE": count_parameters(image),
        "cross-attention stacks": count_parameters(model)
        - count_parameters(image)
        - count_parameters(dc_mae),
    }
    return model.fmri, histories, counts


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
    resume: bool = False,
) -> LatentDiffusion:
    """Load the LDM from ``ldm_dir``, or train a small one on ``train_images`` (VAE, then the UNet without
    conditioning; ``resume`` reloads or continues them) and save it as ``folder/ldm_pretrained`` (diffusers)."""
    if ldm_dir:
        unet, vae, scheduler_config = load_pretrained_ldm(ldm_dir)
        scheduler = build_scheduler(config, scheduler_config)
        log.info("Loaded the latent diffusion model from %s", ldm_dir)
        return LatentDiffusion(unet, vae, scheduler, ldm_image_size(unet, vae), {}, str(ldm_dir))
    torch.manual_seed(vae_training.seed)
    vae, unet, scheduler = build_vae(config), build_unet(config), build_scheduler(config)
    size = config.image_size
    x, vx = images_to_tensor(train_images, size), images_to_tensor(val_images, size)
    vae_fit = pretrain_vae(vae, x, vae_training, val_images=vx, folder=phase_folder(folder, "ldm_vae"),
                           resume=resume, name="ldm_vae")  # fmt: skip
    moments, val_moments = batched_moments(vae, x), batched_moments(vae, vx)
    unet_fit = pretrain_unet(unet, vae, scheduler, moments, unet_training, val_moments=val_moments,
                             folder=phase_folder(folder, "ldm_unet"), resume=resume, name="ldm_unet")  # fmt: skip
    histories = {"VAE (images)": vae_fit.history, "UNet, unconditional (images)": unet_fit.history}
    save_pretrained_ldm(folder / LDM_PRETRAINED, unet, vae, scheduler)
    return LatentDiffusion(unet, vae, scheduler, size, histories, "trained here")


def fmri_conditioner(encoder: nn.Module, n_voxels: int, cross_attention_dim: int, train_encoder: bool):
    """The fMRI encoder + the 77-token mapper; the token shape is read off the encoder's output. The mapper starts
    from the global torch generator: seed it first."""
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
    resume: bool = False,
    unet_trained: str = "all",
) -> list[dict]:
    """Phase 3 on (trial, image) pairs (``resume``: reload or continue it; ``unet_trained``: the LDM config's,
    what of the UNet is trained); saves ``folder/ldm_finetuned`` and ``folder/fmri_conditioner``."""
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
    result = finetune_ldm(
        ldm.unet,
        ldm.vae,
        ldm.scheduler,
        trained,
        train_x,
        moments,
        arrays.train_image_index,
        training,
        val=val,
        folder=phase_folder(folder, "phase3_ldm"),
        resume=resume,
        name="phase3_ldm",
        unet_trained=unet_trained,
    )
    save_pretrained_ldm(folder / LDM_FINETUNED, ldm.unet, ldm.vae, ldm.scheduler)
    meta = {
        "n_tokens": conditioner.mapper.n_tokens,
        "fmri_dim": conditioner.mapper.fmri_dim,
        "cross_attention_dim": ldm.unet.config.cross_attention_dim,
        "training": to_dict(training),
    }
    save_checkpoint(folder / CONDITIONER, conditioner.state_dict(), meta)
    return result.history


def load_trained(
    config: Any, ldm_config: LDMConfig, n_voxels: int, folder: Path
) -> tuple[LatentDiffusion, FMRIConditioner]:
    """The fine-tuned LDM and the fMRI conditioner of the finished run in ``folder`` (no training): what
    :func:`finetune_on_fmri` saved, rebuilt for ``config`` (the run's) and ``n_voxels`` (its padded voxel count).
    Raises :class:`CheckpointError` naming a missing or mismatched checkpoint."""
    needed = [folder / LDM_FINETUNED, folder / CONDITIONER]
    needed += [] if config.ldm_dir else [folder / LDM_PRETRAINED]  # the no-fMRI baseline samples from it
    for path in needed:
        if not path.is_dir():
            raise CheckpointError(
                f"{path} is missing: {folder} is not a finished vis_dec run. Re-run it with brainkit run vis_dec "
                f"(or --resume an interrupted one) before evaluating it."
            )
    unet, vae, scheduler_config = load_pretrained_ldm(folder / LDM_FINETUNED)
    scheduler = build_scheduler(ldm_config, scheduler_config)
    size = ldm_image_size(unet, vae) if config.ldm_dir else ldm_config.image_size
    ldm = LatentDiffusion(unet, vae, scheduler, size, {}, str(config.ldm_dir or "trained here"))
    encoder = build_model("dc_mae", dc_mae_config(config, n_voxels))
    conditioner = fmri_conditioner(encoder, n_voxels, unet.config.cross_attention_dim, config.train_encoder)
    state, _ = load_checkpoint(folder / CONDITIONER)
    try:
        conditioner.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{folder / CONDITIONER} does not fit this run's config (dc_mae, cross_modal settings): {err}"
        ) from None
    return ldm, conditioner


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
