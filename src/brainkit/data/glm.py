"""Single-trial response estimates (betas) from one 4-D fMRI run and its events table.

The design matrix is nilearn's (:func:`nilearn.glm.first_level.make_first_level_design_matrix`: the events
convolved with the HRF at ``oversampling`` x the TR, sampled at the frame times, plus drift and confound
columns); the fit is ordinary least squares through the design's pseudo-inverse, the estimate nilearn's
``FirstLevelModel(noise_model="ols")`` returns (tests/test_glm.py checks they agree). OLS rather than
nilearn's default AR(1) prewhitening because single-trial betas are used as features, not tested: prewhitening
changes the standard errors far more than the betas, costs one fit per voxel group, and the single-trial
literature (Mumford et al. 2012, NeuroImage 59:2636; GLMsingle, Prince et al. 2022) estimates them by OLS.

Two estimators (Mumford et al. 2012):

``"lsa"`` (least squares all)
    One model per run: one regressor per trial, all fitted at once. Unbiased, but the betas of trials closer
    than the HRF's width are anticorrelated and noisy when the trial regressors overlap.
``"lss"`` (least squares separate)
    One model per trial: that trial's regressor, one regressor for all the other trials of interest, and the
    same nuisance columns. Less variable betas for fast designs, slightly biased towards the run's mean.

Nuisance columns, in both: one regressor per condition of ``other_events`` (responses, fixation, cues: events
that are not trials of interest), the confound columns (e.g. fMRIPrep's motion parameters), the drift
(``cosine`` high-pass at ``high_pass`` Hz, or a polynomial of ``drift_order``) and a constant. With an HRF
that has derivatives (``"glover + derivative"``), every trial gets 2-3 columns and its beta is the main one.

Shapes: a run is (X, Y, Z, T) with T volumes; a mask is (X, Y, Z) bool; the masked time series (T, V);
the betas (n_trials, V) float32, row i for row i of the events table (its order, not sorted), voxels in
``numpy.nonzero(mask)`` order. Units: percent signal change when ``scaling="psc"`` (default).
"""

from __future__ import annotations

import logging
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainkit.data.glm_inputs import MIN_ONSET, _checked, check_confounds, check_events, frame_times
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.nifti import load_nifti

logger = logging.getLogger(__name__)

ESTIMATORS = ("lsa", "lss")
HRF_MODELS = (
    "glover",
    "spm",
    "glover + derivative",
    "spm + derivative",
    "glover + derivative + dispersion",
    "spm + derivative + dispersion",
)
DRIFT_MODELS = ("cosine", "polynomial", None)
SCALINGS = ("psc", None)
_BASIS_SUFFIXES = ("", "_derivative", "_dispersion")


@dataclass(frozen=True)
class GLMConfig:
    """How single-trial betas are estimated.

    Parameters
    ----------
    estimator : "lsa" or "lss" (see the module docstring)
    hrf_model : one of :data:`HRF_MODELS` (nilearn's names); "glover" by default
    drift_model : "cosine" (a discrete cosine high-pass filter), "polynomial" or None (constant only)
    high_pass : float
        Cut-off of the cosine drift in Hz (0.01 Hz = 100 s, nilearn's default; SPM uses 1/128).
    drift_order : int
        Degree of the polynomial drift.
    slice_time_ref : float
        Where in the TR each volume's time is, 0 (start, BIDS's onset reference) to 1; 0.5 for slice-time
        corrected data referenced to the middle of the acquisition.
    scaling : "psc" or None
        "psc": each voxel's time series becomes percent signal change, ``100 (y / mean(y) - 1)``, before the
        fit (nilearn's ``signal_scaling=0``); None fits the values as they are.
    oversampling : int
        Temporal oversampling of the HRF convolution (nilearn's default 50).
    """

    estimator: str = "lsa"
    hrf_model: str = "glover"
    drift_model: str | None = "cosine"
    high_pass: float = 0.01
    drift_order: int = 1
    slice_time_ref: float = 0.0
    scaling: str | None = "psc"
    oversampling: int = 50

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("estimator", self.estimator, ESTIMATORS),
            ("hrf_model", self.hrf_model, HRF_MODELS),
            ("drift_model", self.drift_model, DRIFT_MODELS),
            ("scaling", self.scaling, SCALINGS),
        ):
            if value not in allowed:
                raise ConfigError(f"GLMConfig: {name} must be one of {list(allowed)}, found {value!r}.")
        if self.high_pass <= 0:
            raise ConfigError(f"GLMConfig: high_pass must be > 0 Hz, found {self.high_pass}.")
        if not 0.0 <= self.slice_time_ref <= 1.0:
            raise ConfigError(f"GLMConfig: slice_time_ref must be in [0, 1], found {self.slice_time_ref}.")
        if self.drift_order < 0 or self.oversampling < 1:
            raise ConfigError("GLMConfig: drift_order must be >= 0 and oversampling >= 1.")

    @property
    def n_basis(self) -> int:
        """Columns per trial: 1, 2 (with the time derivative) or 3 (and the dispersion derivative)."""
        return 1 + self.hrf_model.count("derivative") + self.hrf_model.count("dispersion")


def _condition_events(
    events: pd.DataFrame, other_events: pd.DataFrame | None, labels: list[str]
) -> pd.DataFrame:
    """The events nilearn convolves: the trials under ``labels`` (one per row), one condition per other
    trial_type (``other_<trial_type>``)."""
    trials = pd.DataFrame(
        {"onset": events["onset"].to_numpy(), "duration": events["duration"].to_numpy(), "trial_type": labels}
    )
    if other_events is None or len(other_events) == 0:
        return trials
    kinds = (
        other_events["trial_type"].astype(str).to_numpy()
        if "trial_type" in other_events.columns
        else np.full(len(other_events), "events")
    )
    others = pd.DataFrame(
        {
            "onset": other_events["onset"].to_numpy(),
            "duration": other_events["duration"].to_numpy(),
            "trial_type": [f"other_{kind}" for kind in kinds],
        }
    )
    return pd.concat([trials, others], ignore_index=True)


def _design_matrix(
    conditions: pd.DataFrame, n_scans: int, tr: float, config: GLMConfig, confounds: pd.DataFrame | None
) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    with (
        warnings.catch_warnings()
    ):  # BIDS allows duration 0 (an impulse), which nilearn models but warns about
        warnings.filterwarnings("ignore", message=".*null duration.*")
        return make_first_level_design_matrix(
            frame_times(n_scans, tr, config.slice_time_ref),
            conditions,
            hrf_model=config.hrf_model,
            drift_model=config.drift_model,
            high_pass=config.high_pass,
            drift_order=config.drift_order,
            add_regs=None if confounds is None else confounds.to_numpy(),
            add_reg_names=None if confounds is None else list(confounds.columns),
            oversampling=config.oversampling,
            min_onset=MIN_ONSET,
        )


def _trial_labels(n_trials: int) -> list[str]:
    return [f"trial_{i:05d}" for i in range(n_trials)]


def trial_design(
    events: pd.DataFrame,
    n_scans: int,
    tr: float,
    config: GLMConfig | None = None,
    confounds: pd.DataFrame | None = None,
    other_events: pd.DataFrame | None = None,
    source: str = "events",
) -> pd.DataFrame:
    """The LSA design matrix: (n_scans, n_columns), indexed by frame time.

    Columns: ``trial_00000`` ... (one per row of ``events``, in its order; plus ``trial_00000_derivative`` and
    ``_dispersion`` with such an HRF), ``other_<trial_type>`` for ``other_events``, the confounds (their
    names), ``drift_*`` and ``constant``. ``events`` and ``other_events`` need ``onset`` and ``duration``.
    """
    config = config or GLMConfig()
    events, other_events, confounds = _checked(events, other_events, confounds, n_scans, tr, source)
    conditions = _condition_events(events, other_events, _trial_labels(len(events)))
    return _design_matrix(conditions, n_scans, tr, config, confounds)


def _check_size(n_columns: int, n_scans: int, config: GLMConfig, source: str) -> None:
    if n_columns >= n_scans:
        hint = " Use estimator='lss'," if config.estimator == "lsa" else ""
        raise DataError(
            f"{source}: the {config.estimator.upper()} design has {n_columns} columns for {n_scans} volumes, "
            f"so the betas cannot be estimated.{hint} Use fewer confounds, a simpler HRF or a lower high_pass."
        )


def _warn_late_trials(matrix: np.ndarray, main: np.ndarray, source: str) -> None:
    peaks = np.abs(matrix[:, main]).max(axis=0)
    weak = peaks < 0.1 * np.median(peaks)
    if weak.any():
        logger.warning(
            "%s: %d trial(s) (first: row %d) barely reach the run's volumes (their response starts near the "
            "end); their betas will be noisy.",
            source,
            int(weak.sum()),
            int(np.nonzero(weak)[0][0]),
        )


def _estimators(
    events: pd.DataFrame,
    other_events: pd.DataFrame | None,
    confounds: pd.DataFrame | None,
    n_scans: int,
    tr: float,
    config: GLMConfig,
    source: str,
) -> np.ndarray:
    """The rows of the OLS estimator that give each trial's main beta: (n_trials, n_scans)."""
    n_trials, n_basis = len(events), config.n_basis
    labels = _trial_labels(n_trials)
    design = _design_matrix(_condition_events(events, other_events, labels), n_scans, tr, config, confounds)
    matrix = design.to_numpy(dtype=np.float64)
    position = {name: i for i, name in enumerate(design.columns)}
    columns = np.array(
        [[position[label + suffix] for suffix in _BASIS_SUFFIXES[:n_basis]] for label in labels]
    )
    _warn_late_trials(matrix, columns[:, 0], source)
    if config.estimator == "lsa":
        _check_size(matrix.shape[1], n_scans, config, source)
        if np.linalg.matrix_rank(matrix) < matrix.shape[1]:
            logger.warning(
                "%s: the LSA design is rank deficient; the betas are minimum-norm solutions.", source
            )
        return np.linalg.pinv(matrix)[columns[:, 0]]
    nuisance = matrix[:, np.setdiff1d(np.arange(matrix.shape[1]), columns.ravel())]
    _check_size(2 * n_basis + nuisance.shape[1], n_scans, config, source)
    rows = np.empty((n_trials, n_scans))
    if n_basis == 1:  # the other trials' regressor is the sum of theirs (convolution is linear)
        summed = matrix[:, columns[:, 0]].sum(axis=1)
        for i in range(n_trials):
            own = matrix[:, columns[i, 0]]
            rows[i] = np.linalg.pinv(np.column_stack([own, summed - own, nuisance]))[0]
        return rows
    for i in range(n_trials):  # nilearn orthogonalises derivatives per condition: build each model with it
        lss = ["lss_others"] * n_trials
        lss[i] = "lss_trial"
        design = _design_matrix(_condition_events(events, other_events, lss), n_scans, tr, config, confounds)
        rows[i] = np.linalg.pinv(design.to_numpy(dtype=np.float64))[list(design.columns).index("lss_trial")]
    return rows


def scale_to_percent(timeseries: np.ndarray, source: str = "run") -> np.ndarray:
    """``100 (y / mean(y) - 1)`` per voxel of a (T, V) time series; voxels whose mean is <= 0 become 0
    (logged: they are outside the brain or already demeaned; pass ``scaling=None`` for demeaned data)."""
    mean = timeseries.mean(axis=0, dtype=np.float64)
    valid = mean > 1e-6 * max(float(np.abs(mean).max()), 1e-12)
    if not valid.all():
        logger.warning(
            "%s: %d voxel(s) have a mean <= 0 and cannot be scaled to percent signal change; set to 0. "
            "Use a brain mask, or scaling=None for data that is already demeaned.",
            source,
            int((~valid).sum()),
        )
    out = np.zeros(timeseries.shape, dtype=np.float64)
    out[:, valid] = 100.0 * (timeseries[:, valid] / mean[valid] - 1.0)
    return out


def fit_single_trials(
    timeseries: np.ndarray,
    events: pd.DataFrame,
    tr: float,
    config: GLMConfig | None = None,
    confounds: pd.DataFrame | None = None,
    other_events: pd.DataFrame | None = None,
    source: str = "run",
) -> np.ndarray:
    """Single-trial betas of a masked run.

    Parameters
    ----------
    timeseries : float array, shape (n_scans, n_voxels)
    events : DataFrame with ``onset`` and ``duration`` (seconds), one row per trial of interest
    tr : repetition time in seconds
    config : :class:`GLMConfig` (estimator, HRF, drift, scaling)
    confounds : DataFrame, shape (n_scans, n_confounds), optional
        Nuisance regressors (fMRIPrep confound columns); n/a filled with the column mean.
    other_events : DataFrame with ``onset``, ``duration`` and optional ``trial_type``, optional
        Events that are not trials (modelled, one regressor per trial_type, and not returned).

    Returns
    -------
    float32 array, shape (n_trials, n_voxels)
        Row i is the beta of row i of ``events``.
    """
    config = config or GLMConfig()
    timeseries = np.asarray(timeseries, dtype=np.float64)
    if timeseries.ndim != 2:
        raise DataError(
            f"{source}: the time series has shape {timeseries.shape}, expected (n_scans, n_voxels)."
        )
    if not np.isfinite(timeseries).all():
        raise DataError(f"{source}: the time series holds NaN or inf values; mask those voxels out.")
    if tr <= 0:
        raise DataError(f"{source}: the TR must be > 0 s, found {tr}.")
    n_scans = timeseries.shape[0]
    events, other_events, confounds = _checked(events, other_events, confounds, n_scans, tr, source)
    estimator = _estimators(events, other_events, confounds, n_scans, tr, config, source)
    if config.scaling == "psc":
        timeseries = scale_to_percent(timeseries, source)
    return (estimator @ timeseries).astype(np.float32)


def read_masked_run(path: str | Path, mask: np.ndarray, block_volumes: int = 64) -> tuple[np.ndarray, Any]:
    """The (n_scans, n_voxels) float32 time series of the ``mask`` voxels of a 4-D NIfTI run, and its image.

    Volumes are read in blocks of ``block_volumes``, so the whole run is never in memory at once. Raises
    :class:`DataError` when the run is not 4-D or its spatial shape is not the mask's.
    """
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    mask = np.asarray(mask, dtype=bool)
    try:
        image = load_nifti(path, keep_file_open=True)
    except (FileNotFoundError, FileFormatError):
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as error:
        raise FileFormatError(f"Cannot open the run {path}: {error}. Is the file complete?") from error
    if len(image.shape) != 4:
        raise DataError(f"{path}: a run must be a 4-D NIfTI (X, Y, Z, T), found shape {image.shape}.")
    if tuple(image.shape[:3]) != mask.shape:
        raise DataError(
            f"{path}: the run's volumes have shape {tuple(image.shape[:3])} but the mask has shape {mask.shape}. "
            "Use a mask on the run's grid (same space and resolution)."
        )
    n_scans = image.shape[3]
    out = np.empty((n_scans, int(mask.sum())), dtype=np.float32)
    try:
        for start in range(0, n_scans, block_volumes):
            stop = min(start + block_volumes, n_scans)
            out[start:stop] = np.asanyarray(image.dataobj[..., start:stop])[mask].T
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise FileFormatError(f"Cannot read the run {path}: {error}. Is the file complete?") from error
    return out, image


def single_trial_betas(
    run: str | Path | np.ndarray,
    mask: np.ndarray,
    events: pd.DataFrame,
    tr: float,
    config: GLMConfig | None = None,
    confounds: pd.DataFrame | None = None,
    other_events: pd.DataFrame | None = None,
) -> np.ndarray:
    """Single-trial betas of the ``mask`` voxels of a 4-D run (a NIfTI path or an (X, Y, Z, T) array).

    ``mask``: bool (X, Y, Z). Returns float32 (n_trials, n_voxels), voxels in ``numpy.nonzero(mask)`` order;
    see :func:`fit_single_trials` for the other arguments.
    """
    mask = np.asarray(mask, dtype=bool)
    if isinstance(run, (str, Path)):
        timeseries, _ = read_masked_run(run, mask)
        source = str(run)
    else:
        run = np.asarray(run)
        if run.ndim != 4 or run.shape[:3] != mask.shape:
            raise DataError(
                f"The run has shape {run.shape}, expected (X, Y, Z, T) with (X, Y, Z) = the mask's {mask.shape}."
            )
        timeseries, source = run[mask].T, "run"
    if not mask.any():
        raise DataError(f"{source}: the mask selects no voxel.")
    return fit_single_trials(timeseries, events, tr, config, confounds, other_events, source)


__all__ = [
    "DRIFT_MODELS",
    "ESTIMATORS",
    "HRF_MODELS",
    "GLMConfig",
    "check_confounds",
    "check_events",
    "fit_single_trials",
    "frame_times",
    "read_masked_run",
    "scale_to_percent",
    "single_trial_betas",
    "trial_design",
]
