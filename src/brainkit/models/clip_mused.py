"""CLIP-MUSED (Zhou, Du, Wang, He; ICLR 2024): one multi-subject decoder with per-subject semantic tokens.

Every subject owns two learnable tokens, a high-level and a low-level one (2 x dim parameters per subject, no
per-subject layers). They are prepended to the brain tokens before the token-attention blocks; what comes out
in their places is the subject's high- and low-level representation of the stimulus, and the classifier reads
their concatenation. Facts: ../shared/METHODS.md section 2; docs/methods/clip_mused.md.

Two variants:

- ``hcp`` (released code ``models.py``): a 3-D ResNet-18 hybrid over an MNI volume. Stem of two strided 3-D
  convolutions, four residual layers, an MLP-mixer-like "shallow attention" over the positions after layer 2,
  and a token-attention block after layers 3 and 4 (the 7 x 8 x 7 = 392 tokens of a 112 x 128 x 112 input).
  ``released=True`` (the ``hcp`` preset) computes the released blocks exactly (``clip_mused_released.load_released`` reads the
  released weights); ``released=False`` is our residual variant (see ``CLIPMUSEDConfig.released``).
- ``nsd`` (paper only, no code released): ROI-based patches, each ROI's voxels (resampled to ``roi_size`` by the
  data pipeline: linear interpolation over the ROI's voxel vector, ``brainkit.data.roi_patches``) embedded by its
  own linear map shared by all subjects, then token-attention blocks.

``forward(x, subject)``: ``x`` (batch, X, Y, Z) volumes (hcp) or (batch, n_rois, roi_size) patches (nsd),
``subject`` (batch,) integer indices -> :class:`CLIPMUSEDOutput` with ``logits`` (batch, n_classes),
``high`` and ``low`` (batch, dim), and, when asked, the subject tokens' attention over the brain tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import Dropout
from brainkit.registry import MODELS


@dataclass(frozen=True)
class CLIPMUSEDConfig(Checked):
    """CLIP-MUSED's hyperparameters; ``n_subjects``, ``n_classes`` (and ``n_rois`` for nsd) come from the data.
    Bounds and the hcp layout (two token blocks after layers 3 and 4 of width ``dim``) are checked when the config
    is built; the grid against the strides and the data-given sizes when the model is."""

    variant: str = choice("hcp", ("hcp", "nsd"))  # "hcp": MNI volume; "nsd": ROI patches
    grid: tuple[int, int, int] = bounded((112, 128, 112), ge=1, le=4096)  # hcp input volume (X, Y, Z)
    stem_channels: tuple[int, int] = bounded((32, 64), ge=1, le=65_536)
    stem_kernel: int = bounded(7, ge=1, le=63)
    stem_strides: tuple[int, int] = bounded((2, 2), ge=1, le=16)
    layer_channels: tuple[int, int, int, int] = bounded((64, 128, 512, 512), ge=1, le=65_536)
    layer_strides: tuple[int, int, int, int] = bounded((1, 2, 2, 1), ge=1, le=16)
    blocks_per_layer: int = bounded(2, ge=1, le=100)  # ResNet-18: two basic blocks per layer
    # token-mixing width after layer 2; None: positions // 2; 0: none
    shallow_hidden: int | None = bounded(None, ge=0, le=1_000_000)
    n_rois: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the data")  # nsd
    roi_size: int = bounded(0, ge=0, le=1_000_000)  # nsd
    dim: int = bounded(512, ge=1, le=65_536)  # token width (hcp: must equal the last two layer widths)
    n_heads: int = bounded(4, ge=1, le=1024)
    head_dim: int = bounded(64, ge=1, le=65_536)
    # one token-attention block per entry (hcp: exactly two)
    ff_hidden: tuple[int, ...] = bounded((256, 512), ge=1, le=1_000_000)
    dropout: float = bounded(0.0, ge=0, lt=1)
    subject_tokens: bool = True  # False: one token pair shared by all subjects (ablation)
    token_init_std: float = bounded(0.02, ge=0, le=10)  # released: subject tokens drawn from N(0, 0.02)
    # "tokens": classifier on [high, low]; "mean": on mean brain token (pooled baseline)
    readout: str = choice("tokens", ("tokens", "mean"))
    # True: the blocks compute what the released code does (AttentionBlock.py): shallow attention
    # x + BN(channel MLP(x)), then + BN(position MLP); token attention without inner residuals and without a qkv
    # bias, BN(attention) -> BN(FF), its output ADDED to the brain tokens and REPLACING the subject tokens.
    # False (ours): pre-norm position mixing only; each sublayer residual, then BN. See docs/methods/clip_mused.md.
    released: bool = False
    n_subjects: int | None = bounded(None, ge=1, le=100_000, fix="set by the data")
    n_classes: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the data")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_layout(self)


def conv_output(size: int, kernel: int, stride: int) -> int:
    """Side of a convolution output with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class CLIPMUSEDOutput(NamedTuple):
    logits: torch.Tensor  # (batch, n_classes)
    high: torch.Tensor  # (batch, dim) high-level token out (mean brain token for readout "mean")
    low: torch.Tensor  # (batch, dim)
    attention: torch.Tensor | None  # (batch, 2, n_tokens): high/low token attention, last block, head mean


class BasicBlock3d(nn.Module):
    """ResNet basic block in 3-D: conv-BN-ReLU-conv-BN + shortcut (1x1x1 conv + BN when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm3d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ShallowAttention(nn.Module):
    """MLP-mixer-like mixing over positions: x + MLP_positions(BN(x)). (b, c, X, Y, Z) -> same."""

    def __init__(self, channels: int, n_positions: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm3d(channels)
        self.mix = nn.Sequential(CPULinear(n_positions, hidden), nn.GELU(), CPULinear(hidden, n_positions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(self.norm(x).flatten(2))  # (b, c, positions)
        return x + mixed.view_as(x)


class ReleasedShallowAttention(nn.Module):
    """The released ``ShallowAttention``: x + BN1(channel MLP(x)), then + BN2(position MLP(.)), over the flattened
    positions; channel MLP c -> c/2 -> c (1x1 convolutions), position MLP n -> hidden -> n. BN2 starts at zero
    (weight and bias), as released, so the block starts as identity plus the channel branch.
    (b, c, X, Y, Z) -> same."""

    def __init__(self, channels: int, n_positions: int, hidden: int) -> None:
        super().__init__()
        half = channels // 2
        self.channel = nn.Sequential(nn.Conv1d(channels, half, 1), nn.GELU(), nn.Conv1d(half, channels, 1))
        self.norm1 = nn.BatchNorm1d(channels)
        self.mix = nn.Sequential(CPULinear(n_positions, hidden), nn.GELU(), CPULinear(hidden, n_positions))
        self.norm2 = nn.BatchNorm1d(channels)
        nn.init.zeros_(self.norm2.weight)
        nn.init.zeros_(self.norm2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)  # (b, c, positions)
        h = h + self.norm1(self.channel(h))
        return (h + self.norm2(self.mix(h))).view_as(x)


class TokenAttention(nn.Module):
    """Multi-head self-attention + feed-forward with BatchNorm1d. Ours (``released=False``): each sublayer
    residual, then BN. Released (``DeepAttention_token``): BN(attention(x)) -> BN(FF(.)), no residual inside and
    no bias on the qkv projection, BN2 starting at zero; the caller adds the output to the brain tokens.

    (batch, n_tokens, dim) -> (batch, n_tokens, dim), and the attention rows of the first ``n_rows`` tokens
    (batch, heads, n_rows, n_tokens). The mixing itself runs through torch's fused scaled-dot-product attention
    (about 5x faster on CPU than forming the full attention matrix); the few rows asked for are computed apart.
    """

    def __init__(
        self, dim: int, n_heads: int, head_dim: int, ff_hidden: int, dropout: float, released: bool = False
    ) -> None:
        super().__init__()
        self.n_heads, self.scale, self.released = n_heads, head_dim**-0.5, released
        self.qkv = CPULinear(dim, 3 * n_heads * head_dim, bias=not released)
        self.out = CPULinear(n_heads * head_dim, dim)
        self.norm1, self.norm2 = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)
        self.ff = nn.Sequential(CPULinear(dim, ff_hidden), nn.GELU(), CPULinear(ff_hidden, dim))
        self.drop = Dropout(dropout)
        if released:
            nn.init.zeros_(self.norm2.weight)
            nn.init.zeros_(self.norm2.bias)

    @staticmethod
    def _bn(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        return norm(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, n_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.n_heads)
        mixed = rearrange(F.scaled_dot_product_attention(q, k, v, scale=self.scale), "b h n d -> b n (h d)")
        rows = None
        if n_rows:
            rows = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q[:, :, :n_rows], k) * self.scale, dim=-1)
        if self.released:
            x = self._bn(self.norm1, self.drop(self.out(mixed)))
            return self._bn(self.norm2, self.drop(self.ff(x))), rows
        x = self._bn(self.norm1, x + self.drop(self.out(mixed)))
        return self._bn(self.norm2, x + self.drop(self.ff(x))), rows


@MODELS.register("clip_mused", help="CLIP-MUSED: multi-subject decoder with per-subject semantic tokens.")
class CLIPMUSED(nn.Module):
    Config = CLIPMUSEDConfig
    PRESETS: dict[str, CLIPMUSEDConfig] = {}  # filled below the class
    testing_sizes = {"n_subjects": 3, "n_classes": 11}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(
        cls, config: CLIPMUSEDConfig, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        shape = tuple(config.grid) if config.variant == "hcp" else (config.n_rois, config.roi_size)
        subject = torch.randint(0, config.n_subjects, (batch,), generator=generator)
        return torch.randn(batch, *shape, generator=generator), subject

    def output_shape_for(self, batch: int) -> dict[str, tuple[int, ...]]:
        dim = (batch, self.config.dim)
        return {"logits": (batch, self.config.n_classes), "high": dim, "low": dim}

    def __init__(self, config: CLIPMUSEDConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = c = config
        if c.variant == "hcp":
            c1, c2 = c.stem_channels
            self.stem = nn.Sequential(
                nn.Conv3d(1, c1, c.stem_kernel, c.stem_strides[0], c.stem_kernel // 2, bias=False),
                nn.BatchNorm3d(c1),
                nn.ReLU(),
                nn.Conv3d(c1, c2, c.stem_kernel, c.stem_strides[1], c.stem_kernel // 2, bias=False),
                nn.BatchNorm3d(c2),
                nn.ReLU(),
            )
            widths = (c2, *c.layer_channels)
            self.layers = nn.ModuleList(
                nn.Sequential(
                    *(
                        BasicBlock3d(
                            widths[i] if b == 0 else widths[i + 1], widths[i + 1], stride if b == 0 else 1
                        )
                        for b in range(c.blocks_per_layer)
                    )
                )
                for i, stride in enumerate(c.layer_strides)
            )
            shapes = feature_shapes(c)
            n_after2 = math.prod(shapes[2])
            hidden = n_after2 // 2 if c.shallow_hidden is None else c.shallow_hidden
            shallow = ReleasedShallowAttention if c.released else ShallowAttention
            self.shallow = shallow(c.layer_channels[1], n_after2, hidden) if hidden else nn.Identity()
            self.token_shape = shapes[-1]
        else:
            self.roi_weight = nn.Parameter(torch.randn(c.n_rois, c.roi_size, c.dim) * c.roi_size**-0.5)
            self.roi_bias = nn.Parameter(torch.zeros(c.n_rois, c.dim))
            self.token_shape = (c.n_rois,)
        self.blocks = nn.ModuleList(
            TokenAttention(c.dim, c.n_heads, c.head_dim, hidden_ff, c.dropout, c.released)
            for hidden_ff in c.ff_hidden
        )
        if c.readout == "tokens":
            n_sets = c.n_subjects if c.subject_tokens else 1
            self.tokens = nn.Parameter(
                torch.randn(n_sets, 2, c.dim) * c.token_init_std
            )  # [high, low] per subject
        self.classifier = CPULinear((2 if c.readout == "tokens" else 1) * c.dim, c.n_classes)

    def attention_parameters(self) -> list[nn.Parameter]:
        """The token-attention parameters (the released code trains them at 0.1 x the learning rate)."""
        return [p for block in self.blocks for p in block.parameters()]

    def forward(
        self, x: torch.Tensor, subject: torch.Tensor, return_attention: bool = False
    ) -> CLIPMUSEDOutput:
        """(batch, X, Y, Z) or (batch, n_rois, roi_size), subject (batch,) -> logits (batch, n_classes), ..."""
        self._check_input(x, subject)
        c = self.config
        if c.variant == "hcp":
            h = self.stem(x.unsqueeze(1))
            for index, layer in enumerate(self.layers):
                h = layer(h)
                if index == 1:
                    h = self.shallow(h)
                if index == 2:
                    h, first = self._attend(h, subject, self.blocks[:1], None)
            h, last = self._attend(h, subject, self.blocks[1:], first, return_attention)
        else:
            brain = torch.einsum("bri,rid->brd", x, self.roi_weight) + self.roi_bias
            _, last = self._attend(brain, subject, self.blocks, None, return_attention)
        prefix, attention = last
        if c.readout == "tokens":
            high, low = prefix[:, 0], prefix[:, 1]
            logits = self.classifier(torch.cat([high, low], dim=1))
        else:
            high = low = prefix[:, 0]
            logits = self.classifier(high)
        if attention is None:
            return CLIPMUSEDOutput(logits, high, low, None)
        return CLIPMUSEDOutput(
            logits, high, low, attention.mean(1)[:, : prefix.shape[1], prefix.shape[1] :][:, :2]
        )

    def _attend(self, h: torch.Tensor, subject: torch.Tensor, blocks, carried, rows: bool = False):
        """Brain tokens (+ the subject tokens, or those carried from the previous block) through ``blocks``."""
        volume = h.ndim == 5
        tokens = rearrange(h, "b c x y z -> b (x y z) c") if volume else h
        if self.config.readout == "tokens":
            if carried is None:
                sets = subject if self.config.subject_tokens else torch.zeros_like(subject)
                prefix = self.tokens[sets]
            else:
                prefix = carried[0]
        else:
            prefix = tokens.mean(1, keepdim=True)
        n_prefix = prefix.shape[1] if self.config.readout == "tokens" else 0
        sequence = torch.cat([prefix, tokens], dim=1) if n_prefix else tokens
        attention = None
        for block in blocks:
            out, attention = block(sequence, n_prefix if rows else 0)
            if self.config.released:  # x + block(x) for the brain tokens, block(x) for the subject tokens
                out = torch.cat([out[:, :n_prefix], sequence[:, n_prefix:] + out[:, n_prefix:]], dim=1)
            sequence = out
        prefix = sequence[:, :n_prefix] if n_prefix else sequence.mean(1, keepdim=True)
        tokens = sequence[:, n_prefix:]
        if volume:
            x, y, z = h.shape[2:]
            # contiguous: a channels-last view would make every later Conv3d copy its weights to that layout
            tokens = rearrange(tokens, "b (x y z) c -> b c x y z", x=x, y=y, z=z).contiguous()
        return tokens, (prefix, attention if n_prefix else None)

    def _check_input(self, x: torch.Tensor, subject: torch.Tensor) -> None:
        c = self.config
        expected = tuple(c.grid) if c.variant == "hcp" else (c.n_rois, c.roi_size)
        if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
            what = (
                "volumes (batch, X, Y, Z)" if c.variant == "hcp" else "ROI patches (batch, n_rois, roi_size)"
            )
            raise DataError(
                f"CLIP-MUSED ({c.variant}) expects {what} of shape (batch, {', '.join(map(str, expected))}), "
                f"found {tuple(x.shape)}. Crop or pad the data to the model's grid "
                "(brainkit.data.readers.movie_volumes.crop_or_pad)."
            )
        if not torch.isfinite(x).all():
            raise DataError("CLIP-MUSED: input contains NaN or inf.")
        if subject.shape != (x.shape[0],) or subject.dtype not in (torch.int32, torch.int64):
            raise DataError(
                f"CLIP-MUSED: subject must be an integer tensor of shape ({x.shape[0]},), found "
                f"{subject.dtype} {tuple(subject.shape)}."
            )
        if len(subject) and (subject.min() < 0 or subject.max() >= c.n_subjects):
            raise DataError(
                f"CLIP-MUSED: subject indices must be in 0..{c.n_subjects - 1} (the model was built for "
                f"{c.n_subjects} subjects), found {subject.min().item()}..{subject.max().item()}."
            )


def feature_shapes(c: CLIPMUSEDConfig) -> list[tuple[int, int, int]]:
    """Spatial shape after the stem and after each of the four layers (hcp)."""
    shape = tuple(c.grid)
    for stride in c.stem_strides:
        shape = tuple(conv_output(s, c.stem_kernel, stride) for s in shape)
    shapes = [shape]
    for stride in c.layer_strides:
        shape = tuple(conv_output(s, 3, stride) for s in shape)
        shapes.append(shape)
    return shapes


def _check_layout(c: CLIPMUSEDConfig) -> None:
    """What needs no data: the token blocks and (hcp) their widths."""
    if not c.ff_hidden:
        raise ConfigError("clip_mused: ff_hidden needs at least one entry (one token-attention block each).")
    if c.variant == "hcp" and (
        len(c.ff_hidden) != 2 or c.layer_channels[2] != c.dim or c.layer_channels[3] != c.dim
    ):
        raise ConfigError(
            "clip_mused (hcp): two token-attention blocks (ff_hidden has 2 entries) after layers 3 and 4, "
            f"whose widths must equal dim={c.dim}; found ff_hidden={c.ff_hidden}, "
            f"layer_channels={c.layer_channels}."
        )


def _check_config(c: CLIPMUSEDConfig) -> None:
    if c.n_subjects is None or c.n_classes is None or c.n_subjects < 1 or c.n_classes < 1:
        raise ConfigError(
            f"clip_mused: n_subjects and n_classes come from the dataset and must be >= 1, found "
            f"{c.n_subjects} and {c.n_classes}."
        )
    _check_layout(c)
    if c.variant == "hcp":
        if min(feature_shapes(c)[-1]) < 1:
            raise ConfigError(f"clip_mused: grid {c.grid} is too small for the strides.")
    elif c.n_rois is None or c.n_rois < 1 or c.roi_size < 1:
        raise ConfigError(
            f"clip_mused (nsd): n_rois (from the data) and roi_size must be >= 1, found {c.n_rois}, {c.roi_size}."
        )


CLIPMUSED.PRESETS.update(
    {
        # Released HCP model (models.py BrainFormer_MS(depth=18), decoding_HCP_MS.py): input 112x128x112
        # (dataloader_HCP.py crop + pad), stem k7 s2 x2, ResNet-18 layers 64/128/512/512, shallow attention over
        # 14x16x14 positions, 4 heads x 64, FF 512->256->512 then 512->512->512, embed_dim 512; the released
        # blocks (AttentionBlock.py). 65,811,136 params + classifier 1,025 per class (METHODS.md: ~65.8 M + 0.88 M
        # for 859 classes).
        "hcp": CLIPMUSEDConfig(released=True),
        # NSD variant: the paper describes ROI patches + a Transformer, no code released. Its NSD settings (the
        # paper's notes, shared/seeds): embedding 512 ("512, 24": 24 read as the ROI count, see
        # recipes/clip_mused/settings.py NSD_PATCH_ROIS), 8 heads. Ours (UNVERIFIED): ROIs resampled to 256
        # values, 8 heads x 64, 4 blocks of FF 1024. 8,411,136 + 131,584 per ROI + 1,024 per subject + 1,025
        # per class (25 ROIs, 8 subjects, 80 classes: 11,790,928).
        "nsd": CLIPMUSEDConfig(
            variant="nsd", roi_size=256, n_heads=8, head_dim=64, ff_hidden=(1024, 1024, 1024, 1024)
        ),
        # CPU-sized hcp variant (our choice) for the built-in 6 mm volumes: 28x32x28 -> stem /4 -> 7x8x7, layer 3
        # stride 2 -> 4x4x4 = 64 tokens (the paper has 392; attention over 392 tokens costs ~5x more on a CPU),
        # shallow attention over the 7x8x7 positions, one block per layer, 32-wide tokens.
        "cpu_small": CLIPMUSEDConfig(
            grid=(28, 32, 28),
            stem_channels=(8, 16),
            stem_kernel=3,
            stem_strides=(2, 2),
            layer_channels=(16, 16, 32, 32),
            layer_strides=(1, 1, 2, 1),
            blocks_per_layer=1,
            shallow_hidden=64,
            dim=32,
            n_heads=4,
            head_dim=8,
            ff_hidden=(32, 64),
            dropout=0.1,
        ),  # 196,974 params with 4 subjects and 30 classes; ~4 ms per sample forward + backward, 1 thread
        "testing": CLIPMUSEDConfig(
            grid=(9, 8, 7),
            stem_channels=(3, 4),
            stem_kernel=3,
            stem_strides=(1, 1),
            layer_channels=(4, 5, 6, 6),
            layer_strides=(1, 2, 2, 1),
            blocks_per_layer=1,
            shallow_hidden=5,
            dim=6,
            n_heads=2,
            head_dim=3,
            ff_hidden=(7, 5),
        ),
    }
)
