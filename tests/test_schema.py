"""Data model and splits."""

import numpy as np
import pytest

from brainkit.data import BrainSamples, DecodingDataset, Stimuli, make_split
from brainkit.data.transforms import Standardizer
from brainkit.errors import DataError
from brainkit.testing import tiny_decoding_dataset


def _samples(subject="s1", n=7, v=9, ids=None):
    ids = ids if ids is not None else [f"a{i % 3}" for i in range(n)]
    return BrainSamples(
        subject=subject, values=np.arange(n * v, dtype=float).reshape(n, v), stimulus_ids=ids, space="toy"
    )


def test_average_repeats_groups_by_stimulus_in_first_seen_order():
    samples = BrainSamples(
        subject="s1",
        values=np.array([[1.0, 2], [3, 4], [5, 6], [7, 8]]),
        stimulus_ids=["b", "a", "b", "a"],
        space="toy",
    )
    mean = samples.average_repeats()
    assert mean.stimulus_ids.tolist() == ["b", "a"]
    np.testing.assert_allclose(mean.values, [[3, 4], [5, 6]])
    assert mean.n_repeats.tolist() == [2, 2]


def test_brain_samples_validation():
    values = np.zeros((5, 8))
    values[3, 2] = np.nan
    with pytest.raises(DataError, match=r"1 NaN/inf entries in 1 sample\(s\) \(first rows \[3\]\)"):
        BrainSamples(subject="s1", values=values, stimulus_ids=list("abcde"), space="toy")
    with pytest.raises(DataError, match=r"stimulus_ids has shape \(4,\), expected \(5,\)"):
        BrainSamples(subject="s1", values=np.zeros((5, 8)), stimulus_ids=list("abcd"), space="toy")
    with pytest.raises(DataError, match=r"expected \(n_samples, n_features\)"):
        BrainSamples(subject="s1", values=np.zeros(5), stimulus_ids=list("abcde"), space="toy")


def test_stimuli_validation_and_lookup():
    stimuli = Stimuli(ids=["x", "y", "z"], embeddings={"e": np.eye(3)})
    assert stimuli.positions(["z", "x"]).tolist() == [2, 0]
    with pytest.raises(DataError, match=r"1 stimulus id\(s\) are not among the 3 stimuli, e.g. \['w'\]"):
        stimuli.positions(["w", "x"])
    with pytest.raises(DataError, match="ids must be unique"):
        Stimuli(ids=["x", "x"])
    with pytest.raises(DataError, match="embedding 'e' has 2 rows, expected 3"):
        Stimuli(ids=["x", "y", "z"], embeddings={"e": np.eye(2)})
    with pytest.raises(DataError, match="no embedding from encoder 'clip'"):
        stimuli.embedding("clip")


def test_dataset_checks_ids_and_subjects():
    data = tiny_decoding_dataset(voxels={"s1": 7, "s2": 8, "s3": 9})
    assert data.subjects == ["s1", "s2", "s3"] and data.n_features("s3") == 9
    with pytest.raises(DataError, match=r"Unknown subject 's9' .* known: \['s1', 's2', 's3'\]"):
        data.check_subject("s9")
    bad = _samples(ids=["nope"] * 7)
    with pytest.raises(DataError, match="not among the"):
        DecodingDataset("d", data.stimuli, {"s1": bad}, {"s1": bad})


def test_splits_cover_every_sample():
    data = tiny_decoding_dataset(voxels={"s1": 7, "s2": 8, "s3": 9}, n_train_stimuli=10, n_test_stimuli=3)
    pool = data.train
    held = ["stim0000", "stim0001"]
    split = make_split(pool, "unseen_stimuli", test_stimuli=held)
    for subject, samples in pool.items():
        assert len(split.train[subject]) + len(split.test[subject]) == len(samples)
        assert set(split.test[subject].stimulus_ids) == set(held)
    split = make_split(pool, "unseen_subjects", test_subjects=["s2"])
    assert sorted(split.train) == ["s1", "s3"] and list(split.test) == ["s2"]
    split = make_split(pool, "unseen_both", test_subjects=["s2"], test_stimuli=held)
    assert set(split.test["s2"].stimulus_ids) == set(held)
    assert not set(split.train["s1"].stimulus_ids) & set(held)
    total = sum(len(s) for s in pool.values())
    kept = sum(len(s) for s in split.train.values()) + sum(len(s) for s in split.test.values())
    assert kept + split.excluded == total
    with pytest.raises(DataError, match="needs test_subjects"):
        make_split(pool, "unseen_subjects")
    with pytest.raises(DataError, match="were never shown"):
        make_split(pool, "unseen_stimuli", test_stimuli=["zzz"])
    with pytest.raises(DataError, match="Unknown split kind"):
        make_split(pool, "random")


def test_standardizer_uses_train_statistics(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 7)).astype(np.float32)
    train[:, 4] = 1.0  # constant voxel: stays finite
    z = Standardizer().fit(train)
    out = z.transform(train)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    assert np.isfinite(out).all()
    z.save(tmp_path / "z.safetensors")
    np.testing.assert_array_equal(Standardizer.load(tmp_path / "z.safetensors").transform(train), out)
    with pytest.raises(DataError, match="Data has 8 features, but the standardizer was fitted on 7"):
        z.transform(np.zeros((2, 8), np.float32))


def test_every_registered_dataset_declares_a_contract_container():
    """Each factory's return annotation is a :class:`Dataset` of a known design (nothing is built here)."""
    from brainkit.data.contract import DESIGNS, Dataset, returns_of
    from brainkit.registry import DATASETS

    names = DATASETS.names()
    assert {"nsd_like", "hcp_cohort", "movie_surface_like", "rest_surface"} <= set(names)
    designs = {}
    for name in names:
        container = returns_of(DATASETS.get(name))
        assert isinstance(container, type) and issubclass(container, Dataset), (name, container)
        assert container.design in DESIGNS, (name, container.design)
        designs[name] = container.design
    assert designs["nsd_like"] == "trials" and designs["hcp_cohort"] == "cohort"
    assert designs["movie_surface_like"] == designs["hcp_movie_surface"] == "continuous"
    assert designs["rest_surface"] == designs["bids_surface"] == "frames"


def test_every_registered_dataset_says_its_space_and_what_it_needs_on_disk():
    """`brainkit list` prints each dataset's space and files; every factory gives both when it registers."""
    from brainkit.registry import DATASETS

    for name in DATASETS.names():
        details = DATASETS.details(name)
        assert set(details) == {"space", "needs"}, (name, details)
        assert all(isinstance(text, str) and len(text) > 5 for text in details.values()), (name, details)


def test_decoding_dataset_is_the_trial_container():
    dataset = tiny_decoding_dataset()
    assert dataset.design == "trials" and dataset.subjects == sorted(dataset.train)
    assert isinstance(dataset.info, dict)
