"""The recordings a sim run's predictor reads (:mod:`brainkit.recipes.sim.predict`), as raw frames of the run's
hemisphere on its icosphere: (n_frames, n_vertices) float32, the dtype of the run's data.

- an array (n_frames, n_vertices) of real numbers, or a ``.npy`` file of one (``allow_pickle=False``);
- a surface file already on the run's icosphere (``.func.gii`` / ``.shape.gii``, ``.mgh`` / ``.mgz``:
  :func:`brainkit.surface.readers.read_surface_frames`), of the run's hemisphere (a right one already mirrored);
- a GIFTI pair ``[left, right]`` on fsaverage of the run's order (fsaverage's spheres are icospheres): the run's
  hemisphere is taken, a right one mirrored onto the left by barycentric resampling as
  :func:`brainkit.data.surface_frames.frames_on_icosphere` does.

A CIFTI dense time series (``.dtseries.nii``) goes through the dataset's own pipeline instead, on runs of
``hcp_movie_surface`` (:func:`brainkit.data.readers.hcp_movie_surface_data.cifti_on_icosphere`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.readers.inputs import input_file, read_npy
from brainkit.errors import DataError

SURFACE_SUFFIXES = (".gii", ".mgh", ".mgz")


def is_cifti(x: Any) -> bool:
    return isinstance(x, str | Path) and str(x).lower().endswith(".dtseries.nii")


def _checked(values: np.ndarray, source: str) -> np.ndarray:
    if values.ndim != 2:
        raise DataError(
            f"{source} has shape {values.shape}; expected frames (n_frames, n_vertices) of one recording."
        )
    if values.dtype == bool or not (
        np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
    ):
        raise DataError(
            f"{source} holds {values.dtype} values; expected real numbers (float32 like the run's data)."
        )
    return np.asarray(values, dtype=np.float32)


def _pair(paths: list | tuple, order: int, hemisphere: str) -> tuple[np.ndarray, str]:
    from brainkit.surface import icosphere, n_vertices
    from brainkit.surface.readers import read_surface_frames
    from brainkit.surface.resample import hemisphere_to_icosphere

    names = [Path(p) for p in paths]
    if len(names) != 2 or not all(p.name.lower().endswith(".gii") for p in names):
        raise DataError(
            f"A list of inputs must be two GIFTI files (left, right hemisphere); found {[str(p) for p in names]}."
        )
    n = n_vertices(order)
    parts = [_checked(read_surface_frames(p), str(p)) for p in names]
    for path, part in zip(names, parts):
        if part.shape[1] != n:
            raise DataError(f"{path} has {part.shape[1]} vertices per frame; a GIFTI pair must be on fsaverage of the "
                            f"run's order {order} ({n} vertices per hemisphere).")  # fmt: skip
    if len(parts[0]) != len(parts[1]):
        raise DataError(
            f"{names[0]} has {len(parts[0])} frames but {names[1]} has {len(parts[1])}: one recording."
        )
    source = f"{names[0 if hemisphere == 'left' else 1]} ({hemisphere} hemisphere)"
    if hemisphere == "left":
        return parts[0], source
    mirrored = hemisphere_to_icosphere(parts[1], icosphere(order), "right", order=order, method="barycentric")
    return np.asarray(mirrored, dtype=np.float32), source


def read_frames(x: Any, order: int, hemisphere: str) -> tuple[np.ndarray, str]:
    """(raw frames (n_frames, n_vertices) float32, a name for errors) of ``x`` (module doc); ``order`` and
    ``hemisphere``: the run's icosphere and hemisphere. Vertex counts are checked by the caller."""
    from brainkit.surface.readers import read_surface_frames

    if isinstance(x, list | tuple) and all(isinstance(p, str | Path) for p in x):
        return _pair(x, order, hemisphere)
    if not isinstance(x, str | Path):
        return _checked(np.asarray(x), "the input"), "the input"
    path = input_file(x)
    name = path.name.lower()
    if name.endswith(".npy"):
        values = read_npy(path)
    elif name.endswith(SURFACE_SUFFIXES):
        values = read_surface_frames(path)
    else:
        raise DataError(f"Cannot read {path}: a sim run reads a .npy array (n_frames, n_vertices), a surface file on "
                        "its icosphere (.gii / .mgh / .mgz), a GIFTI pair (left, right) on fsaverage, or, for "
                        "hcp_movie_surface runs, a CIFTI .dtseries.nii.")  # fmt: skip
    return _checked(values, str(path)), str(path)


__all__ = ["SURFACE_SUFFIXES", "is_cifti", "read_frames"]
