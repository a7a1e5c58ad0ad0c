"""Patch tables and template spheres from files, in SIM's released layout (metrics-lab/sim).

SIM's patch table ``patch_extraction/triangle_indices_ico_{fine}_sub_ico_{coarse}.csv`` is a CSV with a header
row of patch numbers ``0,1,...,n_patches-1`` and one column per patch: row ``r`` of column ``"p"`` is the vertex
index of position ``r`` of patch ``p`` (SIM's loader takes ``table[str(p)]`` for patch ``p``, so the header names,
not the column positions, number the patches). ico6 / ico3 is 45 rows x 1,280 columns. The indices number the
vertices of SIM's template sphere (``data/templates/coordinates_ico_6_L.shape.gii``: a GIFTI with three float
arrays, the x, y and z coordinates of its 40,962 vertices; no triangles), which is the vertex order of the frames
SIM's pipeline prepares.

:func:`read_patch_table` returns the table as brainkit holds it, ``(n_patches, n_patch_vertices)``: row ``p`` is
column ``"p"`` of the file, so ``frames[:, table]`` is SIM's ``(n_frames, n_patches, n_patch_vertices)`` cut.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from brainkit.errors import DataError, FileFormatError

SIM_TABLE = "patch_extraction/triangle_indices_ico_{fine}_sub_ico_{coarse}.csv"
SIM_TEMPLATE = "data/templates/coordinates_ico_{fine}_L.shape.gii"


def _integers(cells: list[str], path: Path, line: int) -> list[int]:
    try:
        return [int(cell) for cell in cells]
    except ValueError:
        bad = next(c for c in cells if not c.strip().lstrip("-").isdigit())
        raise FileFormatError(
            f"{path}, line {line}: {bad!r} is not an integer vertex index (a patch table holds integers only)."
        ) from None


def read_patch_table(
    path: str | Path,
    n_vertices: int | None = None,
    shape: tuple[int, int] | None = None,
    allow_repeats: bool = False,
) -> np.ndarray:
    """A patch table in SIM's CSV layout (module docstring): read-only int64 ``(n_patches, n_patch_vertices)``.

    ``n_vertices``: the sphere the indices number (every index must be in ``0..n_vertices-1``); ``shape``: the
    ``(n_patches, n_patch_vertices)`` expected; ``allow_repeats``: whether a patch may list a vertex twice (never in
    SIM's files; neighbouring patches always share their border vertices). Any departure is a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"patch table {path} does not exist.")
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if len(rows) < 2:
        raise FileFormatError(
            f"{path}: a patch table needs a header row of patch numbers and >= 1 row of indices."
        )
    header = _integers(rows[0], path, 1)
    if sorted(header) != list(range(len(header))):
        raise FileFormatError(
            f"{path}: the header must number the patches 0..{len(header) - 1} (one column per patch, SIM's "
            f"layout), found {rows[0][:5]}{'...' if len(header) > 5 else ''}. Is the file transposed?"
        )
    ragged = [i + 1 for i, row in enumerate(rows) if len(row) != len(header)]
    if ragged:
        raise FileFormatError(
            f"{path}: lines {ragged[:5]} do not have {len(header)} cells (one per patch, as the header)."
        )
    body = np.array([_integers(row, path, i + 2) for i, row in enumerate(rows[1:])], dtype=np.int64)
    table = np.empty((len(header), len(body)), dtype=np.int64)
    table[header] = body.T  # column named "p" is patch p
    check_patch_table(table, str(path), n_vertices, shape, allow_repeats)
    table.setflags(write=False)
    return table


def check_patch_table(
    table: np.ndarray,
    name: str,
    n_vertices: int | None = None,
    shape: tuple[int, int] | None = None,
    allow_repeats: bool = False,
) -> None:
    """Raise :class:`DataError` unless ``table`` (n_patches, n_patch_vertices) has the ``shape`` wanted, indices in
    ``0..n_vertices-1`` and (unless ``allow_repeats``) no vertex twice within one patch."""
    if table.ndim != 2 or table.size == 0:
        raise DataError(f"{name}: a patch table is (n_patches, n_patch_vertices), found shape {table.shape}.")
    if shape is not None and tuple(table.shape) != tuple(shape):
        raise DataError(
            f"{name}: {table.shape[0]} patches of {table.shape[1]} vertices, but the grid needs {shape[0]} of "
            f"{shape[1]} (check the file's fine/coarse orders against the config's)."
        )
    size = int(table.max()) + 1 if n_vertices is None else n_vertices
    outside = (table < 0) | (table >= size)
    if outside.any():
        where = np.argwhere(outside)[0]
        raise DataError(
            f"{name}: patch {where[0]} position {where[1]} is vertex {table[tuple(where)]}, outside 0..{size - 1}"
            + (
                f" (the sphere has {n_vertices} vertices: is the table for another icosphere order?)."
                if n_vertices
                else "."
            )
        )
    if not allow_repeats:
        ordered = np.sort(table, axis=1)
        repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if len(repeated):
            p = int(repeated[0])
            values, counts = np.unique(table[p], return_counts=True)
            raise DataError(
                f"{name}: {len(repeated)} patches list a vertex twice (patch {p}: vertices "
                f"{values[counts > 1][:5].tolist()}); a patch holds distinct vertices."
            )


def write_patch_table(table: np.ndarray, path: str | Path) -> Path:
    """Write ``table`` (n_patches, n_patch_vertices) in SIM's CSV layout (header 0..n_patches-1, one column per
    patch), atomically; SIM's loader reads it as its own."""
    table = np.asarray(table)
    check_patch_table(table, "write_patch_table", allow_repeats=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    with os.fdopen(descriptor, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(range(len(table)))
        writer.writerows(table.T.tolist())
    os.replace(temporary, path)
    return path


def read_sphere(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A template sphere's vertices (n, 3) float64 and triangles (n_faces, 3) int64, or ``None`` when the file
    has none. Reads a GIFTI surface (``.surf.gii``: pointset + triangles), a GIFTI of three coordinate arrays
    (SIM's ``coordinates_ico_6_L.shape.gii``, written by ``wb_command -surface-coordinates-to-metric``) or of one
    (n, 3) array, and FreeSurfer geometry (``lh.sphere``)."""
    from brainkit.surface.icosphere import check_sphere
    from brainkit.surface.readers import read_mesh, read_surface_frames

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"template sphere {path} does not exist.")
    if path.name.endswith(".gii") and not _has_pointset(path):
        arrays = read_surface_frames(path)  # (n_arrays, n) or, for one 2-D array, its transpose
        if arrays.shape[0] == 3 and arrays.shape[1] != 3:
            vertices, faces = arrays.T.astype(np.float64), None
        elif arrays.shape[1] == 3:
            vertices, faces = arrays.astype(np.float64), None
        else:
            raise FileFormatError(
                f"{path} has data arrays of shape {arrays.shape}; a template sphere is a surface (.surf.gii) or "
                "three coordinate arrays (x, y, z: SIM's coordinates_ico_6_L.shape.gii)."
            )
    else:
        mesh = read_mesh(path)
        vertices, faces = mesh.vertices, mesh.faces
    check_sphere(vertices, f"template sphere {path}")
    return vertices, faces


def _has_pointset(path: Path) -> bool:
    import nibabel as nib

    try:
        return any(a.intent == 1008 for a in nib.load(path).darrays)
    except Exception as err:  # nibabel raises many types for a damaged file
        raise FileFormatError(f"{path} could not be read by nibabel ({type(err).__name__}: {err}).") from None


__all__ = [
    "SIM_TABLE",
    "SIM_TEMPLATE",
    "read_patch_table",
    "check_patch_table",
    "write_patch_table",
    "read_sphere",
]
