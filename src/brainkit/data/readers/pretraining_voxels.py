"""Voxel matrices for masked-autoencoder pretraining (Vis-Dec / Mind-Vis phase 1), from any voxel source.

Every reader of a phase-1 source returns float32 (n_samples, n_voxels): rows are samples (time windows or
trials), columns voxels. The helpers here are Vis-Dec's dataset steps (METHODS.md 4.1), written anew:

- :func:`pad_to_multiple` wraps the first voxels around to the end until the count is a multiple of the patch
  size (16). Mind-Vis's ``pad_to_patch_size`` pads ``16 - n % 16`` voxels, i.e. a whole extra patch of 16 when
  n is already a multiple; we pad nothing then.
- :func:`global_zscore` subtracts the mean of *all* values and divides by their standard deviation (one number
  each, not per voxel), as Mind-Vis's ``normalize``; pass the training statistics to transform test data.
- :func:`window_average` averages consecutive frames (10 HCP frames = 8 s // 0.72-0.75 s) with
  ``numpy.array_split``, as Vis-Dec's ``process_voxel_ts``: 1,200 frames -> 120 windows.
- :func:`gather_pretraining_voxels` stacks several sources into one (n_samples, length) matrix.

Reading the sources by name (``god``, ``bold5000``, ``hcp``, ``nitime``) is
:mod:`brainkit.data.readers.pretraining_sources`, above the readers that use these helpers.

Reconciling voxel counts: sources of different voxel counts (subjects, datasets) are wrap-padded to one common
length, by default the largest count rounded up to a multiple of 16, or ``length`` (e.g. ``(pos_embed_len - 1)
* 16 = 4,656`` from a pretrained Mind-Vis/Vis-Dec checkpoint). This is Mind-Vis's ``pad_to_length`` ('wrap').
Voxels of different sources do not correspond to each other: the MAE learns from patches of 16 neighbouring
columns, and the common length only makes the rows stackable. A source longer than ``length`` is an error (it
is never cut silently): pass ``truncate=True`` to keep its first ``length`` voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainkit.errors import ConfigError, DataError

PATCH_SIZE = 16  # Vis-Dec / Mind-Vis: 16 voxels per patch (METHODS.md 4.2)
HCP_WINDOW_FRAMES = 10  # Vis-Dec process_voxel_ts: 8 s // 0.75 s per HCP frame (METHODS.md 4.1)


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or 0 in values.shape:
        raise DataError(
            f"{name} must be a non-empty (n_samples, n_voxels) matrix; found shape {values.shape}."
        )
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{name} must be numeric; found dtype {values.dtype}.")
    values = values.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=0).sum())
        raise DataError(
            f"{name} has NaN or inf in {bad} voxel column(s); mask or fill them before pretraining."
        )
    return values


def pad_to_multiple(values: np.ndarray, multiple: int = PATCH_SIZE) -> np.ndarray:
    """(n, v) -> (n, ceil(v / multiple) * multiple): the first voxels repeated at the end ('wrap')."""
    values = _as_matrix(values, "values")
    return pad_to_length(values, -(-values.shape[1] // multiple) * multiple)


def pad_to_length(values: np.ndarray, length: int, truncate: bool = False) -> np.ndarray:
    """(n, v) -> (n, length) by wrap padding; v > length raises unless ``truncate`` (then the first voxels)."""
    values = _as_matrix(values, "values")
    n_voxels = values.shape[1]
    if n_voxels > length:
        if not truncate:
            raise DataError(
                f"A source has {n_voxels} voxels, more than the common length {length}; raise the length or "
                "pass truncate=True to keep its first voxels."
            )
        return values[:, :length]
    return np.pad(values, ((0, 0), (0, length - n_voxels)), mode="wrap")


def global_zscore(values: np.ndarray, mean: float | None = None, std: float | None = None) -> np.ndarray:
    """(values - mean) / std with one mean and std over all values (given ones: e.g. the training set's)."""
    values = _as_matrix(values, "values")
    mean = float(values.mean()) if mean is None else float(mean)
    std = float(values.std()) if std is None else float(std)
    if std <= 0:
        raise DataError("The values are constant (standard deviation 0); cannot z-score them.")
    return ((values - mean) / std).astype(np.float32)


def window_average(frames: np.ndarray, window: int = HCP_WINDOW_FRAMES) -> np.ndarray:
    """(n_frames, v) -> (n_frames // window, v): means of consecutive near-equal chunks (``numpy.array_split``)."""
    frames = _as_matrix(frames, "frames")
    if window < 1 or len(frames) < window:
        raise DataError(f"Cannot average windows of {window} frames over {len(frames)} frames.")
    chunks = np.array_split(frames, len(frames) // window, axis=0)
    return np.stack([chunk.mean(axis=0) for chunk in chunks]).astype(np.float32)


def gather_pretraining_voxels(
    sources: Sequence[np.ndarray] | dict[str, np.ndarray],
    *,
    multiple: int = PATCH_SIZE,
    length: int | None = None,
    truncate: bool = False,
) -> np.ndarray:
    """Stack voxel matrices of different sources into float32 (sum of n_samples, length).

    Parameters
    ----------
    sources : sequence or dict of arrays, each (n_samples_i, n_voxels_i)
        Already normalised per source (the readers' ``*_pretraining_voxels`` functions z-score theirs).
    multiple : int
        The common length is a multiple of this (the MAE patch size, 16).
    length : int, optional
        The common length; default the largest n_voxels_i rounded up to ``multiple``.
    truncate : bool
        Cut sources longer than ``length`` instead of raising.
    """
    named = dict(sources) if isinstance(sources, dict) else {f"source {i}": s for i, s in enumerate(sources)}
    if not named:
        raise DataError("No voxel sources given; pass at least one (n_samples, n_voxels) matrix.")
    matrices = {name: _as_matrix(values, name) for name, values in named.items()}
    if multiple < 1:
        raise ConfigError(f"multiple must be >= 1, found {multiple}.")
    longest = max(m.shape[1] for m in matrices.values())
    if length is None:
        length = -(-longest // multiple) * multiple
    elif length % multiple:
        raise ConfigError(f"length {length} is not a multiple of {multiple} (the patch size).")
    parts = []
    for name, matrix in matrices.items():
        try:
            parts.append(pad_to_length(matrix, length, truncate=truncate))
        except DataError as err:
            raise DataError(f"{name}: {err}") from None
    return np.concatenate(parts, axis=0)
