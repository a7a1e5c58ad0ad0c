"""The nsd_like dataset on a tiny build (weight-free encoders, few stimuli and voxels) plus the real images."""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest

from brainkit.data.builtin import nsd_like
from brainkit.data.builtin.nsd_like import VOXELS, build_nsd_like, raw_test_trials
from brainkit.errors import ConfigError, DataError
from brainkit.registry import DATASETS
from brainkit.stimuli.images import real_images

FAST = {
    "subjects": ("subj01", "subj05"),
    "n_train_stimuli": 30,
    "n_test_stimuli": 12,
    "features": {
        "low": ("pixel_projection", {"dim": 24, "grid": 4}),
        "high": ("pixel_projection", {"dim": 24, "grid": 4}),
        "semantic": ("hashed_words", {"dim": 16}),
    },
    "n_components": {"low": 4, "high": 6, "semantic": 3},
    "n_voxels": {"subj01": 37, "subj05": 29},
    "image_size": 64,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nsd_like")
    return folder, build_nsd_like(cache_dir=folder, **FAST)


def test_default_voxel_counts_are_nsdgeneral_over_4():
    assert {s: VOXELS[s] for s in ("subj01", "subj02", "subj05", "subj07")} == {
        "subj01": 3931,
        "subj02": 3570,
        "subj05": 3260,
        "subj07": 3171,
    }
    assert "nsd_like" in DATASETS
    # the default build uses the real pretrained encoders at the stimulus size
    assert nsd_like.default_features(192) == {
        "low": ("efficientnet_lite0_early", {"image_size": 192}),
        "high": ("efficientnet_lite0", {"image_size": 192}),
        "semantic": ("minilm", {}),
    }


def test_shapes_trials_and_sessions(built):
    _, dataset = built
    assert dataset.subjects == ["subj01", "subj05"]
    assert len(dataset.stimuli) == 42 and dataset.stimuli.images.shape == (42, 64, 64, 3)
    for subject, n_voxels in FAST["n_voxels"].items():
        train, test = dataset.train[subject], dataset.test[subject]
        assert train.values.shape == (30 * 3, n_voxels) and (train.n_repeats == 1).all()
        assert test.values.shape == (12, n_voxels) and (test.n_repeats == 3).all()
        assert train.feature_coords.shape == (n_voxels, 3) and train.space == "nsdgeneral"
        _, counts = np.unique(train.stimulus_ids, return_counts=True)
        assert (counts == 3).all()  # every training image shown 3 times, each trial its own row
        assert train.session.min() == 1 and train.run.min() == 1 and train.run.max() <= 12
        assert set(train.stimulus_ids).isdisjoint(test.stimulus_ids)
    assert dataset.info["voxel_vertices"]["subj01"].shape == (37,)
    # different subjects, different voxels (subject-specific subsets of one posterior region)
    assert not np.array_equal(
        dataset.info["voxel_vertices"]["subj01"][:29], dataset.info["voxel_vertices"]["subj05"]
    )


def test_test_rows_average_the_raw_trials(built):
    _, dataset = built
    raw = raw_test_trials(dataset, "subj01")
    test = dataset.test["subj01"]
    assert raw.values.shape == (36, 37)
    first = test.stimulus_ids[0]
    np.testing.assert_allclose(test.values[0], raw.values[raw.stimulus_ids == first].mean(axis=0), rtol=1e-5)
    nc = dataset.info["noise_ceiling"]["subj01"]
    assert 0.0 <= nc["median"] <= 100.0 and nc["median_single_trial"] <= nc["median"]
    with pytest.raises(DataError, match="Unknown subject 'subj02'"):
        raw_test_trials(dataset, "subj02")


def test_embeddings_and_info(built):
    _, dataset = built
    assert dataset.stimuli.embedding("pixel_projection").shape == (42, 24)
    assert dataset.stimuli.embedding("hashed_words").shape == (42, 16)
    assert dataset.info["target_embedding"] == "pixel_projection"
    assert dataset.info["parameters"]["n_repeats"] == 3 and "noise" in dataset.info["generative_model"]


def test_cached_build_is_read_back_identically(built, monkeypatch):
    folder, dataset = built
    monkeypatch.setattr(
        nsd_like, "_build", lambda *a, **k: pytest.fail("rebuilt instead of reading the cache")
    )
    again = build_nsd_like(cache_dir=folder, **FAST)
    for subject in dataset.subjects:
        np.testing.assert_array_equal(again.train[subject].values, dataset.train[subject].values)
        np.testing.assert_array_equal(again.test[subject].values, dataset.test[subject].values)
        np.testing.assert_array_equal(again.train[subject].session, dataset.train[subject].session)
    np.testing.assert_array_equal(again.stimuli.images, dataset.stimuli.images)
    assert again.info["noise_ceiling"] == dataset.info["noise_ceiling"]
    assert not list(folder.rglob("*.tmp"))


def test_same_seed_same_arrays_other_seed_other_arrays(built, tmp_path):
    _, dataset = built
    same = build_nsd_like(cache_dir=tmp_path / "a", **FAST)
    other = build_nsd_like(cache_dir=tmp_path / "b", **(FAST | {"seed": 1}))
    np.testing.assert_array_equal(same.train["subj05"].values, dataset.train["subj05"].values)
    np.testing.assert_array_equal(same.train["subj05"].stimulus_ids, dataset.train["subj05"].stimulus_ids)
    assert not np.array_equal(other.stimuli.images, dataset.stimuli.images)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subjects": ("subj01", "subj09")}, r"unknown subject\(s\) \['subj09'\]; expected some of"),
        ({"n_train_stimuli": 1}, "n_train_stimuli must be an int >= 2, found 1"),
        ({"n_repeats": 1}, "n_repeats must be an int >= 2"),
        ({"image_size": 100}, "image_size must be a multiple of 32"),
        ({"structured_noise": 1.5}, "structured_noise must be between 0 and 1"),
        ({"n_voxels": {"subj01": 9000, "subj05": 29}}, "subj01 cannot have 9000 voxels"),
        ({"features": {"low": ("hashed_words", {})}}, "features and n_components take the roles"),
    ],
)
def test_bad_parameters_raise(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        build_nsd_like(cache_dir=tmp_path, **(FAST | change))


def test_unknown_encoder_in_features_raises(tmp_path):
    features = FAST["features"] | {"semantic": ("no_such_encoder", {})}
    with pytest.raises(ConfigError, match="Unknown encoder 'no_such_encoder'"):
        build_nsd_like(cache_dir=tmp_path, **(FAST | {"features": features}))


def test_real_images_are_distinct_labelled_and_deterministic():
    ids, images, labels, sources = real_images(300, size=32, seed=4)
    assert images.shape == (300, 32, 32, 3) and images.dtype == np.uint8
    assert len(set(ids)) == 300 and len(sources) == 300
    assert len({hashlib.sha1(image.tobytes()).hexdigest() for image in images}) == 300
    assert any(label.startswith("handwritten digit") for label in labels)
    assert "a photo of a cat" in labels or "a close-up photo of a cat" in labels
    np.testing.assert_array_equal(real_images(300, size=32, seed=4).images, images)
    with pytest.raises(ConfigError, match="n must be an int between 1 and 20000"):
        real_images(0)
    with pytest.raises(ConfigError, match="size must be an int between 16 and 1024"):
        real_images(3, size=8)


def test_a_damaged_cached_build_is_rebuilt(tmp_path, caplog):
    first = build_nsd_like(cache_dir=tmp_path, **FAST)
    (stimuli_file,) = tmp_path.glob("nsd_like/*/stimuli.npz")
    stimuli_file.write_bytes(stimuli_file.read_bytes()[:100])
    again = build_nsd_like(cache_dir=tmp_path, **FAST)
    assert "is damaged or incomplete (stimuli.npz has 100 bytes, its manifest says" in caplog.text
    np.testing.assert_array_equal(again.train["subj01"].values, first.train["subj01"].values)


def test_a_flipped_byte_or_a_missing_manifest_rebuilds_with_a_warning(built, tmp_path, caplog, monkeypatch):
    """info.json has no checksum of its own: a changed digit in it loaded as a different parameter before manifests
    (an .npz's zip CRCs catch most changed bytes in arrays; the manifest is checked first); a folder without a
    manifest (a crash between saving it and writing one) is not trusted either."""
    folder, dataset = built
    (cached,) = folder.glob("nsd_like/*/")
    copy = tmp_path / "nsd_like" / cached.name
    shutil.copytree(cached, copy)
    builds = []
    build = nsd_like._build
    monkeypatch.setattr(nsd_like, "_build", lambda *a: builds.append(1) or build(*a))
    info = copy / "info.json"
    assert info.read_text().count('"median_snr": 0.34,') == 1
    info.write_text(info.read_text().replace('"median_snr": 0.34,', '"median_snr": 0.24,'))  # one byte
    again = build_nsd_like(cache_dir=tmp_path, **FAST)
    assert builds == [1] and "info.json does not match the sha256 its manifest recorded" in caplog.text
    assert again.info["parameters"]["median_snr"] == 0.34
    subject_file = copy / "subj05.npz"
    data = bytearray(subject_file.read_bytes())
    data[len(data) // 2] ^= 0x10
    subject_file.write_bytes(data)
    caplog.clear()
    again = build_nsd_like(cache_dir=tmp_path, **FAST)
    assert builds == [1, 1] and "subj05.npz does not match the sha256 its manifest recorded" in caplog.text
    np.testing.assert_array_equal(again.train["subj05"].values, dataset.train["subj05"].values)
    (copy / "manifest.json").unlink()
    caplog.clear()
    build_nsd_like(cache_dir=tmp_path, **FAST)
    assert builds == [1, 1, 1] and "is damaged or incomplete (it has no manifest.json)" in caplog.text
    assert (copy / "manifest.json").is_file()
    build_nsd_like(cache_dir=tmp_path, **FAST)
    assert builds == [1, 1, 1]


def test_a_whole_build_that_load_cannot_read_is_rebuilt(built, tmp_path, caplog, monkeypatch):
    folder, _ = built
    (cached,) = folder.glob("nsd_like/*/")
    shutil.copytree(cached, tmp_path / "nsd_like" / cached.name)
    monkeypatch.setattr(nsd_like, "_load", lambda folder: np.load(folder / "no_such.npz"))
    build_nsd_like(cache_dir=tmp_path, **FAST)
    assert "is unreadable" in caplog.text and "no_such.npz" in caplog.text


def test_a_first_build_says_so_and_the_next_notice_gives_its_time(tmp_path, capsys):
    build_nsd_like(cache_dir=tmp_path, **FAST)
    first = capsys.readouterr().err
    assert "building the nsd_like dataset" in first and "no earlier build on this machine" in first
    build_nsd_like(cache_dir=tmp_path, **FAST)  # cached: no notice
    assert "building" not in capsys.readouterr().err
    build_nsd_like(cache_dir=tmp_path, **{**FAST, "seed": 1})  # other settings: built, timed by the first
    assert re.search(
        r"building the nsd_like dataset .*the last build here took \d+ s", capsys.readouterr().err
    )
