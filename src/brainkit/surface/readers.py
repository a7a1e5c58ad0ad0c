"""Readers of surface fMRI: CIFTI dense time series (HCP grayordinates), GIFTI and FreeSurfer mgh/mgz, and the
SIM preprocessing steps that follow them (medial-wall mask, demean, per-frame normalisation).

Every reader returns frames as ``(n_frames, n_vertices)`` float32 for one hemisphere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.errors import DataError, FileFormatError
from brainkit.nifti import load_nifti

HEMISPHERES = {"left": "CIFTI_STRUCTURE_CORTEX_LEFT", "right": "CIFTI_STRUCTURE_CORTEX_RIGHT"}


@dataclass(frozen=True)
class HemisphereFrames:
    """One hemisphere's frames (n_frames, n_vertices) float32, its cortex mask (n_vertices,) bool (False on the
    medial wall, whose values are 0), and the repetition time in seconds when the file records it."""

    frames: np.ndarray
    mask: np.ndarray
    tr: float | None = None

    def __post_init__(self) -> None:
        if self.frames.ndim != 2 or self.mask.shape != (self.frames.shape[1],):
            raise DataError(
                f"HemisphereFrames: frames (n_frames, n_vertices) and mask (n_vertices,) expected, found "
                f"{self.frames.shape} and {self.mask.shape}."
            )


def _load(path: Path):
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist.")
    try:
        return load_nifti(path)  # CIFTI, GIFTI or mgh; a compressed file (.mgz) is verified whole first
    except FileFormatError:
        raise
    except Exception as err:  # nibabel raises many types for a damaged file
        raise FileFormatError(f"{path} could not be read by nibabel ({type(err).__name__}: {err}).") from None


def read_cifti_hemispheres(path: str | Path) -> dict[str, HemisphereFrames]:
    """Split a CIFTI-2 dense time series (``.dtseries.nii``: fsLR 32k or 59k grayordinates) into its left and
    right cortical surfaces, with the medial wall (vertices absent from the file) set to 0 and masked out.

    Returns ``{"left": HemisphereFrames, "right": HemisphereFrames}``; subcortical voxels are dropped.
    """
    import nibabel as nib

    path = Path(path)
    image = _load(path)
    if not isinstance(image, nib.Cifti2Image):
        raise FileFormatError(
            f"{path} is not a CIFTI-2 file (found {type(image).__name__}); expected *.dtseries.nii."
        )
    series_axis, models = image.header.get_axis(0), image.header.get_axis(1)
    if not isinstance(models, nib.cifti2.BrainModelAxis):
        raise FileFormatError(
            f"{path}: the second CIFTI axis is {type(models).__name__}, expected brain models."
        )
    data = np.asarray(image.dataobj, dtype=np.float32)
    tr = float(series_axis.step) if isinstance(series_axis, nib.cifti2.SeriesAxis) else None
    out = {}
    for hemi, structure in HEMISPHERES.items():
        found = [(s, bm) for name, s, bm in models.iter_structures() if name == structure]
        if not found:
            names = sorted({name for name, _, _ in models.iter_structures()})
            raise FileFormatError(f"{path} has no {structure}; its structures are {names}.")
        columns, model = found[0]
        n_vertices = int(model.nvertices[structure])
        frames = np.zeros((len(data), n_vertices), dtype=np.float32)
        frames[:, model.vertex] = data[:, columns]
        mask = np.zeros(n_vertices, dtype=bool)
        mask[model.vertex] = True
        out[hemi] = HemisphereFrames(frames, mask, tr)
    return out


def read_surface_frames(path: str | Path) -> np.ndarray:
    """Frames of a GIFTI (``.func.gii``/``.shape.gii``: one data array per frame, or one 2-D array) or FreeSurfer
    (``.mgh``/``.mgz``: (n_vertices, 1, 1, n_frames)) surface file: (n_frames, n_vertices) float32."""
    import nibabel as nib

    path = Path(path)
    image = _load(path)
    if isinstance(image, nib.gifti.GiftiImage):
        arrays = [
            np.asarray(a.data) for a in image.darrays if a.intent not in (1008, 1009)
        ]  # not mesh arrays
        if not arrays:
            raise FileFormatError(f"{path} holds no data arrays (is it a surface geometry file?).")
        if len(arrays) == 1 and arrays[0].ndim == 2:
            return np.ascontiguousarray(arrays[0].T, dtype=np.float32)
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
            raise FileFormatError(
                f"{path}: data arrays of shapes {[a.shape for a in arrays][:4]}; expected one per frame."
            )
        return np.stack(arrays).astype(np.float32)
    if isinstance(image, nib.freesurfer.mghformat.MGHImage):
        data = np.asarray(image.dataobj, dtype=np.float32)
        if data.ndim < 3 or any(s != 1 for s in data.shape[1:3]):
            raise FileFormatError(
                f"{path}: shape {data.shape}; a surface mgh is (n_vertices, 1, 1[, n_frames])."
            )
        return np.ascontiguousarray(data.reshape(data.shape[0], -1).T)
    raise FileFormatError(
        f"{path} is a {type(image).__name__}; expected GIFTI (.gii) or FreeSurfer (.mgh/.mgz) surface data."
    )


def read_mesh(path: str | Path):
    """A surface geometry file as a :class:`~brainkit.surface.icosphere.Mesh`: GIFTI (``.surf.gii``) or
    FreeSurfer (``lh.sphere``, ``lh.sphere.reg``, ...)."""
    import nibabel as nib

    from brainkit.surface.icosphere import Mesh

    path = Path(path)
    if path.suffix == ".gii":
        image = _load(path)
        points = [a.data for a in image.darrays if a.intent == 1008]
        triangles = [a.data for a in image.darrays if a.intent == 1009]
        if not points or not triangles:
            raise FileFormatError(
                f"{path} has no pointset + triangle arrays; it is not a surface geometry file."
            )
        return Mesh(np.asarray(points[0], dtype=np.float64), np.asarray(triangles[0], dtype=np.int64))
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist.")
    try:
        vertices, faces = nib.freesurfer.read_geometry(path)
    except Exception as err:
        raise FileFormatError(f"{path} is neither GIFTI nor a FreeSurfer surface ({err}).") from None
    return Mesh(vertices.astype(np.float64), faces.astype(np.int64))


def normalise_frames(
    frames: np.ndarray, mask: np.ndarray | None = None, demean: bool = True, per_frame: bool = True
) -> np.ndarray:
    """SIM's preprocessing of one hemisphere: ``demean`` removes each vertex's temporal mean; ``per_frame``
    z-scores each frame over the cortex (``mask`` True; the medial wall stays 0). (n_frames, n_vertices) float32."""
    x = np.array(frames, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"normalise_frames expects (n_frames, n_vertices), found {x.shape}.")
    mask = np.ones(x.shape[1], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != (x.shape[1],) or not mask.any():
        raise DataError(f"mask must be (n_vertices,) = ({x.shape[1]},) with some cortex, found {mask.shape}.")
    if not np.isfinite(x[:, mask]).all():
        raise DataError("normalise_frames: frames contain NaN or inf on the cortex.")
    if demean:
        x[:, mask] -= x[:, mask].mean(axis=0)
    if per_frame:
        cortex = x[:, mask]
        std = cortex.std(axis=1, keepdims=True)
        x[:, mask] = (cortex - cortex.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
    x[:, ~mask] = 0.0
    return x


__all__ = [
    "HemisphereFrames",
    "read_cifti_hemispheres",
    "read_surface_frames",
    "normalise_frames",
    "HEMISPHERES",
]
