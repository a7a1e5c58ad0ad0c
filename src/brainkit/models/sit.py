"""SiT, the Surface Vision Transformer (Dahan et al. 2022), as SIM's fMRI encoder (Dahan et al., ICLR 2025).

Read top to bottom: the config and presets, the transformer block, the encoder.

A clip of ``n_frames`` surface frames on an icosphere is cut into triangular patches
(:func:`brainkit.surface.triangle_patches`: ico6 by ico3 gives 1,280 patches of 45 vertices). The frames are
channels (SIM's ``temporal_rep: channels``): patch ``p`` becomes one token of ``n_frames * n_patch_vertices``
values (3 x 45 = 135), ``rearrange('b c n v -> b n (v c)')``, linearly embedded. A fixed 1-D sin-cos position
is added (not to the cls token; ``positions="sphere"`` instead embeds each patch centre's 3-D position, our
option for small data, where learning which patch numbers are neighbours is costly), then pre-norm transformer blocks in vit-pytorch's layout (attention with
``n_heads`` heads of ``head_dim`` and no qkv bias; MLP 4 x dim), a final LayerNorm.

``forward(x, visible=None)`` runs only the ``visible`` patches when given: the interface the vsMAE wrapper
(``models/vsmae.py``) uses, as a masked autoencoder encodes only what it sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import FeedForward, sincos_embedding
from brainkit.registry import MODELS

POSITIONS = ("index", "sphere")


@dataclass(frozen=True)
class SiTConfig(Checked):
    """SiT encoder. ``n_patches`` and ``n_patch_vertices`` come from the patch grid (1280 and 45 at ico6/ico3);
    ``n_frames`` is the clip length in frames (3 in SIM). Bounds are checked when the config is built."""

    n_patches: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the patch grid")
    n_patch_vertices: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the patch grid")
    n_frames: int = bounded(3, ge=1, le=1000, fix="frames per clip, as channels")
    dim: int = bounded(192, ge=2, le=65_536, fix="an even token width")
    depth: int = bounded(12, ge=1, le=1000, fix="transformer blocks")
    n_heads: int = bounded(3, ge=1, le=1024)
    head_dim: int = bounded(64, ge=1, le=65_536)
    mlp_ratio: float = bounded(4.0, gt=0, le=64)
    dropout: float = bounded(0.0, ge=0, lt=1)
    # "index": SIM's 1-D sin-cos over the patch number; "sphere": of the patch centre
    positions: str = choice("index", POSITIONS)
    patch_order: int | None = bounded(None, ge=0, le=7, fix="the patch grid's icosphere order")
    # The patch table (brainkit.surface.patch_grid): "icosphere", "file:PATH" or "sim:DIR"; read only where the
    # patch centres are needed (positions="sphere", vsMAE's distance bias), in the file's patch order.
    patches: str = "icosphere"
    # True: SIM's forward path (models/clip.py fMRIEncoder over models/sit.py with current vit-pytorch): the fixed
    # table in MAE's [sin | cos] layout (models/pos_emb.py; ours interleaves) and two LayerNorms at the end, the
    # vit-pytorch Transformer's own final norm and then mlp_head[0] (ours: one). Needs positions="index".
    released: bool = False
    # False: no cls token, the tokens are the patches alone (the released vsMAE's encoder, use_class_token False)
    class_token: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        from brainkit.surface.patch_grid import parse as parse_patches

        if self.dim % 2:
            raise ConfigError(f"SiT dim={self.dim} must be even for the sin-cos positions; set an even dim.")
        if self.released and self.positions != "index":
            raise ConfigError(
                f"SiT released=True is SIM's table over the patch index; set positions='index' (found "
                f"{self.positions!r})."
            )
        parse_patches(self.patches)  # a clear error for a malformed spec; the files are read only if needed


PRESETS: dict[str, SiTConfig] = {
    # SIM's fMRI encoder = SiT-tiny: dim 192, depth 12, heads 3, dim_head 64, MLP 768, dropout 0, ico6/ico3
    # patches, 3 frames as channels [config/CLIP-fmri-video-audio/hparams.yml; METHODS.md sec. 1.3].
    "sim": SiTConfig(
        n_patches=1280, n_patch_vertices=45, n_frames=3
    ),  # 5,358,144 params (METHODS.md: ~5.36 M); sim_released below: 5,358,528
    # SiT-tiny / small / base: 192/12/3, 384/12/6, 768/12/12 [Dahan et al. 2022, Table 1; SIM config comments].
    "tiny": SiTConfig(dim=192, depth=12, n_heads=3),
    "small": SiTConfig(dim=384, depth=12, n_heads=6),
    "base": SiTConfig(dim=768, depth=12, n_heads=12),
    # What the vsMAE / SIM recipes train on 2 CPU cores in minutes (our choice).
    # Our choice for 2 CPU cores and one real run: narrow, shallow, patch positions from the sphere.
    "cpu_small": SiTConfig(dim=96, depth=2, n_heads=3, head_dim=32, mlp_ratio=2.0, positions="sphere"),
    "testing": SiTConfig(dim=12, depth=2, n_heads=2, head_dim=6, mlp_ratio=2.0),
}
# SIM's forward path exactly ([sin | cos] positions, the second final LayerNorm): 5,358,528 parameters, SIM's
# count with current vit-pytorch (the cls token is fMRIEncoder's, use_class_token_fmri_encoder).
PRESETS["sim_released"] = SiTConfig(n_patches=1280, n_patch_vertices=45, n_frames=3, released=True)


class Attention(nn.Module):
    """Pre-norm multi-head self-attention (vit-pytorch layout): (batch, n, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = CPULinear(dim, 3 * n_heads * head_dim, bias=False)
        self.out = CPULinear(n_heads * head_dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = rearrange(
            self.qkv(self.norm(x)), "b n (three h d) -> three b h n d", three=3, h=self.n_heads
        )
        p = self.dropout if self.training else 0.0
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return self.out(rearrange(mixed, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """x + attention(x), then x + MLP(LayerNorm(x)): (batch, n, dim) -> (batch, n, dim); ``bias`` (n, n) is
    added to the attention logits (None: plain attention)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.attention = Attention(dim, n_heads, head_dim, dropout)
        self.norm = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(x, bias)
        return x + self.mlp(self.norm(x))


def sphere_sincos(centres: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sin-cos embedding of unit 3-D positions (n, 3) -> (n, dim): each coordinate at ``dim // 6``
    frequencies from pi to pi * sqrt(n) (geometric), sin and cos; unused trailing dimensions are 0."""
    n_freq = max(1, dim // 6)
    top = max(2.0, float(len(centres)) ** 0.5)
    frequencies = torch.pi * top ** (torch.arange(n_freq, dtype=torch.float64) / max(1, n_freq - 1))
    angles = centres.double()[:, :, None] * frequencies  # (n, 3, n_freq)
    table = torch.cat([angles.sin(), angles.cos()], dim=-1).reshape(len(centres), -1)
    return torch.nn.functional.pad(table, (0, dim - table.shape[1])).float()


def patch_centres(
    n_patches: int, patch_order: int | None, patches: str = "icosphere", n_patch_vertices: int | None = None
) -> torch.Tensor:
    """Unit centres (n_patches, 3) of the patches, in order: the order-``patch_order`` icosphere's triangles, or
    for a table from a file (``patches`` "file:"/"sim:", :mod:`brainkit.surface.patch_grid`) the normalised mean
    of each patch's vertices on its sphere."""
    from brainkit.surface.icosphere import walk_faces  # geometry only

    if patch_order is None or 20 * 4**patch_order != n_patches:
        raise ConfigError(
            f"this option needs patch_order with 20 * 4**patch_order = n_patches ({n_patches}), "
            f"found patch_order={patch_order}."
        )
    if patches != "icosphere":
        from brainkit.surface.patch_grid import patch_grid
        from brainkit.surface.patches import fine_order_of

        fine = fine_order_of(patch_order, n_patch_vertices)
        return torch.as_tensor(patch_grid(patches, fine, patch_order).centres())
    *levels, unit = walk_faces(patch_order)
    centres = unit[levels[-1]].mean(axis=1)
    return torch.as_tensor(centres / (centres**2).sum(axis=1, keepdims=True) ** 0.5)


def patch_positions(
    config_dim: int,
    n_patches: int,
    positions: str,
    patch_order: int | None,
    patches: str = "icosphere",
    n_patch_vertices: int | None = None,
    layout: str = "interleaved",
) -> torch.Tensor:
    """The fixed position table (n_patches, dim) of a patch grid (``patches``: see :func:`patch_centres`);
    ``layout`` of the index table: "interleaved" (ours) or "concat" ([sin | cos], SIM's released table)."""
    if positions == "index":
        return sincos_embedding(n_patches, config_dim, layout)
    return sphere_sincos(patch_centres(n_patches, patch_order, patches, n_patch_vertices), config_dim)


def check_clips(x: torch.Tensor, n_frames: int, n_patches: int, n_patch_vertices: int, who: str) -> None:
    """Raise :class:`DataError` unless ``x`` is (batch, n_frames, n_patches, n_patch_vertices) and finite."""
    expected = (n_frames, n_patches, n_patch_vertices)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{who} expects clips of shape (batch, {n_frames} frames, {n_patches} patches, {n_patch_vertices} "
            f"vertices), found {tuple(x.shape)}. Cut the icosphere with the patch grid the model was built for "
            "(brainkit.surface.triangle_patches)."
        )
    if not torch.isfinite(x).all():
        raise DataError(f"{who}: input contains NaN or inf.")


def clip_example(config: SiTConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Random clips (batch, n_frames, n_patches, n_patch_vertices) for a SiT built from ``config``."""
    return torch.randn(batch, config.n_frames, config.n_patches, config.n_patch_vertices, generator=generator)


@MODELS.register(
    "sit", help="SiT: surface vision transformer over triangular icosphere patches (SIM's fMRI encoder)"
)
class SiT(nn.Module):
    """``forward(x, visible=None)``: clips (batch, n_frames, n_patches, n_patch_vertices) -> tokens
    (batch, 1 + n_tokens, dim), token 0 the cls token (absent with ``class_token=False``), then one token per
    patch (all patches, or the ``visible`` ones: a (batch, n_visible) long tensor of patch indices, in that
    order)."""

    Config = SiTConfig
    PRESETS = PRESETS
    testing_sizes = {"n_patches": 5, "n_patch_vertices": 7}  # with n_frames 3: unequal sizes for the battery
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: SiTConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
        return (clip_example(config, batch, generator),)

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, int(self.config.class_token) + self.config.n_patches, self.config.dim)

    def __init__(self, config: SiTConfig) -> None:
        super().__init__()
        if config.n_patches is None or config.n_patch_vertices is None:
            raise ConfigError(
                "SiT: n_patches and n_patch_vertices must be set (they come from the patch grid)."
            )
        self.config = config
        self.patch_embedding = CPULinear(config.n_frames * config.n_patch_vertices, config.dim)
        if config.class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        layout = "concat" if config.released else "interleaved"
        table = patch_positions(config.dim, config.n_patches, config.positions, config.patch_order,
                                config.patches, config.n_patch_vertices, layout)  # fmt: skip
        self.register_buffer("positions", table, persistent=False)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.n_heads, config.head_dim, config.mlp_ratio, config.dropout)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        # released: SIM applies mlp_head[0] after the Transformer's own final norm
        self.head_norm = nn.LayerNorm(config.dim) if config.released else nn.Identity()
        if config.class_token:  # drawn last, as before class_token existed (seeded runs stay the same)
            nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        check_clips(x, c.n_frames, c.n_patches, c.n_patch_vertices, "SiT")
        tokens = self.patch_embedding(rearrange(x, "b c n v -> b n (v c)")) + self.positions
        if visible is not None:
            if visible.ndim != 2 or visible.shape[0] != x.shape[0]:
                raise DataError(
                    f"SiT: visible must be (batch, n_visible) patch indices, found {tuple(visible.shape)}."
                )
            tokens = torch.gather(tokens, 1, visible[..., None].expand(-1, -1, c.dim))
        if c.class_token:
            tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head_norm(self.norm(tokens))


# SIM's fMRIEncoder state-dict keys (metrics-lab/sim models/clip.py over models/sit.py, vit-pytorch's
# Transformer: layers.i.0 = Attention(norm, to_qkv, to_out.0), layers.i.1 = FeedForward.net (0 LayerNorm,
# 1 Linear, 4 Linear), then its own norm) -> ours, for a SiT built with ``released=True``. In a whole SIM
# checkpoint they carry the prefix ``fmri_encoder.`` (see :func:`load_released`).
RELEASED_RULES = [
    (r"encoder\.to_patch_embedding\.1\.(weight|bias)", r"patch_embedding.\1"),
    (r"cls_token", "cls_token"),  # fMRIEncoder's own (use_class_token_fmri_encoder), no position added
    (r"encoder\.transformer\.layers\.(\d+)\.0\.norm\.(weight|bias)", r"blocks.\1.attention.norm.\2"),
    (r"encoder\.transformer\.layers\.(\d+)\.0\.to_qkv\.weight", r"blocks.\1.attention.qkv.weight"),
    (r"encoder\.transformer\.layers\.(\d+)\.0\.to_out\.0\.(weight|bias)", r"blocks.\1.attention.out.\2"),
    (r"encoder\.transformer\.layers\.(\d+)\.1\.net\.0\.(weight|bias)", r"blocks.\1.norm.\2"),
    (r"encoder\.transformer\.layers\.(\d+)\.1\.net\.1\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"encoder\.transformer\.layers\.(\d+)\.1\.net\.4\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"encoder\.transformer\.norm\.(weight|bias)", r"norm.\1"),
    (r"encoder\.mlp_head\.0\.(weight|bias)", r"head_norm.\1"),
    # not on fMRIEncoder's path: the SiT's own cls token and classification layer; the fixed table is
    # compared with ours in load_released
    (r"encoder\.(cls_token|mlp_head\.1\.weight|mlp_head\.1\.bias|pos_embedding)", None),
]


def load_released(model: SiT, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load SIM's fMRI encoder (its ``fMRIEncoder`` state dict, or a whole SIM checkpoint: the
    ``fmri_encoder.`` entries are taken) into ``model`` (``released=True``, e.g. the ``sim_released`` preset);
    the released fixed ``pos_embedding`` is compared with ours (refused beyond 1e-4). Raises
    :class:`~brainkit.errors.CheckpointError` listing what does not fit."""
    from brainkit.models.released import check_fixed_table, map_state

    if not model.config.released:
        raise ConfigError(
            "SIM's released encoder weights need a SiT with released=True (preset sim_released)."
        )
    prefix = "fmri_encoder."
    if any(k.startswith(prefix) for k in weights):
        weights = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    table = weights.get("encoder.pos_embedding")  # SIM adds its first n_patches rows
    check_fixed_table(table, model.positions, "encoder.pos_embedding", source, model.config.n_patches)
    model.load_state_dict(map_state(weights, RELEASED_RULES, model.state_dict(), source=source))


__all__ = [
    "SiT",
    "SiTConfig",
    "PRESETS",
    "Block",
    "check_clips",
    "clip_example",
    "load_released",
    "patch_centres",
    "patch_positions",
]
