"""SIM's tri-modal fit as a task of the one trainer: :class:`SIMTask` (batches of distinct contents, the
tri-modal loss, monitoring) and :func:`parameter_groups` (the encoder's learning-rate scale and layer decay)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data import movie_samples as ms
from brainkit.errors import ConfigError, DataError
from brainkit.objectives.contrastive import gather_batch
from brainkit.objectives.trimodal import TriModalLoss
from brainkit.training import Task


def parameter_groups(model, lr_scale: float = 1.0, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups of a SIM, each with its ``lr_scale`` (a multiplier of the scheduled learning rate): the
    heads (and temperatures) first, at 1; then the encoder's final norm at ``lr_scale``, block i of depth d at
    ``lr_scale * layer_decay ** (d - i)``, the patch embedding and cls token at
    ``lr_scale * layer_decay ** (d + 1)``."""
    if lr_scale <= 0 or not 0 < layer_decay <= 1:
        raise ConfigError(f"SIM fit: need pretrained_lr_scale > 0 and 0 < pretrained_layer_decay <= 1, found "
                          f"{lr_scale}, {layer_decay}.")  # fmt: skip
    encoder = model.encoder
    depth = len(encoder.blocks)
    groups: dict[float, list[nn.Parameter]] = {}
    parts = [(encoder.norm, 0), *((block, depth - i) for i, block in enumerate(encoder.blocks)),
             (encoder.patch_embedding, depth + 1)]  # fmt: skip
    for module, power in parts:
        groups.setdefault(lr_scale * layer_decay**power, []).extend(module.parameters())
    groups.setdefault(lr_scale * layer_decay ** (depth + 1), []).append(encoder.cls_token)
    inside = {id(p) for group in groups.values() for p in group}
    if len(inside) != sum(1 for _ in encoder.parameters()):
        raise ConfigError(
            "SIM fit: the encoder has parameters outside its norm, blocks, embedding and cls token."
        )
    rest = [p for p in model.parameters() if id(p) not in inside]
    return [{"params": rest, "lr_scale": 1.0}] + [{"params": v, "lr_scale": k} for k, v in groups.items()]


class SIMTask(Task):
    """The tri-modal fit of a SIM (checkpoint keys ``model.*``): batches of distinct contents
    (:class:`~brainkit.data.movie_samples.BatchDraw`), SIM's tri-modal loss, and every ``validate_every`` steps the
    loss and a 32-way fMRI -> video identification top-1 on a fixed monitoring set (curves only, nothing is
    selected on them). ``lr_scale`` / ``layer_decay`` / ``frozen_steps`` apply to the encoder (vsMAE init)."""

    def __init__(self, model: nn.Module, arrays: ms.MovieArrays, sampler: ms.BatchDraw, monitor: ms.Samples,
                 lr_scale: float = 1.0, layer_decay: float = 1.0, frozen_steps: int = 0) -> None:  # fmt: skip
        super().__init__()
        if not len(sampler):
            raise DataError("SIM fit: no training clips (check the clip split and the training subjects).")
        self.model, self.arrays, self.sampler, self.monitor = model, arrays, sampler, monitor
        self.objective = TriModalLoss(model.config)  # fixed scales: buffers only, nothing trained
        self.lr_scale, self.layer_decay, self.frozen_steps = lr_scale, layer_decay, frozen_steps

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> list[ms.Samples]:
        if batch_size < 2:
            raise ConfigError(
                f"SIM training needs training.batch_size >= 2 (contrastive), found {batch_size}."
            )
        return self.sampler(generator, batch_size)

    def load(self, rows: ms.Samples, drawn: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.arrays.clips(rows), *self.arrays.features(rows))

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.objective.batch(self.model, *batch)

    def parameter_groups(self) -> list[dict[str, Any]]:
        groups = parameter_groups(self.model, self.lr_scale, self.layer_decay)
        for group in groups[1:]:  # the encoder's
            group["frozen_steps"] = self.frozen_steps
        return groups

    def validate(self, group: int = 32) -> dict[str, float]:
        """Over consecutive groups of the monitoring samples; each process embeds its share of a group (the
        loss gathers the rest), so 1 and N processes give the same numbers."""
        dist = torch.distributed
        world, rank = (
            (dist.get_world_size(), dist.get_rank())
            if dist.is_available() and dist.is_initialized()
            else (1, 0)
        )
        group = min(group, len(self.monitor))
        group -= group % world
        if group < 2:
            return {}
        device, share = next(self.model.parameters()).device, group // world
        losses, hits, n = [], 0, 0
        for start in range(0, len(self.monitor) - group + 1, group):
            x, video, audio = (
                t.to(device) for t in self.load(self.monitor[start + rank * share :][:share], None)
            )
            losses.append(float(self.objective.batch(self.model, x, video, audio)))
            f = gather_batch(nn.functional.normalize(self.model(x), dim=1))
            v = gather_batch(nn.functional.normalize(self.model.embed_video(video), dim=1))
            hits += int(((f @ v.T).argmax(dim=1) == torch.arange(group, device=device)).sum())
            n += group
        return {"monitor_loss": float(np.mean(losses)), "monitor_top1": hits / n}


__all__ = ["SIMTask", "parameter_groups"]
