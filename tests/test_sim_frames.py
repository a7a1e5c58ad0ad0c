"""SIM's one-GIFTI-per-frame layout: writer, reader, and preparing a CIFTI run into it (small files written here)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainkit.data.readers.hcp_movie_surface import MovieRun
from brainkit.data.readers.sim_frames import frames_folder, prepare_run, read_frames, write_frames
from brainkit.errors import ConfigError, FileFormatError
from brainkit.surface import icosphere, n_vertices
from brainkit.surface.workbench import write_sphere


def test_folder_names_follow_sims_layout(tmp_path) -> None:
    folder = frames_folder(tmp_path, "100610", 3, "PA", "right", order=6)
    assert folder == tmp_path / "100610" / "tfMRI_MOVIE3_7T_PA" / "frames_ico6_R"
    with pytest.raises(ConfigError, match="hemisphere must be"):
        frames_folder(tmp_path, "100610", 3, "PA", "both")


def test_write_then_read_round_trip(tmp_path) -> None:
    frames = np.random.default_rng(0).standard_normal((7, 42)).astype(np.float32)
    folder = write_frames(frames, tmp_path / "s" / "tfMRI_MOVIE1_7T_AP" / "frames_ico1_L", "left")
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "frame_000.L.shape.gii" and len(names) == 7
    np.testing.assert_array_equal(read_frames(folder), frames)


def test_reader_errors(tmp_path) -> None:
    folder = write_frames(np.zeros((3, 12), np.float32), tmp_path / "frames_ico0_L", "left")
    (folder / "frame_001.L.shape.gii").unlink()
    with pytest.raises(FileFormatError, match=r"frames \[1\] are missing"):
        read_frames(folder)
    with pytest.raises(FileFormatError, match="not a folder"):
        read_frames(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileFormatError, match="holds no frame_"):
        read_frames(empty)


def _write_cifti(path, frames_left, frames_right, mask) -> None:
    models = nib.cifti2.BrainModelAxis.from_mask(
        mask, name="CortexLeft"
    ) + nib.cifti2.BrainModelAxis.from_mask(mask, name="CortexRight")
    series = nib.cifti2.SeriesAxis(start=0.0, step=1.0, size=len(frames_left), unit="SECOND")
    data = np.concatenate([frames_left[:, mask], frames_right[:, mask]], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True)
    nib.save(nib.Cifti2Image(data, nib.cifti2.Cifti2Header.from_axes((series, models))), path)


def test_prepare_run_resamples_demeans_and_mirrors(tmp_path) -> None:
    # A CIFTI on an order-3 icosphere; prepared onto order 2 (whose vertices are the first 162 of order 3).
    n = n_vertices(3)
    rng = np.random.default_rng(1)
    mask = np.ones(n, bool)
    mask[:2] = False  # medial wall
    offsets = rng.standard_normal(n)
    left = offsets + rng.standard_normal((5, n))
    right = -offsets + rng.standard_normal((5, n))
    path = tmp_path / "in" / "run.dtseries.nii"
    _write_cifti(path, left, right, mask)
    sphere = write_sphere(icosphere(3), tmp_path / "sphere.surf.gii")
    run = MovieRun("100610", 2, "PA", path)
    folders = prepare_run(
        run, tmp_path / "out", {"left": sphere, "right": sphere}, order=2, method="barycentric"
    )
    assert folders["left"] == tmp_path / "out" / "100610" / "tfMRI_MOVIE2_7T_PA" / "frames_ico2_L"
    got = read_frames(folders["left"])
    assert got.shape == (5, n_vertices(2))
    expected = np.where(mask, left - left.mean(axis=0), 0.0)[:, : n_vertices(2)]  # nested vertices: exact
    np.testing.assert_allclose(got, expected, atol=1e-5)
    mirrored = read_frames(folders["right"])
    assert mirrored.shape == (5, n_vertices(2)) and np.abs(mirrored).max() > 0
    np.testing.assert_allclose(mirrored.mean(axis=0)[mask[: n_vertices(2)]], 0.0, atol=1e-5)  # demeaned
    with pytest.raises(FileFormatError, match="pass the sphere the CIFTI was made on"):
        prepare_run(
            run,
            tmp_path / "bad",
            {"left": write_sphere(icosphere(2), tmp_path / "s2.surf.gii"), "right": sphere},
        )
