"""Vis-Dec phase 2: cross-modal attention tuning of the fMRI MAE and an image MAE (Sun, Li et al., NeurIPS 2023).

Read top to bottom: the image MAE (a ``transformers`` ViTMAEForPreTraining: loaded from a local directory, or a
small one built from a preset), the image preprocessing, the config, the cross-attention stack, the joint model,
save / load.

Each side encodes its own masked input, then a stack of cross-attention blocks lets its visible tokens attend to
the other side's encoded tokens, mapped to its width by a Linear (image -> fMRI: ``image_hidden -> fmri dim``;
fMRI -> image: ``fmri dim -> image_hidden``, Vis-Dec's ``cross_map_in``), then its own decoder reconstructs its
input. A cross block is ``torch.nn.TransformerDecoderLayer``'s computation and parameters (pre-norm
self-attention, cross-attention to the other modality, MLP; computed by :class:`_DecoderLayer`). The loss is
``fmri_recon_weight * masked MSE(fMRI) + image_recon_weight * masked MSE(image patches)`` with fMRI mask 0.75 and
image mask 0.5 [Vis-Dec README, phase2_finetune_cross.py; METHODS.md 4.3].

``released=True`` builds and computes the released layout instead (:mod:`brainkit.models.cross_modal_released`:
ViT-MAE cross layers at the image width on both sides, the fMRI side mapped in and out around them, each side
attending to the other's WHOLE input encoded without cross-attention); docs/methods/vis_dec.md, "Released weights".

After tuning, ``encode(voxels)``: (batch, n_voxels) -> (batch, 1 + n_patches, fmri dim) is the fMRI encoder
alone (no image needed), what phase 3 conditions on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from brainkit.checkpoint import atomic_folder, check_tensors, load_checkpoint, save_checkpoint
from brainkit.config import Checked, bounded, from_dict, to_dict
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear, route_linears
from brainkit.models.cross_modal_released import (
    RELEASED_DECODER_NORM_EPS,
    FMRICrossReleased,
    ImageCrossReleased,
)
from brainkit.models.dc_mae import DCMAE, DCMAEConfig
from brainkit.models.dc_mae import PRESETS as DC_MAE_PRESETS
from brainkit.models.layers import Attention
from brainkit.registry import MODELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what facebook/vit-mae-base's preprocessor_config.json uses
IMAGENET_STD = (0.229, 0.224, 0.225)

# Small ViT-MAE configs (transformers.ViTMAEConfig keyword arguments; our choice) for when no pretrained image
# MAE is at hand. facebook/vit-mae-base itself is 224 px, patch 16, 768/12/12, decoder 512/8/16.
IMAGE_MAE_PRESETS: dict[str, dict[str, Any]] = {
    # facebook/vit-mae-base's architecture (= ViTMAEConfig's defaults; Vis-Dec's vit_mae_model), randomly initialised:
    # 224 px, patch 16, 768/12/12 (MLP 3072), decoder 512/8/16; 111,907,840 params.
    "vit_mae_base": {},
    # 64 px, 8 px patches (64 patches), encoder 128/4/4 (MLP 256), decoder 64/2/4: ~0.67 M params.
    "cpu_small": dict(image_size=64, patch_size=8, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                      intermediate_size=256, decoder_hidden_size=64, decoder_num_hidden_layers=2,
                      decoder_num_attention_heads=4, decoder_intermediate_size=128, mask_ratio=0.75),
    "testing": dict(image_size=16, patch_size=4, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=24, decoder_hidden_size=8, decoder_num_hidden_layers=1,
                    decoder_num_attention_heads=2, decoder_intermediate_size=16, mask_ratio=0.75),
}  # fmt: skip


def small_image_mae(preset: str = "cpu_small", seed: int = 0, **options: Any) -> nn.Module:
    """A randomly initialised ViTMAEForPreTraining from :data:`IMAGE_MAE_PRESETS` (train it with
    :func:`brainkit.recipes.vis_dec.encoder.pretrain_image_mae`)."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    if preset not in IMAGE_MAE_PRESETS:
        raise ConfigError(f"No image-MAE preset {preset!r}; presets: {sorted(IMAGE_MAE_PRESETS)}.")
    torch.manual_seed(seed)
    return ViTMAEForPreTraining(ViTMAEConfig(**(IMAGE_MAE_PRESETS[preset] | options)))


def load_image_mae(directory: str | Path) -> nn.Module:
    """A ViTMAEForPreTraining from a local directory in the Hugging Face layout (facebook/vit-mae-base:
    ``config.json`` + ``model.safetensors``); nothing is downloaded."""
    from transformers import ViTMAEForPreTraining

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise CheckpointError(
            f"No image MAE at {directory}: expected a Hugging Face model folder with config.json and weights "
            "(e.g. a local copy of facebook/vit-mae-base). Leave image_mae_dir unset to train a small one."
        )
    try:
        return ViTMAEForPreTraining.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"Cannot load the image MAE in {directory}: {err}") from None


def image_mae_config(directory: str | Path | None = None, preset: str = "cpu_small") -> Any:
    """The ``transformers.ViTMAEConfig`` of the image MAE a run uses (the local folder's ``config.json`` when given,
    else the :data:`IMAGE_MAE_PRESETS` entry), without building the model."""
    from transformers import ViTMAEConfig

    if directory is not None:
        if not (Path(directory) / "config.json").is_file():
            raise CheckpointError(
                f"No image MAE config at {directory}/config.json (a Hugging Face model folder)."
            )
        return ViTMAEConfig.from_pretrained(str(directory), local_files_only=True)
    if preset not in IMAGE_MAE_PRESETS:
        raise ConfigError(f"No image-MAE preset {preset!r}; presets: {sorted(IMAGE_MAE_PRESETS)}.")
    return ViTMAEConfig(**IMAGE_MAE_PRESETS[preset])


def image_norm_stats(directory: str | Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel from ``preprocessor_config.json`` when the folder has one, else ImageNet's."""
    path = Path(directory) / "preprocessor_config.json" if directory is not None else None
    if path is not None and path.is_file():
        stats = json.loads(path.read_text())
        return tuple(stats.get("image_mean", IMAGENET_MEAN)), tuple(stats.get("image_std", IMAGENET_STD))
    return IMAGENET_MEAN, IMAGENET_STD


def preprocess_images(
    images: np.ndarray,
    size: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, size, size): scaled to [0, 1], resized (bilinear, antialiased),
    normalised per channel as the image MAE expects."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise DataError(f"Images must be uint8 (n, height, width, 3), found {images.dtype} {images.shape}.")
    x = rearrange(torch.from_numpy(images), "n h w c -> n c h w").float() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


@dataclass(frozen=True)
class CrossModalConfig(Checked):
    """The cross-attention stacks and the tuning loss. Numbers: Vis-Dec phase 2 [METHODS.md sec. 4.3].

    ``fmri`` and ``image`` (``transformers.ViTMAEConfig`` keyword arguments) describe the two MAEs: set from the
    modules :class:`CrossModalMAE` is given, read by :meth:`CrossModalMAE.from_config` to build them.
    """

    # Vis-Dec's layer_cross: 3 extra cross-attention layers on the image side
    image_cross_layers: int = bounded(3, ge=0, le=100, fix="0: no cross-attention (an ablation)")
    # the fMRI side's cross-attention (one stack; our reading of MAEforFMRICross)
    fmri_cross_layers: int = bounded(1, ge=0, le=100, fix="0: no cross-attention (an ablation)")
    cross_heads: int = bounded(16, ge=1, le=1024)  # our choice: divides both widths of the paper models
    cross_mlp_ratio: float = bounded(4.0, gt=0, le=64)  # our choice: ViT's MLP ratio
    fmri_mask_ratio: float = bounded(0.75, gt=0, lt=1)
    image_mask_ratio: float = bounded(0.5, gt=0, lt=1)
    fmri_recon_weight: float = bounded(0.25, ge=0)
    image_recon_weight: float = bounded(1.5, ge=0)
    image_mean: tuple[float, ...] = bounded(IMAGENET_MEAN, ge=0, le=1, fix="a channel mean of 0-1 pixels")
    image_std: tuple[float, ...] = bounded(IMAGENET_STD, gt=0, fix="a channel standard deviation")
    # True: the released layout and forward pass (models/cross_modal_released.py; docs/methods/vis_dec.md "Released
    # weights"): cross layers at the image MAE's width with its heads and MLP (cross_heads, cross_mlp_ratio unused),
    # the fMRI side's mapped in and out around a residual, attending to the whole image's tokens; the image side's
    # before its final LayerNorm, attending to the whole fMRI's. False: ours (TransformerDecoderLayer stacks).
    released: bool = False
    fmri: DCMAEConfig | None = None
    image: dict[str, Any] | None = None


CROSS_PRESETS: dict[str, CrossModalConfig] = {
    # With the paper DC-MAE (1024 wide) and facebook/vit-mae-base (768): 29,142,528 params on the image side
    # (3 layers), 17,584,128 on the fMRI side (1 layer); tests/test_cross_modal.py counts them on the meta device.
    "paper": CrossModalConfig(),
    # With DC-MAE cpu_small (128) and the cpu_small image MAE (128): 4 heads.
    "cpu_small": CrossModalConfig(cross_heads=4),
    "testing": CrossModalConfig(cross_heads=2, cross_mlp_ratio=2.0),
    # The released layout [code/config.py Config_MBM_finetune_cross: num_cross_encoder_layers 3 for both sides,
    # do_cross_residual]; with DC-MAE paper and vit-mae-base: 29,137,920 params on the image side, 29,925,376 on
    # the fMRI side (tests/test_cross_modal_released.py counts them on the meta device).
    "paper_released": CrossModalConfig(fmri_cross_layers=3, released=True),
    "testing_released": CrossModalConfig(fmri_cross_layers=3, released=True),
}


# The whole model, for the registry: the cross presets with their two MAEs.
PRESETS: dict[str, CrossModalConfig] = {
    # The paper DC-MAE (164,419,600 params, models/dc_mae.py) + facebook/vit-mae-base (= ViTMAEConfig's defaults,
    # 111,655,680 trainable: 111,907,840 less its fixed sin-cos positions) + the cross stacks above (46,726,656):
    # 322,801,936 trainable parameters.
    "paper": replace(CROSS_PRESETS["paper"], fmri=DC_MAE_PRESETS["paper"], image={}),
    "cpu_small": replace(CROSS_PRESETS["cpu_small"], fmri=DC_MAE_PRESETS["cpu_small"],
                         image=IMAGE_MAE_PRESETS["cpu_small"]),
    "testing": replace(CROSS_PRESETS["testing"], fmri=DC_MAE_PRESETS["testing"], image=IMAGE_MAE_PRESETS["testing"]),
    # DC-MAE paper_released (164,419,600) + vit-mae-base (111,655,680 trainable) + the released cross stacks
    # (59,063,296): 335,138,576 trainable parameters.
    "paper_released": replace(CROSS_PRESETS["paper_released"], fmri=DC_MAE_PRESETS["paper_released"], image={}),
}  # fmt: skip


class _DecoderLayer(nn.Module):
    """A pre-norm cross block: ``x + self_attn(norm1(x))``, ``x + multihead_attn(norm2(x), memory)``,
    ``x + linear2(gelu(linear1(norm3(x))))``. Parameter names, shapes and initial values (the same draws in the same
    order) are those of ``nn.TransformerDecoderLayer(norm_first=True, activation="gelu", dropout=0,
    batch_first=True)``, which this replaces so that its attention projections run through oneDNN too
    (:class:`~brainkit.models.layers.Attention`; torch's layer calls ``F.linear`` inside
    ``F.multi_head_attention_forward``). (batch, n, dim), memory (batch, m, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, n_heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, n_heads)
        self.multihead_attn = Attention(dim, n_heads)
        self.linear1, self.linear2 = CPULinear(dim, hidden), CPULinear(hidden, dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.multihead_attn(self.norm2(x), memory)
        return x + self.linear2(F.gelu(self.linear1(self.norm3(x))))


class CrossAttention(nn.Module):
    """Tokens (batch, n, dim) attend to another modality's tokens (batch, m, context_dim), mapped to ``dim``:
    ``depth`` pre-norm cross blocks (:class:`_DecoderLayer`, ``nn.TransformerDecoderLayer``'s parameters) ->
    (batch, n, dim)."""

    def __init__(self, dim: int, context_dim: int, depth: int, n_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"cross-attention: width {dim} is not divisible by cross_heads {n_heads}.")
        self.map_in = CPULinear(context_dim, dim)
        hidden = max(1, int(dim * mlp_ratio))
        self.layers = nn.ModuleList(_DecoderLayer(dim, n_heads, hidden) for _ in range(depth))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        memory = self.map_in(context)
        for layer in self.layers:
            x = layer(x, memory)
        return x


def _hidden_patch_mse(
    recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """MSE over the hidden patches' voxels: recon, target (batch, n_voxels); mask (batch, n_patches) bool.

    The value of :func:`brainkit.objectives.double_contrastive.masked_mse`, computed here because the model's
    forward still returns its loss (models do not import objectives); it goes once the training loop computes
    the loss in ``objectives/``."""
    error = rearrange((recon - target) ** 2, "b (n p) -> b 1 n p", p=patch_size)
    weight = mask[:, None, :, None].to(error.dtype).expand_as(error)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


@MODELS.register("cross_modal", help="Vis-Dec phase 2: DC-MAE and an image MAE tuned with cross-attention")
class CrossModalMAE(nn.Module):
    """The fMRI MAE (:class:`~brainkit.models.dc_mae.DCMAE`) and an image MAE (ViTMAEForPreTraining), each
    reconstructing its input while attending to the other's tokens.

    ``forward(voxels, pixels, fmri_mask, image_noise) -> dict``: voxels (batch, n_voxels), pixels (batch, 3,
    size, size) preprocessed, fmri_mask (batch, n_fmri_patches) bool (True = hidden), image_noise (batch,
    n_image_patches) float (ViT-MAE keeps the lowest ``1 - image_mask_ratio``); returns ``loss``, ``fmri_mse``,
    ``image_mse``, ``fmri_recon`` (batch, n_voxels) and ``image_recon`` (batch, n_image_patches, patch*patch*3).
    With ``config.released`` the cross stacks are the released ones and each side attends to the other's whole
    input (the module docstring); it sets the image decoder's final LayerNorm eps to the released 1e-5.
    """

    Config = CrossModalConfig
    PRESETS = PRESETS
    testing_sizes = {"fmri": DCMAE.testing_sizes}
    battery_skips: dict[str, str] = {}

    def __init__(self, fmri: DCMAE, image: nn.Module, config: CrossModalConfig | None = None) -> None:
        super().__init__()
        c = config or CrossModalConfig()
        self.fmri, self.image = fmri, image
        # ViT-MAE's nn.Linear layers through oneDNN on the CPU, as ours' (models/cpu_linear.py)
        route_linears(image)
        image.config.mask_ratio = c.image_mask_ratio  # ViT-MAE reads it at every masking
        self.config = c = replace(c, fmri=fmri.config, image=image.config.to_diff_dict())
        fmri_dim, image_dim = fmri.config.dim, image.config.hidden_size
        if c.released:
            # the released ViTMAEDecoder's final norm is nn.LayerNorm's default eps; transformers' uses layer_norm_eps
            image.decoder.decoder_norm.eps = RELEASED_DECODER_NORM_EPS
            self.image_cross = ImageCrossReleased(fmri_dim, image.config, c.image_cross_layers)
            self.fmri_cross = FMRICrossReleased(fmri_dim, image.config, c.fmri_cross_layers)
            return
        self.image_cross = CrossAttention(
            image_dim, fmri_dim, c.image_cross_layers, c.cross_heads, c.cross_mlp_ratio
        )
        self.fmri_cross = CrossAttention(
            fmri_dim, image_dim, c.fmri_cross_layers, c.cross_heads, c.cross_mlp_ratio
        )

    @classmethod
    def from_config(cls, config: CrossModalConfig) -> CrossModalMAE:
        """Both MAEs freshly built from ``config.fmri`` and ``config.image`` (what :func:`build_model` calls)."""
        from transformers import ViTMAEConfig, ViTMAEForPreTraining

        if config.fmri is None or config.image is None:
            raise ConfigError(
                "cross_modal: config.fmri and config.image must be set to build the model alone."
            )
        image = ViTMAEForPreTraining(ViTMAEConfig.from_dict(dict(config.image)))
        return cls(DCMAE(config.fmri), image, config)

    @classmethod
    def example(
        cls, config: CrossModalConfig, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        from transformers import ViTMAEConfig

        image = ViTMAEConfig.from_dict(dict(config.image))
        n_image_patches = (image.image_size // image.patch_size) ** 2
        voxels, fmri_mask = DCMAE.example(config.fmri, batch, generator)
        pixels = torch.randn(batch, 3, image.image_size, image.image_size, generator=generator)
        return voxels, pixels, fmri_mask, torch.rand(batch, n_image_patches, generator=generator)

    def output_shape_for(self, batch: int) -> dict[str, tuple[int, ...]]:
        patch = self.image.config.patch_size
        image = (batch, self.n_image_patches, patch * patch * self.image.config.num_channels)
        return {"fmri_recon": (batch, self.fmri.config.n_voxels), "image_recon": image, "loss": ()}

    @property
    def image_size(self) -> int:
        size = self.image.config.image_size
        return size if isinstance(size, int) else size[0]

    @property
    def n_image_patches(self) -> int:
        return self.image.vit.embeddings.patch_embeddings.num_patches

    def encode(self, voxels: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> (batch, 1 + n_patches, fmri dim): the tuned fMRI encoder, nothing hidden."""
        return self.fmri.encode(voxels)

    def _whole_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(batch, 3, size, size) -> (batch, 1 + n_image_patches, image dim): the image encoder (final LayerNorm
        included) with nothing hidden, patches in order (the released ``given_mask_ratio=0``)."""
        config = self.image.config
        ratio, config.mask_ratio = config.mask_ratio, 0.0  # ViT-MAE keeps int(n (1 - mask_ratio)) patches
        try:
            order = torch.arange(self.n_image_patches, dtype=pixels.dtype, device=pixels.device)
            return self.image.vit(pixel_values=pixels, noise=order.expand(len(pixels), -1)).last_hidden_state
        finally:
            config.mask_ratio = ratio

    def forward(
        self, voxels: torch.Tensor, pixels: torch.Tensor, fmri_mask: torch.Tensor, image_noise: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if len(voxels) != len(pixels):
            raise DataError(f"cross-modal: {len(voxels)} fMRI samples but {len(pixels)} images.")
        c = self.config
        if c.released:  # each side attends to the other's whole input, encoded without cross-attention
            encoded = self.image.vit(pixel_values=pixels, noise=image_noise, output_hidden_states=True)
            fmri_raw = self.fmri.encode_visible(voxels, fmri_mask, normed=False)  # (b, 1 + visible, fmri dim)
            fmri_mixed = self.fmri.norm(self.fmri_cross(fmri_raw, self._whole_image(pixels)))
            image_mixed = self.image_cross(encoded.hidden_states[-1], self.fmri.encode(voxels))
            image_mixed = self.image.vit.layernorm(image_mixed)  # (b, 1 + visible, image dim)
        else:
            fmri_tokens = self.fmri.encode_visible(voxels, fmri_mask)  # (b, 1 + visible, fmri dim)
            encoded = self.image.vit(pixel_values=pixels, noise=image_noise)
            image_tokens = encoded.last_hidden_state  # (b, 1 + visible, image dim)
            fmri_mixed = self.fmri_cross(fmri_tokens, image_tokens)
            image_mixed = self.image_cross(image_tokens, fmri_tokens)
        fmri_recon = self.fmri.predict(self.fmri.decode_tokens(fmri_mixed, fmri_mask))
        image_recon = self.image.decoder(image_mixed, encoded.ids_restore).logits
        fmri_mse = _hidden_patch_mse(fmri_recon, voxels, fmri_mask, self.fmri.config.patch_size)
        target = self.image.patchify(pixels)
        if self.image.config.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
        hidden = encoded.mask  # (b, n_image_patches), 1 = hidden
        image_mse = (((image_recon - target) ** 2).mean(-1) * hidden).sum() / hidden.sum()
        loss = c.fmri_recon_weight * fmri_mse + c.image_recon_weight * image_mse
        return {"loss": loss, "fmri_mse": fmri_mse, "image_mse": image_mse, "fmri_recon": fmri_recon,
                "image_recon": image_recon}  # fmt: skip


@dataclass(frozen=True)
class _Saved:
    fmri: DCMAEConfig = field(default_factory=DCMAEConfig)
    cross: CrossModalConfig = field(default_factory=CrossModalConfig)


def save_cross_modal(
    folder: str | Path, model: CrossModalMAE, metadata: dict[str, Any] | None = None
) -> Path:
    """``folder``: model.safetensors + config.json (the fMRI, image and cross-attention configs)."""
    config = {
        "model": "cross_modal_mae",
        "config": to_dict(_Saved(model.fmri.config, model.config)),
        "image_mae_config": model.image.config.to_dict(),
        "metadata": metadata or {},
    }
    return save_checkpoint(folder, model.state_dict(), config)


def load_cross_modal(folder: str | Path) -> tuple[CrossModalMAE, dict[str, Any]]:
    """Rebuild a :class:`CrossModalMAE` written by :func:`save_cross_modal` (no pickle, no download)."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    state, meta = load_checkpoint(folder)
    if meta.get("model") != "cross_modal_mae":
        raise CheckpointError(
            f"{folder} does not hold a cross-modal MAE (found model {meta.get('model')!r})."
        )
    saved = from_dict(_Saved, meta["config"], where=f"{folder}/config.json")
    image = ViTMAEForPreTraining(ViTMAEConfig.from_dict(meta["image_mae_config"]))
    model = CrossModalMAE(DCMAE(saved.fmri), image, saved.cross)
    check_tensors(state, model.state_dict(), folder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"Checkpoint {folder} does not match its config: {err}") from None
    return model, meta.get("metadata", {})


def save_image_mae(folder: str | Path, model: nn.Module) -> Path:
    """The image MAE alone in the Hugging Face layout (safetensors), written atomically; reload it with
    :func:`load_image_mae`."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # its one-shard "Writing model shards" bar means nothing to the user
    try:
        with atomic_folder(folder) as tmp:
            model.save_pretrained(str(tmp), safe_serialization=True)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    return Path(folder)


__all__ = [
    "CROSS_PRESETS",
    "IMAGE_MAE_PRESETS",
    "CrossModalConfig",
    "CrossModalMAE",
    "image_mae_config",
    "load_cross_modal",
    "load_image_mae",
    "preprocess_images",
    "save_cross_modal",
    "save_image_mae",
    "small_image_mae",
]
