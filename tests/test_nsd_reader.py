"""The NSD reader on tiny files written in NSD's real layout (see tests/nsd_fixture.py)."""

from __future__ import annotations

import gzip
import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nsd_fixture import (
    N_SHARED,
    TRIALS_PER_SESSION,
    image_colour,
    write_hdf5_betas,
    write_nifti,
    write_nsd_fixture,
)

from brainkit.data.readers import nsd
from brainkit.data.readers.nsd import load_nsd, read_design, read_images, read_stim_info
from brainkit.errors import DataError, FileFormatError
from brainkit.registry import DATASETS

BETAS = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"


def expected_values(truth: dict, subject: str, sessions, zscore: bool = True) -> np.ndarray:
    """What the loader must return for all trials of ``sessions``: (n_trials, n_voxels)."""
    rows = []
    for session in sessions:
        values = truth["betas"][subject][session][truth["mask"][subject]].T / 300.0
        if zscore:
            values = (values - values.mean(0)) / values.std(0)
        rows.append(values)
    return np.concatenate(rows).astype(np.float32)


def trial_nsd_ids(truth: dict, subject_row: int, sessions) -> np.ndarray:
    return np.concatenate([truth["subjectim"][subject_row, truth["master"][s - 1]] for s in sessions])


def test_design_is_read_zero_based_with_runs(tmp_path):
    truth = write_nsd_fixture(tmp_path)
    design = read_design(tmp_path)
    assert design.n_sessions == 3
    trials = design.trials("subj01", [2, 3])
    assert len(trials) == 2 * TRIALS_PER_SESSION
    assert trials["run"].tolist() == [1, 1, 2, 2, 2] * 2
    assert trials["trial"].tolist() == list(range(5)) * 2
    assert trials["master_trial"].tolist() == list(range(5, 15))
    np.testing.assert_array_equal(trials["nsd_id"], trial_nsd_ids(truth, 0, [2, 3]))
    np.testing.assert_array_equal(trials["shared"], trials["image10k"] < N_SHARED)
    info = read_stim_info(tmp_path)
    assert info["shared1000"].dtype == bool and info["shared1000"].sum() == N_SHARED


def test_load_nsd_end_to_end(tmp_path):
    truth = write_nsd_fixture(tmp_path)
    data = load_nsd(tmp_path, image_size=6)  # sessions=None: all (3) design sessions, capped at 37
    assert data.subjects == ["subj01"] and data.info["sessions"] == {"subj01": [1, 2, 3]}
    train, test = data.train["subj01"], data.test["subj01"]
    n_voxels = int(truth["mask"]["subj01"].sum())
    assert train.n_features == test.n_features == n_voxels and train.space == "nsdgeneral"
    assert train.feature_coords.shape == (n_voxels, 3)

    ids = trial_nsd_ids(truth, 0, [1, 2, 3])
    shared = np.isin(ids, truth["subjectim"][0, :N_SHARED])
    everything = expected_values(truth, "subj01", [1, 2, 3])
    np.testing.assert_allclose(train.values, everything[~shared], atol=1e-5)
    assert train.stimulus_ids.tolist() == [f"nsd-{i}" for i in ids[~shared]]
    assert train.run.tolist() == np.tile([1, 1, 2, 2, 2], 3)[~shared].tolist()
    assert set(train.session.tolist()) == {1, 2, 3}

    assert len(test) == N_SHARED  # each shared image once, averaged over its repeats
    for row, stimulus in enumerate(test.stimulus_ids):
        trials = np.nonzero(np.char.add("nsd-", ids.astype(str)) == stimulus)[0]
        assert test.n_repeats[row] == len(trials) > 1
        np.testing.assert_allclose(test.values[row], everything[trials].mean(0), atol=1e-5)

    stimuli = data.stimuli
    assert stimuli.ids.tolist() == [f"nsd-{i}" for i in np.unique(ids)]
    assert stimuli.images.shape == (len(stimuli), 6, 6, 3)
    for nsd_id, image in zip(data.info["nsd_id"], stimuli.images):
        assert (image == image_colour(nsd_id)).all()
    np.testing.assert_array_equal(data.info["coco_id"], truth["coco_id"][data.info["nsd_id"]])
    assert data.info["invalid_values"] == {}


def test_hdf5_and_nifti_give_the_same_matrix_and_psc_without_zscore(tmp_path):
    truth = write_nsd_fixture(tmp_path, beta_format="both")
    from_hdf5 = load_nsd(tmp_path, sessions=(1, 2), image_size=None, beta_format="hdf5", zscore=False)
    from_nifti = load_nsd(tmp_path, sessions=(1, 2), image_size=None, beta_format="nifti", zscore=False)
    np.testing.assert_array_equal(from_hdf5.train["subj01"].values, from_nifti.train["subj01"].values)
    np.testing.assert_array_equal(from_hdf5.test["subj01"].values, from_nifti.test["subj01"].values)
    ids = trial_nsd_ids(truth, 0, [1, 2])
    shared = np.isin(ids, truth["subjectim"][0, :N_SHARED])
    psc = expected_values(truth, "subj01", [1, 2], zscore=False)
    np.testing.assert_allclose(from_hdf5.train["subj01"].values, psc[~shared], rtol=1e-6)
    assert from_hdf5.stimuli.images is None
    # sessions 1-2 only: the third shared image was shown once, the others twice
    assert sorted(from_hdf5.test["subj01"].n_repeats.tolist()) == [1, 2, 2]


def test_two_subjects_and_the_registry(tmp_path):
    write_nsd_fixture(tmp_path, subjects=(1, 2))
    data = DATASETS.get("nsd")(root=tmp_path, subjects=(1, "subj02"), image_size=None)
    assert data.subjects == ["subj01", "subj02"]
    assert set(data.test["subj01"].stimulus_ids) == set(data.test["subj02"].stimulus_ids)
    assert not set(data.train["subj01"].stimulus_ids) & set(data.train["subj02"].stimulus_ids)
    assert len(data.stimuli) == N_SHARED + 2 * 5


def test_missing_files_name_the_nsd_path(tmp_path):
    with pytest.raises(
        FileFormatError, match=r"nsddata/experiments/nsd/nsd_expdesign\.mat.*natural-scenes-dataset"
    ):
        load_nsd(tmp_path)
    write_nsd_fixture(tmp_path)
    (tmp_path / BETAS / "betas_session02.hdf5").unlink()
    with pytest.raises(FileFormatError, match=r"betas_session02\.hdf5 or .*betas_session02\.nii\.gz"):
        load_nsd(tmp_path, image_size=None)


def test_truncated_hdf5_and_nifti(tmp_path):
    write_nsd_fixture(tmp_path, beta_format="both")
    path = tmp_path / BETAS / "betas_session01.hdf5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FileFormatError, match=r"betas_session01\.hdf5.*truncated"):
        load_nsd(tmp_path, image_size=None, beta_format="hdf5")
    path = tmp_path / BETAS / "betas_session01.nii.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) // 2])[:-40])
    with pytest.raises(FileFormatError, match=r"betas_session01\.nii\.gz.*truncated"):
        load_nsd(tmp_path, image_size=None, beta_format="nifti")


def test_mask_and_trial_count_mismatches(tmp_path):
    truth = write_nsd_fixture(tmp_path)
    betas = truth["betas"]["subj01"][1]
    write_hdf5_betas(tmp_path / BETAS / "betas_session01.hdf5", betas[..., :4])
    with pytest.raises(FileFormatError, match="session 1: the betas hold 4 trials, the design 5"):
        load_nsd(tmp_path, image_size=None)
    write_hdf5_betas(tmp_path / BETAS / "betas_session01.hdf5", betas[:, :, :8])
    with pytest.raises(FileFormatError, match=r"spatial shape \(7, 8, 8\).*mask has shape \(7, 8, 9\)"):
        load_nsd(tmp_path, image_size=None)


def test_unknown_subject_and_sessions_out_of_range(tmp_path):
    write_nsd_fixture(tmp_path)
    with pytest.raises(DataError, match="Unknown NSD subject 'subj09'"):
        load_nsd(tmp_path, subjects=("subj09",))
    with pytest.raises(DataError, match=r"sessions \[4\] out of range.*sessions 1-3 \(40 completed"):
        load_nsd(tmp_path, sessions=(1, 4))
    with pytest.raises(DataError, match=r"sessions \[0\] out of range"):
        load_nsd(tmp_path, sessions=(0,))


def test_non_finite_and_constant_voxels_are_zeroed_and_counted(tmp_path, caplog):
    truth = write_nsd_fixture(tmp_path, beta_format="nifti")
    mask = truth["mask"]["subj01"]
    voxels = np.argwhere(mask)
    betas = truth["betas"]["subj01"][2].astype(np.float32)
    betas[tuple(voxels[0])] = np.nan  # a voxel with no valid trial: 5 NaN
    betas[tuple(voxels[1])][3] = np.inf  # one bad entry
    betas[tuple(voxels[2])] = 0.0  # an all-zero voxel
    write_nifti(tmp_path / BETAS / "betas_session02.nii.gz", betas)
    with caplog.at_level(logging.WARNING, logger=nsd.__name__):
        data = load_nsd(tmp_path, sessions=(1, 2), image_size=None)
    assert "6 non-finite beta(s)" in caplog.text and "2 constant voxel(s)" in caplog.text
    assert data.info["invalid_values"] == {"subj01": {2: {"non_finite": 6, "constant_voxels": 2}}}
    session2 = data.train["subj01"].values[data.train["subj01"].session == 2]
    assert np.isfinite(session2).all() and (session2[:, :1] == 0).all() and (session2[:, 2] == 0).all()
    with pytest.raises(DataError, match="6 non-finite beta.*2 constant voxel.*invalid='zero'"):
        load_nsd(tmp_path, sessions=(2,), image_size=None, invalid="raise")


def test_mismatched_stimulus_ids_raise(tmp_path):
    write_nsd_fixture(tmp_path)
    path = tmp_path / "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
    table = pd.read_csv(path, index_col=0)
    first, second = table.index[table["subject1_rep0"] == 1][0], table.index[table["subject1_rep0"] == 2][0]
    table.loc[[first, second], "subject1_rep0"] = [2, 1]
    table.to_csv(path)
    with pytest.raises(DataError, match=r"2 trial\(s\) show different images.*session 1 trial 0"):
        load_nsd(tmp_path, image_size=None)
    assert load_nsd(tmp_path, image_size=None, check_stim_info=False).subjects == ["subj01"]
    table.loc[table.index[0], "shared1000"] = not table.loc[table.index[0], "shared1000"]
    table.to_csv(path)
    with pytest.raises(DataError, match="shared images differ"):
        load_nsd(tmp_path, image_size=None)


def test_read_images_keeps_order_and_checks_range(tmp_path):
    write_nsd_fixture(tmp_path)
    images = read_images(tmp_path, [7, 2, 30])
    assert images.shape == (3, 12, 10, 3)
    assert [tuple(im[0, 0]) for im in images] == [tuple(image_colour(i)) for i in (7, 2, 30)]
    with pytest.raises(DataError, match="nsdId out of range 0-42"):
        read_images(tmp_path, [43])
    with h5py.File(tmp_path / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "w") as handle:
        handle.create_dataset("images", data=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(FileFormatError, match="no dataset 'imgBrick'"):
        read_images(tmp_path, [0])
    with h5py.File(tmp_path / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "w") as handle:
        handle.create_dataset("imgBrick", data=np.full((2, 4, 4, 3), 0.8, np.float32))  # 0-1 floats
    with pytest.raises(FileFormatError, match="imgBrick holds float32, expected uint8"):
        read_images(tmp_path, [0])
