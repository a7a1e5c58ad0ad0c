"""Vis-Dec phase 3: a latent diffusion model (through ``diffusers``) conditioned on fMRI encoder tokens.

Pieces (METHODS.md 4.4, the paper's Mind-Vis-style conditioning, written here from that description):

- a VAE (``diffusers.AutoencoderKL``, or a ``VQModel`` when a loaded folder holds one): images <-> latents, frozen;
- a UNet with cross-attention (``diffusers.UNet2DConditionModel``): predicts the noise of a noised latent;
- a scheduler: PNDM (the paper's PLMS sampler) or DDIM, for training noise and for sampling;
- :class:`FMRIContextMapper`: fMRI tokens (batch, n_tokens, fmri_dim) -> Conv1d over the token axis
  (n_tokens -> n_tokens // 2 -> 77) -> Linear(fmri_dim -> the UNet's cross_attention_dim): (batch, 77, cross_dim);
- :class:`FMRIConditioner`: an fMRI encoder (anything with ``encode(voxels) -> (batch, n_tokens, fmri_dim)``,
  such as :class:`brainkit.models.dc_mae.DCMAE`) followed by the mapper: (batch, n_voxels) -> (batch, 77, cross_dim).

Real pretrained latent-diffusion weights load from a local diffusers folder (``unet/``, ``vae/``, ``scheduler/``)
with :func:`load_pretrained_ldm`; :func:`save_pretrained_ldm` writes the same layout, so a small LDM trained by
brainkit and a converted CompVis/Stable Diffusion checkpoint go through one path. Nothing loads from a hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear, route_linears
from brainkit.models.ldm_folder import load_pretrained_ldm as load_pretrained_ldm  # re-exported
from brainkit.models.ldm_folder import save_pretrained_ldm as save_pretrained_ldm
from brainkit.registry import MODELS

N_CONTEXT_TOKENS = 77  # the paper's context length (Mind-Vis/Vis-Dec map fMRI tokens to 77, METHODS.md 4.4)
SCHEDULERS = ("pndm", "ddim")  # pndm = the paper's PLMS sampler (METHODS.md 4.4), ddim its usual alternative
UNET_TRAINED = ("all", "cross_attention")  # what phase 3 trains of the UNet (set_unet_trained)
BETA_SCHEDULES = (
    "scaled_linear",
    "linear",
    "squaredcos_cap_v2",
)  # the schedules both diffusers samplers take


@dataclass(frozen=True)
class LDMConfig(Checked):
    """A latent diffusion model built from scratch (ignored where a pretrained folder gives the networks).

    ``vae_channels`` has one entry per VAE block: the latent side is ``image_size / 2 ** (len - 1)``.
    ``unet_channels`` has one entry per UNet level; ``unet_cross_attention`` says which levels have
    cross-attention (1) and which do not (0), one entry per level; None: every level but the last.
    ``attention_head_dim`` is passed to diffusers under that name, which ``UNet2DConditionModel`` reads as the
    number of heads per level (its documented legacy naming): 1 = one head as wide as the level.
    """

    image_size: int = bounded(64, ge=8, le=4096, fix="pixels per side")
    latent_channels: int = bounded(4, ge=1, le=1024)
    vae_channels: tuple[int, ...] = bounded((32, 64, 64), ge=1, le=65_536)
    vae_layers_per_block: int = bounded(1, ge=1, le=100)
    unet_channels: tuple[int, ...] = bounded((64, 128), ge=1, le=65_536)
    unet_layers_per_block: int = bounded(1, ge=1, le=100)
    # what phase 3 trains of the UNet: "all", or "cross_attention", the released phase 3's set (Vis-Dec's
    # train_cond_stage_only: every transformer block's attn2 and the norm2 before it; the rest frozen)
    unet_trained: str = choice("all", UNET_TRAINED)
    unet_cross_attention: tuple[int, ...] | None = bounded(
        None,
        ge=0,
        le=1,
        fix="one 0 / 1 per UNet level (1 = cross-attention); none = every level but the last",
    )
    cross_attention_dim: int = bounded(128, ge=1, le=65_536)
    attention_head_dim: int = bounded(16, ge=1, le=65_536)
    norm_groups: int = bounded(16, ge=1, le=1024)
    scheduler: str = choice("pndm", SCHEDULERS)
    n_train_timesteps: int = bounded(1000, ge=2, le=100_000)
    # diffusers' latent-diffusion default (0.00085 .. 0.012)
    beta_schedule: str = choice("scaled_linear", BETA_SCHEDULES)
    beta_start: float = bounded(0.00085, gt=0, lt=1)
    beta_end: float = bounded(0.012, gt=0, lt=1)
    # the fMRI encoder's tokens and width (LatentDiffusion's context mapper)
    n_tokens: int | None = bounded(None, ge=2, le=1_000_000, fix="set by the fMRI encoder")
    fmri_dim: int | None = bounded(None, ge=1, le=65_536, fix="set by the fMRI encoder")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_config(self)


def _check_config(config: LDMConfig) -> None:
    if not config.vae_channels or not config.unet_channels:
        raise ConfigError("LDM vae_channels and unet_channels need at least one entry each.")
    if config.beta_end <= config.beta_start:
        raise ConfigError(
            f"LDM beta_end={config.beta_end} must be above beta_start={config.beta_start} (the noise grows)."
        )
    factor = 2 ** (len(config.vae_channels) - 1)
    if config.image_size % (factor * 2 ** (len(config.unet_channels) - 1)):
        raise ConfigError(
            f"LDM image_size {config.image_size} must be divisible by the VAE factor {factor} times the UNet's "
            f"{2 ** (len(config.unet_channels) - 1)}; choose a multiple of "
            f"{factor * 2 ** (len(config.unet_channels) - 1)}."
        )
    levels = config.unet_cross_attention
    if levels is not None and (len(levels) != len(config.unet_channels) or not any(levels)):
        raise ConfigError(
            f"LDM unet_cross_attention {levels} needs one 0 / 1 per UNet level ({len(config.unet_channels)}: "
            f"{config.unet_channels}) and at least one 1: the fMRI context enters through cross-attention."
        )
    for channels in (config.vae_channels, config.unet_channels):
        if any(c % config.norm_groups for c in channels):
            raise ConfigError(
                f"LDM channels {channels} must be multiples of norm_groups {config.norm_groups}."
            )


PRESETS = {
    # seconds on a CPU: 16x16 images, latents 8x8x4
    "testing": LDMConfig(
        image_size=16,
        latent_channels=4,
        vae_channels=(8, 16),
        unet_channels=(16, 32),
        cross_attention_dim=16,
        attention_head_dim=8,
        norm_groups=8,
    ),
    # minutes on one CPU thread: 32x32 images, VAE f = 4 (latents 8x8x4, 0.24 M parameters), UNet 32/64 (0.80 M);
    # one batch of 32 costs ~0.25 s (VAE) / ~0.22 s (UNet) per training step on one thread, measured here
    "cpu_small": LDMConfig(
        image_size=32,
        vae_channels=(16, 32, 32),
        unet_channels=(32, 64),
        cross_attention_dim=64,
        attention_head_dim=16,
    ),
    # The architecture of the paper's pretrained LDM, CompVis's class-conditional ImageNet "label2img"
    # (Mind-Vis / Vis-Dec pretrains/ldm/label2img/config.yaml: UNet model_channels 192, channel_mult 1, 2, 3, 5,
    # 2 res blocks, spatial transformers at downsampling 2, 4, 8 with one head, context_dim 512; VQ-f4 latents
    # 64 x 64 x 3; linear_start 0.0015, linear_end 0.0195 on CompVis's "linear" schedule, which is diffusers'
    # scaled_linear), randomly initialised: UNet 400,920,579 parameters (tests/test_ldm.py counts them on the
    # meta device). For a converted checkpoint of that model and for bench/bench_models.py; the VAE here is an
    # AutoencoderKL of the VQ-f4's block widths and latent shape, not the VQ itself (a real first stage comes from
    # ldm_dir). Vis-Dec's UNet adds `time_embed_condtion` (the context mapped into the timestep embedding,
    # use_time_cond), which brainkit's LDM does not build.
    "label2img": LDMConfig(
        image_size=256,
        latent_channels=3,
        vae_channels=(128, 256, 512),
        vae_layers_per_block=2,
        unet_channels=(192, 384, 576, 960),
        unet_layers_per_block=2,
        unet_cross_attention=(0, 1, 1, 1),
        cross_attention_dim=512,
        attention_head_dim=1,
        norm_groups=32,
        beta_start=0.0015,
        beta_end=0.0195,
    ),
    # The same, trained as the released phase 3 trains it: cross-attention and its LayerNorm (unet_trained).
    "label2img_released": LDMConfig(
        image_size=256,
        latent_channels=3,
        vae_channels=(128, 256, 512),
        vae_layers_per_block=2,
        unet_channels=(192, 384, 576, 960),
        unet_layers_per_block=2,
        unet_cross_attention=(0, 1, 1, 1),
        cross_attention_dim=512,
        attention_head_dim=1,
        norm_groups=32,
        beta_start=0.0015,
        beta_end=0.0195,
        unet_trained="cross_attention",
    ),
    # The paper fine-tunes a pretrained 256x256 latent diffusion model (CompVis cin256 "label2img", METHODS.md 4.4);
    # its networks come from ldm_dir (a diffusers folder), this config only fixes the image side and the sampler.
    "paper": LDMConfig(image_size=256, scheduler="pndm"),
}


def latent_side(config: LDMConfig) -> int:
    """The side of the VAE's latents: ``image_size / 2 ** (len(vae_channels) - 1)``."""
    return config.image_size // 2 ** (len(config.vae_channels) - 1)


def build_vae(config: LDMConfig) -> nn.Module:
    """A randomly initialised ``AutoencoderKL``: (batch, 3, S, S) in [-1, 1] <-> (batch, latent_channels, s, s)."""
    from diffusers import AutoencoderKL

    _check_config(config)
    n = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(config.vae_channels),
        layers_per_block=config.vae_layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_groups,
        sample_size=config.image_size,
    )


def build_unet(config: LDMConfig) -> nn.Module:
    """A randomly initialised ``UNet2DConditionModel`` with cross-attention to (batch, 77, cross_attention_dim)."""
    from diffusers import UNet2DConditionModel

    _check_config(config)
    n = len(config.unet_channels)
    levels = config.unet_cross_attention or (1,) * (n - 1) + (0,)
    return UNet2DConditionModel(
        sample_size=latent_side(config),
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in levels),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)),
        block_out_channels=tuple(config.unet_channels),
        layers_per_block=config.unet_layers_per_block,
        cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.norm_groups,
    )


# diffusers' names of what the released phase 3 optimises (Vis-Dec ddpm.py configure_optimizers with
# train_cond_stage_only: parameters named "attn2" or "norm2", CompVis names where only the transformer blocks have
# a norm2; in diffusers the ResNet blocks have one too, hence the transformer_blocks prefix)
_CROSS_ATTENTION_PARAMETER = re.compile(r"\.transformer_blocks\.\d+\.(attn2|norm2)\.")


def set_unet_trained(unet: nn.Module, trained: str) -> int:
    """Mark what phase 3 trains of ``unet`` (``requires_grad``): ``"all"``, or ``"cross_attention"``: each
    transformer block's cross-attention (``attn2``: q / k / v and output projections) and the LayerNorm before it
    (``norm2``), the set Vis-Dec's phase 3 optimises; the rest is frozen, so no gradient is computed for it (the
    released code computes them all and hands AdamW the set). Returns the number of trained parameters."""
    if trained not in UNET_TRAINED:
        raise ConfigError(f"unet_trained must be one of {UNET_TRAINED}, found {trained!r}.")
    unet.requires_grad_(trained == "all")
    if trained == "cross_attention":
        chosen = [p for name, p in unet.named_parameters() if _CROSS_ATTENTION_PARAMETER.search(f".{name}")]
        if not chosen:
            raise ConfigError(
                "unet_trained='cross_attention': this UNet has no transformer blocks with cross-attention "
                "(attn2); train it whole (unet_trained='all')."
            )
        for parameter in chosen:
            parameter.requires_grad_(True)
    return sum(p.numel() for p in unet.parameters() if p.requires_grad)


def build_scheduler(config: LDMConfig, scheduler_config: dict[str, Any] | None = None):
    """A fresh PNDM (PLMS, ``skip_prk_steps``) or DDIM scheduler; ``scheduler_config`` (a loaded folder's) wins."""
    from diffusers import DDIMScheduler, PNDMScheduler

    _check_config(config)
    cls = PNDMScheduler if config.scheduler == "pndm" else DDIMScheduler
    if scheduler_config is not None:
        extra = {"skip_prk_steps": True} if config.scheduler == "pndm" else {}
        return cls.from_config({**scheduler_config, **extra})
    options = {"skip_prk_steps": True} if config.scheduler == "pndm" else {"clip_sample": False}
    return cls(
        num_train_timesteps=config.n_train_timesteps,
        beta_schedule=config.beta_schedule,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        **options,
    )


# --- latents ---------------------------------------------------------------------------------------------------


def latent_scale(vae: nn.Module) -> float:
    """The factor that brings the VAE's latents to about unit variance (``vae.config.scaling_factor``)."""
    return float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)


def encode_moments(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(batch, 3, S, S) in [-1, 1] -> latent moments (batch, 2 * c, s, s): mean and log-variance (VQ: logvar -inf).

    Unscaled; :func:`sample_latents` draws from them and applies :func:`latent_scale`.
    """
    with torch.no_grad():
        encoded = vae.encode(images)
    if hasattr(encoded, "latent_dist"):
        return torch.cat([encoded.latent_dist.mean, encoded.latent_dist.logvar], dim=1)
    return torch.cat([encoded.latents, torch.full_like(encoded.latents, -30.0)], dim=1)


def sample_latents(moments: torch.Tensor, scale: float) -> torch.Tensor:
    """Draw scaled latents from moments (batch, 2 * c, s, s) with the global torch generator (seeded by fit)."""
    mean, logvar = moments.chunk(2, dim=1)
    return scale * (mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * torch.randn_like(mean))


def images_to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, size, size) in [-1, 1] (antialiased bilinear resize)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f"images must be uint8 (n, H, W, 3), found {images.dtype} {images.shape}.")
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x.clamp(-1.0, 1.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(n, 3, S, S) in [-1, 1] -> uint8 (n, S, S, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# --- conditioning ----------------------------------------------------------------------------------------------


class FMRIContextMapper(nn.Module):
    """fMRI tokens (batch, n_tokens, fmri_dim) -> context (batch, 77, cross_attention_dim).

    Conv1d(n_tokens -> n_tokens // 2, kernel 1) and Conv1d(n_tokens // 2 -> 77, kernel 1) mix the token axis (the
    tokens are the channels), then Linear(fmri_dim -> cross_attention_dim) maps the feature axis (METHODS.md 4.4).
    """

    def __init__(
        self, n_tokens: int, fmri_dim: int, cross_attention_dim: int, n_context: int = N_CONTEXT_TOKENS
    ):
        super().__init__()
        if n_tokens < 2:
            raise ConfigError(f"FMRIContextMapper needs >= 2 fMRI tokens, found {n_tokens}.")
        self.n_tokens, self.fmri_dim = n_tokens, fmri_dim
        self.channel_mapper = nn.Sequential(
            nn.Conv1d(n_tokens, n_tokens // 2, kernel_size=1),
            nn.Conv1d(n_tokens // 2, n_context, kernel_size=1),
        )
        self.dim_mapper = CPULinear(fmri_dim, cross_attention_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3 or tokens.shape[1:] != (self.n_tokens, self.fmri_dim):
            raise DataError(
                f"FMRIContextMapper expects fMRI tokens (batch, {self.n_tokens}, {self.fmri_dim}), found "
                f"{tuple(tokens.shape)}. The mapper is built for one encoder's token count and width."
            )
        return self.dim_mapper(self.channel_mapper(tokens))


class FMRIConditioner(nn.Module):
    """(batch, n_voxels) -> context (batch, 77, cross_attention_dim): ``encoder.encode`` then the mapper.

    ``train_encoder`` (default True, the paper's "rest trainable") lets the LDM loss fine-tune the fMRI encoder.
    """

    def __init__(self, encoder: nn.Module, mapper: FMRIContextMapper, train_encoder: bool = True):
        super().__init__()
        if not callable(getattr(encoder, "encode", None)):
            raise ConfigError(
                f"FMRIConditioner: {type(encoder).__name__} has no encode(voxels) -> (batch, n_tokens, dim)."
            )
        self.encoder, self.mapper = encoder, mapper
        self.encoder.requires_grad_(train_encoder)

    def forward(self, voxels: torch.Tensor) -> torch.Tensor:
        return self.mapper(self.encoder.encode(voxels))


class NullConditioner(nn.Module):
    """A zero context (batch, 77, cross_attention_dim) whatever the input: the unconditional model."""

    def __init__(self, cross_attention_dim: int, n_context: int = N_CONTEXT_TOKENS):
        super().__init__()
        self.shape = (n_context, cross_attention_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), *self.shape, device=x.device)


@MODELS.register(
    "ldm", help="Vis-Dec phase 3: a latent diffusion UNet conditioned on fMRI tokens (diffusers)"
)
class LatentDiffusion(nn.Module):
    """The frozen VAE, the UNet and the context mapper of one fMRI-conditioned LDM, built from an :class:`LDMConfig`
    (``n_tokens`` and ``fmri_dim`` from the fMRI encoder).

    ``forward(tokens, latents, timesteps)``: fMRI tokens (batch, n_tokens, fmri_dim), noised latents (batch,
    latent_channels, side, side), timesteps (batch,) -> the predicted noise (batch, latent_channels, side, side).
    """

    Config = LDMConfig
    PRESETS = PRESETS
    testing_sizes = {"n_tokens": 5, "fmri_dim": 6}
    battery_skips = {
        "paper_count": "the paper's networks are a pretrained LDM from ldm_dir; no count is documented"
    }

    def __init__(self, config: LDMConfig) -> None:
        super().__init__()
        if config.n_tokens is None or config.fmri_dim is None:
            raise ConfigError("LDM: n_tokens and fmri_dim must be set (they come from the fMRI encoder).")
        self.config = config
        self.vae, self.unet = build_vae(config).requires_grad_(False), build_unet(config)
        set_unet_trained(self.unet, config.unet_trained)
        self.mapper = FMRIContextMapper(config.n_tokens, config.fmri_dim, config.cross_attention_dim)
        route_linears(self)  # diffusers' nn.Linear layers through oneDNN on the CPU (models/cpu_linear.py)

    @classmethod
    def example(cls, config: LDMConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        side = latent_side(config)
        tokens = torch.randn(batch, config.n_tokens, config.fmri_dim, generator=generator)
        latents = torch.randn(batch, config.latent_channels, side, side, generator=generator)
        return tokens, latents, torch.randint(0, config.n_train_timesteps, (batch,), generator=generator)

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        side = latent_side(self.config)
        return (batch, self.config.latent_channels, side, side)

    def forward(self, tokens: torch.Tensor, latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(tokens).all():
            raise DataError("LDM: input contains NaN or inf.")
        return self.unet(latents, timesteps, encoder_hidden_states=self.mapper(tokens)).sample


# --- sampling --------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_images(
    unet: nn.Module,
    vae: nn.Module,
    scheduler,
    context: torch.Tensor,
    n_samples: int = 1,
    n_steps: int = 50,
    seed: int = 0,
    batch_size: int = 32,
    guidance_scale: float = 1.0,
) -> np.ndarray:
    """Generate ``n_samples`` images per context row: (n, 77, cross_dim) -> uint8 (n, n_samples, S, S, 3).

    ``guidance_scale`` > 1 applies classifier-free guidance against the zero context (the unconditional model of
    :class:`NullConditioner`): eps = eps(zero) + scale * (eps(context) - eps(zero)); 1 is plain conditional
    sampling, as the paper samples.

    Sample ``j`` of row ``i`` starts from noise drawn by ``torch.Generator().manual_seed(seed + 1000003 * j + i)``,
    so results do not depend on ``batch_size`` and one seed reproduces them. ``scheduler`` is copied (PNDM keeps
    state between steps), so the caller's object is left untouched.
    """
    if context.ndim != 3 or context.shape[-1] != unet.config.cross_attention_dim:
        raise DataError(
            f"context must be (n, n_tokens, {unet.config.cross_attention_dim}), found {tuple(context.shape)}."
        )
    if n_samples < 1 or n_steps < 1:
        raise ConfigError(f"n_samples and n_steps must be >= 1, found {n_samples} and {n_steps}.")
    if not guidance_scale >= 1.0:
        raise ConfigError(f"guidance_scale must be >= 1 (1 = no guidance), found {guidance_scale}.")
    unet.eval()
    vae.eval()
    side, channels = unet.config.sample_size, unet.config.in_channels
    scale = latent_scale(vae)
    jobs = [(i, j) for j in range(n_samples) for i in range(len(context))]
    out = np.empty((len(context), n_samples), dtype=object)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        noise = [
            torch.randn(channels, side, side, generator=torch.Generator().manual_seed(seed + 1000003 * j + i))
            for i, j in chunk
        ]
        latents = torch.stack(noise).to(context.device)
        cond = context[[i for i, _ in chunk]]
        steps = type(scheduler).from_config(scheduler.config)
        steps.set_timesteps(n_steps)
        latents = latents * steps.init_noise_sigma
        both = torch.cat([cond, torch.zeros_like(cond)]) if guidance_scale > 1 else cond
        for t in steps.timesteps:
            x = steps.scale_model_input(latents, t)
            if guidance_scale > 1:
                eps_cond, eps_zero = unet(torch.cat([x, x]), t, encoder_hidden_states=both).sample.chunk(2)
                eps = eps_zero + guidance_scale * (eps_cond - eps_zero)
            else:
                eps = unet(x, t, encoder_hidden_states=cond).sample
            latents = steps.step(eps, t, latents).prev_sample
        images = tensor_to_images(vae.decode(latents / scale).sample)
        for (i, j), image in zip(chunk, images):
            out[i, j] = image
    return np.stack([np.stack(list(row)) for row in out])
