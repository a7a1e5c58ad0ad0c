"""nsd_like's realistic generative option on tiny builds (the real EfficientNet-Lite0 at 64 px, few stimuli)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainkit.data.builtin import nsd_like_realistic as realistic
from brainkit.data.builtin.nsd_like import build_nsd_like
from brainkit.data.reliability import noise_ceiling
from brainkit.errors import ConfigError
from brainkit.stimuli import efficientnet, encoders

TINY = {
    "subjects": ("subj01", "subj05"),
    "n_train_stimuli": 90,
    "n_test_stimuli": 30,
    "n_voxels": {"subj01": 211, "subj05": 157},
    "image_size": 64,
}
LINEAR_FEATURES = {  # the default model on the same real network, so both options share the target
    "low": ("efficientnet_lite0_early", {"image_size": 64}),
    "high": ("efficientnet_lite0", {"image_size": 64}),
    "semantic": ("hashed_words", {"dim": 16}),
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nsd_like_realistic")
    real = build_nsd_like(cache_dir=folder, generative="realistic", **TINY)
    linear = build_nsd_like(
        cache_dir=folder,
        features=LINEAR_FEATURES,
        n_components={"low": 8, "high": 16, "semantic": 4},
        **TINY,
    )
    return folder, real, linear


def test_realistic_build_shapes_and_info(builds):
    _, real, _ = builds
    for subject, n_voxels in TINY["n_voxels"].items():
        assert real.train[subject].values.shape == (90 * 3, n_voxels)
        assert real.test[subject].values.shape == (30, n_voxels)
        assert real.info["noiseless_responses"][subject].shape == (120, n_voxels)
    # the generating maps are not kept; the decoding target is added
    assert set(real.stimuli.embeddings) == {"efficientnet_lite0"}
    assert real.stimuli.embedding("efficientnet_lite0").shape == (120, 1280)
    assert real.info["target_embedding"] == "efficientnet_lite0"
    model = real.info["generative_model"]
    assert "N_c = E_c / (sigma2 + mean_c' E_c')" in model["nonlinearity"]
    params = real.info["parameters"]
    assert params["generative"] == "realistic" and params["noise_ceiling"] == 30.0
    assert params["features"]["mid"] == [
        "efficientnet_lite0_early",
        {"image_size": 64, "block": 10, "grid": 4},
    ]


def test_realistic_build_is_deterministic_and_keyed_apart(builds, tmp_path):
    folder, real, linear = builds
    again = build_nsd_like(cache_dir=tmp_path, generative="realistic", **TINY)
    for subject in TINY["subjects"]:
        np.testing.assert_array_equal(again.train[subject].values, real.train[subject].values)
        np.testing.assert_array_equal(
            again.info["noiseless_responses"][subject], real.info["noiseless_responses"][subject]
        )
    # the default and the realistic option live in different cache folders of the same cache
    kinds = sorted(
        json.loads(f.read_text())["parameters"]["generative"] for f in folder.glob("nsd_like/*/info.json")
    )
    assert kinds == ["linear", "realistic"]
    # cached: read back, noiseless responses included
    cached = build_nsd_like(cache_dir=folder, generative="realistic", **TINY)
    np.testing.assert_array_equal(
        cached.info["noiseless_responses"]["subj01"], real.info["noiseless_responses"]["subj01"]
    )


def _ridge_r2(x: np.ndarray, y: np.ndarray, n_train: int) -> float:
    """Median over voxels of the test R^2 of ridge x -> y (best of a small alpha grid, as an upper bound)."""
    mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0) + 1e-8
    x = (x - mean) / std
    train, test = slice(0, n_train), slice(n_train, None)
    best = -np.inf
    for alpha in (1e0, 1e1, 1e2, 1e3, 1e4):
        gram = x[train].T @ x[train] + alpha * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, x[train].T @ (y[train] - y[train].mean(axis=0)))
        residual = y[test] - (x[test] @ weights + y[train].mean(axis=0))
        r2 = 1 - (residual**2).sum(axis=0) / ((y[test] - y[test].mean(axis=0)) ** 2).sum(axis=0)
        best = max(best, float(np.median(r2)))
    return best


def test_realistic_responses_are_not_linear_in_the_target(builds):
    """Ridge from the decoding target (pooled EfficientNet-Lite0) to the noiseless responses: measured median test
    R^2 at these sizes 0.725 (subj01) / 0.779 (subj05) for the linear option, 0.236 / 0.279 for the realistic."""
    _, real, linear = builds
    for subject in TINY["subjects"]:
        r2 = {
            name: _ridge_r2(
                d.stimuli.embedding("efficientnet_lite0"), d.info["noiseless_responses"][subject], 90
            )
            for name, d in (("linear", linear), ("realistic", real))
        }
        assert r2["linear"] > 0.5 and r2["realistic"] < r2["linear"] - 0.3, r2


def test_noise_ceiling_lands_near_the_target(builds):
    """Measured medians at this size: 29.8 % (subj01), 33.5 % (subj05), target 30 %; 30 test images make the
    estimate noisy, so the band is wide."""
    _, real, _ = builds
    for subject in TINY["subjects"]:
        assert 22.0 <= real.info["noise_ceiling"][subject]["median"] <= 38.0


@pytest.mark.parametrize(("percent", "n_average"), [(30.0, 3), (12.0, 1), (55.0, 2)])
def test_snr_for_noise_ceiling_gives_that_ceiling(percent, n_average):
    snr = realistic.snr_for_noise_ceiling(percent, n_average)
    rng = np.random.default_rng(3)
    signal = rng.standard_normal((4000, 1, 40)) * snr
    trials = signal + rng.standard_normal((4000, 3, 40))  # one voxel's estimate is within ~3 points
    measured = noise_ceiling(trials, n_average=n_average)
    assert abs(np.median(measured) - percent) < 1.5
    with pytest.raises(ConfigError, match="n_average must be a positive int, found 0"):
        realistic.snr_for_noise_ceiling(percent, 0)


def test_maps_fields_and_tuning():
    fields = realistic.receptive_fields(np.array([[0.1, 0.9], [0.5, 0.5]]), np.array([0.05, 0.3]), grid=6)
    assert fields.shape == (2, 36)
    np.testing.assert_allclose(fields.sum(axis=1), 1.0, rtol=1e-6)
    assert fields[0].argmax() == 5 * 6 + 0  # (column 0.1, row 0.9): bottom-left cell in raster order
    assert fields[1].max() < 0.1  # a wide field spreads its weight
    tuning = realistic.channel_tuning(np.random.default_rng(0).standard_normal((5, 9)))
    assert (tuning > 0).all() and np.allclose(tuning.sum(axis=1), 1.0)
    maps = np.random.default_rng(1).standard_normal((13, 16, 7)).astype(np.float32)
    normalised = realistic.normalised_maps(maps, np.arange(10))
    assert normalised.shape == maps.shape and (normalised >= 0).all()
    changed = maps.copy()
    changed[12] *= 5.0  # a test image: training statistics and the other images' values do not move
    np.testing.assert_array_equal(realistic.normalised_maps(changed, np.arange(10))[:12], normalised[:12])


def test_pooled_after_another_blocks_map_reuses_the_forward_pass(monkeypatch):
    images = np.random.default_rng(2).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    mid = encoders.get_encoder("efficientnet_lite0_early", image_size=64, block=10, grid=4)
    pooled = encoders.get_encoder("efficientnet_lite0", image_size=64)
    maps = mid.encode(images)
    monkeypatch.setattr(
        efficientnet.EfficientNetLite0, "_model", lambda self: pytest.fail("ran the network again")
    )
    assert pooled.encode(images).shape == (3, 1280)
    np.testing.assert_array_equal(mid.encode(images), maps)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"generative": "quadratic"}, r"generative must be one of \['linear', 'realistic'\]"),
        ({"n_components": {"low": 3}}, "n_components applies to generative='linear' only"),
        ({"features": {"low": ("pixel_projection", {})}}, r"takes features for the roles \['low', 'mid'\]"),
        ({"noise_ceiling": 120.0}, "noise_ceiling must be between 0 and 100"),
    ],
)
def test_bad_realistic_parameters_raise(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        build_nsd_like(cache_dir=tmp_path, **(TINY | {"generative": "realistic"} | change))
