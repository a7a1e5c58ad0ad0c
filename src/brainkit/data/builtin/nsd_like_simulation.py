"""The generative model behind ``nsd_like``: cortex geometry, voxel tuning, real structured noise, trials.

Read ``nsd_like.py`` first; this module holds the pieces it composes. Everything is a pure function of its
arguments and an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from brainkit.data.packaged import package_file
from brainkit.errors import ConfigError
from brainkit.nifti import load_nifti

N_VERTICES_HEMI = 10242  # fsaverage5
REST_RUN = "datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
TRIALS_PER_SESSION = 750  # NSD: 12 runs of 62-63 trials per scan session
RUNS_PER_SESSION = 12


# --- geometry ----------------------------------------------------------------------------------------------------


@functools.cache
def fsaverage5() -> dict[str, np.ndarray]:
    """Pial and sphere coordinates of both hemispheres, (20484, 3) each (left then right), from nilearn."""
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")
    out = {}
    for kind in ("pial", "sphere"):
        parts = mesh[kind].parts
        out[kind] = np.concatenate([parts["left"].coordinates, parts["right"].coordinates]).astype(np.float64)
    return out


def _brainspace_file(relative: str) -> Path:
    return package_file("brainspace", relative, "nsd_like (its real resting-state noise)")


@functools.cache
def rest_frames() -> np.ndarray:
    """The real resting-state run on fsaverage5, z-scored per vertex over time: float32 (652, 20484).

    Medial-wall vertices (all zero in the file) stay zero.
    """
    hemis = []
    for hemi in ("lh", "rh"):
        data = np.asarray(load_nifti(_brainspace_file(REST_RUN.format(hemi=hemi))).dataobj, dtype=np.float32)
        hemis.append(data.reshape(N_VERTICES_HEMI, -1))
    series = np.concatenate(hemis).T  # (time, vertex)
    std = series.std(axis=0)
    return ((series - series.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def candidate_region(n_per_hemi: int) -> np.ndarray:
    """The ``n_per_hemi`` most posterior cortical vertices (pial y) of each hemisphere: sorted vertex indices.

    This is the "nsdgeneral-like" posterior visual region from which each subject's voxels are drawn; vertices
    of the medial wall (no signal in the resting-state run) are excluded.
    """
    pial = fsaverage5()["pial"]
    cortex = rest_frames().std(axis=0) > 0
    region = []
    for offset in (0, N_VERTICES_HEMI):
        vertices = np.arange(offset, offset + N_VERTICES_HEMI)
        vertices = vertices[cortex[vertices]]
        region.append(vertices[np.argsort(pial[vertices, 1], kind="stable")[:n_per_hemi]])
    return np.sort(np.concatenate(region))


class CorticalSmoother:
    """Gaussian smoothing over distance on the fsaverage sphere (radius 100 mm), within each hemisphere.

    ``smoother(field)`` maps a field at ``vertices`` (n, ...) to its smoothed version. Kernel rows have unit
    L2 norm, so smoothed unit-variance white noise keeps unit variance.
    """

    def __init__(self, vertices: np.ndarray, sigma_mm: float) -> None:
        sphere = fsaverage5()["sphere"][vertices]
        unit = sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
        self.blocks = []
        for hemi in (vertices < N_VERTICES_HEMI, vertices >= N_VERTICES_HEMI):
            rows = np.nonzero(hemi)[0]
            angle = np.arccos(np.clip(unit[rows] @ unit[rows].T, -1.0, 1.0))
            kernel = np.exp(-0.5 * (100.0 * angle / sigma_mm) ** 2)
            kernel[kernel < 1e-4] = 0.0
            self.blocks.append(
                (rows, (kernel / np.linalg.norm(kernel, axis=1, keepdims=True)).astype(np.float32))
            )

    def __call__(self, field: np.ndarray) -> np.ndarray:
        out = np.zeros(field.shape, dtype=np.float64)
        for rows, kernel in self.blocks:
            out[rows] = kernel @ field[rows]
        return out


def posterior_position(vertices: np.ndarray) -> np.ndarray:
    """0 at the most posterior vertex, 1 at the most anterior, by rank of pial y within each hemisphere."""
    y = fsaverage5()["pial"][vertices, 1]
    out = np.empty(len(vertices))
    for hemi in (vertices < N_VERTICES_HEMI, vertices >= N_VERTICES_HEMI):
        ranks = np.argsort(np.argsort(y[hemi], kind="stable"), kind="stable")
        out[hemi] = ranks / max(1, hemi.sum() - 1)
    return out


def pick_voxels(
    region: np.ndarray, smoother: CorticalSmoother, n_voxels: int, rng: np.random.Generator
) -> np.ndarray:
    """A subject's voxels: the ``n_voxels`` region vertices with the highest posteriority + a smooth jitter.

    Returns positions into ``region`` (sorted), split evenly between hemispheres.
    """
    score = (1.0 - posterior_position(region)) + 0.35 * smoother(rng.standard_normal(len(region)))
    left = np.nonzero(region < N_VERTICES_HEMI)[0]
    right = np.nonzero(region >= N_VERTICES_HEMI)[0]
    n_left = n_voxels // 2 + n_voxels % 2
    if n_left > len(left) or n_voxels - n_left > len(right):
        raise ConfigError(f"nsd_like: {n_voxels} voxels do not fit the {len(region)}-vertex region.")
    chosen = [
        part[np.argsort(-score[part], kind="stable")[:k]]
        for part, k in ((left, n_left), (right, n_voxels - n_left))
    ]
    return np.sort(np.concatenate(chosen))


GAINS = "low = 1 - a, high = 0.2 + 0.6 a, semantic = 0.8 a (a = 0 most posterior, 1 most anterior voxel)"


def feature_gains(a: np.ndarray) -> dict[str, np.ndarray]:
    """How strongly each voxel weighs each feature space, from its posterior position ``a`` (see GAINS).

    Low-level (retinotopic-like) features dominate posteriorly, high-level and semantic ones anteriorly.
    """
    return {"low": 1.0 - a, "high": 0.2 + 0.6 * a, "semantic": 0.8 * a}


# --- features ------------------------------------------------------------------------------------------------------


def pca_features(
    embedding: np.ndarray, train_rows: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise, then project on the top principal components, all fitted on the TRAINING rows only.

    Component j is scaled by 1 / var_j**0.25 (half-way between raw PCA scores and whitening, so leading
    dimensions dominate without drowning the rest), then all by one factor so the training rows have unit
    mean variance per component. Returns (scores (n, k), explained variance ratio of the kept components (k,)).
    """
    flat = embedding.reshape(len(embedding), -1).astype(np.float64)
    train = flat[train_rows]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    z_train = (train - mean) / std
    # eigh of the smaller Gram/covariance matrix: much faster than an SVD on a busy machine, same components.
    if z_train.shape[0] < z_train.shape[1]:
        eigvals, left = np.linalg.eigh(z_train @ z_train.T)
        eigvals, left = eigvals[::-1], left[:, ::-1]
        keep = eigvals > eigvals[0] * 1e-10
        components = (left[:, keep].T @ z_train) / np.sqrt(eigvals[keep])[:, None]
        eigvals = eigvals[keep]
    else:
        eigvals, right = np.linalg.eigh(z_train.T @ z_train)
        eigvals, components = eigvals[::-1], right[:, ::-1].T
    variance_all = np.clip(eigvals, 0, None) / len(train)
    k = min(n_components, len(components))
    variance = variance_all[:k]
    components = components[:k] * np.sign(components[:k].sum(axis=1, keepdims=True) + 1e-30)  # fixed signs
    scores = ((flat - mean) / std) @ components.T / variance**0.25
    scores /= np.sqrt((scores[train_rows] ** 2).mean())
    return scores, variance / variance_all.sum()


# --- trials --------------------------------------------------------------------------------------------------------


def trial_schedule(
    stimulus_rows: np.ndarray, n_repeats: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Show every stimulus ``n_repeats`` times in a random order, cut into NSD-like sessions, runs and trials.

    Returns (stimulus row per trial, session 1.., run 1..12, trial-in-run 1..), each shaped (n_trials,).
    """
    order = rng.permutation(np.repeat(stimulus_rows, n_repeats))
    position = np.arange(len(order))
    session = position // TRIALS_PER_SESSION + 1
    in_session = position % TRIALS_PER_SESSION
    run = in_session * RUNS_PER_SESSION // TRIALS_PER_SESSION + 1
    run_start = ((run - 1) * TRIALS_PER_SESSION + RUNS_PER_SESSION - 1) // RUNS_PER_SESSION
    return order, session, run, in_session - run_start + 1


def structured_noise(vertices: np.ndarray, n_trials: int, rng: np.random.Generator) -> np.ndarray:
    """Real spatially correlated noise: per trial, a random mix of two resting-state frames at ``vertices``.

    Returns float32 (n_trials, n_voxels) with unit variance per voxel (in expectation).
    """
    frames = rest_frames()[:, vertices]
    picks = rng.integers(len(frames), size=(n_trials, 2))
    mix = rng.standard_normal((n_trials, 2))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    return (frames[picks[:, 0]] * mix[:, :1] + frames[picks[:, 1]] * mix[:, 1:]).astype(np.float32)


def zscore_within_sessions(values: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Z-score every voxel within each session, as NSD users do with the betas."""
    out = np.empty_like(values)
    for s in np.unique(session):
        rows = session == s
        block = values[rows]
        std = block.std(axis=0)
        out[rows] = (block - block.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return out
