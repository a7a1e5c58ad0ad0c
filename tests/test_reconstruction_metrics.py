"""Known-answer tests of the reconstruction metric suite (identical, shuffled, noised pairs; hand-checked n-way)."""

from __future__ import annotations

import hashlib
from math import comb

import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.identification import correlation_matrix, n_way_trials
from brainkit.evaluation.pixels import resize_images
from brainkit.evaluation.reconstruction import (
    DEFAULT_LAYERS,
    applicable_n_way,
    evaluate_reconstructions,
    reconstruction_metrics,
    shuffled_baseline,
)
from brainkit.evaluation.reconstruction_tables import metrics_table
from brainkit.testing import photo_crops

pytest.importorskip("efficientnet_lite_pytorch")

N_IMAGES = 60
TRIALS = 200


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """60 real 64 x 64 photos: 12 crops of each of 5 skimage images (uint8)."""
    return photo_crops(N_IMAGES // 5, 64)


class Memo:
    """EfficientNet-Lite0 taps with a memo per image, so the tests pay for each distinct image once."""

    def __init__(self) -> None:
        from brainkit.stimuli.lite0_taps import Lite0Taps

        self.taps, self.memo = Lite0Taps(), {}

    def features(self, images, taps):
        keys = [hashlib.sha1(image.tobytes()).hexdigest() for image in images]
        todo = sorted({i for i, key in enumerate(keys) if key not in self.memo}, key=keys.__getitem__)
        todo = list({keys[i]: i for i in todo}.values())
        if todo:
            computed = self.taps.features(images[todo])  # every tap, once per distinct image
            for row, i in enumerate(todo):
                self.memo[keys[i]] = {tap: values[row] for tap, values in computed.items()}
        return {tap: np.stack([self.memo[key][tap] for key in keys]) for tap in taps}


@pytest.fixture(scope="module")
def lite0() -> Memo:
    return Memo()


def test_identical_pairs_score_perfectly_and_shuffled_pairs_near_chance(photos, lite0):
    metrics, shuffled = evaluate_reconstructions(photos, photos, trials=TRIALS, extractor=lite0)
    assert metrics["pixel_corr"] == pytest.approx(1.0)
    assert metrics["ssim"] == pytest.approx(1.0)
    assert metrics["mse"] == 0.0
    for layer in DEFAULT_LAYERS:
        for ways in (2, 50):
            assert metrics[f"{layer}_{ways}way"] == 1.0, layer
            assert metrics[f"{layer}_{ways}way_sd"] == 0.0
            assert metrics[f"{layer}_{ways}way_chance"] == pytest.approx(1 / ways)
    assert metrics["semantic_50way_top1"] == 1.0
    assert metrics["semantic_50way_top1_chance"] == pytest.approx(0.02)
    assert (metrics["n_images"], metrics["n_samples"], metrics["trials"]) == (60, 1, TRIALS)
    # recon i paired with real p(i) != i carries no information about its own partner: 2-way near 50 %.
    # An implementation that ignored the pairing would score 100 % here, as on the identical pairs.
    for layer in DEFAULT_LAYERS:
        assert 0.38 < shuffled[f"{layer}_2way"] < 0.62, layer
        assert shuffled[f"{layer}_50way"] < 0.08, (
            layer
        )  # (an exact copy among the distractors pushes it lower)
    assert shuffled["pixel_corr"] < 0.3 and shuffled["mse"] > 0.02
    # the reference SSIM compares 64 px photos upsampled (via 256) to 425 px in grayscale, one 1-D SSIM per column
    # (MindEye's multichannel=True on a gray image): smooth columns keep luminance and contrast terms high, so
    # unrelated pairs score 0.62 here (the 2-D SSIM: 0.51; Vis-Dec's RGB 7 x 7 SSIM: < 0.3)
    assert 0.45 < shuffled["ssim"] < 0.75
    assert shuffled_baseline(photos, photos, trials=TRIALS, extractor=lite0) == shuffled


def test_shuffled_pairs_passed_as_reconstructions(photos, lite0):
    permutation = np.random.default_rng(3).permutation(N_IMAGES)
    metrics = reconstruction_metrics(
        photos, photos[permutation], trials=TRIALS, n_way=(2,), semantic=False, extractor=lite0
    )
    for layer in DEFAULT_LAYERS:
        assert 0.38 < metrics[f"{layer}_2way"] < 0.62, layer
        assert metrics[f"{layer}_2way_chance"] == 0.5
    assert "semantic_50way_top1" not in metrics


def test_metrics_degrade_monotonically_with_noise(photos, lite0):
    rng = np.random.default_rng(0)
    results = []
    for sigma in (0, 20, 60, 150):
        noised = np.clip(photos + rng.normal(0, sigma, photos.shape), 0, 255).round().astype(np.uint8)
        results.append(reconstruction_metrics(photos, noised, trials=TRIALS, extractor=lite0))
    for low, high in zip(results, results[1:]):
        assert high["pixel_corr"] < low["pixel_corr"]
        assert high["ssim"] < low["ssim"]
        assert high["mse"] > low["mse"]
        for key in ("lite0_block1_50way", "lite0_pooled_50way", "semantic_50way_top1"):
            assert high[key] <= low[key] + 0.02, key  # allowing a little trial noise
    for key in ("lite0_block1_50way", "lite0_block15_50way", "lite0_pooled_50way", "semantic_50way_top1"):
        assert results[-1][key] < results[0][key] - 0.1, key


def test_several_samples_per_image_are_averaged_and_best_of_k_reported(photos, lite0):
    rng = np.random.default_rng(1)
    photos = photos[::3]
    noise = np.clip(photos + rng.normal(0, 150, photos.shape), 0, 255).astype(np.uint8)
    recon = np.stack([photos, noise], axis=1)  # (20, 2, 64, 64, 3): one perfect sample, one noise
    metrics = reconstruction_metrics(photos, recon, trials=50, n_way=(2,), extractor=lite0)
    alone = reconstruction_metrics(photos, noise, trials=50, n_way=(2,), extractor=lite0)
    assert metrics["pixel_corr"] == pytest.approx((1 + alone["pixel_corr"]) / 2)
    assert metrics["mse"] == pytest.approx(alone["mse"] / 2)
    assert metrics["pixel_corr_best_of_k"] == pytest.approx(1.0)
    assert metrics["mse_best_of_k"] == 0.0
    assert metrics["n_samples"] == 2
    assert metrics["lite0_pooled_2way"] == pytest.approx((1 + alone["lite0_pooled_2way"]) / 2, abs=0.03)
    rows = metrics_table(metrics)
    assert rows[0]["metric"] == "pixel_corr" and rows[0]["best_of_k"] == "1.0000"


# ---- hand-checked n-way logic (no network) ---------------------------------------------------------------


def test_n_way_rule_on_a_hand_checked_case():
    # recon 0 beats both distractors; recon 1 loses to candidate 2 only; recon 2 ties candidate 0 (a tie loses)
    scores = np.array([[[0.9, 0.1, 0.2]], [[0.1, 0.5, 0.7]], [[0.4, 0.3, 0.4]]])
    targets = np.arange(3)
    three_way = n_way_trials(scores, targets, 3, 20, np.random.default_rng(0))
    assert np.allclose(three_way, 1 / 3)  # every draw holds all others: recon 0 only
    two_way = n_way_trials(scores, targets, 2, 4000, np.random.default_rng(0))
    # recon 0: always; recon 1: when candidate 0 is drawn (1/2); recon 2: only when candidate 1 is drawn (1/2)
    assert two_way.mean() == pytest.approx((1 + 0.5 + 0.5) / 3, abs=0.01)
    assert set(np.round(two_way * 3).astype(int)) <= {1, 2, 3}


def test_constant_features_score_zero_not_chance():
    features = np.ones((5, 8))
    similarity = correlation_matrix(features, np.random.default_rng(0).normal(size=(5, 8)))
    assert np.all(similarity == 0)
    assert n_way_trials(similarity[:, None], np.arange(5), 2, 10, np.random.default_rng(0)).max() == 0


def test_n_way_errors():
    scores = np.zeros((3, 1, 3))
    with pytest.raises(ConfigError, match="2 <= n_way <= the number of candidates"):
        n_way_trials(scores, np.arange(3), 4, 10, np.random.default_rng(0))
    with pytest.raises(DataError, match="targets must be 3 integer"):
        n_way_trials(scores, np.arange(2), 2, 10, np.random.default_rng(0))


class FakeClassifier:
    """A classifier whose answer is known: image id = pixel (0, 0, 0); logits and features from tables."""

    def __init__(self, real_class: np.ndarray, recon_rank: np.ndarray, n_classes: int = 1000) -> None:
        self.real_class, self.recon_rank, self.n_classes = real_class, recon_rank, n_classes

    def features(self, images, taps):
        ids = images[:, 0, 0, 0].astype(int)
        logits = np.zeros((len(images), self.n_classes), np.float32)
        for row, image_id in enumerate(ids):
            if image_id < 100:  # a real image: its class is the argmax
                logits[row, self.real_class[image_id]] = 5.0
            else:  # a reconstruction of real image id - 100: the real class sits at rank recon_rank (1 = top)
                real = image_id - 100
                order = np.random.default_rng(real).permutation(self.n_classes)
                order = order[order != self.real_class[real]]
                logits[row, order] = np.linspace(10, 0, self.n_classes - 1)
                rank = self.recon_rank[real]
                logits[row, self.real_class[real]] = 10 - (rank - 1.5) * 10 / (self.n_classes - 2)
        return {
            "logits": logits,
            **{tap: np.eye(len(images), 4, dtype=np.float32) for tap in taps if tap != "logits"},
        }


def _images_with_ids(ids) -> np.ndarray:
    images = np.zeros((len(ids), 8, 8, 3), np.uint8)
    images[:, 0, 0, 0] = ids
    return images


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(1, 1.0), (2, 1 - 49 / 999), (11, comb(989, 49) / comb(999, 49)), (1000, 0.0)],
)
def test_semantic_50_way_rule_with_a_known_classifier(rank, expected):
    n = 4
    classifier = FakeClassifier(real_class=np.array([3, 500, 999, 0]), recon_rank=np.full(n, rank))
    real, recon = _images_with_ids(range(n)), _images_with_ids(range(100, 100 + n))
    metrics = reconstruction_metrics(
        real, recon, trials=3000, n_way=(2,), feature_layers=(), extractor=classifier
    )
    assert metrics["semantic_50way_top1"] == pytest.approx(expected, abs=0.015)
    assert metrics["semantic_50way_top1_chance"] == 0.02


def test_semantic_gt_class_comes_from_the_real_image():
    # the reconstruction's own top class is never the real image's class: with rank 1000 nothing succeeds,
    # although the reconstruction's argmax would "succeed" if the GT class were taken from the reconstruction
    classifier = FakeClassifier(real_class=np.array([7, 8, 9]), recon_rank=np.array([1, 1000, 1]))
    real, recon = _images_with_ids(range(3)), _images_with_ids(range(100, 103))
    metrics = reconstruction_metrics(
        real, recon, trials=100, n_way=(2,), feature_layers=(), extractor=classifier
    )
    assert metrics["semantic_50way_top1"] == pytest.approx(2 / 3)


# ---- input checks ----------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(photos):
    fake = FakeClassifier(np.zeros(100, int), np.ones(100, int))
    small = photos[:4]
    with pytest.raises(DataError, match="must be uint8"):
        reconstruction_metrics(small / 255.0, small, extractor=fake)
    with pytest.raises(DataError, match="real has 4 images but recon has 3"):
        reconstruction_metrics(small, small[:3], extractor=fake)
    with pytest.raises(DataError, match="pass image_size"):
        reconstruction_metrics(small, resize_images(small, 32), extractor=fake)
    with pytest.raises(ConfigError, match="50-way identification needs at least 50 image pairs; found 4"):
        reconstruction_metrics(small, small, extractor=fake)
    with pytest.raises(ConfigError, match="feature_layers takes EfficientNet-Lite0 taps only"):
        reconstruction_metrics(small, small, n_way=(2,), feature_layers=("clip",), extractor=fake)
    resized = reconstruction_metrics(
        small, resize_images(small, 32), image_size=48, n_way=(2,), feature_layers=(), semantic=False
    )
    assert resized["pixel_corr"] > 0.95
    assert applicable_n_way(10) == (
        (2,),
        ["50-way identification left out: it needs 50 image pairs, found 10."],
    )


def test_seeded_numbers_are_reproducible(photos):
    fake = FakeClassifier(np.arange(100) % 1000, np.full(100, 5))
    real, recon = _images_with_ids(range(60)), _images_with_ids(range(100, 160))
    first = reconstruction_metrics(real, recon, seed=4, trials=30, extractor=fake)
    assert first == reconstruction_metrics(real, recon, seed=4, trials=30, extractor=fake)
    assert first != reconstruction_metrics(real, recon, seed=5, trials=30, extractor=fake)
