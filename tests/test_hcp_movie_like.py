"""The simulated volumetric dataset: MNI mask, ImageNet-derived labels, anatomy, determinism and its cache."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.data import load_dataset
from brainkit.data.builtin import hcp_movie_like_simulation as sim
from brainkit.errors import ConfigError

FAST = {
    "low": ("pixel_projection", {"dim": 13}),
    "image": ("pixel_projection", {"dim": 13}),
    "text": ("hashed_words", {"dim": 11}),
}


def _build(tmp_path, **changes):
    options = dict(
        cache_dir=tmp_path, snr=(1.0, 0.3), n_train_stimuli=24, n_test_stimuli=7, image_size=64,
        features=FAST, n_components={"low": 4, "image": 5, "text": 3}, min_label_fraction=0.1,
    ) | changes  # fmt: skip
    return load_dataset("hcp_movie_like", **options)


def test_brain_grid_is_the_mni_mask() -> None:
    mask, affine = sim.brain_grid(6, (28, 32, 28))
    assert mask.shape == (28, 32, 28) and mask.sum() == 8735  # nilearn's MNI152 brain mask at 6 mm
    centre = affine @ np.r_[np.argwhere(mask).mean(0), 1]
    assert np.all(np.abs(centre[:3] - [0, -18, 8]) < 12)  # the brain's centre of mass in MNI mm
    with pytest.raises(ConfigError, match="more than the grid"):
        sim.brain_grid(6, (20, 32, 28))


def test_dataset_shapes_labels_and_subjects(tmp_path) -> None:
    dataset = _build(tmp_path)
    assert dataset.subjects == ["sub01", "sub02"]
    n_voxels = int(dataset.info["mask"].sum())
    assert dataset.train["sub01"].values.shape == (24, n_voxels)
    assert dataset.test["sub02"].values.shape == (14, n_voxels)  # 7 test stimuli x 2 repeats
    labels = dataset.info["labels"]
    assert labels.shape == (31, len(dataset.info["categories"])) and set(np.unique(labels)) <= {0, 1}
    assert labels[:24].mean(0).min() >= 0.1  # rare categories dropped (min_label_fraction)
    assert dataset.info["categories"][0].startswith("k") and "ImageNet" in dataset.info["categories"][0]
    anatomy = dataset.info["anatomy"]
    assert anatomy["sub01"]["displacement_voxels"] != anatomy["sub02"]["displacement_voxels"]
    nc = dataset.info["noise_ceiling"]
    assert nc["sub01"]["median_visual"] > nc["sub02"]["median_visual"]  # higher SNR, higher ceiling
    # the same stimulus order of train for every subject is not required, but the same stimulus set is
    assert set(dataset.train["sub01"].stimulus_ids) == set(dataset.train["sub02"].stimulus_ids)


def test_deterministic_and_cached(tmp_path) -> None:
    first = _build(tmp_path / "a")
    again = _build(tmp_path / "b")
    assert np.array_equal(first.train["sub02"].values, again.train["sub02"].values)
    cached = _build(tmp_path / "a")
    assert np.array_equal(first.test["sub01"].values, cached.test["sub01"].values)
    assert np.array_equal(cached.info["labels"], first.info["labels"]) and cached.info["mask"].dtype == bool
    other = _build(tmp_path / "a", seed=1)
    assert not np.array_equal(first.train["sub01"].values, other.train["sub01"].values)


def test_bad_parameters_raise(tmp_path) -> None:
    with pytest.raises(ConfigError, match="snr needs one positive value per subject"):
        _build(tmp_path, snr=())
    with pytest.raises(ConfigError, match="shared_tuning must be in"):
        _build(tmp_path, shared_tuning=1.5)
    with pytest.raises(ConfigError, match="take the roles"):
        _build(tmp_path, features={"low": FAST["low"]})
