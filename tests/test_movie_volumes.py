"""The volumetric movie pipeline and the HCP 7T movie reader, on small NIfTI/HDF5 files written in tmp_path."""

from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np
import pytest

from brainkit.data.readers.hcp_movie import (
    MOVIE_RUNS,
    HCPMovieSamples,
    clip_seconds,
    frequent_classes,
    read_wordnet_labels,
    run_path,
)
from brainkit.data.readers.movie_volumes import MovieRun, RunStatistics, crop_or_pad, hcp_crop_pad
from brainkit.errors import ConfigError, DataError, FileFormatError

SHAPE, N_TR = (9, 10, 11), 13


def _run(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.normal(100, 5, size=(*SHAPE, N_TR)).astype(np.float32)
    data += np.arange(N_TR, dtype=np.float32)  # a drift, so each TR is identifiable
    data[0] = 0.0  # a constant slab: outside the brain
    return data


def _write(path, data: np.ndarray, tr: float = 1.0) -> None:
    image = nib.Nifti1Image(data, np.diag([1.6, 1.6, 1.6, 1.0]))
    image.header.set_zooms((1.6, 1.6, 1.6, tr))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def test_crop_or_pad_centres() -> None:
    volume = np.arange(5 * 6 * 7, dtype=float).reshape(5, 6, 7)
    out = crop_or_pad(volume, (3, 8, 7))
    assert out.shape == (3, 8, 7)
    assert np.array_equal(out[:, 1:7], volume[1:4])  # x cropped by 1 each side, y padded by 1 each side
    assert (out[:, 0] == 0).all() and (out[:, 7] == 0).all()
    with pytest.raises(DataError, match="expected a volume"):
        crop_or_pad(np.zeros((4, 4)), (2, 2, 2))


def test_hcp_crop_pad_matches_released_indices() -> None:
    volume = np.random.default_rng(0).random((113, 136, 113, 2)).astype(np.float32)
    out = hcp_crop_pad(volume)
    assert out.shape == (112, 128, 112, 2)
    assert np.array_equal(out[:111, :127, :111], volume[2:, 4:-5, :-2])
    assert (out[111] == 0).all() and (out[:, 127] == 0).all() and (out[:, :, 111] == 0).all()
    with pytest.raises(DataError, match="HCP 1.6 mm MNI volumes"):
        hcp_crop_pad(np.zeros((112, 128, 112)))


@pytest.mark.parametrize("method", ["minmax", "zscore"])
def test_run_statistics_streamed_equal_whole(method: str) -> None:
    data = _run()
    mask = np.ones(SHAPE, bool)
    stats = RunStatistics(method).fit(data, mask, block=4)  # 4 does not divide 13: a partial last block
    out = stats.transform(data[mask])
    if method == "minmax":
        assert out[data[mask].std(1) > 0].min() == pytest.approx(0) and out.max() == pytest.approx(1)
    else:
        assert np.allclose(out[200:220].mean(1), 0, atol=1e-4) and np.allclose(
            out[200:220].std(1), 1, atol=1e-4
        )
    assert (out[data[mask].std(1) == 0] == 0).all()  # constant voxels -> 0, not NaN
    with pytest.raises(ConfigError, match="'minmax' or 'zscore'"):
        RunStatistics("robust")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_movie_run_reads_delayed_volume_lazily(tmp_path, suffix: str) -> None:
    data = _run()
    _write(tmp_path / f"run{suffix}", data)
    run = MovieRun(tmp_path / f"run{suffix}", grid=(8, 12, 11), delay=4, normalisation="none")
    assert nib.is_proxy(run.dataobj)  # never loaded whole
    assert run.n_seconds() == N_TR - 4 and not run.mask[0].any() and run.mask[1:].all()
    volume = run.sample(2)
    assert volume.shape == (8, 12, 11)
    expected = crop_or_pad(np.where(run.mask, data[..., 6], 0), (8, 12, 11))  # second 2 + delay 4 -> TR 6
    assert np.allclose(volume, expected)
    with pytest.raises(DataError, match=r"second 9 needs volume 13 \(delay 4 TRs\)"):
        run.sample(9)


def test_movie_run_tr_and_minmax(tmp_path) -> None:
    _write(tmp_path / "run.nii", _run(), tr=0.5)
    run = MovieRun(tmp_path / "run.nii", delay=2)
    assert run.tr == 0.5 and run.volume_index(3) == 8  # 3 s at 2 volumes per second, + 2 TRs
    volume = run.sample(1)
    assert volume.shape == SHAPE and volume[run.mask].min() >= 0 and volume.max() <= 1
    with pytest.raises(DataError, match="does not match the run's volumes"):
        MovieRun(tmp_path / "run.nii", mask=np.ones((3, 3, 3), bool))
    with pytest.raises(FileFormatError, match="does not exist"):
        MovieRun(tmp_path / "missing.nii")


def _hcp_layout(tmp_path) -> tuple:
    subjects = ["100610", "102816"]
    for i, subject in enumerate(subjects):
        for movie in (1, 4):
            _write(run_path_for(tmp_path, subject, movie), _run(10 * i + movie))
    rng = np.random.default_rng(0)
    tables = {1: (rng.random((10, 5)) < 0.4).astype(np.uint8), 4: (rng.random((7, 5)) < 0.4).astype(np.uint8)}
    with h5py.File(tmp_path / "WordNetFeatures.hdf5", "w") as handle:
        for movie, table in tables.items():
            handle[f"MOVIE{movie}"] = table
        handle["names"] = np.array([b"dog.n.01", b"car.n.01", b"face.n.01", b"tree.n.01", b"text.n.01"])
    return subjects, tables


def run_path_for(root, subject: str, movie: int):
    name = MOVIE_RUNS[movie]
    return root / subject / "MNINonLinear" / "Results" / name / f"{name}.nii.gz"


def test_hcp_movie_samples(tmp_path) -> None:
    subjects, tables = _hcp_layout(tmp_path)
    assert run_path(tmp_path, "102816", 4) == run_path_for(tmp_path, "102816", 4)
    labels, names = read_wordnet_labels(tmp_path / "WordNetFeatures.hdf5", 4)
    assert names[2] == "face.n.01" and np.array_equal(labels, tables[4])
    samples = HCPMovieSamples(
        tmp_path, tmp_path / "WordNetFeatures.hdf5", subjects, movies=(1, 4), grid=(8, 8, 8), delay=4
    )
    # movie 1: 10 labelled seconds but only 13 - 4 = 9 with a volume; movie 4: 7 seconds; two subjects
    assert len(samples) == 2 * 9 + 2 * 7
    volume, subject, label = samples[len(samples) - 1]
    assert volume.shape == (8, 8, 8) and subject == 1 and np.array_equal(label, tables[4][6])
    only = HCPMovieSamples(
        tmp_path, tmp_path / "WordNetFeatures.hdf5", subjects[:1], (4,), seconds={4: np.array([1, 5, 40])}
    )
    assert [second for _, _, second in only.index] == [1, 5]
    with pytest.raises(DataError, match="HCP 1.6 mm MNI volumes"):  # default grid: the paper's HCP cut
        only[0]
    with pytest.raises(FileFormatError, match="no run"):
        HCPMovieSamples(tmp_path, tmp_path / "WordNetFeatures.hdf5", ["999999"], (1,))
    with pytest.raises(FileFormatError, match=r"expected HCP.s datasets .MOVIE2_HO1."):
        read_wordnet_labels(tmp_path / "WordNetFeatures.hdf5", 2)
    with pytest.raises(ConfigError, match="movie must be one of"):
        run_path(tmp_path, "100610", 5)


def test_clip_seconds_and_frequent_classes() -> None:
    frames = np.array([[0, 71], [240, 288], [480, 600]])  # 0-2 s, 10-12 s, then the retest clip
    assert clip_seconds(frames).tolist() == [0, 1, 2, 10, 11, 12]
    assert len(clip_seconds(frames, drop_last=False)) == 6 + 6
    labels = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    assert frequent_classes(labels, 0.5).tolist() == [0]
    with pytest.raises(DataError, match="frame ranges"):
        clip_seconds(np.array([3, 4]))
