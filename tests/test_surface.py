"""Icospheres (fsaverage order), triangular patches, sphere-to-sphere resampling and its cache."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError
from brainkit.surface import (
    Mesh,
    icosphere,
    n_vertices,
    order_of,
    resample,
    resample_matrix,
    triangle_patches,
)
from brainkit.surface.resample import vertex_areas


@pytest.fixture(scope="module")
def fsaverage5_sphere() -> Mesh:
    from nilearn.datasets import load_fsaverage

    left = load_fsaverage("fsaverage5")["sphere"].parts["left"]
    return Mesh(np.asarray(left.coordinates, dtype=float), np.asarray(left.faces, dtype=np.int64))


def test_icosphere_is_fsaverage5(fsaverage5_sphere) -> None:
    ico = icosphere(5)
    assert np.array_equal(ico.faces, fsaverage5_sphere.faces)  # same triangles, same winding, same numbering
    angle = np.degrees(
        np.arccos(np.clip((ico.unit_vertices() * fsaverage5_sphere.unit_vertices()).sum(1), -1, 1))
    )
    assert angle.max() < 0.01  # the file's rounding
    assert np.allclose(np.linalg.norm(ico.vertices, axis=1), 100.0)


def test_icosphere_orders_nest() -> None:
    for order in range(5):
        coarse, fine = icosphere(order), icosphere(order + 1)
        assert (coarse.n_vertices, len(coarse.faces)) == (n_vertices(order), 20 * 4**order)
        assert np.allclose(fine.vertices[: coarse.n_vertices], coarse.vertices)
        assert order_of(fine.n_vertices) == order + 1
    # Euler characteristic 2 and outward winding
    ico = icosphere(3)
    edges = {tuple(sorted(e)) for f in ico.faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    assert ico.n_vertices - len(edges) + len(ico.faces) == 2
    v = ico.vertices[ico.faces]
    normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert ((normal * v.mean(1)).sum(1) > 0).all()  # outward (counter-clockwise seen from outside)
    with pytest.raises(ConfigError, match="order must be an integer in 0..8"):
        icosphere(9)
    with pytest.raises(DataError, match="1000 vertices is not an icosphere size"):
        order_of(1000)


@pytest.mark.parametrize(
    ("fine", "coarse", "shape"), [(6, 3, (1280, 45)), (6, 2, (320, 153)), (5, 2, (320, 45))]
)
def test_patch_sizes(fine, coarse, shape) -> None:
    patches = triangle_patches(fine, coarse)
    assert patches.shape == shape
    assert np.array_equal(np.unique(patches), np.arange(n_vertices(fine)))  # every vertex covered
    assert all(len(set(row)) == shape[1] for row in patches[:50])  # no vertex twice in a patch


def test_patches_are_the_coarse_triangles() -> None:
    fine = icosphere(5).unit_vertices()
    coarse = icosphere(2)
    patches = triangle_patches(5, 2)
    walk = coarse.faces[:, [0, 2, 1]]  # back to walk order (a, b, c)
    # the patch's corners (positions 0, last of row 0, last) are the coarse triangle's corners a, c, b
    assert np.array_equal(patches[:, [0, 8, 44]], walk[:, [0, 2, 1]])
    # every patch vertex lies in its coarse triangle (all barycentric weights >= 0)
    corners = coarse.unit_vertices()[walk]
    for p in (0, 17, 319):
        w = np.linalg.solve(corners[p].T, fine[patches[p]].T)
        assert (w > -1e-9).all()
    # position p is the same relative place in every patch: the lattice's first-row neighbour is adjacent
    step = np.linalg.norm(fine[patches[:, 1]] - fine[patches[:, 0]], axis=1)
    assert step.max() < 2 * step.min()
    with pytest.raises(ConfigError, match="0 <= coarse <= fine"):
        triangle_patches(2, 3)


def test_barycentric_reproduces_linear_fields(fsaverage5_sphere) -> None:
    target = icosphere(4)
    matrix = resample_matrix(fsaverage5_sphere, target, "barycentric", use_cache=False)
    assert matrix.shape == (target.n_vertices, 10242)
    assert np.allclose(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)
    assert np.diff(matrix.indptr).max() <= 3
    # ico4 vertices are fsaverage5 vertices: resampling there is the identity (up to the file's rounding)
    field = np.random.default_rng(0).standard_normal((4, 10242)).astype(np.float32)
    assert np.abs(resample(field, matrix) - field[:, : target.n_vertices]).max() < 1e-2


def test_adaptive_downsampling_uses_every_source_vertex(tmp_path) -> None:
    source, target = icosphere(5), icosphere(3)
    matrix = resample_matrix(source, target, "adap_bary_area", cache_dir=tmp_path)
    assert np.allclose(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)
    assert np.unique(matrix.indices).size == source.n_vertices  # reverse weights gather all of them
    smooth = source.unit_vertices() @ np.array([1.0, 2.0, -0.5])
    assert np.abs(resample(smooth, matrix) - target.unit_vertices() @ np.array([1.0, 2.0, -0.5])).max() < 0.05
    assert np.isclose(vertex_areas(source).sum(), 4 * np.pi * 100.0**2, rtol=0.01)


def test_cache_hit_and_corrupt_entry(tmp_path) -> None:
    source, target = icosphere(3), icosphere(2)
    first = resample_matrix(source, target, "barycentric", cache_dir=tmp_path)
    (entry,) = (tmp_path / "resample").glob("barycentric-*.npz")
    assert np.array_equal(
        resample_matrix(source, target, "barycentric", cache_dir=tmp_path).toarray(), first.toarray()
    )
    entry.write_bytes(b"truncated")
    assert np.array_equal(
        resample_matrix(source, target, "barycentric", cache_dir=tmp_path).toarray(), first.toarray()
    )
    assert not list((tmp_path / "resample").glob(".*"))  # no temporary file left behind


def test_resample_errors() -> None:
    source, target = icosphere(2), icosphere(1)
    with pytest.raises(ConfigError, match="is not one of"):
        resample_matrix(source, target, "nearest", use_cache=False)
    flat = Mesh(source.vertices * np.array([1.0, 1.0, 0.2]), source.faces)
    with pytest.raises(DataError, match="not a sphere centred on the origin"):
        resample_matrix(flat, target, use_cache=False)
    matrix = resample_matrix(source, target, "barycentric", use_cache=False)
    with pytest.raises(DataError, match=r"expected \(n_frames, 162\) source vertices"):
        resample(np.zeros((3, 42)), matrix)


def test_mirror_right_onto_left() -> None:
    ico = icosphere(4)
    mirrored = ico.mirrored()
    assert np.allclose(mirrored.vertices[:, 0], -ico.vertices[:, 0])
    v = mirrored.vertices[mirrored.faces]
    assert ((np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]) * v.mean(1)).sum(1) > 0).all()  # still outward
    # a right-hemisphere field g(x, y, z), read through the mirrored sphere, lands at g(-x, y, z) on the left
    coefficients = np.array([1.0, 2.0, -0.5])
    right_field = ico.unit_vertices() @ coefficients
    matrix = resample_matrix(mirrored, ico, "barycentric", use_cache=False)
    expected = (ico.unit_vertices() * np.array([-1.0, 1.0, 1.0])) @ coefficients
    assert np.abs(resample(right_field, matrix) - expected).max() < 0.01
