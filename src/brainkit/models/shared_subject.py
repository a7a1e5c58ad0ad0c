"""MindEye2's shared-subject latent around any registered decoder: a per-subject linear map into a shared space,
then one backbone for every subject (Scotti et al., "MindEye2: Shared-Subject Models Enable fMRI-To-Image With
1 Hour of Data", ICML 2024, sec. 2.1: "ridge regression" per subject onto a 4096-d shared latent, then the shared
MLP backbone; their "ridge" is a trained linear layer with weight decay, as here).

Shapes: subject ``s`` has ``n_voxels[s]`` voxels; ``(batch, n_voxels[s]) -> adapters[s] -> (batch, d_shared) ->
backbone -> (batch, *output_shape)``. The backbone is the registered model ``backbone`` (its ``backbone_preset``
and ``backbone_options``) built with ``n_voxels = d_shared``. Adapting to a new subject means a new entry of
``adapters`` (the recipe ``adaptation`` trains it with the backbone frozen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.base import build_model, model_config
from brainkit.models.cpu_linear import CPULinear
from brainkit.registry import MODELS


@dataclass(frozen=True)
class SharedSubjectConfig(Checked):
    """``n_voxels``: subject name -> voxel count (from the data); ``d_shared``: the shared latent's width (MindEye2:
    4096); ``backbone``: a registered decoder taking (batch, n_voxels) (lite_mind, mindeye_mlp, ...)."""

    n_voxels: dict[str, int] | None = None
    output_shape: tuple[int, ...] | None = bounded(None, ge=1)
    d_shared: int = bounded(1024, ge=1, le=1_000_000, fix="the shared latent's width")
    backbone: str = "mindeye_mlp"
    backbone_preset: str | None = "cpu_small"
    backbone_options: dict[str, Any] = field(default_factory=dict)


def backbone_config(config: SharedSubjectConfig) -> Any:
    """The backbone's config: its preset and options, with ``n_voxels = d_shared`` and the output shape."""
    if config.backbone == "shared_subject":
        raise ConfigError("shared_subject: the backbone cannot be shared_subject itself; name a decoder.")
    return model_config(
        config.backbone,
        config.backbone_preset,
        config.backbone_options,
        n_voxels=config.d_shared,
        output_shape=config.output_shape,
        where=f"shared_subject backbone ({config.backbone})",
    )


@MODELS.register(
    "shared_subject", help="MindEye2's shared-subject latent: per-subject Linear, then a decoder."
)
class SharedSubject(nn.Module):
    """Per-subject ``Linear(n_voxels[s] -> d_shared)`` (``adapters``, a ``ModuleDict`` keyed by subject name), then
    the shared ``backbone``.

    ``forward(x, subject)``: ``x`` (batch, n_voxels[subject]) -> (batch, *output_shape). ``subject``: the subject's
    name, or its index in ``config.n_voxels``'s order (an int or an integer tensor whose entries are all equal:
    one subject per batch, since subjects' voxel counts differ).
    """

    Config = SharedSubjectConfig
    PRESETS: dict[str, SharedSubjectConfig] = {
        # Ours: the MLP backbone of the built-in demo behind a 1024-d shared latent (MindEye2: 4096 at 15k voxels).
        "cpu_small": SharedSubjectConfig(d_shared=1024, backbone="mindeye_mlp", backbone_preset="cpu_small"),
        # MindEye2's 4,096-d shared latent (sec. 2.1) with MindEye v1's backbone at its paper size
        # (mindeye_mlp@mindeye_nsd_subj01, 892,596,992 parameters at 4,096 inputs) in place of MindEye2's own
        # MLP-Mixer backbone, which brainkit does not build; + (n_voxels[s] + 1) x 4,096 per subject.
        "mindeye2_nsd": SharedSubjectConfig(
            d_shared=4096, backbone="mindeye_mlp", backbone_preset="mindeye_nsd_subj01"
        ),
        "testing": SharedSubjectConfig(d_shared=11, backbone="mindeye_mlp", backbone_preset="testing"),
    }
    # battery interface (models/base.py): two subjects of unequal widths, the first one's input
    testing_sizes: dict[str, Any] = {"n_voxels": {"subjA": 53, "subjB": 41}, "output_shape": (3, 5)}

    def __init__(self, config: SharedSubjectConfig) -> None:
        super().__init__()
        if not config.n_voxels:
            raise ConfigError(
                "shared_subject: n_voxels must name at least one subject (it comes from the data)."
            )
        bad = {
            s: n for s, n in config.n_voxels.items() if not isinstance(n, int) or isinstance(n, bool) or n < 1
        }
        if bad:
            raise ConfigError(f"shared_subject: voxel counts must be positive integers, found {bad}.")
        self.config = config
        self.subjects = list(config.n_voxels)
        self.output_shape = tuple(config.output_shape)
        self.adapters = nn.ModuleDict({s: CPULinear(n, config.d_shared) for s, n in config.n_voxels.items()})
        self.backbone = build_model(config.backbone, backbone_config(config))

    def subject_name(self, subject: str | int | torch.Tensor) -> str:
        if isinstance(subject, torch.Tensor):
            values = subject.flatten().unique()
            if len(values) != 1:
                raise DataError(f"shared_subject: one subject per batch, found indices {values.tolist()}.")
            subject = int(values[0])
        if isinstance(subject, int):
            if not 0 <= subject < len(self.subjects):
                raise DataError(
                    f"shared_subject: subject index {subject} outside 0..{len(self.subjects) - 1}."
                )
            return self.subjects[subject]
        if subject not in self.adapters:
            raise DataError(f"shared_subject: no subject {subject!r}; this model has {self.subjects}.")
        return subject

    def shared(self, x: torch.Tensor, subject: str | int | torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels[subject]) -> (batch, d_shared): the subject's point in the shared latent."""
        name = self.subject_name(subject)
        n_voxels = self.config.n_voxels[name]
        if x.ndim != 2 or x.shape[1] != n_voxels:
            raise DataError(
                f"shared_subject expects input of shape (batch, {n_voxels}) voxels for subject {name!r}, found "
                f"{tuple(x.shape)}."
            )
        if not torch.isfinite(x).all():
            raise DataError("shared_subject: input contains NaN or inf.")
        return self.adapters[name](x)

    def forward(self, x: torch.Tensor, subject: str | int | torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels[subject]) -> (batch, *output_shape)."""
        return self.backbone(self.shared(x, subject))

    @classmethod
    def example(cls, config: SharedSubjectConfig, batch: int, generator: torch.Generator) -> tuple:
        first = next(iter(config.n_voxels))
        return torch.randn(batch, config.n_voxels[first], generator=generator), torch.zeros(
            batch, dtype=torch.long
        )

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.output_shape)


__all__ = ["SharedSubject", "SharedSubjectConfig", "backbone_config"]
