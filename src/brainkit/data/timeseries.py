"""ROI time series: parcellation of volume or surface data, cleaning, connectivity, segments.

Everything here works on a ``(n_times, n_rois)`` array with a repetition time ``tr`` in seconds; the
:class:`RoiTimeSeries` container carries both, plus the ROI names and (when known) each ROI's network.
Cleaning (confound regression, detrending, band-pass filtering, z-scoring) is nilearn's ``signal.clean``;
volume parcellation is nilearn's ``NiftiLabelsMasker``; surface parcellation is a label-wise mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainkit.errors import DataError
from brainkit.nifti import load_nifti


@dataclass
class RoiTimeSeries:
    """One run of ROI signals.

    Attributes
    ----------
    values : np.ndarray, shape (n_times, n_rois), float32
    tr : float
        Repetition time in seconds.
    roi_names : list[str]
        One name per ROI (column).
    networks : list[str] or None
        The functional network of each ROI, when the atlas defines one.
    subject, run : str
        Where the run comes from.
    states : np.ndarray of str, shape (n_times,), optional
        The task or mental state at each frame (``"rest"`` for resting state).
    """

    values: np.ndarray
    tr: float
    roi_names: list[str]
    networks: list[str] | None = None
    subject: str = "sub-01"
    run: str = "run-1"
    states: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        where = f"RoiTimeSeries {self.subject}/{self.run}"
        if values.ndim != 2:
            raise DataError(f"{where}: values must be (n_times, n_rois), found shape {values.shape}.")
        if not np.isfinite(values).all():
            bad = np.unique(np.nonzero(~np.isfinite(values))[1])[:5]
            raise DataError(
                f"{where}: values contain NaN or inf (ROI columns {bad.tolist()}...). Clean them first."
            )
        if len(self.roi_names) != values.shape[1]:
            raise DataError(f"{where}: {values.shape[1]} ROI columns but {len(self.roi_names)} ROI names.")
        if self.networks is not None and len(self.networks) != values.shape[1]:
            raise DataError(
                f"{where}: {values.shape[1]} ROI columns but {len(self.networks)} network labels."
            )
        if not self.tr > 0:
            raise DataError(f"{where}: tr must be a positive number of seconds, found {self.tr}.")
        if self.states is not None:
            self.states = np.asarray(self.states).astype(str)
            if self.states.shape != (values.shape[0],):
                raise DataError(f"{where}: {values.shape[0]} frames but {len(self.states)} state labels.")
        self.values = values

    @property
    def n_times(self) -> int:
        return self.values.shape[0]

    @property
    def n_rois(self) -> int:
        return self.values.shape[1]

    def frames(self, start: int, stop: int) -> RoiTimeSeries:
        """Frames ``start:stop`` as a new run (states cut alike)."""
        states = None if self.states is None else self.states[start:stop]
        return RoiTimeSeries(
            self.values[start:stop], self.tr, self.roi_names, self.networks, self.subject, self.run, states
        )


# --- parcellation ---------------------------------------------------------------------------------------------


def parcellate_surface(
    data: np.ndarray, labels: np.ndarray, background: tuple[int, ...] = (0,)
) -> tuple[np.ndarray, np.ndarray]:
    """Mean signal per surface label.

    Parameters
    ----------
    data : (n_vertices, n_times)
        Surface data (both hemispheres concatenated when ``labels`` are).
    labels : (n_vertices,) int
        A label per vertex; ``background`` labels (medial wall) are left out.

    Returns
    -------
    values : (n_times, n_rois) float32, and the label ids (n_rois,) in ascending order.
    """
    data = np.asarray(data)
    labels = np.asarray(labels).astype(np.int64).ravel()
    if data.ndim != 2 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"parcellate_surface: data must be (n_vertices, n_times) with n_vertices = {labels.shape[0]} "
            f"(one per label), found {data.shape}. Transpose a (time, vertex) array first."
        )
    ids = np.array([i for i in np.unique(labels) if i not in background])
    if len(ids) == 0:
        raise DataError("parcellate_surface: every vertex is background; check the label array.")
    index = np.searchsorted(ids, labels)
    keep = np.isin(labels, ids)
    sums = np.zeros((len(ids), data.shape[1]), dtype=np.float64)
    np.add.at(sums, index[keep], data[keep])
    counts = np.bincount(index[keep], minlength=len(ids))[:, None]
    return (sums / counts).T.astype(np.float32), ids


def parcellate_volume(
    img: Any, labels_img: Any, confounds: np.ndarray | None = None, **clean_options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean signal per label of a volumetric atlas (nilearn ``NiftiLabelsMasker``), optionally cleaned.

    Parameters
    ----------
    img : 4-D NIfTI image or path, (x, y, z, n_times)
    labels_img : 3-D integer NIfTI image or path; 0 is background. Resampled to ``img`` if needed.
    confounds : (n_times, n_confounds), optional
    clean_options : passed to the masker (``standardize``, ``detrend``, ``high_pass``, ``low_pass``, ``t_r``).

    Returns
    -------
    values : (n_times, n_rois) float32, and the label ids (n_rois,).
    """
    from nilearn.maskers import NiftiLabelsMasker

    img = load_nifti(img) if isinstance(img, str) or hasattr(img, "__fspath__") else img
    labels_img = (
        load_nifti(labels_img)
        if isinstance(labels_img, str) or hasattr(labels_img, "__fspath__")
        else labels_img
    )
    if img.ndim != 4:
        raise DataError(f"parcellate_volume: expected a 4-D run (x, y, z, time), found shape {img.shape}.")
    if confounds is not None and len(confounds) != img.shape[3]:
        raise DataError(f"parcellate_volume: {img.shape[3]} frames but {len(confounds)} confound rows.")
    clean_options.setdefault("standardize", None)
    masker = NiftiLabelsMasker(labels_img, resampling_target="data", **clean_options)
    values = masker.fit_transform(img, confounds=confounds)
    ids = np.asarray(masker.region_ids_ if hasattr(masker, "region_ids_") else [], dtype=object)
    ids = np.array([i for i in ids.tolist() if i != "background"]) if ids.size else np.arange(values.shape[1])
    return values.astype(np.float32), ids


def clean(
    values: np.ndarray,
    tr: float,
    confounds: np.ndarray | None = None,
    detrend: bool = True,
    high_pass: float | None = None,
    low_pass: float | None = None,
    standardize: bool = True,
) -> np.ndarray:
    """Confound regression, detrending, Butterworth band-pass and z-scoring (nilearn ``signal.clean``).

    ``values`` (n_times, n_rois) -> the same shape, float32. Filters are in Hz; the confounds are filtered with
    the signal, as nilearn does, so that regression does not reintroduce filtered-out frequencies.
    """
    from nilearn import signal

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"clean: values must be (n_times, n_rois), found {values.shape}.")
    if confounds is not None:
        confounds = np.asarray(confounds, dtype=np.float64)
        if confounds.shape[0] != values.shape[0]:
            raise DataError(f"clean: {values.shape[0]} frames but {confounds.shape[0]} confound rows.")
        if not np.isfinite(confounds).all():
            raise DataError(
                "clean: confounds contain NaN or inf (often the first frame's derivatives: fill with 0)."
            )
    nyquist = 0.5 / tr
    for name, cut in (("high_pass", high_pass), ("low_pass", low_pass)):
        if cut is not None and not 0 < cut < nyquist:
            raise DataError(
                f"clean: {name}={cut} Hz must lie in (0, {nyquist:.3f}) Hz, the Nyquist band at TR {tr} s."
            )
    cleaned = signal.clean(
        values,
        confounds=confounds,
        detrend=detrend,
        standardize="zscore_sample" if standardize else False,
        high_pass=high_pass,
        low_pass=low_pass,
        t_r=tr,
    )
    return np.asarray(cleaned, dtype=np.float32)


def zscore(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Z-score along ``axis`` (constant columns become 0)."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std(axis=axis, keepdims=True)
    return ((values - values.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)).astype(np.float32)


# --- connectivity ---------------------------------------------------------------------------------------------


def connectivity(values: np.ndarray) -> np.ndarray:
    """Pearson correlation between ROIs: (n_times, n_rois) -> (n_rois, n_rois)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 3:
        raise DataError(f"connectivity: need (n_times >= 3, n_rois) values, found {values.shape}.")
    z = zscore(values).astype(np.float64)
    return (z.T @ z / values.shape[0]).astype(np.float32)


def sliding_connectivity(values: np.ndarray, window: int, step: int) -> np.ndarray:
    """Correlation in sliding windows of ``window`` frames every ``step``: -> (n_windows, n_rois, n_rois)."""
    values = np.asarray(values)
    if window < 3 or step < 1 or window > len(values):
        raise DataError(
            f"sliding_connectivity: window {window} (>= 3, <= {len(values)} frames) and step {step} (>= 1)."
        )
    starts = range(0, len(values) - window + 1, step)
    return np.stack([connectivity(values[s : s + window]) for s in starts])


def fisher_z(correlation: np.ndarray) -> np.ndarray:
    """arctanh, clipped so a correlation of 1 (the diagonal) stays finite."""
    return np.arctanh(np.clip(correlation, -0.999999, 0.999999)).astype(np.float32)


def upper_triangle(matrices: np.ndarray) -> np.ndarray:
    """The strict upper triangles: (..., n, n) -> (..., n (n - 1) / 2), the usual connectome feature vector."""
    n = matrices.shape[-1]
    rows, cols = np.triu_indices(n, k=1)
    return matrices[..., rows, cols]


# --- segments -------------------------------------------------------------------------------------------------


def segment_frames(tr: float, segment_seconds: float) -> int:
    """Frames per segment: ``segment_seconds / tr`` rounded (at least 2)."""
    return max(2, int(round(segment_seconds / tr)))


def windows(values: np.ndarray, n_frames: int, step: int) -> np.ndarray:
    """Windows of ``n_frames`` frames every ``step``: (n_times, n_rois) -> (n_windows, n_frames, n_rois)."""
    values = np.asarray(values)
    if n_frames > len(values):
        raise DataError(
            f"A window of {n_frames} frames does not fit a run of {len(values)} frames; "
            "use fewer segments or shorter segments."
        )
    starts = np.arange(0, len(values) - n_frames + 1, max(1, step))
    return np.stack([values[s : s + n_frames] for s in starts]).astype(np.float32)
