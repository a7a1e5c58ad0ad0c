"""Scores of an encoding model: voxel-wise correlation and the share of the noise ceiling it explains.

A voxel's accuracy is the Pearson correlation r between predicted and measured test responses; the variance it
explains is ``100 * sign(r) * r**2`` (percent, NSD's convention of signed r squared), and the share of the noise
ceiling is that divided by the voxel's noise ceiling (percent explainable variance, see
:mod:`brainkit.data.reliability`), over voxels whose ceiling is at least ``min_ceiling`` percent.
"""

from __future__ import annotations

import numpy as np

from brainkit.errors import DataError


def voxel_correlations(prediction: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Pearson r per voxel between ``prediction`` and ``actual``, both (n_samples >= 2, n_voxels); a voxel
    constant in either gets r = 0."""
    prediction = np.asarray(prediction, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if prediction.shape != actual.shape or prediction.ndim != 2 or len(prediction) < 2:
        raise DataError(
            f"voxel_correlations: predictions {prediction.shape} and responses {actual.shape} must both be "
            "(n_samples >= 2, n_voxels)."
        )
    p = prediction - prediction.mean(0)
    a = actual - actual.mean(0)
    denominator = np.sqrt((p**2).sum(0) * (a**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * a).sum(0) / denominator
    return np.where(denominator > 0, r, 0.0)


def encoding_scores(r: np.ndarray, noise_ceiling: np.ndarray | None = None, min_ceiling: float = 1.0) -> dict:
    """Summary of voxel-wise correlations ``r`` (n_voxels,): median and mean r, share of voxels with r > 0.1,
    and with ``noise_ceiling`` (percent, per voxel) the median share of it explained (percent)."""
    r = np.asarray(r, dtype=np.float64)
    scores = {
        "median_r": float(np.median(r)),
        "mean_r": float(np.mean(r)),
        "share_r_above_0.1": float(np.mean(r > 0.1)),
    }
    if noise_ceiling is not None:
        noise_ceiling = np.asarray(noise_ceiling, dtype=np.float64)
        if noise_ceiling.shape != r.shape:
            raise DataError(
                f"encoding_scores: {r.shape} correlations but {noise_ceiling.shape} noise ceilings."
            )
        keep = noise_ceiling >= min_ceiling
        if not keep.any():
            raise DataError(f"encoding_scores: no voxel has a noise ceiling >= {min_ceiling} %.")
        explained = 100 * np.sign(r) * r**2
        scores["median_share_of_ceiling"] = float(np.median(100 * explained[keep] / noise_ceiling[keep]))
        scores["median_ceiling"] = float(np.median(noise_ceiling))
    return scores
