"""Judging masked-patch reconstruction on the surface: the error over the hidden patches' cortex vertices that no
visible patch shows (patches share their border vertices), and the simple baselines a masked autoencoder must
beat.

- ``visible_mean``: every hidden vertex gets the mean of the visible cortex vertices of the same frame;
- ``neighbour_interpolation``: every hidden vertex gets the inverse-distance-weighted mean of its ``k`` nearest
  visible cortex vertices on the sphere, frame by frame (a vertex shared with a visible patch keeps its value).

Clips are (n_clips, n_frames, n_patches, n_patch_vertices); masks (n_clips, n_patches) bool, True = hidden.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from brainkit.errors import DataError


def _check(clips: np.ndarray, masks: np.ndarray, patches: np.ndarray) -> None:
    if clips.ndim != 4 or masks.shape != (clips.shape[0], clips.shape[2]) or patches.shape != clips.shape[2:]:
        raise DataError(
            f"clips (n, frames, patches, vertices), masks (n, patches) and patches (patches, vertices) must agree, "
            f"found {clips.shape}, {masks.shape}, {patches.shape}."
        )


def hidden_vertex_weight(masks: np.ndarray, vertex_weight: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """(n, patches, vertices) weight: ``vertex_weight`` (patches, vertices) at the vertices of hidden patches that
    no visible patch shows (a vertex on the border of a visible patch is seen, so it is not scored), else 0."""
    out = np.zeros((len(masks), *patches.shape), dtype=np.float32)
    for c, mask in enumerate(masks):
        seen = np.zeros(patches.max() + 1, dtype=bool)
        seen[patches[~mask].ravel()] = True
        out[c] = mask[:, None] * ~seen[patches] * vertex_weight
    return out


def masked_mse(
    prediction: np.ndarray,
    clips: np.ndarray,
    masks: np.ndarray,
    vertex_weight: np.ndarray,
    patches: np.ndarray,
) -> float:
    """Mean squared error over the unseen cortex vertices of the hidden patches (every frame)."""
    weight = hidden_vertex_weight(masks, vertex_weight, patches)[:, None]
    return float((((prediction - clips) ** 2) * weight).sum() / (weight.sum() * clips.shape[1]))


def masked_correlation(
    prediction: np.ndarray,
    clips: np.ndarray,
    masks: np.ndarray,
    vertex_weight: np.ndarray,
    patches: np.ndarray,
) -> float:
    """Pearson r between prediction and truth over the unseen cortex vertices of hidden patches (clips pooled);
    NaN when either is constant there."""
    keep = np.broadcast_to(hidden_vertex_weight(masks, vertex_weight, patches)[:, None] > 0, clips.shape)
    a, b = prediction[keep], clips[keep]
    if a.std() == 0 or b.std() == 0:
        return float("nan")  # undefined for a constant prediction
    return float(np.corrcoef(a, b)[0, 1])


def vertex_correlation(
    prediction: np.ndarray,
    clips: np.ndarray,
    masks: np.ndarray,
    vertex_weight: np.ndarray,
    patches: np.ndarray,
) -> np.ndarray:
    """(n_vertices,) Pearson r per vertex of the fine sphere between prediction and truth, over the clips, frames
    and patches in which that vertex was hidden and scored (as :func:`masked_correlation` pools them); NaN where a
    vertex was scored fewer than 3 times or either side is constant there."""
    _check(clips, masks, patches)
    keep = np.broadcast_to(hidden_vertex_weight(masks, vertex_weight, patches)[:, None] > 0, clips.shape)
    vertex = np.broadcast_to(patches, clips.shape)[keep]
    a, b = prediction[keep].astype(np.float64), clips[keep].astype(np.float64)
    size = int(patches.max()) + 1
    n = np.bincount(vertex, minlength=size).astype(float)
    sums = [np.bincount(vertex, weights=w, minlength=size) for w in (a, b, a * b, a * a, b * b)]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a, mean_b = sums[0] / n, sums[1] / n
        cov = sums[2] / n - mean_a * mean_b
        var_a, var_b = sums[3] / n - mean_a**2, sums[4] / n - mean_b**2
        r = cov / np.sqrt(var_a * var_b)
    return np.where((n >= 3) & (var_a > 1e-12) & (var_b > 1e-12), r, np.nan)


def visible_mean(clips: np.ndarray, masks: np.ndarray, patches: np.ndarray, cortex: np.ndarray) -> np.ndarray:
    """Baseline: hidden patches filled with the frame's mean over visible cortex vertices."""
    _check(clips, masks, patches)
    weight = (~masks)[:, :, None] * cortex[patches][None]  # (n, p, v)
    means = (clips * weight[:, None]).sum(axis=(2, 3)) / weight.sum(axis=(1, 2))[:, None]  # (n, frames)
    return np.where(masks[:, None, :, None], means[:, :, None, None], clips).astype(np.float32)


def neighbour_interpolation(
    clips: np.ndarray,
    masks: np.ndarray,
    patches: np.ndarray,
    cortex: np.ndarray,
    unit: np.ndarray,
    k: int = 6,
) -> np.ndarray:
    """Baseline: each hidden vertex = inverse-distance-weighted mean of its ``k`` nearest visible cortex
    vertices (``unit``: the sphere's unit vertex positions); vertices also in a visible patch keep their value."""
    _check(clips, masks, patches)
    out = clips.copy()
    n_vertices = len(unit)
    for c in range(len(clips)):
        frames = np.zeros((clips.shape[1], n_vertices), dtype=np.float64)
        frames[:, patches] = clips[c]  # shared vertices carry the same value in every patch
        seen = np.zeros(n_vertices, dtype=bool)
        seen[patches[~masks[c]].ravel()] = True
        sources = np.flatnonzero(seen & cortex)
        hidden = np.unique(patches[masks[c]].ravel())
        hidden = hidden[~seen[hidden]]
        distance, nearest = cKDTree(unit[sources]).query(unit[hidden], k=min(k, len(sources)))
        weight = 1.0 / np.maximum(distance, 1e-9)
        weight /= weight.sum(axis=1, keepdims=True)
        filled = frames.copy()
        filled[:, hidden] = (frames[:, sources[nearest]] * weight[None]).sum(axis=-1)
        out[c] = np.where(masks[c][None, :, None], filled[:, patches], clips[c])
    return out.astype(np.float32)


__all__ = ["masked_mse", "masked_correlation", "visible_mean", "neighbour_interpolation"]
