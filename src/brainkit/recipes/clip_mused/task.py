"""CLIP-MUSED's networks (one per method), its training step on the one trainer, its batches and its scoring forward pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from brainkit.data.roi_patches import PatchGrid
from brainkit.data.semantic import SampleArrays, VolumeGrid
from brainkit.evaluation.multilabel import multilabel_metrics
from brainkit.models import build_model, model_config
from brainkit.models.clip_mused import CLIPMUSED
from brainkit.objectives.semantic import SemanticLoss
from brainkit.recipes.clip_mused.settings import ATTENTION_LR_SCALE, METHODS, CLIPMUSEDRecipeConfig
from brainkit.training import Task


class SemanticTask(Task):
    """CLIP-MUSED's training step for the one trainer: each batch's volumes are scattered from the masked voxels
    (the data stay (n_samples, n_voxels) in memory), the loss is :class:`SemanticLoss` (its parts logged), and the
    token-attention parameters train at ``attention_lr_scale`` x the rate. With ``val``: ``val_map`` each period.
    Checkpoint keys: ``model.*``."""

    def __init__(
        self,
        model: CLIPMUSED,
        loss: SemanticLoss,
        data: SampleArrays,
        grid: VolumeGrid,
        val: SampleArrays | None = None,
        attention_lr_scale: float = ATTENTION_LR_SCALE,
    ) -> None:
        super().__init__()
        self.model, self.loss = model, loss
        self.data, self.grid, self.val, self.attention_lr_scale = data, grid, val, attention_lr_scale

    def n_samples(self) -> int:
        return len(self.data.values)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, ...]:
        return batch_tensors(self.data, np.asarray(rows), self.grid)

    def forward(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        x, subject, labels, high, low = batch
        out = self.model(x, subject)
        total, parts = self.loss(out.logits, labels, out.high, out.low, high, low)
        return {"loss": total, **parts}

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        scores = predict(self.model, self.val, self.grid)["scores"]
        return {"val_map": multilabel_metrics(scores, self.val.labels)["mAP"]}

    def parameter_groups(self) -> list[dict[str, Any]]:
        attention = self.model.attention_parameters()
        ids = {id(p) for p in attention}
        return [
            {"params": [p for p in self.parameters() if id(p) not in ids]},
            {"params": attention, "lr_scale": self.attention_lr_scale},
        ]


def batch_tensors(arrays: SampleArrays, rows: np.ndarray, grid: VolumeGrid) -> tuple[torch.Tensor, ...]:
    """(volumes (b, X, Y, Z), subject (b,) int64, labels (b, n_classes), high (b, d_high), low (b, d_low))."""
    return (
        grid(arrays.values[rows]),
        torch.from_numpy(arrays.subject[rows].astype(np.int64)),
        torch.from_numpy(arrays.labels[rows].astype(np.float32)),
        torch.from_numpy(arrays.high[rows]),
        torch.from_numpy(arrays.low[rows]),
    )


@torch.no_grad()
def predict(
    model: CLIPMUSED, arrays: SampleArrays, grid: VolumeGrid, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Sigmoid probabilities (n, n_classes), the high/low tokens (n, dim) and the mean token attention (2, n_tokens)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores, highs, lows, attention = [], [], [], None
    for start in range(0, len(arrays.values), batch_size):
        rows = np.arange(start, min(start + batch_size, len(arrays.values)))
        x, subject, *_ = (part.to(device) for part in batch_tensors(arrays, rows, grid))
        out = model(x, subject, return_attention=True)
        scores.append(torch.sigmoid(out.logits).cpu().numpy())
        highs.append(out.high.cpu().numpy())
        lows.append(out.low.cpu().numpy())
        if out.attention is not None:
            part = out.attention.sum(0).cpu()
            attention = part if attention is None else attention + part
    model.train(was_training)
    result = {"scores": np.concatenate(scores), "high": np.concatenate(highs), "low": np.concatenate(lows)}
    if attention is not None:
        result["attention"] = (attention / len(arrays.values)).numpy()
    return result


def build_network(
    method: str,
    config: CLIPMUSEDRecipeConfig,
    grid: VolumeGrid | PatchGrid,
    n_classes: int,
    n_subjects: int,
    seed: int,
) -> CLIPMUSED:
    """The untrained network of ``method`` for ``n_subjects`` subjects, initialised from ``seed``."""
    sizes = {"grid": list(grid.shape)} if isinstance(grid, VolumeGrid) else {"n_rois": grid.shape[0]}
    options = (
        dict(config.model) | METHODS[method][1] | sizes | {"n_classes": n_classes, "n_subjects": n_subjects}
    )
    torch.manual_seed(seed)
    return build_model("clip_mused", model_config("clip_mused", config.model_preset, options))
