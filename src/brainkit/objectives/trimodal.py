"""SIM's tri-modal loss (Dahan et al., ICLR 2025): three symmetric CLIP losses between fMRI, video and audio.

With ``L(a, b)`` the bidirectional InfoNCE of :mod:`brainkit.objectives.contrastive` at a fixed logit scale
exp(temperature) (temperature_video 1.0 -> x 2.718, temperature_audio 0.5 -> x 1.649; METHODS.md sec. 1.3)::

    loss = (0.8 L(fMRI, video) + 0.1 L(fMRI, audio) + 0.1 L(video, audio)) / 6

The weights, divisor and temperatures are fields of the model's config (``brainkit.models.sim.SIMConfig``),
read here through :class:`TriModalSettings`; the model itself holds no loss.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

from brainkit.errors import ConfigError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig


class TriModalSettings(Protocol):
    """The loss fields of a tri-modal config (``SIMConfig`` is one)."""

    loss_weights: tuple[float, float, float]  # (fMRI-video, fMRI-audio, video-audio)
    loss_divisor: float
    temperature_video: float  # logits x exp(temperature_video) for fMRI-video
    temperature_audio: float  # logits x exp(temperature_audio) for fMRI-audio and video-audio


class TriModalEmbedder(Protocol):
    """A model with one embedding per modality (SIM): ``model(x)``, ``embed_video``, ``embed_audio``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def embed_video(self, video: torch.Tensor) -> torch.Tensor: ...

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor: ...


class TriModalLoss(nn.Module):
    """SIM's weighted sum of three symmetric CLIP losses (fixed scales exp(temperature)): scalar."""

    def __init__(self, config: TriModalSettings) -> None:
        super().__init__()
        self.weights, self.divisor = config.loss_weights, config.loss_divisor
        if len(self.weights) != 3 or min(self.weights) < 0 or config.loss_divisor <= 0:
            raise ConfigError(f"SIM: loss_weights must be 3 non-negative numbers, found {self.weights}.")
        video = InfoNCEConfig(temperature=math.exp(-config.temperature_video), bidirectional=True)
        audio = InfoNCEConfig(temperature=math.exp(-config.temperature_audio), bidirectional=True)
        self.fmri_video, self.fmri_audio, self.video_audio = InfoNCE(video), InfoNCE(audio), InfoNCE(audio)

    def forward(self, fmri: torch.Tensor, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(batch, dim) embeddings of each modality, row i of all three one clip -> scalar loss."""
        parts = (self.fmri_video(fmri, video), self.fmri_audio(fmri, audio), self.video_audio(video, audio))
        return sum(w * part for w, part in zip(self.weights, parts)) / self.divisor

    def batch(
        self, model: TriModalEmbedder, x: torch.Tensor, video: torch.Tensor, audio: torch.Tensor
    ) -> torch.Tensor:
        """The loss of a batch: clips ``x``, video and audio features, embedded by ``model`` -> scalar."""
        return self(model(x), model.embed_video(video), model.embed_audio(audio))


__all__ = ["TriModalEmbedder", "TriModalLoss", "TriModalSettings"]
