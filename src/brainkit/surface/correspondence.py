"""The rotation and renumbering that take brainkit's icosphere onto another icosphere template (SIM's ico-6).

SIM's template sphere is brainkit's icosphere of the same order rotated (its icosahedron stands on an edge, ours
on a vertex) and renumbered. :func:`find_correspondence` finds both: ``Correspondence.order`` (n,) with

    template[k] = rotation @ ours[order[k]]        (unit vectors, to the file's rounding)

so data (..., n) in brainkit's vertex order become the template's with ``x[..., order]``
(:meth:`Correspondence.to_template`) and come back with :meth:`Correspondence.from_template`; a patch table in
the template's numbering indexes brainkit-order data as ``order[table]`` (:meth:`Correspondence.to_brainkit`).

The rotation is not unique: an icosphere is mapped onto itself by the 60 rotations of the icosahedron, so 60
rotations (each with its own renumbering) map ours onto the template exactly. :func:`find_correspondence` returns
the one of smallest angle (for SIM's ico-6: 31.72 degrees, the only one below 47 degrees), i.e. the one that moves
the surface least; :func:`all_correspondences` lists all 60. A renumbering moves data with the grid: data
resampled onto our sphere and renumbered show the cortex turned by ``rotation`` against data resampled onto the
template sphere itself. To match SIM's prepared frames, resample onto the template (:meth:`Correspondence.mesh`
gives it with triangles: ``resample_matrix(source, corr.mesh())``); renumbering is exact for data that live on
the grid (a model's inputs, patch tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from brainkit.errors import DataError
from brainkit.surface.icosphere import Mesh, icosphere, n_vertices, order_of

_CORNER_RATIO = 1.3  # 6th / 5th nearest-neighbour distance: >= 1.6 at the 12 corners, <= 1.06 elsewhere


@dataclass(frozen=True)
class Correspondence:
    """``template[k] = rotation @ ours[order[k]]``: ``order`` (n,) int64, ``rotation`` (3, 3) proper orthogonal,
    ``angle`` its angle in degrees, ``error`` the largest angle (degrees) between a template vertex and its
    rotated match, ``level`` the icosphere order."""

    order: np.ndarray
    rotation: np.ndarray
    angle: float
    error: float
    level: int

    @property
    def inverse(self) -> np.ndarray:
        """(n,) int64: brainkit vertex ``i`` is template vertex ``inverse[i]``."""
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        return inverse

    def to_template(self, data: np.ndarray) -> np.ndarray:
        """Data (..., n) in brainkit's vertex order -> the template's (..., n)."""
        return np.asarray(data)[..., self._check(data)]

    def from_template(self, data: np.ndarray) -> np.ndarray:
        """Data (..., n) in the template's vertex order -> brainkit's (..., n)."""
        self._check(data)
        return np.asarray(data)[..., self.inverse]

    def to_brainkit(self, table: np.ndarray) -> np.ndarray:
        """Indices into the template's vertices (any shape, e.g. a patch table) -> the same vertices in brainkit's
        numbering: ``x_brainkit[..., to_brainkit(table)] == to_template(x_brainkit)[..., table]``."""
        return self.order[np.asarray(table)]

    def to_template_indices(self, table: np.ndarray) -> np.ndarray:
        """Indices into brainkit's vertices (e.g. ``triangle_patches(6, 3)``) -> the template's numbering."""
        return self.inverse[np.asarray(table)]

    def mesh(self, radius: float = 100.0) -> Mesh:
        """The template sphere as a :class:`Mesh` in its own numbering: our triangles renumbered, the vertices
        rotated (exactly on the template's points, to its file's rounding)."""
        ours = icosphere(self.level, radius)
        return Mesh(ours.vertices[self.order] @ self.rotation.T, self.inverse[ours.faces])

    def _check(self, data) -> np.ndarray:
        if np.shape(data)[-1:] != (len(self.order),):
            raise DataError(
                f"data of shape {np.shape(data)}: the last axis must be the {len(self.order)} vertices of the "
                f"order-{self.level} icosphere."
            )
        return self.order


def _unit(vertices: np.ndarray) -> np.ndarray:
    vertices = np.asarray(vertices, dtype=np.float64)
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True)


def icosahedron_corners(unit: np.ndarray) -> np.ndarray:
    """Indices (12,) of the 12 five-neighbour vertices of a geodesic icosphere's unit vertices (n, 3)."""
    if len(unit) == 12:
        return np.arange(12)
    distances, _ = cKDTree(unit).query(unit, k=7)
    corners = np.flatnonzero(distances[:, 6] > _CORNER_RATIO * distances[:, 5])
    if len(corners) != 12:
        raise DataError(
            f"the template has {len(corners)} vertices with five neighbours, an icosphere 12: it is not a "
            "geodesic icosphere (midpoint subdivision of an icosahedron)."
        )
    return corners


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An orthonormal frame (3, 3 columns) from two unit vectors."""
    e1 = a
    e2 = b - (b @ a) * a
    e2 = e2 / np.linalg.norm(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


class _Matcher:
    """Candidate rotations (our corner 0 and a neighbour onto every template corner and its neighbours: 60) and
    the check that one lands every vertex of ours on a distinct template vertex."""

    def __init__(self, template: np.ndarray | Mesh, tolerance: float) -> None:
        vertices = template.vertices if isinstance(template, Mesh) else np.asarray(template)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise DataError(f"template vertices must be (n, 3), found {vertices.shape}.")
        self.n, self.level, self.tolerance = len(vertices), order_of(len(vertices)), tolerance
        target = _unit(vertices)
        self.ours = icosphere(self.level).unit_vertices()
        self.tree = cKDTree(target)
        self.limit = tolerance * cKDTree(self.ours).query(self.ours[:12], k=2)[0][:, 1].min()
        corners = target[icosahedron_corners(target)]
        edge = self.ours[0] @ self.ours[1]  # cosine between two neighbouring icosahedron corners
        source = _frame(self.ours[0], self.ours[1])
        rotations = [
            _frame(a, b) @ source.T for a in corners for b in corners[np.abs(corners @ a - edge) < 1e-3]
        ]
        angles = [np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))) for r in rotations]
        self.candidates = sorted(zip(angles, range(len(rotations)), rotations), key=lambda c: c[:2])

    def match(self, angle: float, rotation: np.ndarray) -> Correspondence | None:
        probe = self.ours[: n_vertices(min(self.level, 2))]  # our first vertices are the coarser spheres
        if self.tree.query(probe @ rotation.T)[0].max() > self.limit:
            return None
        distance, nearest = self.tree.query(self.ours @ rotation.T)
        if distance.max() > self.limit or len(np.unique(nearest)) != len(nearest):
            return None
        order = np.empty_like(nearest)
        order[nearest] = np.arange(len(nearest))  # template vertex k <- our vertex order[k]
        error = np.degrees(2 * np.arcsin(min(1.0, distance.max() / 2)))
        return Correspondence(order.astype(np.int64), rotation, float(angle), float(error), self.level)

    def none_found(self) -> DataError:
        return DataError(
            f"no rotation of brainkit's order-{self.level} icosphere lands on the template's {self.n} vertices "
            f"(within {self.tolerance} x the vertex spacing): the template is another subdivision of the sphere, "
            "so its data can be resampled onto ours (brainkit.surface.resample) but not renumbered."
        )


def all_correspondences(template: np.ndarray | Mesh, tolerance: float = 0.1) -> list[Correspondence]:
    """Every rotation (with its renumbering) that takes brainkit's icosphere onto ``template`` (vertices (n, 3)
    or a Mesh), smallest angle first: 60 for an icosphere. A template vertex must lie within ``tolerance`` x the
    closest vertex spacing of its match. :class:`DataError` when there is none (not an icosphere of ours)."""
    matcher = _Matcher(template, tolerance)
    found = [c for angle, _, r in matcher.candidates if (c := matcher.match(angle, r)) is not None]
    if not found:
        raise matcher.none_found()
    return found


def find_correspondence(template: np.ndarray | Mesh, tolerance: float = 0.1) -> Correspondence:
    """The rotation of smallest angle (and its renumbering) taking brainkit's icosphere onto ``template``
    (module docstring); ties (equal angles) go to the first candidate in a fixed order. ``template``: vertices
    (n, 3) or a Mesh, e.g. :func:`brainkit.surface.patch_files.read_sphere` of SIM's
    ``coordinates_ico_6_L.shape.gii``."""
    matcher = _Matcher(template, tolerance)
    for angle, _, rotation in matcher.candidates:
        if (found := matcher.match(angle, rotation)) is not None:
            return found
    raise matcher.none_found()


__all__ = ["Correspondence", "find_correspondence", "all_correspondences", "icosahedron_corners"]
