"""Patch tables and template spheres in SIM's released layout (metrics-lab/sim), the rotation + renumbering
between brainkit's icosphere and such a template, and the ``patches`` option of SiT and the vsmae/sim recipes.

The files are written here by hand in SIM's layout: ``patch_extraction/triangle_indices_ico_{fine}_sub_ico_
{coarse}.csv`` (a header row of patch numbers, one column per patch, one row per within-patch position) and
``data/templates/coordinates_ico_{fine}_L.shape.gii`` (three float32 arrays: x, y, z). The "SIM-like" template is
our icosphere turned by a known rotation and renumbered by a known permutation; its table is our triangle patches
renumbered, with the patch order and each patch's within-patch order shuffled (differently patch by patch).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.surface import icosphere, triangle_patches
from brainkit.surface.correspondence import all_correspondences, find_correspondence
from brainkit.surface.patch_files import read_patch_table, read_sphere, write_patch_table
from brainkit.surface.patch_grid import patch_grid


def rotation(axis, degrees: float) -> np.ndarray:
    """Rodrigues' rotation matrix about ``axis``."""
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


def write_csv(path: Path, columns: list[list[int]], header: list[int] | None = None) -> None:
    """SIM's layout by hand: the header names the columns, column c holds one patch's vertices top to bottom."""
    header = list(range(len(columns))) if header is None else header
    lines = [",".join(map(str, header))]
    lines += [",".join(str(col[r]) for col in columns) for r in range(len(columns[0]))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_coordinates(path: Path, vertices: np.ndarray) -> None:
    """SIM's template layout: a GIFTI of three float32 arrays (x, y, z coordinate), no triangles."""
    import nibabel as nib

    arrays = [
        nib.gifti.GiftiDataArray(vertices[:, i].astype(np.float32), intent="NIFTI_INTENT_NORMAL",
                                 meta={"Name": f"{axis} coordinate"})
        for i, axis in enumerate("xyz")
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.gifti.GiftiImage(darrays=arrays), path)


class SimLike:
    """A SIM-like folder at order ``fine`` / ``coarse``: template[k] = R @ ours[order[k]] (x 100 mm)."""

    def __init__(self, root: Path, fine: int = 3, coarse: int = 1, degrees: float = 20.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.root, self.fine, self.coarse = root, fine, coarse
        self.R = rotation([1.0, 2.0, 3.0], degrees)
        ours = icosphere(fine).unit_vertices()
        self.order = rng.permutation(len(ours))  # template vertex k is our vertex order[k]
        self.inverse = np.argsort(self.order)
        self.vertices = 100.0 * (ours[self.order] @ self.R.T)
        ours_table = np.asarray(triangle_patches(fine, coarse))
        self.patch_order = rng.permutation(len(ours_table))  # SIM's patch p is our patch patch_order[p]
        self.within = np.stack([rng.permutation(ours_table.shape[1]) for _ in ours_table])  # one per patch
        self.table = np.stack(
            [self.inverse[ours_table[q][self.within[p]]] for p, q in enumerate(self.patch_order)]
        )  # (n_patches, n_patch_vertices), template numbering
        write_coordinates(root / f"data/templates/coordinates_ico_{fine}_L.shape.gii", self.vertices)
        write_csv(
            root / f"patch_extraction/triangle_indices_ico_{fine}_sub_ico_{coarse}.csv", self.table.tolist()
        )

    @property
    def spec(self) -> str:
        return f"sim:{self.root}"


@pytest.fixture()
def sim_like(tmp_path) -> SimLike:
    return SimLike(tmp_path / "sim")


def test_reads_sims_layout_by_header_name(tmp_path) -> None:
    # Two patches of three vertices; the columns are stored as "1", "0": SIM's loader takes table["0"] for patch 0.
    path = tmp_path / "t.csv"
    path.write_text("1,0\n7,5\n8,6\n9,4\n")
    table = read_patch_table(path, n_vertices=10)
    assert table.tolist() == [[5, 6, 4], [7, 8, 9]]
    assert not table.flags.writeable
    frames = np.arange(20.0).reshape(2, 10) * 10  # frame t, vertex v -> 100 t + 10 v
    cut = frames[:, table]  # SIM: sequence[:, j, :] = data[:, table[str(j)]]
    assert cut.shape == (2, 2, 3)
    assert cut[1, 0, 2] == 140.0 and cut[0, 1, 0] == 70.0  # frame 1, vertex 4; frame 0, vertex 7
    write_patch_table(table, tmp_path / "back.csv")
    assert (tmp_path / "back.csv").read_text() == "0,1\n5,7\n6,8\n4,9\n"


def test_sim_like_grid_equals_the_file_and_cuts_as_sims_loader(sim_like) -> None:
    grid = patch_grid(sim_like.spec, 3, 1)
    assert grid.numbering == "template" and grid.table.shape == (80, 15)
    assert np.array_equal(grid.table, sim_like.table)  # exactly the file
    csv_rows = (
        (sim_like.root / "patch_extraction/triangle_indices_ico_3_sub_ico_1.csv").read_text().splitlines()
    )
    rng = np.random.default_rng(1)
    frames_sim = rng.standard_normal((3, 642))  # a clip prepared in the template's vertex order
    cut = frames_sim[:, grid.table]
    # hand check: patch 5, position 2 is line 1 + 2 + 1 of the file, column 5; patch 79, position 14 the last line
    v = int(csv_rows[3].split(",")[5])
    assert np.array_equal(cut[:, 5, 2], frames_sim[:, v])
    v = int(csv_rows[15].split(",")[79])
    assert np.array_equal(cut[:, 79, 14], frames_sim[:, v])
    # the same frames in brainkit's vertex order, cut by the renumbered table: the same clip exactly
    frames_ours = frames_sim[:, sim_like.inverse]  # our vertex i is template vertex inverse[i]
    assert np.array_equal(frames_ours[:, grid.in_brainkit_order()], cut)
    assert np.array_equal(grid.correspondence.from_template(frames_sim), frames_ours)
    assert np.array_equal(grid.correspondence.to_template(frames_ours), frames_sim)
    # the patches are our triangles, in another patch order and another within-patch order in every patch
    ours = np.asarray(triangle_patches(3, 1))
    assert np.array_equal(grid.in_brainkit_order()[7], ours[sim_like.patch_order[7]][sim_like.within[7]])
    assert len({tuple(w) for w in sim_like.within}) == 80
    assert not np.array_equal(grid.table, ours)


def test_finder_recovers_the_rotation_and_renumbering(sim_like) -> None:
    vertices, faces = read_sphere(sim_like.root / "data/templates/coordinates_ico_3_L.shape.gii")
    assert faces is None and vertices.shape == (642, 3)
    found = find_correspondence(vertices)
    assert np.array_equal(found.order, sim_like.order)
    assert np.allclose(found.rotation, sim_like.R, atol=1e-6)
    assert found.angle == pytest.approx(20.0, abs=1e-4) and found.error < 1e-4 and found.level == 3
    # the template mesh it rebuilds: the file's vertices, our triangles renumbered (same neighbourhoods)
    mesh = found.mesh()
    assert np.allclose(mesh.vertices, vertices, atol=1e-3)
    ours = icosphere(3)
    assert np.array_equal(sim_like.order[mesh.faces], ours.faces)


def test_all_sixty_rotations_and_the_smallest_first() -> None:
    R = rotation([0.3, -1.0, 0.2], 100.0)  # not the smallest of its 60: the finder returns a smaller one
    order = np.random.default_rng(2).permutation(162)
    template = (icosphere(2).unit_vertices() @ R.T)[order]
    found = all_correspondences(template)
    assert len(found) == 60
    angles = [c.angle for c in found]
    assert angles == sorted(angles) and angles[0] < 100.0 - 1e-3
    ours = icosphere(2).unit_vertices()
    for c in found:  # every one is exact: template[k] = R_c @ ours[order_c[k]]
        assert np.allclose(template, ours[c.order] @ c.rotation.T, atol=1e-9)
        assert np.isclose(np.linalg.det(c.rotation), 1.0)
    given = [c for c in found if np.allclose(c.rotation, R, atol=1e-9)]
    assert len(given) == 1 and np.array_equal(given[0].order, order)
    assert find_correspondence(template).angle == angles[0]


def test_finder_at_ico6_is_fast() -> None:
    R = rotation([1.0, 0.0, 0.5], 31.7)
    order = np.random.default_rng(3).permutation(40962)
    template = 100.0 * (icosphere(6).unit_vertices() @ R.T)[order].astype(np.float32)  # a file's rounding
    start = time.perf_counter()
    found = find_correspondence(template.astype(np.float64))
    assert time.perf_counter() - start < 5.0
    assert np.array_equal(found.order, order) and found.error < 1e-3


def test_table_errors(tmp_path) -> None:
    def table(text: str, **kw):
        path = tmp_path / "bad.csv"
        path.write_text(text)
        return read_patch_table(path, **kw)

    with pytest.raises(FileFormatError, match="number the patches 0..1"):
        table("0,2\n1,2\n")
    with pytest.raises(FileFormatError, match="line 3"):
        table("0,1\n1,2\n3.0,4\n")
    with pytest.raises(FileFormatError, match=r"lines \[3\]"):
        table("0,1\n1,2\n3\n")
    with pytest.raises(DataError, match="patch 1 position 1 is vertex 12, outside 0..9"):
        table("0,1\n1,2\n3,12\n", n_vertices=10)
    with pytest.raises(DataError, match="outside"):
        table("0,1\n1,-2\n3,4\n")
    with pytest.raises(DataError, match=r"1 patches list a vertex twice \(patch 0: vertices \[3\]"):
        table("0,1\n3,2\n3,4\n")
    assert table("0,1\n3,2\n3,4\n", allow_repeats=True).tolist() == [[3, 3], [2, 4]]
    with pytest.raises(DataError, match="2 patches of 2 vertices, but the grid needs 80 of 45"):
        table("0,1\n1,2\n3,4\n", shape=(80, 45))
    with pytest.raises(FileFormatError, match="does not exist"):
        read_patch_table(tmp_path / "missing.csv")


def test_grid_errors(sim_like, tmp_path) -> None:
    with pytest.raises(ConfigError, match="'icosphere', 'file:PATH'"):
        patch_grid("csv:x", 3, 1)
    with pytest.raises(FileFormatError, match="no patch table .*sub_ico_2"):
        patch_grid(sim_like.spec, 3, 2)  # SIM's folder has no ico3/ico2 table
    # a transposed or wrong-grid file: the shape check names both
    write_csv(tmp_path / "t.csv", np.asarray(triangle_patches(3, 1)).T.tolist())
    with pytest.raises(DataError, match="15 patches of 80 vertices, but the grid needs 80 of 15"):
        patch_grid(f"file:{tmp_path / 't.csv'}", 3, 1)
    # a table for ico6 read as ico3: indices out of range
    write_csv(tmp_path / "big.csv", (np.asarray(triangle_patches(3, 1)) + 1000).tolist())
    with pytest.raises(DataError, match="outside 0..641"):
        patch_grid(f"file:{tmp_path / 'big.csv'}", 3, 1)
    # a template whose vertex count does not match the grid
    bad = tmp_path / "wrong"
    (bad / "patch_extraction").mkdir(parents=True)
    (bad / "patch_extraction/triangle_indices_ico_3_sub_ico_1.csv").write_text(
        (sim_like.root / "patch_extraction/triangle_indices_ico_3_sub_ico_1.csv").read_text()
    )
    write_coordinates(
        bad / "data/templates/coordinates_ico_3_L.shape.gii", 100 * icosphere(2).unit_vertices()
    )
    with pytest.raises(DataError, match="has 162 vertices; the order-3 grid needs 642"):
        patch_grid(f"sim:{bad}", 3, 1)
    # an icosphere-sized point set that is no icosphere: no rotation lands on it
    noisy = icosphere(3).unit_vertices() + np.random.default_rng(4).normal(scale=0.02, size=(642, 3))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    write_coordinates(bad / "data/templates/coordinates_ico_3_L.shape.gii", 100 * noisy)
    with pytest.raises(DataError, match="not a geodesic icosphere|no rotation"):
        patch_grid(f"sim:{bad}", 3, 1)
    with pytest.raises(DataError, match="not an icosphere size"):
        find_correspondence(np.random.default_rng(5).normal(size=(100, 3)))


def test_sit_positions_from_the_files_patch_centres(sim_like) -> None:
    from brainkit.models.sit import SiT, SiTConfig, patch_centres, sphere_sincos

    config = SiTConfig(n_patches=80, n_patch_vertices=15, n_frames=3, dim=12, depth=1, n_heads=2, head_dim=6,
                       positions="sphere", patch_order=1, patches=sim_like.spec)  # fmt: skip
    model = SiT(config)
    unit = sim_like.vertices / 100.0
    centres = unit[sim_like.table].mean(axis=1)  # patch p of the file: the mean of its 15 vertices
    expected = sphere_sincos(torch.as_tensor(centres / np.linalg.norm(centres, axis=1, keepdims=True)), 12)
    assert torch.allclose(model.positions, expected, atol=1e-6)
    # patch 3's centre by hand from the file's column 3
    centre = sum(unit[v] for v in sim_like.table[3]) / 15
    assert np.allclose(patch_centres(80, 1, sim_like.spec, 15)[3].numpy(), centre / np.linalg.norm(centre))
    index = SiT(SiTConfig(**{**config.__dict__, "positions": "index", "patches": "sim:/no/such/folder"}))
    assert index.positions.shape == (80, 12)  # SIM's index positions never read the files
    with pytest.raises(ConfigError, match="is not one of 'icosphere'"):
        SiT(SiTConfig(**{**config.__dict__, "patches": "sim"}))


def test_recipes_cut_with_the_sim_table(sim_like) -> None:
    import dataclasses

    from sim_fixture import synthetic_movie_data

    from brainkit.recipes import sim as sim_recipe
    from brainkit.recipes import vsmae as vsmae_recipe

    data = synthetic_movie_data(n_subjects=3, order=3)
    base = sim_recipe.PRESETS["testing"]
    config = dataclasses.replace(base, n_test_subjects=1,
                                 vsmae=dataclasses.replace(base.vsmae, patches=sim_like.spec))  # fmt: skip
    split = sim_recipe.prepare(config, data)
    assert split["encoder"].patches == sim_like.spec
    # the recipe's data are in brainkit's order: SIM's patches, SIM's patch and within-patch order
    assert np.array_equal(split["patches"], sim_like.order[sim_like.table])
    frames = np.asarray(data.fmri)[0, 0, :3]  # (3 frames, 642) of subject 0, run 0, brainkit order
    as_sim = frames[:, sim_like.order]  # the same frames in the template's order
    assert np.array_equal(frames[:, split["patches"]], as_sim[:, sim_like.table])
    model = vsmae_recipe.build_vsmae(dataclasses.replace(config.vsmae, fine_order=3), *split["patches"].shape)
    assert model.config.encoder.patches == sim_like.spec


def test_vsmae_recipe_reads_a_file_table(tmp_path) -> None:
    import dataclasses

    from brainkit.recipes import vsmae as vsmae_recipe

    table = np.asarray(triangle_patches(3, 1))[::-1, ::-1]  # our patches, both orders reversed
    write_csv(tmp_path / "t.csv", table.tolist())
    config = dataclasses.replace(vsmae_recipe.PRESETS["testing"], patches=f"file:{tmp_path / 't.csv'}")
    data = vsmae_recipe.prepare(config)
    assert np.array_equal(data["patches"], table)
    assert data["train"].shape[2:] == (80, 15)
