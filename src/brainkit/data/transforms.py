"""Transforms fitted on the training split only and saved with a run (safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import load_tensors, save_tensors
from brainkit.data.disk_rows import DiskRows, Standardized, row_blocks
from brainkit.errors import DataError


class Standardizer:
    """Per-feature z-scoring: ``mean_`` and ``scale_`` are learned on training samples only.

    Features with zero variance in training keep scale 1 (they become constant zeros, never NaN).
    """

    def fit(self, x: Any) -> Standardizer:
        """``x``: (n_samples, n_features) training values, an array or rows on disk
        (:class:`~brainkit.data.disk_rows.DiskRows`), read in the same blocks either way (float64 sums), so
        both give the same statistics bit for bit."""
        if len(x) == 0:
            raise DataError("Standardizer.fit: no training samples.")
        total = np.zeros(x.shape[1], dtype=np.float64)
        for _, block in row_blocks(x):
            total += block.sum(axis=0, dtype=np.float64)
        mean = total / len(x)
        squares = np.zeros_like(total)
        for _, block in row_blocks(x):
            squares += np.square(block - mean).sum(axis=0)
        scale = np.sqrt(squares / len(x))
        self.mean_ = mean.astype(np.float32)
        self.scale_ = np.where(scale > 1e-8, scale, 1.0).astype(np.float32)
        return self

    def transform(self, x: Any) -> Any:
        """``x`` z-scored: an array for an array, :class:`~brainkit.data.disk_rows.Standardized` (z-scored as
        each block is read) for rows on disk."""
        if not hasattr(self, "mean_"):
            raise DataError("Standardizer is not fitted; call fit(train_values) first.")
        if x.shape[-1] != self.mean_.shape[0]:
            raise DataError(
                f"Data has {x.shape[-1]} features, but the standardizer was fitted on {self.mean_.shape[0]}. "
                "Use the subject (voxel set) the run was trained on."
            )
        if isinstance(x, DiskRows):
            return Standardized(x, self)
        return ((x - self.mean_) / self.scale_).astype(np.float32)

    def save(self, path: str | Path) -> None:
        save_tensors(path, {"mean": torch.from_numpy(self.mean_), "scale": torch.from_numpy(self.scale_)})

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        tensors = load_tensors(path)
        self = cls()
        self.mean_, self.scale_ = tensors["mean"].numpy(), tensors["scale"].numpy()
        return self


def roi_patches(values: np.ndarray, roi_labels: np.ndarray, roi_size: int) -> np.ndarray:
    """ROI patches for CLIP-MUSED's NSD variant: each ROI's voxels resampled to ``roi_size`` values.

    ``values`` (n_samples, n_voxels), ``roi_labels`` (n_voxels,) integer ROI of each voxel (values < 1: no ROI).
    ROIs are taken in increasing label order; within an ROI, voxels keep their order and are linearly
    interpolated onto ``roi_size`` evenly spaced positions, so subjects with different voxel counts give patches
    of one shape. Returns float32 (n_samples, n_rois, roi_size).
    """
    values, roi_labels = np.asarray(values, dtype=np.float32), np.asarray(roi_labels)
    if values.ndim != 2 or roi_labels.shape != (values.shape[1],):
        raise DataError(
            f"roi_patches: values {values.shape} must be (n_samples, n_voxels) and roi_labels ({values.shape[-1]},), "
            f"found roi_labels {roi_labels.shape}."
        )
    if roi_size < 1:
        raise DataError(f"roi_patches: roi_size must be >= 1, found {roi_size}.")
    rois = np.unique(roi_labels[roi_labels >= 1])
    if len(rois) == 0:
        raise DataError("roi_patches: no voxel has an ROI label >= 1.")
    out = np.empty((len(values), len(rois), roi_size), dtype=np.float32)
    target = np.linspace(0.0, 1.0, roi_size)
    for index, roi in enumerate(rois):
        block = values[:, roi_labels == roi]
        source = np.linspace(0.0, 1.0, block.shape[1]) if block.shape[1] > 1 else np.zeros(1)
        out[:, index] = np.stack([np.interp(target, source, row) for row in block])
    return out
