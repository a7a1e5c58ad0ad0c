"""A latent diffusion model in a local diffusers folder (``unet/``, ``vae/``, ``scheduler/``): read and written here
for :mod:`brainkit.models.ldm` (which re-exports both functions). Nothing is fetched from a hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from brainkit.checkpoint import atomic_folder
from brainkit.errors import CheckpointError
from brainkit.models.cpu_linear import route_linears

_VAE_CLASSES = ("AutoencoderKL", "VQModel")


def _subfolder_config(folder: Path, sub: str, file: str = "config.json") -> dict[str, Any]:
    path = folder / sub / file
    if not path.is_file():
        raise CheckpointError(
            f"Latent diffusion folder {folder} has no {sub}/{file}. Expected a diffusers layout with unet/, vae/ "
            "and scheduler/ (as written by save_pretrained or the diffusers conversion scripts)."
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is truncated or not JSON ({err}).") from None


def load_pretrained_ldm(folder: str | Path) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Load (unet, vae, scheduler_config) from a local diffusers folder; nothing is fetched from a hub.

    Raises :class:`CheckpointError` when the folder or one of ``unet/``, ``vae/``, ``scheduler/`` is missing, or
    when the UNet has no cross-attention (an unconditional UNet cannot take fMRI context).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel, VQModel

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(
            f"Latent diffusion folder {folder} does not exist. Give a local diffusers folder with unet/, vae/ "
            "and scheduler/, or leave ldm_dir unset to train a small LDM on the built-in images."
        )
    unet_config = _subfolder_config(folder, "unet")
    vae_config = _subfolder_config(folder, "vae")
    scheduler_config = _subfolder_config(folder, "scheduler", "scheduler_config.json")
    if unet_config.get("_class_name", "UNet2DConditionModel") != "UNet2DConditionModel":
        raise CheckpointError(
            f"{folder}/unet is a {unet_config['_class_name']}; Vis-Dec needs a UNet2DConditionModel "
            "(cross-attention to the fMRI context)."
        )
    vae_class = vae_config.get("_class_name", "AutoencoderKL")
    if vae_class not in _VAE_CLASSES:
        raise CheckpointError(f"{folder}/vae is a {vae_class}; expected one of {_VAE_CLASSES}.")
    try:
        unet = UNet2DConditionModel.from_pretrained(
            folder, subfolder="unet", local_files_only=True, low_cpu_mem_usage=False
        )
        vae_cls = AutoencoderKL if vae_class == "AutoencoderKL" else VQModel
        vae = vae_cls.from_pretrained(folder, subfolder="vae", local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"Could not load the latent diffusion model in {folder}: {err}") from None
    route_linears(unet)  # diffusers' nn.Linear layers through oneDNN on the CPU, as the LDM model's
    route_linears(vae)
    return unet, vae, scheduler_config


def save_pretrained_ldm(folder: str | Path, unet: nn.Module, vae: nn.Module, scheduler) -> Path:
    """Write ``folder/{unet,vae,scheduler}`` (diffusers layout, safetensors) atomically: whole or absent."""
    with atomic_folder(folder) as tmp:
        unet.save_pretrained(tmp / "unet", safe_serialization=True)
        vae.save_pretrained(tmp / "vae", safe_serialization=True)
        scheduler.save_pretrained(tmp / "scheduler")
    return Path(folder)
