"""vsMAE: masked autoencoding of surface fMRI clips, the self-supervised pretraining SIM initialises its fMRI
encoder from (Dahan et al., ICLR 2025). SIM's repository has no vsMAE code (METHODS.md sec. 1.4); the lab's sMAE
repository has it, without its training config (mask ratio, decoder sizes). Our default is chosen, documented in
docs/methods/sim.md, and every choice is a config field; ``released=True`` is that code's computation.

Read top to bottom: config and presets, the patch mask, the model (its loss is
:func:`brainkit.objectives.masked.masked_patch_loss`).

A clip (batch, n_frames, n_patches, n_patch_vertices) loses ``mask_ratio`` of its patches, whole (all frames of
a hidden patch are hidden: the task is to fill a hole in space, not to copy the previous frame). The SiT
encoder sees only the visible patches (its declared ``visible`` interface); a small transformer decoder gets
the encoded tokens back in place, a learnt mask token at every hidden patch, fixed sin-cos positions, and
predicts every patch's ``n_frames x n_patch_vertices`` values; the loss is the MSE over the hidden patches'
cortex vertices (medial-wall vertices carry no signal and weigh 0).

``released=True`` computes what the released vsMAE computes (metrics-lab/surface-masked-autoencoders
``models/vsmae.py``, ``masking_type="tubelet"``, the frames concatenated as tokens, SIM's ``temporal_rep:
concat``; docs/methods/sim.md "vsMAE: released=True"): every (frame, patch) is a token of ``n_patch_vertices``
values (frame-major, ``'t n v -> (t n) v'``), a hidden patch is hidden in every frame (a tube), the encoder has
no cls token, both position tables are ``[sin | cos]`` over the ``n_frames * n_patches`` token index, each
transformer ends in two LayerNorms, ``int(n_patches * (1 - mask_ratio))`` patches are kept, and the loss counts
every vertex of the hidden tubes (:func:`load_released` maps its state dict).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from einops import rearrange
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import sincos_embedding
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
    # True: the released vsMAE's computation (module docstring); needs an encoder with released=True
    released: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decoder_dim % 2:
            raise ConfigError(
                f"vsMAE decoder_dim={self.decoder_dim} must be even for the sin-cos positions; set an even width."
            )
        if self.released:
            e = self.encoder
            problems = [text for bad, text in (
                (not e.released, "encoder released=True (its [sin | cos] table and two final norms)"),
                (self.decoder_distance_bias > 0, "decoder_distance_bias=0 (the released decoder has none)"),
                (e.n_heads == 1 and e.head_dim == e.dim or self.decoder_heads == 1
                 and self.decoder_head_dim == self.decoder_dim,
                 "not heads=1 with head_dim=dim (vit-pytorch then drops the attention output layer)"),
            ) if bad]  # fmt: skip
            if problems:
                raise ConfigError(f"vsMAE released=True needs {'; '.join(problems)}.")


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
    # The released vsMAE's computation at SIM's sizes (3 frames of ico6/ico3 as 3,840 tokens). Its training config
    # is not released: mask_ratio 0.75 is vsMAE's own default (masking_ratio) and sMAE's mask_prob, the decoder
    # 192 wide x 3 blocks x 3 heads of 64 is sMAE's (config/SiT/pretraining/smae.yml, pretraining_smae); at
    # decoder_dim = dim the released enc_to_dec is the identity. 6,683,565 params: encoder 5,341,056 (its
    # patch embedding takes 45 values, not 135; no cls token) + decoder 1,342,509 (the released count adds the
    # SiT's unused 193-parameter classification layer).
    "sim_released": VSMAEConfig(encoder=SIT_PRESETS["sim_released"], mask_ratio=0.75, decoder_dim=192,
                                decoder_depth=3, decoder_heads=3, decoder_head_dim=64, released=True),
}  # fmt: skip


def hidden_count(n_patches: int, ratio: float, released: bool = False) -> int:
    """Patches hidden per clip: ``round(ratio * n_patches)``, at least one shown and one hidden; ``released``:
    all but ``int(n_patches * (1 - ratio))`` (the released len_to_keep, truncated: 0.75 of 1,280 keeps 320)."""
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"vsMAE mask_ratio must be in (0, 1), found {ratio}.")
    if not released:
        return min(n_patches - 1, max(1, int(round(ratio * n_patches))))
    kept = int(n_patches * (1 - ratio))
    if kept < 1:
        raise ConfigError(
            f"vsMAE released: mask_ratio {ratio} keeps int({n_patches} * (1 - {ratio})) = 0 of {n_patches} "
            "patches; lower mask_ratio."
        )
    return n_patches - kept


def random_patch_mask(
    batch: int,
    n_patches: int,
    ratio: float,
    generator: torch.Generator | None = None,
    released: bool = False,
) -> torch.Tensor:
    """Hide :func:`hidden_count` patches of each clip, drawn independently: (batch, n_patches) bool. With
    ``released`` and a generator seeded as the released code's global seed, the released code's own mask."""
    n_hidden = hidden_count(n_patches, ratio, released)
    ranks = torch.rand(batch, n_patches, generator=generator).argsort(dim=1).argsort(dim=1)
    # released: the lowest noise is kept (its ids_shuffle[:, :len_to_keep]), so the same draw gives its mask
    return ranks >= n_patches - n_hidden if released else ranks < n_hidden


class Decoder(nn.Module):
    """Encoded visible tokens (b, 1 + n_visible, dim) + indices -> all patches (b, n_frames, n_patches, n_vertices)."""

    def __init__(self, config: VSMAEConfig) -> None:
        super().__init__()
        e = config.encoder
        self.config = config
        self.project = CPULinear(e.dim, config.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(config.decoder_dim))
        table = patch_positions(config.decoder_dim, e.n_patches, e.positions, e.patch_order, e.patches,
                                e.n_patch_vertices)  # fmt: skip
        self.register_buffer("positions", table, persistent=False)
        self.blocks = nn.ModuleList(
            Block(config.decoder_dim, config.decoder_heads, config.decoder_head_dim, 4.0, 0.0)
            for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(config.decoder_dim)
        self.head = CPULinear(config.decoder_dim, e.n_frames * e.n_patch_vertices)
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
        full = self.mask_token.to(x.dtype).expand(len(x), e.n_patches, -1).clone()  # autocast: x's dtype
        full = full.scatter(1, visible[..., None].expand(-1, -1, full.shape[-1]), patches)
        x = torch.cat([cls, full + self.positions], dim=1)
        bias = self.bias if self.config.decoder_distance_bias > 0 else None
        for block in self.blocks:
            x = block(x, bias)
        values = self.head(self.norm(x[:, 1:]))
        return rearrange(values, "b n (v c) -> b c n v", c=e.n_frames)


class ReleasedDecoder(nn.Module):
    """The released decoder (``released=True``): encoded visible tokens (b, n_frames * n_visible, dim), frame-major,
    + patch indices (b, n_visible) -> all patches (b, n_frames, n_patches, n_vertices), one token per (frame,
    patch): the mask token fills the hidden tubes, ``[sin | cos]`` positions over the token index, vit-pytorch
    blocks and their final norm, then decoder_norm (``head_norm``) and to_pixels (``head``)."""

    def __init__(self, config: VSMAEConfig) -> None:
        super().__init__()
        e, width = config.encoder, config.decoder_dim
        self.config = config
        self.project = CPULinear(e.dim, width) if e.dim != width else nn.Identity()  # released enc_to_dec
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.register_buffer(
            "positions", sincos_embedding(e.n_frames * e.n_patches, width, "concat"), persistent=False
        )
        self.blocks = nn.ModuleList(
            Block(width, config.decoder_heads, config.decoder_head_dim, 4.0, 0.0)
            for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(width)
        self.head_norm = nn.LayerNorm(width)
        self.head = CPULinear(width, e.n_patch_vertices)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        e = self.config.encoder
        x = rearrange(self.project(tokens), "b (t k) d -> b t k d", t=e.n_frames)
        full = self.mask_token.to(x.dtype).expand(len(x), e.n_frames, e.n_patches, -1).clone()  # x's dtype
        full = full.scatter(2, visible[:, None, :, None].expand(-1, e.n_frames, -1, x.shape[-1]), x)
        x = rearrange(full, "b t n d -> b (t n) d") + self.positions
        for block in self.blocks:
            x = block(x)
        values = self.head(self.head_norm(self.norm(x)))
        return rearrange(values, "b (t n) v -> b t n v", t=e.n_frames)


def released_encoder(config: SiTConfig) -> SiTConfig:
    """The released vsMAE's encoder for clips of ``config``: one token per (frame, patch), no cls token."""
    return replace(config, n_patches=config.n_frames * config.n_patches, n_frames=1, class_token=False)


@MODELS.register("vsmae", help="vsMAE: masked autoencoder of surface fMRI clips around a SiT encoder (SIM)")
class VSMAE(nn.Module):
    """``forward(x, mask)``: clips (batch, n_frames, n_patches, n_patch_vertices), mask (batch, n_patches) bool
    (True = hidden; the same count in every row) -> reconstruction of every patch, same shape as ``x``.
    ``encoder`` is a plain :class:`~brainkit.models.sit.SiT` (what SIM's retrieval model starts from); with
    ``released=True`` it is :func:`released_encoder`'s SiT over ``n_frames * n_patches`` one-frame tokens
    (SIM's model refuses it: SIM copies only the blocks of such a checkpoint, the shapes that match)."""

    Config = VSMAEConfig
    PRESETS = PRESETS
    testing_sizes = {"encoder": SiT.testing_sizes}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: VSMAEConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        mask = random_patch_mask(
            batch, config.encoder.n_patches, config.mask_ratio, generator, config.released
        )
        return clip_example(config.encoder, batch, generator), mask

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        e = self.config.encoder
        return (batch, e.n_frames, e.n_patches, e.n_patch_vertices)

    def __init__(self, config: VSMAEConfig) -> None:
        super().__init__()
        self.config = config
        if config.released:
            self.encoder, self.decoder = SiT(released_encoder(config.encoder)), ReleasedDecoder(config)
        else:
            self.encoder, self.decoder = SiT(config.encoder), Decoder(config)

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
        if not self.config.released:
            return self.decoder(self.encoder(x, visible), visible)
        frames = (
            torch.arange(e.n_frames, device=x.device)[:, None] * e.n_patches
        )  # token of (t, n): t * n_patches + n
        seen = (frames + visible[:, None, :]).flatten(1)  # every frame of each visible patch, frame-major
        return self.decoder(self.encoder(rearrange(x, "b t n v -> b 1 (t n) v"), seen), visible)


# The released vsMAE's state dict (models/vsmae.py over models/sit.py and vit-pytorch's Transformer: layers.i.0 =
# Attention(norm, to_qkv, to_out.0), layers.i.1 = FeedForward.net (0 LayerNorm, 1 Linear, 4 Linear), then its own
# norm) -> ours, for a VSMAE built with released=True (preset sim_released).
_BLOCK = [
    (r"0\.norm\.(weight|bias)", r"attention.norm.{}"),
    (r"0\.to_qkv\.weight", "attention.qkv.weight"),
    (r"0\.to_out\.0\.(weight|bias)", r"attention.out.{}"),
    (r"1\.net\.0\.(weight|bias)", r"norm.{}"),
    (r"1\.net\.1\.(weight|bias)", r"mlp.fc1.{}"),
    (r"1\.net\.4\.(weight|bias)", r"mlp.fc2.{}"),
]
RELEASED_RULES = [
    *[
        (rf"{theirs}\.layers\.(\d+)\.{pattern}", rf"{ours}.blocks.\1." + name.format(r"\2"))
        for theirs, ours in ((r"encoder\.transformer", "encoder"), ("decoder", "decoder"))
        for pattern, name in _BLOCK
    ],
    (r"encoder\.to_patch_embedding\.1\.(weight|bias)", r"encoder.patch_embedding.\1"),
    (r"encoder\.transformer\.norm\.(weight|bias)", r"encoder.norm.\1"),
    (r"encoder\.mlp_head\.0\.(weight|bias)", r"encoder.head_norm.\1"),  # vsMAE's self.norm
    (r"decoder\.norm\.(weight|bias)", r"decoder.norm.\1"),
    (r"decoder_norm\.(weight|bias)", r"decoder.head_norm.\1"),
    (r"enc_to_dec\.(weight|bias)", r"decoder.project.\1"),  # absent when decoder_dim = dim (the identity)
    (r"mask_token", "decoder.mask_token"),
    (r"to_pixels\.(weight|bias)", r"decoder.head.\1"),
    # vsMAE's own names for two encoder modules (patch_to_emb = to_patch_embedding[1], norm = mlp_head[0]): the
    # same tensors again; the SiT's classification layer (off the pretraining path); the fixed tables, compared
    # with ours in load_released. A cls token or confound projection is not matched: the released tubelet
    # path runs without them.
    (r"(patch_to_emb|norm)\.(weight|bias)", None),
    (r"encoder\.mlp_head\.1\.(weight|bias)", None),
    (r"encoder\.pos_embedding|decoder_pos_emb", None),
]


def load_released(model: VSMAE, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load a released vsMAE state dict (``encoder-decoder-*.pt``'s ``model_state_dict``, the whole vsMAE) into
    ``model`` (``released=True``, e.g. the ``sim_released`` preset, at the checkpoint's sizes). The fixed
    ``encoder.pos_embedding`` and ``decoder_pos_emb`` are compared with ours (refused beyond 1e-4) and not loaded.
    Raises :class:`~brainkit.errors.CheckpointError` listing every key or shape that does not map."""
    from brainkit.models.released import check_fixed_table, map_state

    if not model.config.released:
        raise ConfigError("Released vsMAE weights need a vsMAE with released=True (preset sim_released).")
    for key, ours in (
        ("encoder.pos_embedding", model.encoder.positions),
        ("decoder_pos_emb", model.decoder.positions),
    ):
        check_fixed_table(weights.get(key), ours, key, source)
    model.load_state_dict(map_state(weights, RELEASED_RULES, model.state_dict(), source=source))


__all__ = [
    "VSMAE",
    "VSMAEConfig",
    "PRESETS",
    "hidden_count",
    "load_released",
    "random_patch_mask",
    "released_encoder",
]
