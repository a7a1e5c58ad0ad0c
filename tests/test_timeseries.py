"""ROI time series: parcellation (surface, volume), cleaning, connectivity, windows, the container and reader, and
the windows the BrainMAE protocol reads (checked stacks, transient-state windows after the HRF shift)."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from brainkit.data.readers.roi_timeseries import read_roi_timeseries
from brainkit.data.roi_windows import check_windows, fc_window_features, run_windows, transient_windows
from brainkit.data.timeseries import (
    RoiTimeSeries,
    clean,
    connectivity,
    fisher_z,
    parcellate_surface,
    parcellate_volume,
    segment_frames,
    sliding_connectivity,
    upper_triangle,
    windows,
)
from brainkit.errors import ConfigError, DataError, FileFormatError


def test_parcellate_surface_means_per_label() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2, 0])
    data = np.arange(7 * 3, dtype=float).reshape(7, 3)
    values, ids = parcellate_surface(data, labels)
    assert ids.tolist() == [1, 2] and values.shape == (3, 2)
    np.testing.assert_allclose(values[:, 0], data[1:3].mean(axis=0))
    np.testing.assert_allclose(values[:, 1], data[3:6].mean(axis=0))
    with pytest.raises(DataError, match="Transpose a"):
        parcellate_surface(data.T, labels)


def test_parcellate_volume_on_a_written_nifti(tmp_path) -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((5, 6, 7), dtype=np.int16)
    labels[:2], labels[3:, :3] = 1, 2
    signals = rng.standard_normal((11, 2))
    data = np.zeros((5, 6, 7, 11), dtype=np.float32)
    data[labels == 1] = signals[:, 0]
    data[labels == 2] = signals[:, 1]
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "run.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "atlas.nii.gz")
    values, _ = parcellate_volume(tmp_path / "run.nii.gz", tmp_path / "atlas.nii.gz")
    np.testing.assert_allclose(values, signals, atol=1e-5)
    with pytest.raises(DataError, match="confound rows"):
        parcellate_volume(tmp_path / "run.nii.gz", tmp_path / "atlas.nii.gz", confounds=np.zeros((4, 1)))


def test_clean_removes_confounds_and_standardises() -> None:
    rng = np.random.default_rng(1)
    confound = rng.standard_normal((200, 1))
    signal = rng.standard_normal((200, 3))
    cleaned = clean(signal + 5 * confound, tr=2.0, confounds=confound)
    assert abs(np.corrcoef(cleaned[:, 0], confound[:, 0])[0, 1]) < 1e-6
    np.testing.assert_allclose(cleaned.std(axis=0, ddof=1), 1.0, atol=1e-5)
    with pytest.raises(DataError, match="Nyquist"):
        clean(signal, tr=2.0, low_pass=0.4)
    with pytest.raises(DataError, match="confound rows"):
        clean(signal, tr=2.0, confounds=confound[:9])


def test_connectivity_and_features() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal(50)
    values = np.stack([a, 2 * a + 1, -a, rng.standard_normal(50)], axis=1)
    c = connectivity(values)
    np.testing.assert_allclose(c[0, 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(c[0, 2], -1.0, atol=1e-5)
    assert upper_triangle(c).shape == (6,) and np.isfinite(fisher_z(c)).all()
    assert sliding_connectivity(values, window=10, step=5).shape == (9, 4, 4)
    with pytest.raises(DataError, match="window 60"):
        sliding_connectivity(values, window=60, step=5)


def test_windows_and_segments() -> None:
    values = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    out = windows(values, 10, 6)
    assert out.shape == (3, 10, 3) and out[1, 0, 0] == values[6, 0]
    assert segment_frames(0.72, 15.0) == 21 and segment_frames(1.89, 15.0) == 8
    with pytest.raises(DataError, match="does not fit a run of 23 frames"):
        windows(values, 30, 1)


def test_protocol_windows_known_answers() -> None:
    rng = np.random.default_rng(0)
    states = np.array(["rest"] * 10 + ["motor"] * 12)
    run = RoiTimeSeries(
        rng.standard_normal((22, 3)), 1.0, list("abc"), subject="s1", run="task", states=states
    )
    cohort = SimpleNamespace(tr=1.0, runs_of=lambda kind, subjects: [run])
    # 4-frame windows start at 5, 9, 13, 17 (after the 5 s delay); labels read 5 frames earlier: rest, rest,
    # rest + motor (dropped), motor. Each sits centred in a 6-frame segment, zeros around it.
    out = transient_windows(cohort, ["s1"], frames=6, seconds=4.0)
    assert out.labels.tolist() == ["rest", "rest", "motor"] and out.n_dropped == 1
    assert out.groups.tolist() == ["s1"] * 3 and out.padded.shape == (3, 6, 3)
    np.testing.assert_array_equal(out.padded[0, 1:5], run.values[5:9])
    assert not out.padded[:, [0, 5]].any()
    np.testing.assert_array_equal(out.raw[2], run.values[17:21])
    assert fc_window_features(out.raw).shape == (3, 3 + 3)  # mean per ROI + 3 edges
    with pytest.raises(
        ConfigError, match="transient_seconds=8.0 gives 8-frame windows, longer than a 6-frame"
    ):
        transient_windows(cohort, ["s1"], frames=6, seconds=8.0)
    assert run_windows([run, run], 10, 6).shape == (6, 10, 3)
    assert check_windows(run_windows([run], 10, 6), 3, "w").dtype.is_floating_point
    with pytest.raises(
        DataError, match=r"w: expected windows \(n_windows, n_frames, 4 ROIs\), found \(3, 10, 3\)"
    ):
        check_windows(run_windows([run], 10, 6), 4, "w")
    with pytest.raises(DataError, match="w: windows contain NaN"):
        check_windows(np.full((2, 5, 3), np.nan), 3, "w")


def test_container_errors() -> None:
    values = np.zeros((9, 4))
    with pytest.raises(DataError, match="4 ROI columns but 3 ROI names"):
        RoiTimeSeries(values, 1.0, ["a", "b", "c"])
    bad = values.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN or inf \(ROI columns \[1\]"):
        RoiTimeSeries(bad, 1.0, list("abcd"))
    with pytest.raises(DataError, match="tr must be a positive"):
        RoiTimeSeries(values, 0.0, list("abcd"))
    with pytest.raises(DataError, match="9 frames but 2 state labels"):
        RoiTimeSeries(values, 1.0, list("abcd"), states=["rest", "rest"])


def test_reader_formats(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("L1,L2\n1,2\n3,4\n5,6\n")
    run = read_roi_timeseries(tmp_path / "a.csv", tr=0.8)
    assert run.roi_names == ["L1", "L2"] and run.values.shape == (3, 2)
    np.save(tmp_path / "b.npy", np.ones((7, 5), dtype=np.float32))
    assert read_roi_timeseries(tmp_path / "b.npy", tr=1.0).n_rois == 5
    (tmp_path / "c.csv").write_text("L1,name\n1,x\n")
    with pytest.raises(FileFormatError, match=r"columns \['name'\] are not numeric"):
        read_roi_timeseries(tmp_path / "c.csv", tr=1.0)
    with pytest.raises(FileFormatError, match="does not exist"):
        read_roi_timeseries(tmp_path / "missing.csv", tr=1.0)
    (tmp_path / "d.mat").write_bytes(b"x")
    with pytest.raises(FileFormatError, match="unknown ROI table format '.mat'"):
        read_roi_timeseries(tmp_path / "d.mat", tr=1.0)
