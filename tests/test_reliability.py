"""Noise ceilings (NSD formula) on inputs with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.data.reliability import (
    ncsnr,
    noise_ceiling,
    noise_ceiling_of_samples,
    trials_by_stimulus,
)
from brainkit.data.schema import BrainSamples
from brainkit.errors import DataError


def test_exact_answer_without_zscoring():
    # Each stimulus's 3 repeats are m - 0.5, m, m + 0.5: noise variance (ddof=1) = 0.25 exactly.
    means = np.array([-1.0, 0.0, 1.0, 2.0])[:, None, None]
    trials = means + np.array([-0.5, 0.0, 0.5])[None, :, None] * np.ones((1, 1, 2))
    # ncsnr = sqrt(1 - 0.25) / sqrt(0.25) = sqrt(3); NC(3 trials) = 100 * 3 / (3 + 1/3) = 90; NC(1) = 75.
    np.testing.assert_allclose(ncsnr(trials, zscore=False), np.sqrt(3.0))
    np.testing.assert_allclose(noise_ceiling(trials, n_average=3, zscore=False), 90.0)
    np.testing.assert_allclose(noise_ceiling(trials, n_average=1, zscore=False), 75.0)


def test_noise_only_voxel_has_zero_ceiling():
    trials = np.random.default_rng(0).standard_normal((3000, 3, 2))  # pure noise: noise variance ~ 1
    assert (noise_ceiling(trials, n_average=3) < 5.0).all()


def test_simulated_snr_is_recovered():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((4000, 1, 3)) * np.array([0.5, 1.0, 2.0])
    trials = signal + rng.standard_normal((4000, 4, 3))
    np.testing.assert_allclose(ncsnr(trials), [0.5, 1.0, 2.0], rtol=0.05)
    expected = 100 * np.array([0.25, 1.0, 4.0]) / (np.array([0.25, 1.0, 4.0]) + 1 / 3)
    np.testing.assert_allclose(noise_ceiling(trials, n_average=3), expected, atol=1.5)


def test_from_brain_samples_groups_trials_by_stimulus():
    rng = np.random.default_rng(2)
    ids = np.repeat(["a", "b", "c", "d"], 3)[rng.permutation(12)]
    samples = BrainSamples(subject="s", values=rng.standard_normal((12, 5)), stimulus_ids=ids, space="test")
    stacked = trials_by_stimulus(samples)
    assert stacked.shape == (4, 3, 5)
    np.testing.assert_array_equal(stacked[1], samples.values[ids == "b"])
    assert noise_ceiling_of_samples(samples, n_average=3).shape == (5,)


def test_bad_input_raises():
    with pytest.raises(DataError, match=r"expected \(n_stimuli >= 2, n_repeats >= 2, n_voxels\)"):
        noise_ceiling(np.zeros((5, 1, 3)))
    with pytest.raises(DataError, match="n_average must be a positive int"):
        noise_ceiling(np.zeros((5, 2, 3)), n_average=0)
    averaged = BrainSamples(
        subject="s", values=np.zeros((2, 3)), stimulus_ids=["a", "b"], space="t", n_repeats=[3, 3]
    )
    with pytest.raises(DataError, match="averaged rows"):
        trials_by_stimulus(averaged)
