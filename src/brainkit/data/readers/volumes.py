"""Masked reads of 4-D beta volumes stored as NIfTI (X, Y, Z, trials) or HDF5 (trials, Z, Y, X).

The HDF5 axis order is the NIfTI order reversed, as MATLAB (column-major) writes it and h5py (row-major)
reads it back; NSD's ``betas_sessionNN.hdf5`` files are laid out this way. Both readers return voxels in the
same order: ``numpy.nonzero(mask)`` over the (X, Y, Z) mask, so the two formats give identical matrices.

Reads go trial block by trial block, so a session never needs its whole volume in memory.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from brainkit.errors import FileFormatError
from brainkit.nifti import load_nifti

logger = logging.getLogger(__name__)

_TRUNCATED_HINT = "The file looks truncated or corrupt: download it again (compare its size with the source)."


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D NIfTI volume (a mask or an atlas) and its affine.

    Returns
    -------
    data : array, shape (X, Y, Z)
        The stored values (no scaling beyond the header's).
    affine : float array, shape (4, 4)
        Voxel index -> millimetres.
    """
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    try:
        image = load_nifti(path)
        data = np.asanyarray(image.dataobj)
    except (FileNotFoundError, FileFormatError):
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as error:
        raise FileFormatError(f"Cannot read NIfTI volume {path}: {error}. {_TRUNCATED_HINT}") from error
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise FileFormatError(f"{path}: expected a 3-D volume (X, Y, Z), found shape {data.shape}.")
    return data, np.asarray(image.affine, dtype=np.float64)


def voxel_coordinates(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Millimetre position of each voxel in ``mask``, in ``np.nonzero(mask)`` order: (n_voxels, 3) float32."""
    indices = np.stack(np.nonzero(mask), axis=1).astype(np.float64)
    homogeneous = np.concatenate([indices, np.ones((len(indices), 1))], axis=1)
    return (homogeneous @ affine.T)[:, :3].astype(np.float32)


def beta_file_shape(path: str | Path, dataset: str = "betas") -> tuple[tuple[int, int, int], int]:
    """Spatial shape (X, Y, Z) and number of trials of a beta file, without reading its values."""
    path = Path(path)
    if _is_hdf5(path):
        with _open_hdf5(path) as handle:
            array = _hdf5_dataset(handle, path, dataset)
            if array.ndim != 4:
                raise FileFormatError(f"{path}: dataset {dataset!r} has shape {array.shape}, expected 4-D.")
            n_trials, z, y, x = array.shape
            return (x, y, z), n_trials
    image = _load_nifti(path)
    if len(image.shape) != 4:
        raise FileFormatError(f"{path}: expected a 4-D NIfTI (X, Y, Z, trials), found shape {image.shape}.")
    x, y, z, n_trials = image.shape
    return (x, y, z), n_trials


def read_masked_betas(
    path: str | Path,
    mask: np.ndarray,
    *,
    dataset: str = "betas",
    block_trials: int = 50,
) -> np.ndarray:
    """The values of the voxels in ``mask`` for every trial of a 4-D beta file, unscaled.

    Parameters
    ----------
    path : str or Path
        ``*.hdf5`` / ``*.h5`` (dataset ``dataset``, shape (n_trials, Z, Y, X)) or ``*.nii`` / ``*.nii.gz``
        (shape (X, Y, Z, n_trials)).
    mask : bool array, shape (X, Y, Z)
        The voxels to keep, in NIfTI order.
    block_trials : int
        Trials read at once (memory: block_trials x X x Y x Z values).

    Returns
    -------
    float32 array, shape (n_trials, n_voxels)
        Voxels in ``np.nonzero(mask)`` order, values as stored (NSD: int16 percent signal change x 300).
    """
    path = Path(path)
    mask = np.asarray(mask, dtype=bool)
    spatial, n_trials = beta_file_shape(path, dataset)
    if spatial != mask.shape:
        order = "(trials, Z, Y, X)" if _is_hdf5(path) else "(X, Y, Z, trials)"
        raise FileFormatError(
            f"{path}: betas have spatial shape {spatial} (X, Y, Z; the file stores {order}) but the mask has "
            f"shape {mask.shape}. Use the mask of the betas' subject and resolution (e.g. func1pt8mm)."
        )
    out = np.empty((n_trials, int(mask.sum())), dtype=np.float32)
    try:
        if _is_hdf5(path):
            with _open_hdf5(path) as handle:
                array = _hdf5_dataset(handle, path, dataset)
                _warn_dtype(path, array.dtype)
                x, y, z = np.nonzero(mask)  # the (Z, Y, X)-flat index of each voxel, in NIfTI nonzero order
                flat = np.ravel_multi_index((z, y, x), mask.shape[::-1])
                for start in range(0, n_trials, block_trials):
                    stop = min(start + block_trials, n_trials)
                    block = array[start:stop]  # (trials, Z, Y, X)
                    out[start:stop] = block.reshape(stop - start, -1)[:, flat]
        else:
            image = _load_nifti(path)
            _warn_dtype(path, image.get_data_dtype())
            for start in range(0, n_trials, block_trials):
                stop = min(start + block_trials, n_trials)
                block = np.asanyarray(image.dataobj[..., start:stop])  # (X, Y, Z, trials)
                out[start:stop] = block[mask].T
    except FileFormatError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zlib.error) as error:
        raise FileFormatError(f"Cannot read betas from {path}: {error}. {_TRUNCATED_HINT}") from error
    return out


def _is_hdf5(path: Path) -> bool:
    return path.suffix.lower() in {".hdf5", ".h5"}


def _open_hdf5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as error:
        raise FileFormatError(f"Cannot open HDF5 file {path}: {error}. {_TRUNCATED_HINT}") from error


def _hdf5_dataset(handle, path: Path, dataset: str):
    if dataset not in handle:
        raise FileFormatError(
            f"{path}: no dataset {dataset!r} in this HDF5 file (found {sorted(handle.keys())}). "
            "Is it the right file?"
        )
    return handle[dataset]


def _load_nifti(path: Path):
    from nibabel.filebasedimages import ImageFileError

    try:  # an open gzip stream reads trial blocks in one pass; reopening it per block costs quadratic time
        return load_nifti(path, keep_file_open=True)
    except (FileNotFoundError, FileFormatError):
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as error:
        raise FileFormatError(f"Cannot open NIfTI file {path}: {error}. {_TRUNCATED_HINT}") from error


def _warn_dtype(path: Path, dtype: np.dtype) -> None:
    if np.dtype(dtype) != np.int16:
        logger.warning(
            "%s stores %s, not int16: NSD ships int16 betas scaled by 300; check the scale you pass.",
            path,
            dtype,
        )
