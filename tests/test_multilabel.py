"""Multi-label metrics on inputs with known answers: perfect, inverted, random, and the frequency baseline."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.errors import DataError
from brainkit.evaluation.multilabel import (
    label_frequency_scores,
    multilabel_metrics,
    per_subject_table,
    score_subjects,
)


def _labels(seed: int = 0, n: int = 41, k: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, k)) < 0.3).astype(int)
    labels[0], labels[1] = 1, 0  # every class has a positive and a negative
    return labels


def test_perfect_scores() -> None:
    labels = _labels()
    metrics = multilabel_metrics(labels.astype(float), labels)
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["AUC"] == pytest.approx(1.0)
    assert metrics["hamming"] == 0.0 and metrics["n_classes_excluded"] == 0


def test_inverted_scores() -> None:
    labels = _labels()
    metrics = multilabel_metrics(1.0 - labels, labels)
    assert metrics["AUC"] == pytest.approx(0.0) and metrics["hamming"] == pytest.approx(1.0)
    assert metrics["mAP"] < 0.6  # all positives ranked last: AP ~ class frequency


def test_random_scores_near_chance() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((4000, 5)) < 0.2).astype(int)
    metrics = multilabel_metrics(rng.random((4000, 5)), labels)
    assert metrics["AUC"] == pytest.approx(0.5, abs=0.03)
    assert metrics["mAP"] == pytest.approx(labels.mean(), abs=0.03)
    assert metrics["hamming"] == pytest.approx(0.5, abs=0.03)


def test_known_average_precision() -> None:
    # one class, ranking: pos, neg, pos -> AP = (1/1 + 2/3) / 2
    metrics = multilabel_metrics(np.array([[0.9], [0.8], [0.7]]), np.array([[1], [0], [1]]))
    assert metrics["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["AUC"] == pytest.approx(0.5)


def test_classes_without_positives_are_excluded_and_counted() -> None:
    labels = _labels()
    labels[:, 3] = 0
    scores = labels.astype(float)
    scores[:, 3] = 0.9  # wrong on the empty class: counts in Hamming, not in mAP/AUC
    metrics = multilabel_metrics(scores, labels)
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["n_classes_excluded"] == 1
    assert metrics["hamming"] == pytest.approx(1 / 7)


def test_label_frequency_baseline_is_chance() -> None:
    train, test = _labels(2, 300), _labels(3, 200)
    scores = label_frequency_scores(train, len(test))
    assert scores.shape == test.shape and np.allclose(scores[5], train.mean(0))
    metrics = multilabel_metrics(scores, test)
    assert metrics["AUC"] == pytest.approx(0.5)
    assert metrics["mAP"] == pytest.approx(test.mean(0).mean(), abs=1e-6)


def test_per_subject_table_means() -> None:
    table = per_subject_table(
        {"a": {"mAP": 0.2, "AUC": 0.6, "hamming": 0.1}, "b": {"mAP": 0.4, "AUC": 0.8, "hamming": 0.3}}
    )
    assert table["mAP"] == pytest.approx(0.3) and table["AUC/b"] == 0.8


def test_score_subjects_scores_each_subject_on_its_own_labels() -> None:
    labels = {"a": np.array([[1, 0], [0, 1], [1, 1]]), "b": np.array([[0, 1], [1, 0]])}
    perfect, backwards = labels["a"].astype(float), 1.0 - labels["b"]
    row = score_subjects({"a": perfect, "b": backwards, "c": np.zeros((1, 2))}, labels)
    assert row["AUC/a"] == 1.0 and row["AUC/b"] == 0.0 and row["AUC"] == 0.5 and "mAP/c" not in row
    with pytest.raises(DataError, match=r"no scores for subjects \['b'\]"):
        score_subjects({"a": perfect}, labels)


def test_bad_inputs_raise() -> None:
    with pytest.raises(DataError, match=r"must both be \(n_samples, n_classes\)"):
        multilabel_metrics(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(DataError, match="apply a sigmoid first"):
        multilabel_metrics(np.full((2, 2), 3.0), np.eye(2))
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        multilabel_metrics(np.zeros((2, 2)), np.full((2, 2), 2))
    with pytest.raises(DataError, match="no class has a positive"):
        multilabel_metrics(np.zeros((2, 2)), np.zeros((2, 2)))


def test_the_released_convention_scores_undefined_classes_ap_0_and_auc_1() -> None:
    # 4 samples, 3 classes: class 0 perfectly ranked (AP 1, AUC 1); class 1 has no positive; class 2 no negative
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    scores = np.array([[0.9, 0.5, 0.2], [0.1, 0.4, 0.7], [0.8, 0.3, 0.5], [0.2, 0.6, 0.4]])
    ours = multilabel_metrics(scores, labels)
    # exclude: mAP over classes 0 and 2 (AP of class 2 = 1: every sample positive), AUC over class 0 alone
    assert ours["mAP"] == pytest.approx(1.0) and ours["AUC"] == pytest.approx(1.0)
    assert (ours["n_classes_scored"], ours["n_classes_excluded"]) == (2, 2)  # AUC drops both kinds
    assert (ours["n_classes_without_positive"], ours["n_classes_without_negative"]) == (1, 1)
    released = multilabel_metrics(scores, labels, undefined="released")
    assert released["mAP"] == pytest.approx((1 + 0 + 1) / 3)  # AP 0 for the class with no positive
    assert released["AUC"] == pytest.approx((1 + 1 + 1) / 3)  # AUC 1 where it is undefined
    with pytest.raises(DataError, match="undefined='drop' is not one of"):
        multilabel_metrics(scores, labels, undefined="drop")


def test_hamming_counts_a_probability_of_exactly_one_half_as_positive() -> None:
    labels = np.array([[1, 0], [0, 1]])
    scores = np.array([[0.5, 0.5], [0.49, 0.5]])  # >= 0.5: [[1, 1], [0, 1]] -> one wrong decision of 4
    assert multilabel_metrics(scores, labels)["hamming"] == pytest.approx(1 / 4)
