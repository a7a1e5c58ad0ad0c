"""SIM's tri-modal contrastive model (Dahan et al., ICLR 2025): a SiT fMRI encoder and fMRI, video and audio
projection heads into one 384-d space, trained with three CLIP losses weighted 0.8 / 0.1 / 0.1.

Read top to bottom: config and presets, the projection head, the logit scales, the model (its loss is
:mod:`brainkit.objectives.trimodal`). Facts from METHODS.md sec. 1.3:
- heads (``Wrapper``): Linear(in -> 384) -> GELU -> Linear(384 -> 384) -> dropout -> + the first Linear's output
  -> LayerNorm; fMRI 192 -> 384, video 768 -> 384 (VideoMAE features), audio 768 -> 384 (wav2vec2);
- fMRI embedding (``avg_fmri: post_proj``): every patch token (cls dropped) is projected, then mean-pooled;
- loss (``clip-openai``): cosine logits x exp(temperature), a fixed scalar (temperature_video 1.0 -> x 2.718,
  temperature_audio 0.5 -> x 1.649), symmetric cross-entropy; total = (0.8 L(fMRI, video) + 0.1 L(fMRI, audio)
  + 0.1 L(video, audio)) / 6, negatives gathered across processes;
- the fMRI encoder starts from vsMAE weights (:meth:`SIM.init_encoder`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from brainkit.config import Checked, bounded, choice
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.sit import PRESETS as SIT_PRESETS
from brainkit.models.sit import SiT, SiTConfig, check_clips, clip_example
from brainkit.registry import MODELS

# "none": SIM's model (one encoder for every subject); "vertex_affine": a subject's own input alignment in front of
# it (:class:`VertexAffine`), what new-subject adaptation trains (recipes/sim/adaptation.py). Not SIM's.
ALIGNMENTS = ("none", "vertex_affine")


@dataclass(frozen=True)
class SIMConfig(Checked):
    """Tri-modal model. ``video_dim`` / ``audio_dim`` come from the stimulus encoders (768 for VideoMAE ViT-B
    and wav2vec2 base). Bounds are checked when the config is built."""

    encoder: SiTConfig = field(default_factory=lambda: SIT_PRESETS["sim"])
    video_dim: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the video encoder")
    audio_dim: int | None = bounded(None, ge=1, le=1_000_000, fix="set by the audio encoder")
    embedding_dim: int = bounded(384, ge=1, le=65_536)  # clip_embedding_dimension [SIM config]
    dropout: float = bounded(0.0, ge=0, lt=1)  # the heads' dropout; not in METHODS.md (our choice)
    # (fMRI-video, fMRI-audio, video-audio) [SIM]
    loss_weights: tuple[float, float, float] = bounded((0.8, 0.1, 0.1), ge=0, fix="a non-negative weight")
    # tools/train_fmri_clip_ddp.py divides the weighted sum by 6 [SIM]
    loss_divisor: float = bounded(6.0, gt=0)
    # logits x exp(1.0) [SIM config]
    temperature_video: float = bounded(1.0, ge=-10, le=10, fix="the logits are scaled by exp(this)")
    # logits x exp(0.5) [SIM config]; also used for video-audio (our choice)
    temperature_audio: float = bounded(0.5, ge=-10, le=10, fix="the logits are scaled by exp(this)")
    # a per-subject alignment of the input before the encoder (ALIGNMENTS); "none" (the default): SIM's model,
    # bit-identical to a SIM built before this option existed
    alignment: str = choice("none", ALIGNMENTS, fix="none: SIM's model; vertex_affine: x * scale + shift")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.loss_weights) != 3 or sum(self.loss_weights) <= 0:
            raise ConfigError(
                f"SIM loss_weights={list(self.loss_weights)} must be 3 non-negative weights (fMRI-video, "
                "fMRI-audio, video-audio), not all 0."
            )
        if not self.encoder.class_token:
            raise ConfigError(
                "SIM's fMRI encoder has a cls token (fMRIEncoder); set encoder class_token=True."
            )


PRESETS: dict[str, SIMConfig] = {
    # SIM: SiT-tiny at ico6/ico3 + heads 192/768/768 -> 384: 6,468,672 trainable (METHODS.md: ~6.47 M).
    "sim": SIMConfig(video_dim=768, audio_dim=768),
    "testing": SIMConfig(encoder=SIT_PRESETS["testing"], embedding_dim=8),
}


class ProjectionHead(nn.Module):
    """(..., in_dim) -> (..., out_dim): LayerNorm(p + dropout(Linear(GELU(p)))), p = Linear(x) (SIM's Wrapper)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.project = CPULinear(in_dim, out_dim)
        self.act = nn.GELU()
        self.fc = CPULinear(out_dim, out_dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        return self.norm(projected + self.drop(self.fc(self.act(projected))))


class VertexAffine(nn.Module):
    """One subject's alignment of its clips: (batch, n_frames, n_patches, n_patch_vertices) -> the same, every
    patch vertex scaled and shifted (``x * scale + shift``, ``scale`` / ``shift`` (n_patches, n_patch_vertices),
    shared by the frames), the identity at initialisation. It corrects a subject's response gain and offset
    vertex by vertex in front of an encoder shared by all subjects; 2 x n_patches x n_patch_vertices parameters."""

    def __init__(self, n_patches: int, n_patch_vertices: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_patches, n_patch_vertices))
        self.shift = nn.Parameter(torch.zeros(n_patches, n_patch_vertices))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class LogitScales(nn.Module):
    """SIM's three fixed logit scales, one ``log_scale`` buffer (= the temperature) per pair: ``fmri_video``,
    ``fmri_audio``, ``video_audio``. They are state only: the loss
    (:class:`brainkit.objectives.trimodal.TriModalLoss`) builds the same scales from the same config. They stay in the model so that its checkpoints keep their keys
    (``objective.<pair>.log_scale``): old checkpoints load, new ones load in older brainkit."""

    def __init__(self, config: SIMConfig) -> None:
        super().__init__()
        temperatures = (config.temperature_video, config.temperature_audio, config.temperature_audio)
        for pair, temperature in zip(("fmri_video", "fmri_audio", "video_audio"), temperatures):
            holder = nn.Module()
            # the same expression as InfoNCE's buffer, so the stored values are identical
            holder.register_buffer("log_scale", torch.tensor(math.log(1.0 / math.exp(-temperature))))
            self.add_module(pair, holder)


@MODELS.register(
    "sim", help="SIM: SiT fMRI encoder + fMRI/video/audio heads, tri-modal CLIP (surface movies)"
)
class SIM(nn.Module):
    """``forward(x)``: clips (batch, n_frames, n_patches, n_patch_vertices) -> fMRI embeddings (batch, 384).
    ``embed_video(v)`` (batch, video_dim) and ``embed_audio(a)`` (batch, audio_dim) -> (batch, 384).
    Its loss is :class:`brainkit.objectives.trimodal.TriModalLoss` (``TriModalLoss(config).batch(model, x, v, a)``)."""

    Config = SIMConfig
    PRESETS = PRESETS
    testing_sizes = {"encoder": SiT.testing_sizes, "video_dim": 9, "audio_dim": 6}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: SIMConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
        return (clip_example(config.encoder, batch, generator),)

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, self.config.embedding_dim)

    def __init__(self, config: SIMConfig) -> None:
        super().__init__()
        if config.video_dim is None or config.audio_dim is None:
            raise ConfigError(
                "SIM: video_dim and audio_dim must be set (they come from the stimulus encoders)."
            )
        self.config = config
        self.encoder = SiT(config.encoder)
        self.fmri_head = ProjectionHead(config.encoder.dim, config.embedding_dim, config.dropout)
        self.video_head = ProjectionHead(config.video_dim, config.embedding_dim, config.dropout)
        self.audio_head = ProjectionHead(config.audio_dim, config.embedding_dim, config.dropout)
        self.objective = LogitScales(config)  # named ``objective`` for the checkpoints' keys
        # drawn from no generator: the other parameters of a seeded SIM are the same with or without it
        self.alignment = (
            VertexAffine(config.encoder.n_patches, config.encoder.n_patch_vertices)
            if config.alignment == "vertex_affine"
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alignment is not None:
            e = self.config.encoder
            check_clips(x, e.n_frames, e.n_patches, e.n_patch_vertices, "SIM")
            x = self.alignment(x)
        tokens = self.encoder(x)[:, 1:]  # cls dropped (SIM's CLIP model)
        return self.fmri_head(tokens).mean(dim=1)  # avg_fmri: post_proj

    def _check(self, x: torch.Tensor, dim: int, what: str) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != dim:
            raise DataError(f"SIM: {what} features must be (batch, {dim}), found {tuple(x.shape)}.")
        return x

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.video_head(self._check(video, self.config.video_dim, "video"))

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        return self.audio_head(self._check(audio, self.config.audio_dim, "audio"))

    def init_encoder(self, folder: str | Path) -> None:
        """Load a SiT checkpoint (e.g. ``checkpoints/sit_encoder`` of ``brainkit run vsmae``) into the encoder;
        :class:`CheckpointError` when its config differs from this encoder's."""
        from brainkit.models.base import load_model

        encoder, _ = load_model(folder)
        if not isinstance(encoder, SiT) or encoder.config != self.config.encoder:
            found = encoder.config if isinstance(encoder, SiT) else type(encoder).__name__
            raise CheckpointError(
                f"{folder} holds a SiT with config {found}, but this SIM's encoder is {self.config.encoder}; "
                "pretrain vsMAE with the same encoder preset and patch grid."
            )
        self.encoder.load_state_dict(encoder.state_dict())


__all__ = ["ALIGNMENTS", "SIM", "SIMConfig", "PRESETS", "ProjectionHead", "LogitScales", "VertexAffine"]
