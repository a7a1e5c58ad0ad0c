"""Surface BOLD runs (fMRIPrep's GIFTI hemisphere pairs and CIFTI grayordinates) as (n_scans, n_vertices) series.

- GIFTI (``*_hemi-L_space-fsaverage5_bold.func.gii`` and its ``hemi-R`` twin): one data array per volume,
  (n_vertices,) each; the left hemisphere's vertices, then the right's.
- CIFTI (``*_space-fsLR_den-91k_bold.dtseries.nii``): the (n_scans, n_grayordinates) matrix in the file's
  brain-model order (cortex left, right, then the subcortical voxels for 91k); the TR is the series axis' step.

A surface run has no brain mask. Vertices whose series is constant or not finite in some run of a subject
(fsaverage's medial wall in some pipelines, vertices outside the field of view) cannot be scaled to percent
signal change nor fitted; :func:`usable_vertices` finds them and the BIDS reader keeps the others, recording the
(n_vertices,) bool mask in ``info["masks"]`` and the count it left out, so nothing is dropped silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainkit.errors import DataError, FileFormatError
from brainkit.nifti import load_nifti


def gifti_arrays(path: Path, what: str = "run") -> list[np.ndarray]:
    """The data arrays of a GIFTI file (``what`` names it in errors: "run", "input")."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except FileNotFoundError:
        raise FileFormatError(f"The GIFTI {what} {path} does not exist.") from None
    except Exception as err:  # nibabel's GIFTI parser raises many kinds (XML, base64, gzip)
        raise FileFormatError(f"Cannot read the GIFTI {what} {path}: {err}. Is the file complete?") from None
    return [np.asarray(d.data) for d in getattr(image, "darrays", [])]


def read_gifti_series(path: str | Path) -> np.ndarray:
    """(n_scans, n_vertices) float32 of one hemisphere's GIFTI run (one 1-D data array per volume)."""
    path = Path(path)
    arrays = gifti_arrays(path)
    if not arrays or any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1:
        raise FileFormatError(
            f"{path}: a GIFTI BOLD run holds one 1-D data array per volume, all of one length; found "
            f"{len(arrays)} array(s) of shapes {sorted({a.shape for a in arrays})[:3]}."
        )
    return np.stack(arrays).astype(np.float32)


def read_gifti_pair(left: str | Path, right: str | Path) -> np.ndarray:
    """(n_scans, n_left + n_right) float32: both hemispheres of one run, left vertices first."""
    series = [read_gifti_series(Path(left)), read_gifti_series(Path(right))]
    if series[0].shape[0] != series[1].shape[0]:
        raise DataError(
            f"{left} has {series[0].shape[0]} volumes but {right} has {series[1].shape[0]}: the hemispheres of "
            "one run must have the same number of volumes."
        )
    return np.concatenate(series, axis=1)


def _cifti(path: Path, what: str = "run"):
    try:
        image = load_nifti(path)
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"The CIFTI {what} {path} does not exist.") from None
    except Exception as err:  # nibabel's CIFTI reader raises many kinds (XML, header)
        raise FileFormatError(f"Cannot read the CIFTI {what} {path}: {err}. Is the file complete?") from None
    if not hasattr(image.header, "get_axis") or len(image.shape) != 2:
        raise FileFormatError(f"{path}: not a CIFTI-2 matrix (n_scans or n_samples, n_grayordinates).")
    return image


def read_cifti_series(path: str | Path, what: str = "run") -> np.ndarray:
    """(n_scans, n_grayordinates) float32 of a ``.dtseries.nii`` run (or any CIFTI-2 matrix: ``what`` names it
    in errors), in the file's brain-model order."""
    path = Path(path)
    image = _cifti(path, what)
    try:
        return np.asarray(image.get_fdata(dtype=np.float32))
    except (OSError, EOFError, ValueError) as err:
        raise FileFormatError(f"Cannot read the CIFTI {what} {path}: {err}. Is the file complete?") from None


def cifti_repetition_time(path: str | Path) -> float:
    """The TR of a ``.dtseries.nii`` run: its series axis' step, in seconds."""
    path = Path(path)
    axis = _cifti(path).header.get_axis(0)
    step = float(getattr(axis, "step", 0.0))
    unit = getattr(axis, "unit", "SECOND")
    if step <= 0 or unit != "SECOND":
        raise DataError(
            f"{path}: its series axis has step {step} {unit}; expected a TR in seconds. Add "
            f'"RepetitionTime": <seconds> to {path.name.split(".")[0]}.json.'
        )
    return step


def read_surface_run(bold: Path, bold_right: Path | None) -> np.ndarray:
    """The (n_scans, n_vertices) float32 series of a GIFTI pair (``bold`` left, ``bold_right``) or a CIFTI run."""
    if bold.name.endswith(".gii"):
        if bold_right is None:
            raise DataError(f"{bold}: a GIFTI run needs its right hemisphere too.")
        return read_gifti_pair(bold, bold_right)
    return read_cifti_series(bold)


def usable_vertices(series: list[np.ndarray], source: str) -> np.ndarray:
    """(n_vertices,) bool: the vertices finite and not constant in every run of ``series`` ((n_scans, V) each)."""
    widths = {s.shape[1] for s in series}
    if len(widths) != 1:
        raise DataError(
            f"{source}: the runs have different vertex counts {sorted(widths)}; a subject's runs must share "
            "one surface (the same space and density)."
        )
    keep = np.ones(series[0].shape[1], dtype=bool)
    for values in series:
        keep &= np.isfinite(values).all(axis=0) & (np.ptp(values, axis=0) > 0)
    if not keep.any():
        raise DataError(f"{source}: no vertex varies over time in every run; are these BOLD series?")
    return keep


__all__ = [
    "cifti_repetition_time",
    "gifti_arrays",
    "read_cifti_series",
    "read_gifti_pair",
    "read_gifti_series",
    "read_surface_run",
    "usable_vertices",
]
