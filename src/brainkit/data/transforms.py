"""Transforms fitted on the training split only and saved with a run (safetensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from brainkit.checkpoint import load_tensors, save_tensors
from brainkit.errors import DataError


class Standardizer:
    """Per-feature z-scoring: ``mean_`` and ``scale_`` are learned on training samples only.

    Features with zero variance in training keep scale 1 (they become constant zeros, never NaN).
    """

    def fit(self, x: np.ndarray) -> Standardizer:
        """``x``: (n_samples, n_features) training values."""
        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0).astype(np.float32)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 1e-8, scale, 1.0).astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise DataError("Standardizer is not fitted; call fit(train_values) first.")
        if x.shape[-1] != self.mean_.shape[0]:
            raise DataError(
                f"Data has {x.shape[-1]} features, but the standardizer was fitted on {self.mean_.shape[0]}. "
                "Use the subject (voxel set) the run was trained on."
            )
        return ((x - self.mean_) / self.scale_).astype(np.float32)

    def save(self, path: str | Path) -> None:
        save_tensors(path, {"mean": torch.from_numpy(self.mean_), "scale": torch.from_numpy(self.scale_)})

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        tensors = load_tensors(path)
        self = cls()
        self.mean_, self.scale_ = tensors["mean"].numpy(), tensors["scale"].numpy()
        return self
