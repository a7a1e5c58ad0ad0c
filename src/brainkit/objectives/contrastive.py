"""CLIP-style InfoNCE between brain embeddings and stimulus embeddings, with negatives from every process.

Shapes: ``brain`` (batch, ...) and ``stimulus`` (batch, ...) are flattened to (batch, dim) and L2-normalised;
row i of both is a positive pair, every other row of the GLOBAL batch (all processes) a negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.registry import OBJECTIVES


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradients of every process and returns this process's slice.

    Every process computes the same global loss; summing their gradients then averaging parameter gradients
    over processes (DDP) gives exactly the single-process gradient of that loss.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.rank = dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[ctx.rank]


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (batch, dim) from all processes in rank order, keeping gradients; identity if alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


@dataclass(frozen=True)
class InfoNCEConfig(Checked):
    """``temperature``: logits = cosine / temperature. ``learnable``: learn log(1/temperature) (CLIP).
    ``bidirectional``: average brain->stimulus and stimulus->brain cross-entropies; otherwise only the
    stimulus->brain direction (each stimulus row picks its brain sample), as Lite-Mind's released code does."""

    temperature: float = bounded(0.07, gt=0, fix="logits = cosine / temperature")
    learnable: bool = False
    bidirectional: bool = True
    gather: bool = True


@OBJECTIVES.register("infonce")
class InfoNCE(nn.Module):
    """Contrastive loss between brain and stimulus embeddings (CLIP/InfoNCE)."""

    Config = InfoNCEConfig

    def __init__(self, config: InfoNCEConfig | None = None) -> None:
        super().__init__()
        self.config = config or InfoNCEConfig()
        if not self.config.temperature > 0:
            raise ConfigError(f"InfoNCE temperature must be > 0, found {self.config.temperature}.")
        log_scale = torch.tensor(math.log(1.0 / self.config.temperature))
        if self.config.learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, brain: torch.Tensor, stimulus: torch.Tensor) -> torch.Tensor:
        """(batch, ...) x (batch, ...) -> scalar loss."""
        if brain.shape[0] != stimulus.shape[0]:
            raise DataError(f"InfoNCE: {brain.shape[0]} brain rows but {stimulus.shape[0]} stimulus rows.")
        brain, stimulus = brain.flatten(1), stimulus.flatten(1)
        if brain.shape[1] != stimulus.shape[1]:
            raise DataError(
                f"InfoNCE: brain embedding has {brain.shape[1]} values per sample, stimulus {stimulus.shape[1]}."
            )
        if self.config.gather:
            brain, stimulus = gather_batch(brain), gather_batch(stimulus)
        # cosine similarities without materialising normalised copies of (batch, dim) embeddings (dim can be
        # 257 x 768): divide the (batch, batch) dot products by the norms instead
        brain_norm = brain.norm(dim=1).clamp_min(1e-12)
        stimulus_norm = stimulus.norm(dim=1).clamp_min(1e-12)
        scale = self.log_scale.clamp(max=math.log(1e4)).exp()
        logits = scale * (stimulus @ brain.T) / (stimulus_norm[:, None] * brain_norm[None, :])
        labels = torch.arange(logits.shape[0], device=logits.device)
        loss = F.cross_entropy(logits, labels)
        if self.config.bidirectional:
            loss = 0.5 * (loss + F.cross_entropy(logits.T, labels))
        return loss


def build_objective(name: str, options: dict | None = None) -> nn.Module:
    from brainkit.config import from_dict

    cls = OBJECTIVES.get(name)
    return cls(from_dict(cls.Config, options or {}, where=f"objective {name}"))
