"""The ``hcp_movie`` dataset on a tiny HCP download in the real layout (brainkit.testing_hcp): the reader's
samples, frames, labels and mask, its errors, and CLIP-MUSED end to end on it (run, eval, predict)."""

from __future__ import annotations

import json

import h5py
import nibabel as nib
import numpy as np
import pytest

from brainkit.data import load_dataset
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.testing_hcp import SYNSETS, write_hcp_movie_folder

FAST = {
    "clips": "all",
    "grid": "run",
    "image_size": 32,
    "features": {
        "low": ["pixel_projection", {"dim": 13}],
        "image": ["pixel_projection", {"dim": 17}],
        "text": ["hashed_words", {"dim": 11}],
    },
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hcp_cache")


@pytest.fixture(scope="module")
def hcp(tmp_path_factory):
    """Three subjects, four movies of 24 s (runs, labels and mp4 files alike)."""
    return write_hcp_movie_folder(tmp_path_factory.mktemp("hcp") / "HCP")


def _load(root, cache_dir, **options):
    return load_dataset("hcp_movie", root=str(root), cache_dir=str(cache_dir), **(FAST | options))


def test_samples_are_the_delayed_volumes_with_their_seconds_labels_and_frames(hcp, cache_dir) -> None:
    dataset = _load(hcp.root, cache_dir)
    assert dataset.subjects == hcp.subjects and dataset.design == "trials"
    mask = dataset.info["mask"]
    assert (
        mask.shape == hcp.shape and mask.dtype == bool and 300 < mask.sum() < mask.size
    )  # the MNI brain only
    np.testing.assert_allclose(dataset.info["affine"], hcp.affine)  # grid "run": the run's own affine
    # 24 s movies, delay 4: seconds 0..19 of movies 1-3 train, of movie 4 test
    assert dataset.train["100610"].values.shape == (60, mask.sum())
    assert dataset.test["104416"].values.shape == (20, mask.sum())
    assert list(dataset.test["100610"].stimulus_ids[:2]) == ["movie4_s0000", "movie4_s0001"]
    rows = dataset.stimuli.positions(dataset.test["100610"].stimulus_ids)
    np.testing.assert_array_equal(dataset.info["labels"][rows], hcp.labels[4][:20])
    assert dataset.info["categories"] == list(SYNSETS)
    # the volume of TR t + 4, min-max normalised over the run, masked in C order
    image = nib.load(hcp.root / "102816/MNINonLinear/Results/tfMRI_MOVIE2_7T_PA/tfMRI_MOVIE2_7T_PA.nii.gz")
    run = np.asarray(image.dataobj, np.float32)[mask].T  # (24, n_voxels)
    expected = (run - run.min(0)) / np.ptp(run, axis=0)
    train = dataset.train["102816"]
    np.testing.assert_allclose(train.values[20:40], expected[4:24], atol=1e-6)
    # frames: the colour of each second follows its first three labels (the writer's movies)
    images = dataset.stimuli.images[rows]
    assert images.shape == (20, 32, 32, 3)
    bright = images[:, 16, 20].astype(int) > 125
    np.testing.assert_array_equal(bright, hcp.labels[4][:20, :3].astype(bool))
    text = dataset.stimuli.labels[rows[0]]
    assert text == ", ".join(s.split(".")[0] for s, y in zip(SYNSETS, hcp.labels[4][0]) if y)
    assert set(dataset.info["parameters"]["features"]) == {"low", "image", "text"}


def test_frames_are_the_ones_on_screen_at_each_second(hcp) -> None:
    """frame_offset picks the frame within the second: the writer's bar grows by height / 24 rows per frame."""
    from brainkit.data.readers.hcp_movie_frames import second_frames

    path = hcp.root / "Post_20140821_version" / "7T_MOVIE3_CC2_v2.mp4"
    seconds = np.array([5, 0, 23, 5])
    start, middle = second_frames(path, seconds, 32), second_frames(path, seconds, 32, offset=0.5)
    rows = lambda frames: (frames[:, :, 16] > 240).all(-1).sum(1)  # noqa: E731  white rows of the bar
    assert (rows(start) <= 2).all() and (abs(rows(middle) - 16) <= 2).all()  # frame 0 vs frame 12 of 24
    np.testing.assert_array_equal(start[0], start[3])  # a repeated second, asked twice
    with pytest.raises(DataError, match="the movie ends at 24.00 s, but second 24"):
        second_frames(path, np.array([3, 24]), 32)


def test_template_mask_and_hcp_cut(tmp_path, cache_dir) -> None:
    """Real-shaped 113 x 136 x 113 runs at 1.6 mm: the released cut to 112 x 128 x 112 and its affine."""
    from brainkit.data.readers.movie_volumes import HCP_MNI_SHAPE, GridWindow, template_mask
    from brainkit.testing_hcp import hcp_affine

    affine = hcp_affine(1.6)
    mask = template_mask(affine, HCP_MNI_SHAPE)
    assert 1.2e6 < mask.sum() * 1.6**3 < 2.2e6  # a brain: 1.2-2.2 litres
    window = GridWindow(HCP_MNI_SHAPE, "hcp")
    grid = window.grid_mask(mask)
    assert grid.shape == (112, 128, 112) and grid.sum() == window.run_mask(mask).sum()
    voxel = np.argwhere(grid)[0]
    run_voxel = voxel + np.array([2, 4, 0])
    np.testing.assert_allclose(window.affine(affine) @ [*voxel, 1], affine @ [*run_voxel, 1])
    with pytest.raises(DataError, match="released cut of HCP's 1.6 mm"):
        GridWindow((15, 18, 15), "hcp")


@pytest.mark.slow
def test_real_shaped_runs_are_cut_to_the_released_grid(tmp_path, cache_dir) -> None:
    """HCP's 113 x 136 x 113 runs at 1.6 mm (8 volumes each, unpacked .nii): the default grid "hcp" gives the
    released 112 x 128 x 112 cut, its affine, and each sample is the masked, normalised volume 4 TRs later."""
    from brainkit.testing_hcp import hcp_affine

    example = write_hcp_movie_folder(tmp_path / "HCP", subjects=("100610", "102816"), n_seconds=8, voxel_mm=1.6,
                                     shape=(113, 136, 113), compress=False)  # fmt: skip
    dataset = _load(example.root, cache_dir, grid="hcp")
    mask = dataset.info["mask"]
    assert mask.shape == (112, 128, 112) and 400_000 < mask.sum() < 500_000
    np.testing.assert_allclose(dataset.info["affine"], hcp_affine(1.6) @ _shift(2, 4, 0))
    assert dataset.train["102816"].values.shape == (12, mask.sum())  # 3 movies x (8 - 4) seconds
    run = np.asarray(nib.load(example.root / "102816/MNINonLinear/Results/tfMRI_MOVIE4_7T_AP/tfMRI_MOVIE4_7T_AP.nii")
                     .dataobj, np.float32)[2:, 4:-5, :-2]  # fmt: skip
    kept = run[mask[:111, :127, :111]]  # (n_voxels, 8), the grid's voxels in C order
    expected = ((kept - kept.min(1, keepdims=True)) / np.ptp(kept, axis=1, keepdims=True)).T
    np.testing.assert_allclose(dataset.test["102816"].values, expected[4:8], atol=1e-6)


def _shift(*voxels: int) -> np.ndarray:
    out = np.eye(4)
    out[:3, 3] = voxels
    return out


def test_reader_errors(hcp, tmp_path, cache_dir) -> None:
    import shutil

    with pytest.raises(FileFormatError, match="not a folder"):
        _load(tmp_path / "nowhere", cache_dir)
    with pytest.raises(FileFormatError, match="no run .*999999.*leave the subject out"):
        _load(hcp.root, cache_dir, subjects=["999999"])
    with pytest.raises(FileFormatError, match="WordNet label file .* does not exist"):
        _load(hcp.root, cache_dir, labels_file="elsewhere.hdf5")
    with pytest.raises(FileFormatError, match="7T_MOVIE1_CC1_v2.mp4 is missing"):
        _load(hcp.root, cache_dir, stimulus_dir="movies")
    with pytest.raises(DataError, match="clips run to second 900.*not HCP's full tfMRI_MOVIE1_7T_AP runs"):
        _load(hcp.root, cache_dir, clips="segments")
    with pytest.raises(ConfigError, match="non-empty and disjoint"):
        _load(hcp.root, cache_dir, train_movies=[1, 4])
    with pytest.raises(ConfigError, match="hcp_movie options.delay"):
        _load(hcp.root, cache_dir, delay=-1)
    with pytest.raises(ConfigError, match=r"features maps the roles .* to \[encoder, options\]"):
        _load(hcp.root, cache_dir, features={"low": "pixel_projection", "image": "x", "text": "y"})
    with pytest.raises(ConfigError, match="over max_gb"):
        _load(hcp.root, cache_dir, max_gb=1e-6)

    broken = tmp_path / "HCP"
    shutil.copytree(hcp.root, broken)
    labels = broken / "7T_movie_resources" / "WordNetFeatures.hdf5"
    with h5py.File(labels, "a") as handle:  # movie 3's table 10 rows short of its runs
        table = handle["MOVIE3_CC2"][:14]
        del handle["MOVIE3_CC2"]
        handle["MOVIE3_CC2"] = table
    with pytest.raises(DataError, match="movie 3 has 14 label rows, but its runs have 20 seconds"):
        _load(broken, cache_dir)
    with h5py.File(labels, "a") as handle:
        del handle["MOVIE3_CC2"]
        handle["MOVIE3_CC2"] = hcp.labels[3].T  # transposed
    with pytest.raises(FileFormatError, match="transposed"):
        _load(broken, cache_dir)
    with h5py.File(labels, "a") as handle:
        del handle["MOVIE3_CC2"]
        handle["MOVIE3_CC2"] = hcp.labels[3]
    run = broken / "104416/MNINonLinear/Results/tfMRI_MOVIE4_7T_AP/tfMRI_MOVIE4_7T_AP.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((15, 18, 14, 24), np.float32), hcp.affine), run)
    with pytest.raises(DataError, match="every run must be a 4-D run on one grid"):
        _load(broken, cache_dir)
    with pytest.raises(DataError, match="must be on the runs' grid"):
        _load(hcp.root, cache_dir, mask=str(_small_mask(tmp_path, hcp)))
    with pytest.raises(FileFormatError, match="mask file .* does not exist"):
        _load(hcp.root, cache_dir, mask="no_mask.nii.gz")
    movie = broken / "Post_20140821_version" / "7T_MOVIE2_HO1_v2.mp4"
    movie.write_bytes(movie.read_bytes()[:200])
    shutil.copy(hcp.root / "104416/MNINonLinear/Results/tfMRI_MOVIE4_7T_AP/tfMRI_MOVIE4_7T_AP.nii.gz", run)
    with pytest.raises(FileFormatError, match="Cannot decode movie .*7T_MOVIE2_HO1_v2.mp4"):
        _load(broken, cache_dir)


def _small_mask(tmp_path, hcp):
    path = tmp_path / "small_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((15, 18, 14), np.uint8), hcp.affine), path)
    return path


def test_clip_mused_runs_on_it_end_to_end(hcp, tmp_path, cache_dir, capsys) -> None:
    """`brainkit run clip_mused --preset testing_hcp --set data.root=...`, `brainkit eval`, brainkit.load().predict."""
    from brainkit.cli import main
    from brainkit.recipes.clip_mused import load_network, prepare
    from brainkit.recipes.loaded import load

    out = tmp_path / "run"
    args = ["run", "clip_mused", "--preset", "testing_hcp", "--out", str(out), "--set", f"data.root={hcp.root}",
            "--set", f"cache_dir={cache_dir}", "--set", "methods=[clip_mused,srm]"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    rows = {row["method"]: row for row in metrics["rows"]}
    assert set(rows) == {"clip_mused", "srm", "label_frequency"} and metrics["categories"] == list(SYNSETS)
    assert rows["srm"]["mAP"] > rows["label_frequency"]["mAP"] + 0.2  # the writer's labels are decodable
    assert (out / "report.html").is_file()
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    from brainkit.recipes import evaluate_run

    assert evaluate_run(out) == metrics  # reloaded from the checkpoints: the run's numbers exactly
    run = load(out)
    dataset, samples, grid = prepare(run.config)
    scored = load_network("clip_mused", samples, grid, run.config, out)
    for subject in hcp.subjects:
        got = run.predict(dataset.test[subject].values, subject=subject)
        np.testing.assert_array_equal(got, scored.scores[subject].astype(np.float32))
    assert got.shape == (20, len(SYNSETS))
    # a run file on HCP's grid: masked with the run mask and min-max normalised over its volumes, as in training
    path = hcp.root / "104416/MNINonLinear/Results/tfMRI_MOVIE4_7T_AP/tfMRI_MOVIE4_7T_AP.nii.gz"
    from_file = run.predict(str(path), subject="104416")
    # volumes 4.. show seconds 0..19
    np.testing.assert_allclose(from_file[4:], scored.scores["104416"], atol=1e-5)
    # predicting needs only the run folder (predictor/ holds the masks, categories and z-scoring), not the data
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    saved = json.loads((moved / "config.json").read_text())
    saved["config"]["data"]["root"] = str(tmp_path / "data_gone")
    (moved / "config.json").write_text(json.dumps(saved))
    alone = load(moved).predict(dataset.test["100610"].values, subject="100610")
    np.testing.assert_array_equal(alone, scored.scores["100610"].astype(np.float32))


def test_hcp_real_preset_needs_only_the_root(tmp_path, capsys) -> None:
    from brainkit.cli import main
    from brainkit.recipes import recipe_config

    config = recipe_config("clip_mused", "hcp_real", [f"data.root={tmp_path}"])
    assert config.dataset == "hcp_movie" and config.data == {"root": str(tmp_path)}
    assert config.model_preset == "hcp" and config.training.epochs == 500 and config.training.batch_size == 64
    assert main(["run", "clip_mused", "--preset", "hcp_real", "--out", str(tmp_path / "r")]) == 2
    assert "needs data.root" in capsys.readouterr().err
    # the uniform data keys: another dataset starts from no options, data.options.root lands in data.root
    uniform = recipe_config("clip_mused", "testing", ["data.name=hcp_movie", f"data.options.root={tmp_path}"])
    assert uniform.dataset == "hcp_movie" and uniform.data == {"root": str(tmp_path)}
