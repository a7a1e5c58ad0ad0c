"""Icospheres of any order, in FreeSurfer's fsaverage vertex and triangle order.

Order 0 is the icosahedron (12 vertices, 20 triangles). Order k + 1 splits every triangle of order k into four
at its edge midpoints (pushed out onto the sphere), so order k has ``10 * 4**k + 2`` vertices and ``20 * 4**k``
triangles, and its vertices are the first vertices of every finer order.

The numbering reproduces fsaverage's exactly (tested against nilearn's fsaverage5 sphere: identical triangles,
vertex positions within 0.01 degree, the file's rounding):
- the 12 icosahedron vertices and 20 triangles are listed in fsaverage's order (``_BASE_VERTICES``,
  ``_BASE_FACES``);
- new vertices are numbered while walking the triangles in order, and each triangle ``(a, b, c)`` its edges
  ``ab, bc, ca``: an edge's midpoint gets the next number the first time the edge is met;
- triangle ``i`` is replaced by its corner child at ``a``, and its three other children are appended, in this
  order, at ``n_faces + 3 i``: ``(ab, b, bc)``, ``(ca, ab, bc)``, ``(ca, bc, c)``.
The triangles are written with fsaverage's winding: ``(a, c, b)`` of the walk order above.

That parent/child numbering is what :mod:`brainkit.surface.patches` uses to cut a fine sphere into the triangles
of a coarser one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from brainkit.errors import ConfigError, DataError

_Z = 1.0 / np.sqrt(5.0)  # height of the two rings of five vertices: cos(63.43 deg)
_R = 2.0 / np.sqrt(5.0)
# fsaverage's icosahedron: north pole, upper ring (z = +1/sqrt5), lower ring, south pole; angles in units of 36 deg.
_BASE_VERTICES = np.array(
    [[0.0, 0.0, 1.0]]
    + [[_R * np.cos(np.pi * a / 5), _R * np.sin(np.pi * a / 5), _Z] for a in (-2, 0, 2, 4, 6)]
    + [[_R * np.cos(np.pi * a / 5), _R * np.sin(np.pi * a / 5), -_Z] for a in (-3, -1, 1, 3, 5)]
    + [[0.0, 0.0, -1.0]]
)
# Walk order (a, b, c) of fsaverage's 20 base triangles (its files store them as (a, c, b)).
_BASE_FACES = np.array(
    [
        (0, 4, 3), (0, 5, 4), (0, 1, 5), (0, 2, 1), (0, 3, 2), (3, 8, 2), (3, 9, 8), (3, 4, 9), (4, 10, 9),
        (4, 5, 10), (5, 6, 10), (5, 1, 6), (1, 7, 6), (1, 2, 7), (2, 8, 7), (8, 9, 11), (9, 10, 11),
        (10, 6, 11), (6, 7, 11), (7, 8, 11),
    ]
)  # fmt: skip
MAX_ORDER = 8  # 655,362 vertices; finer spheres are possible but not useful for fMRI


def n_vertices(order: int) -> int:
    """Vertices of the order-``order`` icosphere: 10 * 4**order + 2."""
    return 10 * 4**order + 2


def order_of(n: int) -> int:
    """The icosphere order with ``n`` vertices; :class:`DataError` when ``n`` is not an icosphere size."""
    for order in range(MAX_ORDER + 1):
        if n_vertices(order) == n:
            return order
    sizes = ", ".join(str(n_vertices(k)) for k in range(7))
    raise DataError(
        f"{n} vertices is not an icosphere size (expected one of {sizes}, ...). Resample the data to an icosphere first."
    )


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: ``vertices`` (n_vertices, 3) float64 and ``faces`` (n_faces, 3) int64 (read-only)."""

    vertices: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise DataError(f"Mesh vertices must be (n_vertices, 3), found {self.vertices.shape}.")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise DataError(f"Mesh faces must be (n_faces, 3), found {self.faces.shape}.")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise DataError(
                f"Mesh faces index vertices 0..{self.faces.max()}, but the mesh has {len(self.vertices)} vertices."
            )

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    def unit_vertices(self) -> np.ndarray:
        """Vertices projected onto the unit sphere (the mesh must be a sphere centred on the origin)."""
        return self.vertices / np.linalg.norm(self.vertices, axis=1, keepdims=True)

    def mirrored(self) -> Mesh:
        """The mesh reflected through the x = 0 plane (right hemisphere -> left), winding kept outward."""
        return _frozen_mesh(self.vertices * np.array([-1.0, 1.0, 1.0]), self.faces[:, [0, 2, 1]])


def _frozen_mesh(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    vertices, faces = np.array(vertices, dtype=np.float64), np.array(faces, dtype=np.int64)
    vertices.setflags(write=False)
    faces.setflags(write=False)
    return Mesh(vertices, faces)


@functools.cache
def walk_faces(order: int) -> tuple[np.ndarray, ...]:
    """The walk-order triangles (a, b, c) of every order 0..``order`` (see the module docstring) and the unit
    vertices of ``order``: ``(faces_0, ..., faces_order, unit_vertices)``."""
    if not isinstance(order, int | np.integer) or not 0 <= order <= MAX_ORDER:
        raise ConfigError(f"icosphere order must be an integer in 0..{MAX_ORDER}, found {order!r}.")
    points = [_BASE_VERTICES]
    levels = [_BASE_FACES]
    n = len(_BASE_VERTICES)
    for _ in range(order):
        faces = levels[-1]
        # Edges in walk order: triangle by triangle, ab, bc, ca; an edge's midpoint is numbered at first sight.
        edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 3, 2), axis=2).reshape(-1, 2)
        keys = edges[:, 0] * n + edges[:, 1]
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        rank = np.empty(len(unique), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(unique))
        midpoint = (n + rank[inverse]).reshape(-1, 3)  # (n_faces, 3): ab, bc, ca
        ordered_edges = edges[np.sort(first)]
        vertices = np.concatenate(points)
        new = vertices[ordered_edges[:, 0]] + vertices[ordered_edges[:, 1]]
        points.append(new / np.linalg.norm(new, axis=1, keepdims=True))
        a, b, c = faces.T
        ab, bc, ca = midpoint.T
        others = np.stack([np.stack([ab, b, bc], 1), np.stack([ca, ab, bc], 1), np.stack([ca, bc, c], 1)], 1)
        levels.append(np.concatenate([np.stack([a, ab, ca], 1), others.reshape(-1, 3)]))
        n += len(unique)
    return (*levels, np.concatenate(points))


@functools.cache
def icosphere(order: int, radius: float = 100.0) -> Mesh:
    """The order-``order`` icosphere of radius ``radius`` (100 mm, as FreeSurfer and Workbench spheres).

    Its vertices and triangles are numbered as fsaverage's (``icosphere(5)`` is fsaverage5's sphere).
    """
    *levels, unit = walk_faces(order)
    return _frozen_mesh(unit * float(radius), levels[-1][:, [0, 2, 1]])


def check_sphere(mesh: Mesh | np.ndarray, name: str, tolerance: float = 0.05) -> None:
    """Raise :class:`DataError` unless ``mesh`` (or its vertices (n, 3)) is a sphere centred on the origin (radii
    within 5 %)."""
    radius = np.linalg.norm(mesh.vertices if isinstance(mesh, Mesh) else mesh, axis=1)
    if radius.min() <= 0 or (radius.max() - radius.min()) > tolerance * radius.mean():
        raise DataError(
            f"{name} is not a sphere centred on the origin: vertex radii {radius.min():.3g}..{radius.max():.3g}. "
            "Pass the *.sphere surface (sphere.reg / sphere.32k_fs_LR), not a white, pial or midthickness surface."
        )


__all__ = ["Mesh", "icosphere", "n_vertices", "order_of", "walk_faces", "check_sphere", "MAX_ORDER"]
