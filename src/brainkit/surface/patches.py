"""Triangular patches: a fine icosphere cut into the triangles of a coarser one (the SiT construction).

Each triangle ``(a, b, c)`` of the order-``coarse`` icosphere, subdivided ``d = fine - coarse`` times, covers a
triangular lattice of ``(2**d + 1) (2**d + 2) / 2`` vertices of the order-``fine`` icosphere: ico6 by ico3 gives
1,280 patches of 45 vertices, ico6 by ico2 320 of 153, ico5 by ico2 320 of 45. Vertices on a triangle's edges
belong to the two or more patches that share them (as in SiT).

Order within a patch: the lattice point ``a + i (b - a) / n + j (c - a) / n`` (``n = 2**d``, corners in the
walk order of :mod:`brainkit.surface.icosphere`) comes at position ``i`` rows then ``j``: ``(0, 0), (0, 1), ...,
(0, n), (1, 0), ..., (n, 0)``. The lattice coordinates are tracked exactly through the subdivision (integers, no
geometry), so position ``p`` is the same relative place in every patch, and the result is deterministic.
"""

from __future__ import annotations

import functools

import numpy as np

from brainkit.errors import ConfigError
from brainkit.surface.icosphere import walk_faces

# Corners of the four children of (a, b, c), as indices into (a, b, c, ab, bc, ca); child 0 keeps the parent's
# number, children 1..3 are appended (see icosphere.py).
_CHILDREN = np.array([(0, 3, 5), (3, 1, 4), (5, 3, 4), (5, 4, 2)])


def n_patch_vertices(fine: int, coarse: int) -> int:
    """Vertices per patch: (2**d + 1)(2**d + 2) / 2 with d = fine - coarse."""
    n = 2 ** (fine - coarse)
    return (n + 1) * (n + 2) // 2


def fine_order_of(coarse: int, n_vertices_per_patch: int | None) -> int:
    """The fine order whose patches on the order-``coarse`` grid have ``n_vertices_per_patch`` vertices."""
    for d in range(9):
        if n_patch_vertices(coarse + d, coarse) == n_vertices_per_patch:
            return coarse + d
    raise ConfigError(
        f"{n_vertices_per_patch} vertices per patch is not a triangular patch size (3, 6, 15, 45, 153, ...)."
    )


@functools.cache
def triangle_patches(fine: int = 6, coarse: int = 3) -> np.ndarray:
    """Vertex indices of the order-``fine`` icosphere in each triangle of the order-``coarse`` one.

    Returns a read-only int64 array (n_patches = 20 * 4**coarse, n_patch_vertices), in the order of the module
    docstring. ``triangle_patches(6, 3)`` has shape (1280, 45).
    """
    if not (isinstance(fine, int) and isinstance(coarse, int) and 0 <= coarse <= fine):
        raise ConfigError(
            f"patches need integer orders 0 <= coarse <= fine, found fine={fine}, coarse={coarse}."
        )
    levels = walk_faces(fine)[:-1]
    n = 2 ** (fine - coarse)
    n_patches = len(levels[coarse])
    face = np.arange(n_patches)[:, None]  # (patches, faces in the patch), numbered at the current level
    corners = np.array([[0, 0], [n, 0], [0, n]])[None, None].repeat(
        n_patches, 0
    )  # (p, f, 3, 2) lattice (i, j)
    for level in range(coarse, fine):
        n_faces = len(levels[level])
        a, b, c = corners[:, :, 0], corners[:, :, 1], corners[:, :, 2]
        six = np.stack([a, b, c, (a + b) // 2, (b + c) // 2, (c + a) // 2], axis=2)  # (p, f, 6, 2)
        corners = six[:, :, _CHILDREN].reshape(n_patches, -1, 3, 2)  # children of each face, in child order
        face = np.stack([face, n_faces + 3 * face, n_faces + 3 * face + 1, n_faces + 3 * face + 2], 2)
        face = face.reshape(n_patches, -1)
    vertices = levels[fine][face]  # (p, f, 3) vertex ids matching ``corners``
    i, j = corners[..., 0], corners[..., 1]
    slot = i * (n + 1) - i * (i - 1) // 2 + j  # row-major position of (i, j) in the triangle i + j <= n
    out = np.full((n_patches, n_patch_vertices(fine, coarse)), -1, dtype=np.int64)
    rows = np.broadcast_to(np.arange(n_patches)[:, None, None], slot.shape)
    out[rows, slot] = vertices
    out.setflags(write=False)
    return out


__all__ = ["triangle_patches", "n_patch_vertices", "fine_order_of"]
