"""Data reliability: noise ceilings from repeated trials, with the formula of the Natural Scenes Dataset
(Allen et al. 2022).

For each voxel, with betas z-scored (unit total variance), the noise variance is the mean over stimuli of the
variance across a stimulus's repeats (ddof=1), and the signal variance is what is left:

    ncsnr = sqrt(max(0, 1 - noise_var)) / sqrt(noise_var)
    NC    = 100 * ncsnr**2 / (ncsnr**2 + 1 / n_average)     # percent of variance explainable

``n_average`` is how many trials are averaged in the data a model is scored on (3 for NSD's test set).
"""

from __future__ import annotations

import numpy as np

from brainkit.data.schema import BrainSamples
from brainkit.errors import DataError


def ncsnr(trials: np.ndarray, zscore: bool = True) -> np.ndarray:
    """Noise-ceiling signal-to-noise ratio per voxel.

    Parameters
    ----------
    trials : float array, shape (n_stimuli, n_repeats, n_voxels)
        Single-trial responses, each stimulus seen ``n_repeats`` >= 2 times.
    zscore : bool
        Z-score each voxel over all trials first (as NSD does per session). With False the caller's betas must
        already have unit variance.

    Returns
    -------
    float array, shape (n_voxels,)
    """
    trials = np.asarray(trials, dtype=np.float64)
    if trials.ndim != 3 or trials.shape[1] < 2 or trials.shape[0] < 2:
        raise DataError(
            f"noise ceiling: trials have shape {trials.shape}, expected (n_stimuli >= 2, n_repeats >= 2, n_voxels)."
        )
    if not np.isfinite(trials).all():
        raise DataError("noise ceiling: trials contain NaN or inf; drop those voxels or trials first.")
    if zscore:
        flat = trials.reshape(-1, trials.shape[-1])
        std = flat.std(axis=0)
        trials = (trials - flat.mean(axis=0)) / np.where(std > 0, std, 1.0)
    noise_var = trials.var(axis=1, ddof=1).mean(axis=0)
    signal_var = np.clip(1.0 - noise_var, 0.0, None)
    return np.sqrt(signal_var) / np.sqrt(np.maximum(noise_var, 1e-12))


def noise_ceiling(trials: np.ndarray, n_average: int = 1, zscore: bool = True) -> np.ndarray:
    """NSD noise ceiling (percent) per voxel for data averaged over ``n_average`` trials.

    Parameters
    ----------
    trials : float array, shape (n_stimuli, n_repeats, n_voxels)
    n_average : int
        Trials averaged in the data being modelled (1 for single trials, 3 for NSD's averaged test set).
    zscore : bool
        See :func:`ncsnr`.

    Returns
    -------
    float array, shape (n_voxels,), in [0, 100]
    """
    if not isinstance(n_average, int | np.integer) or n_average < 1:
        raise DataError(f"noise ceiling: n_average must be a positive int, found {n_average!r}.")
    snr2 = ncsnr(trials, zscore=zscore) ** 2
    return 100.0 * snr2 / (snr2 + 1.0 / n_average)


def trials_by_stimulus(samples: BrainSamples, n_repeats: int | None = None) -> np.ndarray:
    """Stack single trials of stimuli seen ``n_repeats`` times: (n_stimuli, n_repeats, n_voxels).

    With ``n_repeats=None`` the most common repeat count is used; stimuli seen fewer times are left out and
    stimuli seen more often keep their first ``n_repeats`` trials.
    """
    if (samples.n_repeats != 1).any():
        raise DataError(
            f"noise ceiling: samples of {samples.subject} hold averaged rows (n_repeats > 1); pass single trials."
        )
    shown = samples.stimulus_ids != ""
    ids, inverse, counts = np.unique(samples.stimulus_ids[shown], return_inverse=True, return_counts=True)
    if n_repeats is None:
        n_repeats = int(np.bincount(counts).argmax()) if len(counts) else 0
    keep = np.nonzero(counts >= n_repeats)[0]
    if n_repeats < 2 or len(keep) < 2:
        raise DataError(
            f"noise ceiling: need >= 2 stimuli seen >= 2 times; {samples.subject} has {len(keep)} stimuli seen "
            f"{n_repeats} times."
        )
    rows = np.nonzero(shown)[0][np.argsort(inverse, kind="stable")]  # trials grouped by stimulus, in order
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.empty((len(keep), n_repeats, samples.n_features), dtype=np.float64)
    for slot, stimulus in enumerate(keep):
        out[slot] = samples.values[rows[starts[stimulus] : starts[stimulus] + n_repeats]]
    return out


def noise_ceiling_of_samples(samples: BrainSamples, n_average: int = 1, zscore: bool = True) -> np.ndarray:
    """:func:`noise_ceiling` of a subject's single trials (a ``BrainSamples`` with repeated stimuli)."""
    return noise_ceiling(trials_by_stimulus(samples), n_average=n_average, zscore=zscore)
