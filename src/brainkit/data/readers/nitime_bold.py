"""nitime's two real 4-D BOLD runs as a real voxel source for pretraining (``nitime/data/fmri{1,2}.nii.gz``).

Each run is a 10 x 10 x 18 crop of a real EPI series, 40 frames, TR 1.35 s (ASSETS.md), int16. The crop lies
inside the brain: every voxel's mean over time is at least 300 (the 98th percentile is ~930), so the brain mask
(:func:`bold_brain_mask`: voxels whose mean over all frames exceeds ``threshold`` x the 98th percentile of the
means, and that vary over time in every run) keeps all 1,800 voxels. Nilearn's ``compute_epi_mask`` is made
for whole-head volumes with background and finds only 13 voxels here, so it is not used.

Each run's voxels are z-scored over time (per voxel), then the runs are stacked: (80, 1800), padded to 1,808 for
16-voxel patches by :func:`brainkit.data.readers.pretraining_voxels.pad_to_multiple`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainkit.data.packaged import package_file
from brainkit.errors import DataError, FileFormatError
from brainkit.nifti import load_nifti

NITIME_BOLD_TR = 1.35
NITIME_RUNS = ("data/fmri1.nii.gz", "data/fmri2.nii.gz")


def _read_run(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from nibabel.filebasedimages import ImageFileError

    try:
        image = load_nifti(path)
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except FileNotFoundError:
        raise FileFormatError(f"BOLD run {path} does not exist.") from None
    except FileFormatError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as err:
        raise FileFormatError(f"Cannot read BOLD run {path}: {err}.") from None
    if data.ndim != 4 or data.shape[-1] < 2:
        raise FileFormatError(f"{path}: expected a 4-D BOLD run (X, Y, Z, frames >= 2); found {data.shape}.")
    return data, np.asarray(image.affine)


def bold_brain_mask(runs: Sequence[np.ndarray], threshold: float = 0.2) -> np.ndarray:
    """Boolean (X, Y, Z): mean over all frames > threshold x 98th percentile of the means, non-constant in each run."""
    means = np.mean([run.mean(axis=-1) for run in runs], axis=0)
    mask = means > threshold * np.percentile(means, 98)
    for run in runs:
        mask &= run.std(axis=-1) > 0
    return mask


def read_bold_runs(paths: Sequence[str | Path], threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """4-D BOLD runs of one subject and space -> (frames of all runs (n_frames, n_voxels) float32, mask (X, Y, Z)).

    One brain mask for all runs (so the columns agree); each run z-scored per voxel over its frames.
    """
    if not paths:
        raise DataError("read_bold_runs needs at least one BOLD run.")
    runs, affines = zip(*(_read_run(Path(p)) for p in paths))
    for path, run, affine in zip(paths, runs, affines):
        if run.shape[:3] != runs[0].shape[:3] or not np.allclose(affine, affines[0], atol=1e-3):
            raise FileFormatError(
                f"{path} has grid {run.shape[:3]} / another affine than {paths[0]} {runs[0].shape[:3]}; runs "
                "must be in one space (resample them first)."
            )
    mask = bold_brain_mask(runs, threshold)
    if not mask.any():
        raise DataError(f"The brain mask of {list(paths)} is empty; lower threshold (now {threshold}).")
    frames = []
    for run in runs:
        voxels = run[mask].T  # (n_frames, n_voxels) in np.nonzero(mask) order
        frames.append((voxels - voxels.mean(axis=0)) / voxels.std(axis=0))
    return np.concatenate(frames).astype(np.float32), mask


def nitime_bold_voxels() -> np.ndarray:
    """nitime's two real BOLD runs, masked, z-scored per voxel and run, stacked: float32 (80, 1800)."""
    paths = [package_file("nitime", run, "The nitime BOLD voxel source") for run in NITIME_RUNS]
    return read_bold_runs(paths)[0]
