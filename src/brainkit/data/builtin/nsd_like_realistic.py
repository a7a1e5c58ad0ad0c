"""The ``realistic`` generative option of ``nsd_like``: non-linear voxels driven by mid-level feature maps.

The default (``linear``) option makes every voxel a linear function of three embeddings, one of them the decoding
target, so a linear decoder of that target is near the best possible by construction. Here voxels respond to
spatial feature MAPS of EfficientNet-Lite0 blocks that the decoding target (the network's pooled head output)
does not contain, through the non-linearities that encoding studies of visual cortex fit. Per layer l
(``low`` = block 4, 40 channels, stride 8; ``mid`` = block 10, 112 channels, stride 16), stimulus i, map
position p (a G x G grid over the image), channel c, voxel v::

    F_c(i, p) = (M_c(i, p) - mean_c) / sd_c                       mean, sd over training images and positions
    E_c(i, p) = max(0, F_c(i, p)) ** 2                            rectification (half-squaring)
    N_c(i, p) = E_c(i, p) / (sigma2 + mean_c' E_c'(i, p))         divisive normalisation across channels
    d_v(i)    = sum_c w_vc sum_p g_v(p) N_c(i, p)                 Gaussian receptive field x channel tuning
    r_v(i)    = d_v(i) ** n                                       compressive spatial summation (n = 0.5)

``sigma2`` is the median of the normalisation pool over training images and positions (semi-saturation);
``g_v`` is a 2-D Gaussian (unit sum over the grid) centred at ``c_v = Phi(z_v)`` (a smooth cortical field, so
neighbouring voxels see neighbouring places) with sigma ``s_v = (0.04 + 0.16 a_v) exp(0.2 z'_v)`` image widths
(receptive fields grow along the hierarchy); ``w_v = softmax(kappa u_v)`` over channels (``u`` smooth on the
cortex, kappa 2: every voxel prefers a few channels). Each layer's r_v is z-scored over training images and the
voxel mixes them, ``x_v = (1 - 0.8 a_v) r_low + (0.2 + 0.8 a_v) r_mid``, z-scored again; ``a_v`` is the voxel's
posterior-to-anterior position (0 to 1). The noise (white + real resting-state frames) is the default option's;
the median SNR is set from the requested noise ceiling (:func:`snr_for_noise_ceiling`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr

from brainkit.errors import ConfigError

ROLES = ("low", "mid")
LAYER_BLOCKS = {
    "low": 4,
    "mid": 10,
}  # EfficientNet-Lite0 block indices (0-15): end of the stride-8 and -16 stages
GRID = (
    12  # map positions per side (block 10 is 12 x 12 at 192 px; block 4's 24 x 24 map is pooled to 12 x 12)
)
EXPONENT = 0.5  # compressive spatial summation (Kay et al. 2013 fit exponents ~0.2-0.6 across V1-hV4)
TUNING_SHARPNESS = 2.0  # kappa of the channel softmax
SIZE_RANGE = (0.04, 0.16)  # pRF sigma = (0.04 + 0.16 a) image widths, times exp(0.2 z)
SIZE_JITTER = 0.2
RETINOTOPY_MM = 15.0  # smoothing of the pRF-centre fields over the cortex
GAINS = "low = 1 - 0.8 a, mid = 0.2 + 0.8 a (a = 0 most posterior, 1 most anterior voxel)"


def default_features(image_size: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The two feature maps behind the realistic option (both from EfficientNet-Lite0, at the stimulus size)."""
    grid = min(GRID, image_size // 16)
    return {
        role: ("efficientnet_lite0_early", {"image_size": image_size, "block": block, "grid": grid})
        for role, block in LAYER_BLOCKS.items()
    }


def layer_gains(a: np.ndarray) -> dict[str, np.ndarray]:
    """How much each voxel weighs each layer, from its posterior position ``a`` (see GAINS)."""
    return {"low": 1.0 - 0.8 * a, "mid": 0.2 + 0.8 * a}


def snr_for_noise_ceiling(percent: float, n_average: int) -> float:
    """The single-trial SNR (signal std / noise std) whose NSD noise ceiling for ``n_average``-trial averages is
    ``percent``: NC = 100 snr^2 / (snr^2 + 1 / n)  =>  snr = sqrt(nc / (n (1 - nc))), nc = percent / 100.

    The ceiling is monotonic in the SNR, so a voxel population whose median SNR is this value has this median
    ceiling (up to the sampling error of measuring it from a finite test set).
    """
    if not 0.0 < percent < 100.0:
        raise ConfigError(f"nsd_like: noise_ceiling must be between 0 and 100 (percent), found {percent!r}.")
    if not isinstance(n_average, int) or n_average < 1:
        raise ConfigError(f"nsd_like: n_average must be a positive int, found {n_average!r}.")
    nc = percent / 100.0
    return float(np.sqrt(nc / (n_average * (1.0 - nc))))


def normalised_maps(maps: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Encoder maps (n, positions, channels) -> N (same shape, float32): standardise, half-square, normalise.

    Every statistic (channel mean and sd, the semi-saturation ``sigma2``) comes from the training rows only.
    """
    maps = np.asarray(maps, dtype=np.float32)
    train = maps[train_rows]
    mean, std = train.mean(axis=(0, 1)), train.std(axis=(0, 1))
    energy = np.maximum((maps - mean) / np.where(std > 0, std, 1.0), 0.0) ** 2
    pool = energy.mean(axis=2, keepdims=True)
    sigma2 = float(np.median(pool[train_rows]))
    return (energy / (sigma2 + pool)).astype(np.float32)


def receptive_fields(centres: np.ndarray, sizes: np.ndarray, grid: int) -> np.ndarray:
    """2-D Gaussian pooling weights (n_voxels, grid * grid), raster order, each row summing to 1.

    ``centres`` (n_voxels, 2) are (column, row) in image widths (0 to 1), ``sizes`` (n_voxels,) sigmas in image
    widths; grid cell k covers [k / grid, (k + 1) / grid).
    """
    cells = (np.arange(grid) + 0.5) / grid
    rows, cols = np.meshgrid(cells, cells, indexing="ij")
    d2 = (cols.ravel()[None] - centres[:, :1]) ** 2 + (rows.ravel()[None] - centres[:, 1:]) ** 2
    weights = np.exp(-0.5 * d2 / sizes[:, None] ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def channel_tuning(fields: np.ndarray) -> np.ndarray:
    """Smooth cortical fields (n_voxels, n_channels) -> non-negative tuning weights, each row summing to 1."""
    logits = TUNING_SHARPNESS * fields
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def layer_responses(
    normalised: np.ndarray, fields: np.ndarray, tuning: np.ndarray, chunk: int = 256
) -> np.ndarray:
    """r_v(i) = (sum_c w_vc sum_p g_v(p) N_c(i, p)) ** EXPONENT: (n, positions, channels) -> (n, n_voxels).

    ``fields`` (n_voxels, positions) and ``tuning`` (n_voxels, channels) as made by :func:`receptive_fields` and
    :func:`channel_tuning`; voxels go in chunks so memory stays at n * positions * chunk floats.
    """
    n, n_positions, _ = normalised.shape
    out = np.empty((n, len(fields)), dtype=np.float64)
    for start in range(0, len(fields), chunk):
        stop = start + chunk
        tuned = normalised.reshape(n * n_positions, -1) @ tuning[start:stop].T  # (n * positions, chunk)
        drive = np.einsum("npv,vp->nv", tuned.reshape(n, n_positions, -1), fields[start:stop])
        out[:, start:stop] = np.maximum(drive, 0.0) ** EXPONENT
    return out


def voxel_signals(
    maps: dict[str, np.ndarray],
    train_rows: np.ndarray,
    a: np.ndarray,
    draw_field: Callable[[str, int], np.ndarray],
) -> np.ndarray:
    """Noiseless responses x (n_stimuli, n_voxels), zero mean and unit variance over the training rows.

    Parameters
    ----------
    maps : dict role -> float array (n_stimuli, grid * grid, channels)
        The encoder maps of :func:`default_features` (or any maps of that layout).
    train_rows : int array
        Rows of the training stimuli (every statistic is fitted on them).
    a : float array (n_voxels,)
        Posterior-to-anterior position of each voxel.
    draw_field : callable (what, n_columns) -> (n_voxels, n_columns)
        Smooth unit-variance cortical fields at the voxels: ``"centre"`` fields (2 columns) are smoothed over
        RETINOTOPY_MM, the others (``"size"``, ``"tuning:<role>"``) like the default option's tuning.
    """
    centres = ndtr(draw_field("centre", 2))  # uniform over the image, smooth over the cortex
    sizes = (SIZE_RANGE[0] + SIZE_RANGE[1] * a) * np.exp(SIZE_JITTER * draw_field("size", 1)[:, 0])
    gains = layer_gains(a)
    signal = np.zeros((len(next(iter(maps.values()))), len(a)))
    for role in ROLES:
        n_positions, n_channels = maps[role].shape[1:]
        grid = int(round(np.sqrt(n_positions)))
        if grid * grid != n_positions:
            raise ConfigError(
                f"nsd_like realistic: the {role!r} features have {n_positions} positions, expected a square "
                "grid (an encoder with output (grid * grid, channels), e.g. efficientnet_lite0_early)."
            )
        fields = receptive_fields(centres, sizes, grid)
        tuning = channel_tuning(draw_field(f"tuning:{role}", n_channels))
        response = layer_responses(normalised_maps(maps[role], train_rows), fields, tuning)
        response -= response[train_rows].mean(axis=0)
        response /= np.maximum(response[train_rows].std(axis=0), 1e-12)
        signal += gains[role] * response
    signal -= signal[train_rows].mean(axis=0)
    signal /= np.maximum(signal[train_rows].std(axis=0), 1e-12)
    return signal


def describe(features: dict[str, Any]) -> dict[str, str]:
    """The realistic option's model in words, for ``dataset.info["generative_model"]``."""
    return {
        "features": "feature maps the pooled decoding target does not contain: "
        + "; ".join(f"{role} = {name} {dict(opts)}" for role, (name, opts) in features.items()),
        "nonlinearity": "F = per-channel z-score (training images); E = max(0, F)^2; N_c = E_c / (sigma2 + "
        f"mean_c' E_c'), sigma2 = median pool; r = (sum_c w_c sum_p g(p) N_c(p))^{EXPONENT}",
        "receptive_fields": "2-D Gaussian over the grid, centre Phi(smooth field) (smoothed over "
        f"{RETINOTOPY_MM} mm), sigma ({SIZE_RANGE[0]} + {SIZE_RANGE[1]} a) exp({SIZE_JITTER} z) image widths",
        "tuning": f"w = softmax({TUNING_SHARPNESS} u) over channels, u shared/subject mix smoothed on the cortex",
        "gains": GAINS,
    }
