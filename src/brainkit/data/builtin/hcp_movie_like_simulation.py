"""The generative model behind ``hcp_movie_like``: MNI brain grid, ImageNet-derived categories, maps, noise.

Read ``hcp_movie_like.py`` first; this module holds the pieces it composes. Every function is pure given its
arguments and an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from scipy import ndimage

from brainkit.data.readers.movie_volumes import crop_or_pad
from brainkit.errors import ConfigError

GAINS = (
    "with a = posterior-to-anterior rank of the voxel in the brain (0 to 1): low = max(0, 1 - a / 0.3), "
    "image = exp(-((a - 0.35) / 0.15)^2), text = 0.7 exp(-((a - 0.5) / 0.15)^2); 0 elsewhere"
)


@functools.cache
def brain_grid(resolution_mm: int, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """nilearn's MNI152 brain mask at ``resolution_mm``, cropped to its bounding box and padded to ``grid``.

    Returns (bool mask of shape ``grid``, 4 x 4 affine of that grid: voxel index -> MNI mm).
    """
    from nilearn.datasets import load_mni152_brain_mask

    image = load_mni152_brain_mask(resolution=resolution_mm)
    mask = np.asarray(image.get_fdata()) > 0
    where = np.argwhere(mask)
    low, high = where.min(0), where.max(0) + 1
    if any(h - lo > g for lo, h, g in zip(low, high, grid)):
        raise ConfigError(
            f"hcp_movie_like: the brain at {resolution_mm} mm spans {tuple(high - low)} voxels, more than the "
            f"grid {grid}; use a coarser resolution or a larger grid."
        )
    box = mask[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    padded = crop_or_pad(box, grid)
    before = np.array([(g - (h - lo)) // 2 for lo, h, g in zip(low, high, grid)])
    shift = np.eye(4)
    shift[:3, 3] = low - before  # grid index 0 sits at template index low - before
    return padded.astype(bool), np.asarray(image.affine) @ shift


def posterior_rank(mask: np.ndarray) -> np.ndarray:
    """0 at the most posterior brain voxel, 1 at the most anterior (rank of y), as a volume (0 outside)."""
    y = np.argwhere(mask)[:, 1].astype(float)
    ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable") / max(1, len(y) - 1)
    out = np.zeros(mask.shape)
    out[mask] = ranks
    return out


def gain_volumes(mask: np.ndarray) -> dict[str, np.ndarray]:
    """How strongly each voxel responds to each feature space (see GAINS): role -> volume."""
    a = posterior_rank(mask)
    gains = {
        "low": np.clip(1 - a / 0.3, 0, 1),
        "image": np.exp(-(((a - 0.35) / 0.15) ** 2)),
        "text": 0.7 * np.exp(-(((a - 0.5) / 0.15) ** 2)),
    }
    return {role: np.where(mask, gain, 0.0) for role, gain in gains.items()}


# --- categories ---------------------------------------------------------------------------------------------------


def imagenet_clusters(classifier_weight: np.ndarray, n_clusters: int) -> np.ndarray:
    """Group the 1,000 ImageNet classes by k-means of their (L2-normalised) classifier weight vectors.

    Classes the network tells apart with similar weights (dog breeds, screws and nails) fall together. The
    grouping is a property of the network, not of a dataset seed: k-means runs with a fixed seed (0), and is
    memoised per process. Returns the cluster of each class (1000,).
    """
    digest = hashlib.sha1(np.ascontiguousarray(classifier_weight).tobytes()).hexdigest()
    if (digest, n_clusters) not in _CLUSTERS:
        from sklearn.cluster import KMeans

        unit = classifier_weight / np.linalg.norm(classifier_weight, axis=1, keepdims=True)
        labels = KMeans(n_clusters, n_init=2, random_state=0).fit(unit.astype(np.float64)).labels_
        _CLUSTERS[(digest, n_clusters)] = labels
    return _CLUSTERS[(digest, n_clusters)]


_CLUSTERS: dict[tuple[str, int], np.ndarray] = {}


def category_labels(
    probabilities: np.ndarray,
    clusters: np.ndarray,
    threshold: float,
    train_rows: np.ndarray,
    min_fraction: float,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multi-label targets: category c is present when the network gives its classes >= ``threshold`` in total.

    Categories present in fewer than ``min_fraction`` of the TRAINING stimuli are dropped. Returns
    (uint8 labels (n_stimuli, n_kept), kept cluster ids, names "k07: ImageNet 111, 110, 107" listing the
    cluster's three most probable classes over the training stimuli).
    """
    n_clusters = int(clusters.max()) + 1
    membership = np.zeros((probabilities.shape[1], n_clusters))
    membership[np.arange(len(clusters)), clusters] = 1.0
    present = probabilities @ membership >= threshold
    kept = np.nonzero(present[train_rows].mean(0) >= min_fraction)[0]
    mean_probability = probabilities[train_rows].mean(0)
    names = []
    for cluster in kept:
        members = np.nonzero(clusters == cluster)[0]
        top = members[np.argsort(-mean_probability[members], kind="stable")[:3]]
        names.append(f"k{cluster:02d}: ImageNet {', '.join(map(str, top))}")
    return present[:, kept].astype(np.uint8), kept, names


# --- maps and noise -----------------------------------------------------------------------------------------------


def smooth_fields(n: int, mask: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` white-noise volumes smoothed by a Gaussian (sigma in voxels), unit variance over the mask."""
    fields = ndimage.gaussian_filter(rng.standard_normal((n, *mask.shape)), sigma=(0, sigma, sigma, sigma))
    return fields / fields[:, mask].std(axis=1)[:, None, None, None]


def subject_maps(maps: np.ndarray, displacement: np.ndarray, sigma: float, mask: np.ndarray) -> np.ndarray:
    """A subject's anatomy: shift each (k, X, Y, Z) map by ``displacement`` voxels (linear interpolation, the
    residual misregistration after MNI normalisation), blur by ``sigma`` voxels, keep the mask: (k, n_voxels)."""
    shifted = ndimage.shift(maps, (0, *displacement), order=1, mode="constant")
    blurred = ndimage.gaussian_filter(shifted, sigma=(0, sigma, sigma, sigma)) if sigma > 0 else shifted
    return blurred[:, mask]


def smooth_noise(n_samples: int, mask: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated Gaussian noise: (n_samples, n_voxels) float32, unit variance per voxel (expected)."""
    out = np.empty((n_samples, int(mask.sum())), dtype=np.float32)
    for start in range(0, n_samples, 64):
        stop = min(start + 64, n_samples)
        white = rng.standard_normal((stop - start, *mask.shape), dtype=np.float32)
        blurred = ndimage.gaussian_filter(white, sigma=(0, sigma, sigma, sigma)) if sigma > 0 else white
        out[start:stop] = blurred[:, mask]
    # the variance a Gaussian kernel leaves: sum of its squared weights (per axis, product over axes)
    if sigma > 0:
        radius = int(4 * sigma + 0.5)
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        kernel /= kernel.sum()
        out /= np.sqrt((kernel**2).sum() ** 3)
    return out
