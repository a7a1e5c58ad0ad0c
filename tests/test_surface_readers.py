"""Surface readers on files the tests write (CIFTI dtseries, GIFTI, mgh/mgz) and on nibabel's own test files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.surface import order_of
from brainkit.surface.readers import normalise_frames, read_cifti_hemispheres, read_mesh, read_surface_frames


def _write_dtseries(
    path: Path, n_frames: int, n_vertices: int, rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small dtseries in the HCP layout: left cortex, right cortex (medial walls absent), one subcortical voxel."""
    cortex_left = rng.random(n_vertices) > 0.2
    cortex_right = rng.random(n_vertices) > 0.3
    models = (
        nib.cifti2.BrainModelAxis.from_mask(cortex_left, name="CortexLeft")
        + nib.cifti2.BrainModelAxis.from_mask(cortex_right, name="CortexRight")
        + nib.cifti2.BrainModelAxis.from_mask(
            np.ones((1, 1, 1), bool), name="thalamus_left", affine=np.eye(4)
        )
    )
    series = nib.cifti2.SeriesAxis(start=0.0, step=1.0, size=n_frames, unit="SECOND")
    data = rng.standard_normal((n_frames, len(models))).astype(np.float32)
    header = nib.cifti2.Cifti2Header.from_axes((series, models))
    nib.save(nib.Cifti2Image(data, header), path)
    return data, cortex_left, cortex_right


def test_cifti_split_hemispheres(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "tfMRI_MOVIE1_7T_AP_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii"
    data, left_mask, right_mask = _write_dtseries(path, n_frames=7, n_vertices=23, rng=rng)
    hemis = read_cifti_hemispheres(path)
    left, right = hemis["left"], hemis["right"]
    assert left.frames.shape == right.frames.shape == (7, 23) and left.tr == 1.0
    assert np.array_equal(left.mask, left_mask) and np.array_equal(right.mask, right_mask)
    assert np.array_equal(left.frames[:, left_mask], data[:, : left_mask.sum()])
    n_left = left_mask.sum()
    assert np.array_equal(right.frames[:, right_mask], data[:, n_left : n_left + right_mask.sum()])
    assert (left.frames[:, ~left_mask] == 0).all()


def test_gifti_and_mgh_frames(tmp_path) -> None:
    frames = np.random.default_rng(1).standard_normal((5, 42)).astype(np.float32)
    gifti = nib.gifti.GiftiImage()
    for frame in frames:
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(frame, intent="NIFTI_INTENT_NONE"))
    nib.save(gifti, tmp_path / "run.L.func.gii")
    assert np.array_equal(read_surface_frames(tmp_path / "run.L.func.gii"), frames)
    for suffix in ("mgh", "mgz"):
        nib.save(nib.MGHImage(frames.T.reshape(42, 1, 1, 5), np.eye(4)), tmp_path / f"lh.run.{suffix}")
        assert np.array_equal(read_surface_frames(tmp_path / f"lh.run.{suffix}"), frames)


def test_nibabel_task_func_gii_is_ico3() -> None:
    folder = Path(nib.__file__).parent / "gifti" / "tests" / "data"
    frames = read_surface_frames(folder / "task.func.gii")
    assert frames.shape == (10, 642) and order_of(frames.shape[1]) == 3
    curvature = read_surface_frames(folder / "rh.shape.curv.gii")
    assert curvature.shape[0] == 1


def test_real_brainspace_mgz_run() -> None:
    from brainkit.data.builtin.nsd_like_simulation import REST_RUN, _brainspace_file

    frames = read_surface_frames(_brainspace_file(REST_RUN.format(hemi="lh")))
    assert frames.shape == (652, 10242)


def test_normalise_frames() -> None:
    rng = np.random.default_rng(2)
    frames = rng.standard_normal((9, 31)) * 3 + 5
    mask = np.ones(31, bool)
    mask[[0, 4]] = False
    out = normalise_frames(frames, mask)
    assert np.allclose(out[:, mask].mean(axis=1), 0, atol=1e-5) and np.allclose(
        out[:, mask].std(axis=1), 1, atol=1e-4
    )
    assert (out[:, ~mask] == 0).all()
    demeaned = normalise_frames(frames, mask, per_frame=False)
    assert np.allclose(demeaned[:, mask].mean(axis=0), 0, atol=1e-5)


def test_reader_errors(tmp_path) -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        read_surface_frames(tmp_path / "missing.func.gii")
    (tmp_path / "bad.func.gii").write_text("<not gifti")
    with pytest.raises(FileFormatError, match="could not be read by nibabel"):
        read_surface_frames(tmp_path / "bad.func.gii")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), tmp_path / "vol.nii")
    with pytest.raises(FileFormatError, match="is not a CIFTI-2 file"):
        read_cifti_hemispheres(tmp_path / "vol.nii")
    with pytest.raises(FileFormatError, match="expected GIFTI"):
        read_surface_frames(tmp_path / "vol.nii")
    with pytest.raises(DataError, match=r"mask must be \(n_vertices,\)"):
        normalise_frames(np.zeros((3, 5)), np.zeros(4, bool))


def test_real_fslr_spheres_to_icosphere(tmp_path) -> None:
    """brainspace's real fsLR-32k (Conte69) spheres: both hemispheres land on one left-looking icosphere."""
    from brainkit.data.packaged import package_file
    from brainkit.surface.resample import hemisphere_to_icosphere

    spheres = {
        hemi: read_mesh(package_file("brainspace", f"datasets/surfaces/conte69_32k_{h}_sphere.gii", "test"))
        for hemi, h in (("left", "lh"), ("right", "rh"))
    }
    assert spheres["left"].n_vertices == 32492
    x = {hemi: sphere.unit_vertices()[:, 0] for hemi, sphere in spheres.items()}  # a lateral-medial gradient
    on_ico = {
        hemi: hemisphere_to_icosphere(x[hemi][None], spheres[hemi], hemi, order=4, cache_dir=tmp_path)
        for hemi in spheres
    }
    # left x and mirrored right -x are the same field on the icosphere (fs_LR is left-right symmetric)
    assert np.corrcoef(on_ico["left"][0], -on_ico["right"][0])[0, 1] > 0.99
    with pytest.raises(ConfigError, match="hemisphere must be 'left' or 'right'"):
        hemisphere_to_icosphere(x["left"][None], spheres["left"], "lh", cache_dir=tmp_path)
    with pytest.raises(FileFormatError, match="not a surface geometry file"):
        read_mesh(Path(nib.__file__).parent / "gifti" / "tests" / "data" / "task.func.gii")
