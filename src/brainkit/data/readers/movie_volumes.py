"""Volumetric movie fMRI: 4-D NIfTI runs in MNI space -> one cropped, normalised volume per stimulus second.

The pipeline of CLIP-MUSED's released ``dataloader_HCP.py`` (../shared/METHODS.md 2.1), as small functions:

- :func:`crop_or_pad` centres a volume on the model grid (112 x 128 x 112 for the paper's HCP model);
  :func:`hcp_crop_pad` is the paper's exact cut of the 1.6 mm HCP MNI volume (113 x 136 x 113):
  ``[2:, 4:-5, :-2]`` -> 111 x 127 x 111, then one zero on each far side -> 112 x 128 x 112.
- :class:`RunStatistics` learns per-voxel min/max or mean/std over a run in one streamed pass (blocks of TRs).
- :class:`MovieRun` opens a run lazily (nibabel's ``dataobj`` proxy: ``.nii`` files are memory-mapped, ``.nii.gz``
  read block by block) and returns the volume for stimulus second ``t`` at TR ``round(t / tr) + delay``
  (delay 4 TRs in the paper, the haemodynamic lag), masked, normalised and cropped; the run is never copied
  whole per sample.
"""

from __future__ import annotations

import logging
import warnings
import zlib
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.nifti import load_nifti

logger = logging.getLogger(__name__)

HCP_GRID = (112, 128, 112)
HCP_MNI_SHAPE = (113, 136, 113)  # HCP 7T MNINonLinear volumes, 1.6 mm


def crop_or_pad(volume: np.ndarray, grid: tuple[int, int, int]) -> np.ndarray:
    """Centre-crop or zero-pad the first three axes of ``volume`` (X, Y, Z, ...) to ``grid``.

    An odd difference puts the extra voxel at the far end (cropping) or the far side (padding).
    """
    if volume.ndim < 3 or len(grid) != 3 or min(grid) < 1:
        raise DataError(
            f"crop_or_pad: expected a volume (X, Y, Z, ...) and a 3-D grid, found {volume.shape}, {grid}."
        )
    slices, pads = [], []
    for size, target in zip(volume.shape[:3], grid):
        start = max(0, (size - target) // 2)
        slices.append(slice(start, start + min(size, target)))
        extra = max(0, target - size)
        pads.append((extra // 2, extra - extra // 2))
    cropped = volume[tuple(slices)]
    return np.pad(cropped, pads + [(0, 0)] * (volume.ndim - 3))


def hcp_crop_pad(volume: np.ndarray) -> np.ndarray:
    """The released HCP cut: (113, 136, 113, ...) -> ``[2:, 4:-5, :-2]`` -> zero-pad 1 at the end -> (112, 128, 112)."""
    if tuple(volume.shape[:3]) != HCP_MNI_SHAPE:
        raise DataError(
            f"hcp_crop_pad: expects HCP 1.6 mm MNI volumes of shape {HCP_MNI_SHAPE}, found {volume.shape[:3]}. "
            "Use crop_or_pad(volume, grid) for other data."
        )
    cut = volume[2:, 4:-5, :-2]
    return np.pad(cut, [(0, 1), (0, 1), (0, 1)] + [(0, 0)] * (volume.ndim - 3))


class RunStatistics:
    """Per-voxel normalisation learned over a whole run, streamed in blocks of TRs.

    ``method``: ``"minmax"`` (to [0, 1], the released data's "MinMax") or ``"zscore"``. Constant voxels map to 0.
    """

    def __init__(self, method: str = "minmax") -> None:
        if method not in ("minmax", "zscore"):
            raise ConfigError(f"RunStatistics: method must be 'minmax' or 'zscore', found {method!r}.")
        self.method = method

    def fit(self, dataobj, mask: np.ndarray, block: int = 32) -> RunStatistics:
        """``dataobj``: (X, Y, Z, T) array or nibabel proxy; only ``mask`` voxels are kept (n_voxels,)."""
        n_time = dataobj.shape[3]
        low = high = total = squares = None
        for start in range(0, n_time, block):
            values = np.asarray(dataobj[..., start : start + block], dtype=np.float64)[mask]  # (n_voxels, t)
            if low is None:
                low, high = values.min(1), values.max(1)
                total, squares = values.sum(1), (values**2).sum(1)
            else:
                low, high = np.minimum(low, values.min(1)), np.maximum(high, values.max(1))
                total, squares = total + values.sum(1), squares + (values**2).sum(1)
        if self.method == "minmax":
            self.offset_, span = low, high - low
        else:
            self.offset_ = total / n_time
            span = np.sqrt(np.maximum(squares / n_time - self.offset_**2, 0.0))
        self.scale_ = np.where(span > 1e-8, span, np.inf)  # constant voxel -> 0, never NaN
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Masked values (n_voxels, ...) -> normalised float32."""
        shape = (-1,) + (1,) * (values.ndim - 1)
        return ((values - self.offset_.reshape(shape)) / self.scale_.reshape(shape)).astype(np.float32)


class MovieRun:
    """One 4-D NIfTI run, read lazily: ``run.sample(second)`` -> (X', Y', Z') float32 volume on ``grid``.

    Parameters
    ----------
    path : str or Path
        ``*.nii`` (memory-mapped) or ``*.nii.gz``, shape (X, Y, Z, T), MNI space.
    mask : bool array (X, Y, Z), optional
        Brain mask; default: voxels that vary over the run. Voxels outside are zero.
    grid : 3 ints, optional
        The model's grid; default the run's own shape. ``"hcp"`` cuts as the paper (:func:`hcp_crop_pad`).
    delay : int
        Haemodynamic delay in TRs (4 in the paper): second ``t`` reads TR ``round(t / tr) + delay``.
    normalisation : "minmax", "zscore" or "none"
        Per voxel, over the whole run (one streamed pass at open).
    tr : float, optional
        Seconds per volume; default the header's ``pixdim[4]`` (HCP 7T: 1 s).
    """

    def __init__(
        self,
        path: str | Path,
        mask: np.ndarray | None = None,
        grid: tuple[int, int, int] | str | None = None,
        delay: int = 4,
        normalisation: str = "minmax",
        tr: float | None = None,
    ) -> None:
        from nibabel.filebasedimages import ImageFileError

        self.path = Path(path)
        try:
            self.image = load_nifti(self.path, mmap=True, keep_file_open=True)
        except FileNotFoundError:
            raise FileFormatError(f"Movie run {self.path} does not exist; check the dataset root.") from None
        except FileFormatError:
            raise
        except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as err:
            raise FileFormatError(f"Cannot open movie run {self.path}: {err}. Download it again.") from err
        if len(self.image.shape) != 4:
            raise FileFormatError(
                f"{self.path}: expected a 4-D run (X, Y, Z, T), found shape {self.image.shape}."
            )
        self.dataobj = self.image.dataobj  # a proxy: indexing reads only what is asked for
        self.n_volumes = self.image.shape[3]
        self.tr = float(tr if tr is not None else self.image.header.get_zooms()[3] or 1.0)
        if not isinstance(delay, int) or delay < 0:
            raise ConfigError(f"MovieRun: delay must be a non-negative number of TRs, found {delay!r}.")
        self.delay = delay
        if mask is None:
            stats = RunStatistics("minmax").fit(self.dataobj, np.ones(self.image.shape[:3], bool))
            mask = np.isfinite(stats.scale_).reshape(self.image.shape[:3])
        self.mask = np.asarray(mask, dtype=bool)
        if self.mask.shape != tuple(self.image.shape[:3]):
            raise DataError(
                f"{self.path}: mask shape {self.mask.shape} does not match the run's volumes "
                f"{tuple(self.image.shape[:3])}; use the mask in the run's space (MNI, same resolution)."
            )
        self.grid = grid if grid is not None else tuple(self.image.shape[:3])
        if normalisation not in ("minmax", "zscore", "none"):
            raise ConfigError(
                f"MovieRun: normalisation must be minmax, zscore or none, found {normalisation!r}."
            )
        self.stats = (
            None if normalisation == "none" else RunStatistics(normalisation).fit(self.dataobj, self.mask)
        )

    def n_seconds(self) -> int:
        """Stimulus seconds that have a delayed volume in the run."""
        return max(0, int(np.floor((self.n_volumes - 1 - self.delay) * self.tr)) + 1)

    def volume_index(self, second: int) -> int:
        index = int(round(second / self.tr)) + self.delay
        if second < 0 or index >= self.n_volumes:
            raise DataError(
                f"{self.path}: second {second} needs volume {index} (delay {self.delay} TRs), but the run has "
                f"{self.n_volumes} volumes; use seconds 0..{self.n_seconds() - 1}."
            )
        return index

    def sample(self, second: int) -> np.ndarray:
        """The normalised, masked volume for stimulus ``second``, cropped/padded to the grid: float32."""
        volume = np.asarray(self.dataobj[..., self.volume_index(second)], dtype=np.float32)  # one TR only
        values = volume[self.mask]
        out = np.zeros(volume.shape, dtype=np.float32)
        out[self.mask] = self.stats.transform(values) if self.stats is not None else values
        return hcp_crop_pad(out) if self.grid == "hcp" else crop_or_pad(out, self.grid)


# --- whole runs, masked early (the registered ``hcp_movie`` dataset) -------------------------------------------


class GridWindow:
    """How a run's volume (X, Y, Z) maps onto the model grid: the crop window in the run, the padding before.

    ``grid``: ``"hcp"`` (the released cut of 113 x 136 x 113 volumes: ``[2:, 4:-5, :-2]``, then one zero on each
    far side: 112 x 128 x 112), ``"run"`` (the run's own shape) or 3 ints (centre crop / zero pad as
    :func:`crop_or_pad`). A run-space voxel ``v`` inside the window sits at grid voxel ``v - start + before``.
    """

    def __init__(self, shape: tuple[int, int, int], grid: str | tuple[int, int, int] | list[int]) -> None:
        shape = tuple(int(s) for s in shape)
        if grid == "hcp":
            if shape != HCP_MNI_SHAPE:
                raise DataError(
                    f"grid 'hcp' is the released cut of HCP's 1.6 mm MNI volumes {HCP_MNI_SHAPE}; the runs are "
                    f"{shape}. Set data.grid to 'run' or to 3 sizes (centre crop / pad)."
                )
            self.start, self.keep, self.before, self.shape = (2, 4, 0), (111, 127, 111), (0, 0, 0), HCP_GRID
            return
        target = shape if grid == "run" else tuple(int(g) for g in grid)
        if len(target) != 3 or min(target) < 1:
            raise ConfigError(f"grid must be 'hcp', 'run' or 3 positive sizes, found {grid!r}.")
        self.start = tuple(max(0, (s - t) // 2) for s, t in zip(shape, target))
        self.keep = tuple(min(s, t) for s, t in zip(shape, target))
        self.before = tuple(max(0, t - s) // 2 for s, t in zip(shape, target))
        self.shape = target

    def _window(self, offset: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(o, o + k) for o, k in zip(offset, self.keep))

    def run_mask(self, mask: np.ndarray) -> np.ndarray:
        """The run-space voxels read: ``mask`` (X, Y, Z) inside the window."""
        out = np.zeros(mask.shape, bool)
        out[self._window(self.start)] = mask[self._window(self.start)]
        return out

    def grid_mask(self, mask: np.ndarray) -> np.ndarray:
        """The same voxels on the grid (its C order is the run-space C order: a translation)."""
        out = np.zeros(self.shape, bool)
        out[self._window(self.before)] = mask[self._window(self.start)]
        return out

    def affine(self, affine: np.ndarray) -> np.ndarray:
        """The grid's voxel -> mm affine, from the run's."""
        shift = np.eye(4)
        shift[:3, 3] = np.subtract(self.start, self.before)
        return np.asarray(affine, dtype=np.float64) @ shift


def template_mask(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """nilearn's MNI152 brain mask (packaged, offline) resampled onto a run's grid: linear, kept where >= 0.5."""
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.image import resample_img

    template = load_mni152_brain_mask()
    image = nib.Nifti1Image(np.asarray(template.get_fdata(), np.float32), template.affine)
    with warnings.catch_warnings():  # the linear resampling of a binary image is meant: kept where >= 0.5
        warnings.filterwarnings("ignore", message="Resampling binary images", category=UserWarning)
        resampled = resample_img(image, target_affine=affine, target_shape=tuple(shape),
                                 interpolation="continuous", force_resample=True, copy_header=True)  # fmt: skip
    return np.asarray(resampled.get_fdata()) >= 0.5


def masked_run(image, run_mask: np.ndarray, normalisation: str = "minmax", block: int = 16) -> np.ndarray:
    """float32 (n_volumes, n_voxels): the ``run_mask`` voxels (C order) of every volume, read in blocks of
    ``block`` TRs front to back (a ``.nii.gz`` is decompressed once) and normalised per voxel over the run
    (``"minmax"``: to [0, 1] as the released data; ``"zscore"``; ``"none"``); a constant voxel becomes 0.
    Memory: the output plus one block of whole volumes."""
    if normalisation not in ("minmax", "zscore", "none"):
        raise ConfigError(f"normalisation must be minmax, zscore or none, found {normalisation!r}.")
    n_volumes = image.shape[3]
    out = np.empty((n_volumes, int(run_mask.sum())), np.float32)
    for start in range(0, n_volumes, block):
        values = np.asarray(image.dataobj[..., start : start + block], dtype=np.float32)[run_mask]
        out[start : start + values.shape[1]] = values.T
    if not np.isfinite(out).all():
        raise DataError(
            f"{image.get_filename()}: the run holds NaN or infinite values inside the brain mask."
        )
    return normalise_run(out, normalisation)


def normalise_run(values: np.ndarray, normalisation: str) -> np.ndarray:
    """A run's (n_volumes, n_voxels) float32 normalised per voxel over its volumes, in place: ``"minmax"`` to
    [0, 1], ``"zscore"``, ``"none"``; a constant voxel becomes 0."""
    if normalisation == "minmax":
        low, span = values.min(0), np.ptp(values, axis=0)
    elif normalisation == "zscore":
        low, span = values.mean(0), values.std(0)
    elif normalisation == "none":
        return values
    else:
        raise ConfigError(f"normalisation must be minmax, zscore or none, found {normalisation!r}.")
    values -= low
    values /= np.where(span > 1e-8, span, np.inf)
    return values
