"""Sphere-to-sphere resampling as one sparse matrix, computed once, cached on disk, applied to all frames at once.

``resample_matrix(source, target, method)`` is a (n_target, n_source) ``scipy.sparse.csr_matrix`` whose rows sum
to 1; ``data_on_target = data_on_source @ matrix.T`` for data (n_frames, n_source). Methods, as Connectome
Workbench's ``-metric-resample``:

- ``"barycentric"``: each target vertex takes the barycentric weights of the source triangle that contains it
  (the target point is projected along its ray onto the triangle's plane);
- ``"adap_bary_area"`` (adaptive barycentric, area-corrected): also map every *source* vertex into the target
  mesh and gather those weights per target vertex; a target vertex uses the gathered (reverse) weights when they
  involve more source vertices than the forward ones (downsampling: every source vertex contributes), otherwise
  the forward weights; each weight is then multiplied by its source vertex's area and each row renormalised. The
  areas come from ``source_area`` / ``target_area`` surfaces (e.g. midthickness) or, by default, the spheres.

Validated against ``wb_command -metric-resample`` on real fsaverage5 maps (tests/test_surface_wb.py; numbers in
docs/surface.md). Matrices are cached under ``<cache_dir>/resample/`` keyed by a hash of both meshes, the area
surfaces and the method, written atomically (a cache entry is whole or absent).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from brainkit.errors import ConfigError, DataError
from brainkit.surface.icosphere import Mesh, check_sphere

log = logging.getLogger(__name__)
METHODS = ("barycentric", "adap_bary_area")
_CANDIDATES = 12  # nearest triangles (by centroid) tested for containing each target point
_VERSION = "1"  # bump when the weights change, so old cache entries are not reused


def _default_cache_dir() -> Path:
    return Path(os.environ.get("BRAINKIT_CACHE") or Path.home() / ".cache" / "brainkit")


def vertex_areas(mesh: Mesh) -> np.ndarray:
    """Each vertex's area: a third of the area of every triangle around it, (n_vertices,)."""
    v = mesh.vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    return np.bincount(mesh.faces.ravel(), np.repeat(area / 3.0, 3), minlength=mesh.n_vertices)


def barycentric_weights(source: Mesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For unit ``points`` (n, 3): the source triangle that contains each one (its vertex ids, (n, 3)) and the
    barycentric weights (n, 3), non-negative and summing to 1."""
    unit = source.unit_vertices()
    corners = unit[source.faces]  # (f, 3, 3)
    centroids = corners.mean(axis=1)
    k = min(_CANDIDATES, len(source.faces))
    _, candidates = cKDTree(centroids).query(points, k=k)
    candidates = candidates.reshape(len(points), k)
    # Solve corners^T w = p for each candidate: w are the (unnormalised) ray-plane barycentric coordinates.
    matrices = np.swapaxes(corners[candidates], -1, -2)  # (n, k, 3 coords, 3 corners)
    w = np.linalg.solve(matrices, np.broadcast_to(points[:, None, :, None], (*candidates.shape, 3, 1)))[
        ..., 0
    ]
    w = w / w.sum(axis=-1, keepdims=True)
    best = np.argmax(w.min(axis=-1), axis=1)  # the containing triangle has all weights >= 0 (max of the min)
    rows = np.arange(len(points))
    weights = np.clip(w[rows, best], 0.0, None)
    n_outside = int((w[rows, best].min(axis=1) < -1e-6).sum())
    if n_outside:
        log.warning("resampling: %d points fell outside every candidate triangle; nearest used", n_outside)
    return source.faces[candidates[rows, best]], weights / weights.sum(axis=1, keepdims=True)


def _barycentric_matrix(source: Mesh, target: Mesh) -> sparse.csr_matrix:
    vertices, weights = barycentric_weights(source, target.unit_vertices())
    rows = np.repeat(np.arange(target.n_vertices), 3)
    matrix = sparse.csr_matrix(
        (weights.ravel(), (rows, vertices.ravel())), shape=(target.n_vertices, source.n_vertices)
    )
    matrix.sum_duplicates()
    return matrix


def _adaptive_area_matrix(
    source: Mesh, target: Mesh, source_area: Mesh, target_area: Mesh
) -> sparse.csr_matrix:
    forward = _barycentric_matrix(source, target)  # (t, s)
    reverse = _barycentric_matrix(target, source).T.tocsr()  # (t, s): source vertices gathered per target
    use_reverse = np.diff(reverse.indptr) > np.diff(forward.indptr)
    chosen = (sparse.diags(use_reverse.astype(float)) @ reverse) + (
        sparse.diags((~use_reverse).astype(float)) @ forward
    )
    chosen = (chosen @ sparse.diags(vertex_areas(source_area))).tocsr()
    chosen.eliminate_zeros()
    sums = np.asarray(chosen.sum(axis=1)).ravel()
    return (sparse.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ chosen).tocsr()


def _digest(*arrays: np.ndarray, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for array in arrays:
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:24]


def resample_matrix(
    source: Mesh,
    target: Mesh,
    method: str = "adap_bary_area",
    source_area: Mesh | None = None,
    target_area: Mesh | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> sparse.csr_matrix:
    """The (n_target, n_source) resampling matrix from sphere ``source`` to sphere ``target`` (cached).

    ``source_area`` / ``target_area``: surfaces with the same vertices (e.g. midthickness) whose vertex areas
    weight ``adap_bary_area``; default the spheres. ``cache_dir``: default ``$BRAINKIT_CACHE`` or
    ``~/.cache/brainkit``.
    """
    if method not in METHODS:
        raise ConfigError(f"resampling method {method!r} is not one of {METHODS}.")
    check_sphere(source, "the source sphere")
    check_sphere(target, "the target sphere")
    source_area, target_area = source_area or source, target_area or target
    for name, area, sphere in (("source", source_area, source), ("target", target_area, target)):
        if area.n_vertices != sphere.n_vertices:
            raise DataError(
                f"{name}_area has {area.n_vertices} vertices but the {name} sphere has {sphere.n_vertices}; "
                "pass the surface of the same subject/template (same vertices) as the sphere."
            )
    key = _digest(
        source.vertices, source.faces, target.vertices, target.faces, source_area.vertices,
        target_area.vertices, extra=f"{method}-v{_VERSION}",
    )  # fmt: skip
    path = Path(cache_dir or _default_cache_dir()) / "resample" / f"{method}-{key}.npz"
    if use_cache and path.is_file():
        try:
            return sparse.load_npz(path).tocsr()
        except (OSError, ValueError) as err:
            log.warning("resampling cache entry %s unreadable (%s); recomputing", path, err)
    if method == "barycentric":
        matrix = _barycentric_matrix(source, target)
    else:
        matrix = _adaptive_area_matrix(source, target, source_area, target_area)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
        os.close(fd)
        try:
            sparse.save_npz(tmp, matrix)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return matrix


def resample(data: np.ndarray, matrix: sparse.spmatrix) -> np.ndarray:
    """Apply a resampling matrix to every frame: (n_frames, n_source) or (n_source,) -> (..., n_target)."""
    data = np.asarray(data)
    if data.shape[-1] != matrix.shape[1] or data.ndim not in (1, 2):
        raise DataError(
            f"resample: data has shape {data.shape}, expected (n_frames, {matrix.shape[1]}) source vertices."
        )
    out = matrix @ (data.T if data.ndim == 2 else data)
    return np.ascontiguousarray(
        out.T if data.ndim == 2 else out, dtype=np.result_type(data.dtype, np.float32)
    )


def hemisphere_to_icosphere(
    frames: np.ndarray,
    sphere: Mesh,
    hemisphere: str,
    order: int = 6,
    method: str = "adap_bary_area",
    area: Mesh | None = None,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """SIM's step: one hemisphere's frames (n_frames, n_vertices of ``sphere``) on the order-``order`` icosphere.

    The right hemisphere is mirrored onto the left first (its sphere reflected through x = 0), so both
    hemispheres share one left-looking icosphere and one set of patches ("symmetrised" in SIM).
    """
    from brainkit.surface.icosphere import icosphere

    if hemisphere not in ("left", "right"):
        raise ConfigError(f"hemisphere must be 'left' or 'right', found {hemisphere!r}.")
    if hemisphere == "right":
        sphere = sphere.mirrored()
        area = area.mirrored() if area is not None else None
    matrix = resample_matrix(sphere, icosphere(order), method, source_area=area, cache_dir=cache_dir)
    return resample(frames, matrix)


__all__ = [
    "METHODS",
    "hemisphere_to_icosphere",
    "resample",
    "resample_matrix",
    "vertex_areas",
    "barycentric_weights",
]
