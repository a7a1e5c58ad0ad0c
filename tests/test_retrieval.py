import numpy as np
import pytest
import torch

from brainkit.errors import DataError
from brainkit.evaluation.retrieval import (
    cosine_similarity,
    metrics_from_similarity,
    n_way_top1,
    partner_ranks,
    retrieval_metrics,
    top_k_accuracy,
    top_k_indices,
)


def test_identity_embeddings_retrieve_perfectly():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((23, 4, 7)).astype(np.float32)
    metrics = retrieval_metrics(embeddings * 3.0, embeddings, n_way=10, n_draws=5)
    for direction in ("fmri_to_image", "image_to_fmri"):
        assert metrics[f"{direction}/top1"] == 1.0
        assert metrics[f"{direction}/top5"] == 1.0
        assert metrics[f"{direction}/10way_top1_mean"] == 1.0
        assert metrics[f"{direction}/10way_top1_sd"] == 0.0
    assert metrics["n_stimuli"] == 23


def test_chance_values_are_exact():
    rng = np.random.default_rng(1)
    metrics = retrieval_metrics(
        rng.standard_normal((40, 9)), rng.standard_normal((40, 9)), n_way=8, n_draws=3
    )
    assert metrics["fmri_to_image/top1_chance"] == 1 / 40
    assert metrics["image_to_fmri/top5_chance"] == 5 / 40
    assert metrics["fmri_to_image/8way_top1_chance"] == 1 / 8


@pytest.mark.parametrize("shift_steps, rank", [(1.2, 2), (3.2, 6)])
def test_constructed_permutation_gives_zero_top1_and_known_top_k(shift_steps, rank):
    # 11 stimuli on a circle; brain row i points `shift_steps` steps past stimulus i. For 1.2 steps the angular
    # distances are 0.2 (i+1), 0.8 (i+2), 1.2 (i: the partner), 1.8 (i+3): the partner ranks third (rank 2).
    # For 3.2 steps: i+3, i+4, i+2, i+5, i+1, i+6 come first (0.2 ... 2.8), then the partner (3.2): rank 6.
    n = 11
    angles = 2 * np.pi * np.arange(n) / n
    target = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    shifted = angles + 2 * np.pi * shift_steps / n
    predicted = np.stack([np.cos(shifted), np.sin(shifted)], axis=1)
    similarity = cosine_similarity(predicted, target)
    assert (partner_ranks(similarity) == rank).all()
    assert (partner_ranks(similarity, "image_to_fmri") == rank).all()  # the circle is symmetric
    metrics = metrics_from_similarity(similarity, top_k=(1, 5), n_way=None)
    assert metrics["fmri_to_image/top1"] == 0.0
    assert metrics["image_to_fmri/top1"] == 0.0
    assert metrics["fmri_to_image/top5"] == (1.0 if rank < 5 else 0.0)
    assert top_k_accuracy(similarity, rank) == 0.0
    assert top_k_accuracy(similarity, rank + 1) == 1.0
    if rank == 2:
        np.testing.assert_array_equal(top_k_indices(similarity, [0, 5], k=3), [[1, 2, 0], [6, 7, 5]])


def test_reversed_pairs_are_never_retrieved_first():
    n = 9
    target = np.eye(n, dtype=np.float32)
    predicted = target[::-1].copy()  # brain row i looks exactly like stimulus n-1-i
    metrics = retrieval_metrics(torch.from_numpy(predicted), target, top_k=(1, 5), n_way=None)
    # the middle stimulus (i = 4) maps onto itself; every other partner has similarity 0, tied with n - 2 others
    assert metrics["fmri_to_image/top1"] == pytest.approx(1 / n)
    assert metrics["fmri_to_image/top5"] == pytest.approx(1 / n)
    assert "fmri_to_image/300way_top1_mean" not in metrics


def test_n_way_is_reproducible_with_a_seed_and_reports_mean_not_max():
    rng = np.random.default_rng(2)
    target = rng.standard_normal((60, 16))
    predicted = target + 1.5 * rng.standard_normal((60, 16))
    similarity = cosine_similarity(predicted, target)
    first = n_way_top1(similarity, n_way=20, n_draws=30, seed=7)
    again = n_way_top1(similarity, n_way=20, n_draws=30, seed=7)
    other = n_way_top1(similarity, n_way=20, n_draws=30, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (30,)
    metrics = metrics_from_similarity(similarity, n_way=20, n_draws=30, seed=7)
    assert metrics["fmri_to_image/20way_top1_mean"] == pytest.approx(first.mean())
    assert metrics["fmri_to_image/20way_top1_sd"] == pytest.approx(first.std(ddof=1))
    assert metrics["fmri_to_image/20way_top1_mean"] < first.max()


def test_n_way_with_all_candidates_equals_top1():
    rng = np.random.default_rng(3)
    similarity = rng.standard_normal((17, 17))
    draws = n_way_top1(similarity, n_way=17, n_draws=4, seed=0)
    assert np.allclose(draws, top_k_accuracy(similarity, 1))


def test_chunked_similarity_matches_direct():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((7, 50)), rng.standard_normal((7, 50))
    expected = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        b / np.linalg.norm(b, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(cosine_similarity(a, b, chunk_size=8), expected, atol=1e-6)


def test_shape_mismatch_raises():
    with pytest.raises(DataError, match=r"same number of rows"):
        retrieval_metrics(np.zeros((5, 3)), np.zeros((6, 3)), n_way=None)
    with pytest.raises(DataError, match=r"flattened embedding size \(found 6 vs 8\)"):
        retrieval_metrics(np.ones((5, 2, 3)), np.ones((5, 8)), n_way=None)
    with pytest.raises(DataError, match=r"at least 2 dimensions"):
        retrieval_metrics(np.ones(5), np.ones(5), n_way=None)


def test_nan_raises():
    predicted = np.ones((5, 3))
    predicted[2, 1] = np.nan
    with pytest.raises(DataError, match=r"predicted contains NaN or inf \(rows \[2\]"):
        retrieval_metrics(predicted, np.ones((5, 3)), n_way=None)


def test_n_way_larger_than_test_set_raises():
    with pytest.raises(DataError, match=r"300-way retrieval needs at least 300 test stimuli, found 12"):
        retrieval_metrics(np.eye(12), np.eye(12), n_way=300)
    with pytest.raises(DataError, match=r"top-13 asked over 12 test stimuli"):
        retrieval_metrics(np.eye(12), np.eye(12), top_k=(13,), n_way=None)


def test_top_k_indices_checks_queries():
    with pytest.raises(DataError, match=r"fall outside the test set \[0, 4\)"):
        top_k_indices(np.eye(4), [4], k=2)
    with pytest.raises(DataError, match=r"Unknown retrieval direction 'up'"):
        top_k_indices(np.eye(4), [0], k=2, direction="up")
