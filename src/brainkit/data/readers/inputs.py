"""New recordings to decode and image folders to search: the inputs of ``brainkit predict`` / ``Run.predict``.

:func:`read_brain_input` turns a file into a (n_samples, n_features) float32 matrix in the feature order a run was
trained on:

- ``.npy``: a 2-D array (n_samples, n_features), or 1-D (one sample); read with ``allow_pickle=False``;
- ``.nii`` / ``.nii.gz``: a 4-D series (X, Y, Z, n) or one 3-D volume, masked with the run's brain mask (voxels in
  ``numpy.nonzero(mask)`` order, as every volume reader of brainkit orders them); the mask is required;
- ``.gii``: a GIFTI series, one data array per sample (n_vertices,) -> (n_samples, n_vertices); two GIFTI files
  (a list: left, right hemisphere, as fMRIPrep writes them) are joined, left vertices first;
- ``.dtseries.nii`` / ``.dscalar.nii``: a CIFTI-2 matrix (n_samples, n_grayordinates).

A run trained on surface runs keeps the vertices that varied in every run (a (n_vertices,) bool mask): surface
input with all the surface's vertices is masked with it, input with only the kept ones is taken as it is.

:func:`read_image_folder` reads a folder of images (PNG / JPEG / ...) as uint8 RGB squares, sorted by file name.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from brainkit.data.readers.surface_runs import gifti_arrays, read_cifti_series
from brainkit.errors import DataError, FileFormatError
from brainkit.nifti import load_nifti

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _nifti(path: Path, mask: np.ndarray | None) -> np.ndarray:
    from nibabel.filebasedimages import ImageFileError

    if mask is None:
        raise DataError(
            f"{path} is a NIfTI volume; decoding it needs the brain mask the run was trained with. This run's "
            "data carry none: pass mask=... (--mask FILE), or give the masked voxels as a .npy matrix."
        )
    if mask.ndim == 1:
        raise DataError(
            f"{path} is a NIfTI volume, but this run was trained on surface vertices: give GIFTI (.func.gii, both "
            "hemispheres), CIFTI (.dtseries.nii) or a .npy matrix in the run's space."
        )
    try:
        data = np.asarray(load_nifti(path).get_fdata(dtype=np.float32))
    except FileNotFoundError:
        raise FileFormatError(f"Input {path} does not exist.") from None
    except FileFormatError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as err:
        raise FileFormatError(f"Cannot read NIfTI input {path}: {err}.") from None
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4 or data.shape[:3] != mask.shape:
        raise DataError(
            f"{path} has shape {data.shape}; the run's brain mask is {mask.shape}: resample the input to the "
            "space and grid the run was trained on (X, Y, Z[, n])."
        )
    return np.ascontiguousarray(data[mask.astype(bool)].T)


def _gifti(path: Path) -> np.ndarray:
    arrays = [np.asarray(a, dtype=np.float32).ravel() for a in gifti_arrays(path, "input")]
    if not arrays or len({a.size for a in arrays}) != 1:
        raise FileFormatError(f"{path}: expected one data array per sample, all the same length.")
    return np.stack(arrays)


def _on_surface(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Surface input with every vertex of a surface-trained run's (n_vertices,) mask -> the kept vertices."""
    if mask is not None and mask.ndim == 1 and values.shape[1] == mask.size:
        return np.ascontiguousarray(values[:, mask.astype(bool)])
    return values


def input_file(path: str | Path) -> Path:
    """``path`` as a Path; :class:`FileFormatError` when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"Input {path} does not exist.")
    return path


def read_npy(path: Path) -> np.ndarray:
    """The array in the ``.npy`` file ``path``, read with ``allow_pickle=False`` (an object array is refused)."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise FileFormatError(f"Cannot read {path} as a numeric .npy array: {err}.") from None


def read_brain_input(path: str | Path | list | tuple, mask: np.ndarray | None = None) -> np.ndarray:
    """The samples in ``path`` as (n_samples, n_features) float32 (see the module docstring); a list of two
    GIFTI files is one run's left and right hemisphere."""
    if isinstance(path, list | tuple):
        names = [Path(p) for p in path]
        if len(names) != 2 or not all(p.name.lower().endswith(".gii") for p in names):
            raise DataError(
                f"A list of inputs must be two GIFTI files (left, right hemisphere); found {[str(p) for p in names]}."
            )
        parts = [read_brain_input(p) for p in names]
        if parts[0].shape[0] != parts[1].shape[0]:
            raise DataError(
                f"{names[0]} has {parts[0].shape[0]} samples but {names[1]} has {parts[1].shape[0]}: the two "
                "hemispheres must hold the same samples."
            )
        return _on_surface(np.concatenate(parts, axis=1), mask)
    path = input_file(path)
    name = path.name.lower()
    if name.endswith(".npy"):
        values = read_npy(path)
        values = values[None] if values.ndim == 1 else values
    elif name.endswith((".dtseries.nii", ".dscalar.nii")):
        values = _on_surface(read_cifti_series(path, "input"), mask)
    elif name.endswith((".nii", ".nii.gz")):
        values = _nifti(path, mask)
    elif name.endswith(".gii"):
        values = _on_surface(_gifti(path), mask)
    else:
        raise DataError(
            f"Cannot read {path}: give a .npy matrix, a NIfTI (.nii/.nii.gz), a GIFTI (.gii) or a CIFTI "
            "(.dtseries.nii / .dscalar.nii) file."
        )
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise DataError(
            f"{path}: expected numbers of shape (n_samples, n_features); found {values.dtype} {values.shape}."
        )
    values = values.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        rows = np.unique(np.nonzero(~np.isfinite(values))[0])
        raise DataError(f"{path}: NaN or inf in {len(rows)} sample(s) (first rows {rows[:5].tolist()}).")
    return values


def brain_matrix(
    x: object,
    expected: dict,
    mask: np.ndarray | None = None,
    subject: str | None = None,
    space: str | None = None,
) -> np.ndarray:
    """``x`` (an array (n, n_voxels) or (n_voxels,), or a .npy / NIfTI / GIFTI file) checked against what a run
    was trained on (``expected``: ``subject``, ``space``, ``n_voxels``) and against the ``subject`` / ``space``
    the caller says it is from; returns the raw (n, n_voxels) float32 matrix. Raises :class:`DataError` saying
    what differs."""
    trained = f"subject {expected['subject']!r}, space {expected['space']!r}, {expected['n_voxels']} voxels"
    if subject is not None and subject != expected["subject"]:
        raise DataError(
            f"This run decodes {trained}; the input is from subject {subject!r}. A decoder fits only the "
            "voxels of the subject it was trained on: train a run on that subject."
        )
    if space is not None and space != expected["space"]:
        raise DataError(
            f"This run decodes {trained}; the input is in space {space!r}. Resample it to "
            f"{expected['space']!r} first."
        )
    if isinstance(x, str | Path) or (
        isinstance(x, list | tuple) and all(isinstance(p, str | Path) for p in x)
    ):
        values = read_brain_input(x, mask)
    else:
        values = np.asarray(x)
        values = values[None] if values.ndim == 1 else values
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise DataError(
                f"Expected brain data of shape (n, n_voxels); found {values.dtype} {values.shape}."
            )
        if not np.isfinite(values).all():
            raise DataError("The brain data contain NaN or inf; mask those voxels or drop those samples.")
        values = values.astype(np.float32, copy=False)
    if values.shape[1] != expected["n_voxels"]:
        raise DataError(
            f"This run decodes {trained}; the input has {values.shape[1]} features. Give the same voxels "
            "in the same order (for NIfTI, the same grid: the run applies its own mask)."
        )
    return values


def read_image_folder(folder: str | Path, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(file names (n,), uint8 RGB images (n, size, size, 3)) of every image in ``folder``, sorted by name."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Image folder {folder} does not exist.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                images[i] = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC))
        except (UnidentifiedImageError, OSError) as err:
            raise FileFormatError(f"Cannot read image {file}: {err}.") from None
    return np.array([f.name for f in files]), images


__all__ = ["brain_matrix", "input_file", "read_brain_input", "read_image_folder", "read_npy"]
