"""BrainMAE (Yang, Mao, Liu, Liu; arXiv 2406.17086): region-aware graph attention and masked autoencoding of
ROI time series.

Read top to bottom: the config and presets, the attention block (static / adaptive / content), the encoder
(transient state encoder, TSE), the decoder used only for pretraining, then the model.

A window of ROI signals ``(batch, n_times, n_rois)`` is cut into ``n_segments`` segments of ``segment_frames``
frames (15 s in the paper). Each (segment, ROI) pair is one token: the ROI's signal in that segment, embedded by a
shared linear layer. The tokens of one segment form a graph over ROIs; attention between ROIs i and j is built
from the similarity of learnable ROI embeddings (``attention="graph"``, SG-TSE: the same graph for every segment
and subject), or from ROI embeddings plus the tokens' content (``"adaptive"``, AG-TSE), with self loops removed.
Masked autoencoding hides whole (segment, ROI) tokens (replaced by a learnable mask token) and reconstructs every
token's signal; the loss weighs masked tokens by 0.75 and visible ones by 0.25 (``objectives/masked.py``).

What the paper does not publish (layer widths, heads, decoder, exact form of the similarity) is chosen here and
documented in ``docs/methods/brain_mae.md``; every choice is a config field.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from brainkit.config import bounded, check_bounds, choice
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import FeedForward, sincos_embedding
from brainkit.registry import MODELS

ATTENTIONS = ("graph", "adaptive", "content")
ROI_EMBEDDINGS = ("learned", "fixed")


@dataclass(frozen=True)
class BrainMAEConfig:
    """BrainMAE encoder + pretraining decoder.

    ``n_rois`` and ``segment_frames`` come from the data (atlas size; 15 s / TR). ``attention``: ``"graph"``
    (SG-TSE, region-aware static graph), ``"adaptive"`` (AG-TSE: region-aware + content), ``"content"`` (the
    vanilla ablation: plain self-attention, ROI embeddings only added to the input). ``roi_embedding``:
    ``"learned"`` or ``"fixed"`` (sin-cos of the ROI index: the PosSG ablation). ``self_loops``: keep the
    diagonal of the attention graph (the SG(SL) ablation).
    """

    n_rois: int | None = bounded(None, ge=2, fix="ROIs of the atlas (from the data)")
    segment_frames: int | None = bounded(None, ge=1, fix="frames per segment (from the data)")
    dim: int = bounded(64, ge=1)
    n_heads: int = bounded(4, ge=1, fix="attention heads; dim must be a multiple of it")
    n_blocks: int = bounded(3, ge=1)
    attention: str = choice("graph", ATTENTIONS)
    roi_embedding: str = choice("learned", ROI_EMBEDDINGS)
    self_loops: bool = False
    mlp_ratio: float = bounded(2.0, gt=0)
    dropout: float = bounded(0.0, ge=0, lt=1)
    decoder_dim: int = bounded(32, ge=1)
    decoder_blocks: int = bounded(1, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self, "model")
        if self.dim % self.n_heads:
            raise ConfigError(
                f"model.dim={self.dim} is not a multiple of model.n_heads={self.n_heads}; change one of them."
            )


PRESETS: dict[str, BrainMAEConfig] = {
    # SG-BrainMAE: 3 blocks of static region-aware graph attention [bio.rodeo model card / METHODS.md sec. 5].
    # Width, heads, MLP ratio and decoder are unpublished: chosen here (docs/methods/brain_mae.md).
    "sg_paper": BrainMAEConfig(dim=128, n_heads=4, n_blocks=3, attention="graph", mlp_ratio=4.0),
    # AG-BrainMAE: 2 adaptive (content + region-aware) attention blocks [METHODS.md sec. 5]; sizes chosen.
    "ag_paper": BrainMAEConfig(dim=128, n_heads=4, n_blocks=2, attention="adaptive", mlp_ratio=4.0),
    # What `brainkit run brain_mae` trains on 2 CPU cores in minutes.
    "cpu_small": BrainMAEConfig(dim=32, n_heads=4, n_blocks=3, mlp_ratio=2.0, decoder_dim=32),
    "testing": BrainMAEConfig(dim=8, n_heads=2, n_blocks=2, mlp_ratio=2.0, decoder_dim=6),
}


class RegionAwareAttention(nn.Module):
    """Multi-head attention over the ROIs of one segment, with logits from ROI embeddings and/or content.

    Shapes: tokens (n_graphs, n_rois, dim), roi_embedding (n_rois, dim) -> (n_graphs, n_rois, dim), and the
    attention weights (n_graphs or 1, n_heads, n_rois, n_rois) when ``return_weights``.
    """

    def __init__(self, dim: int, n_heads: int, mode: str, self_loops: bool) -> None:
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"BrainMAE: dim {dim} is not divisible by n_heads {n_heads}.")
        self.mode, self.self_loops, self.n_heads = mode, self_loops, n_heads
        self.scale = (dim // n_heads) ** -0.5
        if mode in ("graph", "adaptive"):
            self.roi_qk = CPULinear(dim, 2 * dim, bias=False)
        if mode in ("adaptive", "content"):
            self.content_qk = CPULinear(dim, 2 * dim, bias=False)
        self.value = CPULinear(dim, dim)
        self.out = CPULinear(dim, dim)

    def weights(self, tokens: torch.Tensor, roi_embedding: torch.Tensor) -> torch.Tensor:
        logits = 0.0
        if self.mode in ("graph", "adaptive"):
            q, k = rearrange(self.roi_qk(roi_embedding), "r (two h d) -> two h r d", two=2, h=self.n_heads)
            logits = logits + (q @ k.transpose(-1, -2))[None] * self.scale  # (1, heads, r, r): a static graph
        if self.mode in ("adaptive", "content"):
            q, k = rearrange(self.content_qk(tokens), "g r (two h d) -> two g h r d", two=2, h=self.n_heads)
            logits = logits + (q @ k.transpose(-1, -2)) * self.scale
        if not self.self_loops:
            eye = torch.eye(roi_embedding.shape[0], dtype=torch.bool, device=roi_embedding.device)
            logits = logits.masked_fill(eye, float("-inf"))
        return logits.softmax(dim=-1)

    def forward(
        self, tokens: torch.Tensor, roi_embedding: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        weights = self.weights(tokens, roi_embedding)
        if weights.shape[0] == 1 and tokens.shape[0] > 1:
            # one static graph for every segment: one (r x r) @ (r x g*d) product per head, not g small ones
            values = rearrange(self.value(tokens), "g r (h d) -> h r (g d)", h=self.n_heads)
            mixed = rearrange(weights[0] @ values, "h r (g d) -> g r (h d)", g=tokens.shape[0])
        else:
            values = rearrange(self.value(tokens), "g r (h d) -> g h r d", h=self.n_heads)
            mixed = rearrange(weights @ values, "g h r d -> g r (h d)")
        mixed = self.out(mixed)
        return (mixed, weights) if return_weights else mixed


class GraphBlock(nn.Module):
    """Pre-norm transformer block whose attention is :class:`RegionAwareAttention`: (g, r, dim) -> (g, r, dim)."""

    def __init__(
        self, dim: int, n_heads: int, mode: str, self_loops: bool, mlp_ratio: float, dropout: float
    ) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = RegionAwareAttention(dim, n_heads, mode, self_loops)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, roi_embedding: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), roi_embedding)
        return x + self.mlp(self.norm2(x))


class TransientStateEncoder(nn.Module):
    """Embeds each (segment, ROI) token and runs the graph blocks within each segment.

    Shapes: segments (batch, n_segments, n_rois, segment_frames), mask (batch, n_segments, n_rois) bool or None
    -> tokens (batch, n_segments, n_rois, dim).
    """

    def __init__(self, config: BrainMAEConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = CPULinear(config.segment_frames, config.dim)
        self.mask_token = nn.Parameter(torch.zeros(config.dim))
        if config.roi_embedding == "learned":
            self.roi_embedding = nn.Parameter(torch.randn(config.n_rois, config.dim) * 0.02)
        else:
            self.register_buffer(
                "roi_embedding", sincos_embedding(config.n_rois, config.dim), persistent=False
            )
        self.blocks = nn.ModuleList(
            GraphBlock(
                config.dim,
                config.n_heads,
                config.attention,
                config.self_loops,
                config.mlp_ratio,
                config.dropout,
            )
            for _ in range(config.n_blocks)
        )
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, segments: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch = segments.shape[0]
        tokens = self.embed(segments)
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        x = rearrange(tokens + self.roi_embedding, "b s r d -> (b s) r d")
        for block in self.blocks:
            x = block(x, self.roi_embedding)
        return rearrange(self.norm(x), "(b s) r d -> b s r d", b=batch)


class Decoder(nn.Module):
    """Pretraining decoder: tokens (b, s, r, dim) -> reconstructed segments (b, s, r, segment_frames)."""

    def __init__(self, config: BrainMAEConfig) -> None:
        super().__init__()
        self.project = CPULinear(config.dim, config.decoder_dim)
        self.roi_embedding = CPULinear(
            config.dim, config.decoder_dim, bias=False
        )  # of the encoder's embeddings
        heads = max(1, config.n_heads // 2) if config.decoder_dim % max(1, config.n_heads // 2) == 0 else 1
        self.blocks = nn.ModuleList(
            GraphBlock(config.decoder_dim, heads, "graph", config.self_loops, config.mlp_ratio, 0.0)
            for _ in range(config.decoder_blocks)
        )
        self.norm = nn.LayerNorm(config.decoder_dim)
        self.head = CPULinear(config.decoder_dim, config.segment_frames)

    def forward(self, tokens: torch.Tensor, roi_embedding: torch.Tensor) -> torch.Tensor:
        batch = tokens.shape[0]
        roi = self.roi_embedding(roi_embedding)
        x = rearrange(self.project(tokens) + roi, "b s r d -> (b s) r d")
        for block in self.blocks:
            x = block(x, roi)
        return rearrange(self.head(self.norm(x)), "(b s) r t -> b s r t", b=batch)


@MODELS.register(
    "brain_mae", help="BrainMAE: region-aware graph attention + masked autoencoding of ROI time series"
)
class BrainMAE(nn.Module):
    """Encoder (TSE) + pretraining decoder over windows of ROI time series.

    ``forward(x, mask)``: x (batch, n_times, n_rois) with n_times a multiple of ``segment_frames``, mask
    (batch, n_segments, n_rois) bool (True = hidden) or None -> reconstruction (batch, n_times, n_rois).
    ``encode(x)``: -> tokens (batch, n_segments, n_rois, dim). ``features(x)``: -> (batch, 2 * n_rois * dim), the
    mean and standard deviation over segments of each ROI's token (what the linear heads read).
    """

    Config = BrainMAEConfig
    PRESETS = PRESETS
    testing_sizes = {"n_rois": 7, "segment_frames": 4}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(
        cls, config: BrainMAEConfig, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        n_segments = 3
        x = torch.randn(batch, n_segments * config.segment_frames, config.n_rois, generator=generator)
        return x, torch.rand(batch, n_segments, config.n_rois, generator=generator) < 0.5

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, 3 * self.config.segment_frames, self.config.n_rois)  # the 3 segments of ``example``

    def __init__(self, config: BrainMAEConfig) -> None:
        super().__init__()
        if config.n_rois is None or config.segment_frames is None:
            raise ConfigError("BrainMAE: n_rois and segment_frames must be set (they come from the data).")
        if config.attention not in ATTENTIONS:
            raise ConfigError(f"BrainMAE: attention {config.attention!r} is not one of {ATTENTIONS}.")
        if config.roi_embedding not in ROI_EMBEDDINGS:
            raise ConfigError(
                f"BrainMAE: roi_embedding {config.roi_embedding!r} is not one of {ROI_EMBEDDINGS}."
            )
        if config.n_rois < 2 or config.segment_frames < 2:
            raise ConfigError(
                f"BrainMAE: need at least 2 ROIs and 2 frames per segment, found {config.n_rois}, {config.segment_frames}."
            )
        self.config = config
        self.encoder = TransientStateEncoder(config)
        self.decoder = Decoder(config)

    def segments(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_times, n_rois) -> (batch, n_segments, n_rois, segment_frames), with input checks."""
        c = self.config
        if x.ndim != 3 or x.shape[2] != c.n_rois or x.shape[1] % c.segment_frames or x.shape[1] == 0:
            raise DataError(
                f"BrainMAE expects windows of shape (batch, n_segments * {c.segment_frames} frames, {c.n_rois} ROIs), "
                f"found {tuple(x.shape)}. Use the atlas and TR the model was built for."
            )
        if not torch.isfinite(x).all():
            raise DataError("BrainMAE: input contains NaN or inf.")
        return rearrange(x, "b (s t) r -> b s r t", t=c.segment_frames)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.segments(x), mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        segments = self.segments(x)
        if mask is not None and mask.shape != segments.shape[:3]:
            raise DataError(
                f"BrainMAE: mask must be (batch, n_segments, n_rois) = {tuple(segments.shape[:3])}, found {tuple(mask.shape)}."
            )
        tokens = self.encoder(segments, mask)
        return rearrange(self.decoder(tokens, self.encoder.roi_embedding), "b s r t -> b (s t) r")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.encode(x)
        return torch.cat([tokens.mean(dim=1).flatten(1), tokens.std(dim=1, unbiased=False).flatten(1)], dim=1)

    def token_connectivity(self, x: torch.Tensor) -> torch.Tensor:
        """Correlation between ROIs of their token trajectories (segments x dims, centred over segments):
        (batch, n_times, n_rois) -> (batch, n_rois (n_rois - 1) / 2), a learned-connectivity readout."""
        tokens = self.encode(x)
        centred = tokens - tokens.mean(dim=1, keepdim=True)
        flat = rearrange(centred, "b s r d -> b r (s d)")
        flat = flat / flat.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        correlation = flat @ flat.transpose(1, 2)
        rows, cols = torch.triu_indices(self.config.n_rois, self.config.n_rois, offset=1)
        return correlation[:, rows, cols]

    @torch.no_grad()
    def attention_graph(self, x: torch.Tensor | None = None, block: int = 0) -> torch.Tensor:
        """Attention of block ``block`` averaged over heads (and over the segments of ``x`` when the attention
        depends on content): (n_rois, n_rois), rows sum to 1."""
        encoder = self.encoder
        attention = encoder.blocks[block].attention
        if attention.mode == "graph":
            tokens = torch.zeros(1, self.config.n_rois, self.config.dim)
        else:
            if x is None:
                raise ConfigError(
                    "attention_graph: this model's attention depends on the signal; pass windows x."
                )
            tokens = rearrange(
                encoder.embed(self.segments(x)) + encoder.roi_embedding, "b s r d -> (b s) r d"
            )
            for earlier in encoder.blocks[:block]:
                tokens = earlier(tokens, encoder.roi_embedding)
            tokens = encoder.blocks[block].norm1(tokens)
        return attention.weights(tokens, encoder.roi_embedding).mean(dim=(0, 1))


__all__ = ["BrainMAE", "BrainMAEConfig", "PRESETS", "sincos_embedding"]
