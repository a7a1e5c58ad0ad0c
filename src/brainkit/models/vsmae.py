"""vsMAE: masked autoencoding of surface fMRI clips, the self-supervised pretraining SIM initialises its fMRI
encoder from (Dahan et al., ICLR 2025). Its code, mask ratio and decoder are unpublished (METHODS.md sec. 1.4):
what is here is chosen, documented in docs/methods/sim.md, and every choice is a config field.

Read top to bottom: config and presets, the patch mask, the model (its loss is
:func:`brainkit.objectives.masked.masked_patch_loss`).

A clip (batch, n_frames, n_patches, n_patch_vertices) loses ``mask_ratio`` of its patches, whole (all frames of
a hidden patch are hidden: the task is to fill a hole in space, not to copy the previous frame). The SiT
encoder sees only the visible patches (its declared ``visible`` interface); a small transformer decoder gets
the encoded tokens back in place, a learnt mask token at every hidden patch, fixed sin-cos positions, and
predicts every patch's ``n_frames x n_patch_vertices`` values; the loss is the MSE over the hidden patches'
cortex vertices (medial-wall vertices carry no signal and weigh 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.sit import PRESETS as SIT_PRESETS
from brainkit.models.sit import (
    Block,
    SiT,
    SiTConfig,
    check_clips,
    clip_example,
    patch_centres,
    patch_positions,
)
from brainkit.registry import MODELS


@dataclass(frozen=True)
class VSMAEConfig(Checked):
    """vsMAE = a SiT encoder + a pretraining decoder. ``mask_ratio``: fraction of patches hidden per clip. Bounds
    are checked when the config is built."""

    encoder: SiTConfig = field(default_factory=SiTConfig)
    mask_ratio: float = bounded(0.5, gt=0, lt=1)  # unpublished; our choice (docs/methods/sim.md)
    decoder_dim: int = bounded(96, ge=2, le=65_536)  # unpublished; MAE-style narrow decoder (our choice)
    decoder_depth: int = bounded(2, ge=1, le=1000)
    decoder_heads: int = bounded(3, ge=1, le=1024)
    decoder_head_dim: int = bounded(32, ge=1, le=65_536)
    # > 0: decoder attention logits - this x angle (rad) between patch centres
    decoder_distance_bias: float = bounded(0.0, ge=0, le=1000)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decoder_dim % 2:
            raise ConfigError(
                f"vsMAE decoder_dim={self.decoder_dim} must be even for the sin-cos positions; set an even width."
            )


PRESETS: dict[str, VSMAEConfig] = {
    # SIM's encoder (SiT-tiny, ico6/ico3, 3 frames) with our decoder choice: 0.5 of the patches hidden, 2 blocks
    # of width 96 (MAE's decoder is ~10 % of the encoder's compute; vsMAE's is unpublished). 5,613,159 params:
    # the encoder's 5,358,144 (METHODS.md: ~5.36 M) + the decoder's 255,015.
    "sim": VSMAEConfig(encoder=SIT_PRESETS["sim"]),
    # Our choice for 2 CPU cores: a one-block decoder with the locality prior (without it, 400 steps on the
    # real run left the hidden-patch loss at the predict-zero level; with it, it learns: docs/methods/sim.md).
    "cpu_small": VSMAEConfig(encoder=SIT_PRESETS["cpu_small"], decoder_dim=96, decoder_depth=1, decoder_heads=3,
                             decoder_head_dim=32, decoder_distance_bias=8.0),
    "testing": VSMAEConfig(encoder=SIT_PRESETS["testing"], decoder_dim=8, decoder_depth=1, decoder_heads=2,
                           decoder_head_dim=4),
}  # fmt: skip


def random_patch_mask(
    batch: int, n_patches: int, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hide ``round(ratio * n_patches)`` patches of each clip, drawn independently: (batch, n_patches) bool."""
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"vsMAE mask_ratio must be in (0, 1), found {ratio}.")
    n_hidden = min(n_patches - 1, max(1, int(round(ratio * n_patches))))
    ranks = torch.rand(batch, n_patches, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks < n_hidden


class Decoder(nn.Module):
    """Encoded visible tokens (b, 1 + n_visible, dim) + indices -> all patches (b, n_frames, n_patches, n_vertices)."""

    def __init__(self, config: VSMAEConfig) -> None:
        super().__init__()
        e = config.encoder
        self.config = config
        self.project = nn.Linear(e.dim, config.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(config.decoder_dim))
        table = patch_positions(config.decoder_dim, e.n_patches, e.positions, e.patch_order, e.patches,
                                e.n_patch_vertices)  # fmt: skip
        self.register_buffer("positions", table, persistent=False)
        self.blocks = nn.ModuleList(
            Block(config.decoder_dim, config.decoder_heads, config.decoder_head_dim, 4.0, 0.0)
            for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(config.decoder_dim)
        self.head = nn.Linear(config.decoder_dim, e.n_frames * e.n_patch_vertices)
        nn.init.normal_(self.mask_token, std=0.02)
        bias = torch.zeros(e.n_patches + 1, e.n_patches + 1)
        if config.decoder_distance_bias > 0:  # a locality prior: hidden patches listen to nearby visible ones
            centres = patch_centres(e.n_patches, e.patch_order, e.patches, e.n_patch_vertices).float()
            angle = torch.arccos((centres @ centres.T).clamp(-1.0, 1.0))
            bias[1:, 1:] = -config.decoder_distance_bias * angle
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, tokens: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        e = self.config.encoder
        x = self.project(tokens)
        cls, patches = x[:, :1], x[:, 1:]
        full = self.mask_token.expand(len(x), e.n_patches, -1).clone()
        full = full.scatter(1, visible[..., None].expand(-1, -1, full.shape[-1]), patches)
        x = torch.cat([cls, full + self.positions], dim=1)
        bias = self.bias if self.config.decoder_distance_bias > 0 else None
        for block in self.blocks:
            x = block(x, bias)
        values = self.head(self.norm(x[:, 1:]))
        return rearrange(values, "b n (v c) -> b c n v", c=e.n_frames)


@MODELS.register("vsmae", help="vsMAE: masked autoencoder of surface fMRI clips around a SiT encoder (SIM)")
class VSMAE(nn.Module):
    """``forward(x, mask)``: clips (batch, n_frames, n_patches, n_patch_vertices), mask (batch, n_patches) bool
    (True = hidden; the same count in every row) -> reconstruction of every patch, same shape as ``x``.
    ``encoder`` is a plain :class:`~brainkit.models.sit.SiT` (what SIM's retrieval model starts from)."""

    Config = VSMAEConfig
    PRESETS = PRESETS
    testing_sizes = {"encoder": SiT.testing_sizes}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: VSMAEConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        mask = random_patch_mask(batch, config.encoder.n_patches, config.mask_ratio, generator)
        return clip_example(config.encoder, batch, generator), mask

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        e = self.config.encoder
        return (batch, e.n_frames, e.n_patches, e.n_patch_vertices)

    def __init__(self, config: VSMAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SiT(config.encoder)
        self.decoder = Decoder(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.config.encoder
        check_clips(x, e.n_frames, e.n_patches, e.n_patch_vertices, "vsMAE")
        if mask.shape != (x.shape[0], e.n_patches) or mask.dtype != torch.bool:
            raise DataError(
                f"vsMAE: mask must be bool (batch, {e.n_patches}), found {mask.dtype} {tuple(mask.shape)}."
            )
        n_visible = int((~mask[0]).sum())
        if n_visible == 0 or ((~mask).sum(dim=1) != n_visible).any():
            raise DataError("vsMAE: every clip must hide the same number of patches and show at least one.")
        visible = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :n_visible]
        return self.decoder(self.encoder(x, visible), visible)


__all__ = ["VSMAE", "VSMAEConfig", "PRESETS", "random_patch_mask"]
