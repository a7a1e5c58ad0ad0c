"""Retrieval metrics: how often brain-predicted embeddings pick out their own stimulus.

Row ``i`` of ``predicted`` (embeddings decoded from brain data) and row ``i`` of ``target`` (the stimulus's own
embedding) belong to test stimulus ``i``. Both are flattened, L2-normalised and compared by cosine similarity,
giving ``similarity[i, j] = cos(predicted[i], target[j])``.

- ``fmri_to_image``: query = a brain row, candidates = all stimulus rows (row ``i`` of ``similarity``).
- ``image_to_fmri``: query = a stimulus row, candidates = all brain rows (column ``j`` of ``similarity``).

Top-k counts a query as correct when its true partner ranks within the first ``k`` of all ``n`` candidates.
Ties count against the query (the partner's rank = 1 + the number of *other* candidates scoring at least as
high), so constant embeddings score 0, not 100 %.

N-way top-1 (MindEye, Lite-Mind: 300-way) pits the true partner against ``N - 1`` random distractors drawn per
query, repeated over ``n_draws`` seeded draws. We report the mean and the standard deviation across draws; never
the best draw (Lite-Mind's released ``inference_litemind.py`` printed the maximum over seeds as well).

Every metric has its chance level beside it: ``k / n`` for top-k over ``n``, ``1 / N`` for N-way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from brainkit.config import Checked, bounded
from brainkit.errors import DataError

logger = logging.getLogger(__name__)

DIRECTIONS = ("fmri_to_image", "image_to_fmri")
ArrayLike = np.ndarray | torch.Tensor


def _as_2d(values: ArrayLike, name: str) -> np.ndarray | torch.Tensor:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    else:
        values = np.asarray(values)
    if values.ndim < 2:
        raise DataError(
            f"{name} has shape {tuple(values.shape)}; expected (n_stimuli, ...) with at least 2 dimensions. "
            "Add a feature axis, e.g. values[:, None]."
        )
    if values.shape[0] < 2:
        raise DataError(f"{name} has {values.shape[0]} row(s); retrieval needs at least 2 test stimuli.")
    return values.reshape(values.shape[0], -1)


def _chunk(values: np.ndarray | torch.Tensor, start: int, stop: int) -> torch.Tensor:
    part = values[:, start:stop]
    if isinstance(part, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))
    return part.to(torch.float32).contiguous()


def cosine_similarity(predicted: ArrayLike, target: ArrayLike, chunk_size: int = 16384) -> np.ndarray:
    """Cosine similarity between every brain-predicted row and every stimulus row.

    The feature axis is processed in chunks of ``chunk_size`` columns, so neither input is copied whole:
    1,000 x 197,376 (Lite-Mind's 257 x 768 tokens) took 12 s on 2 busy cores and ~130 MB beyond the inputs.

    Parameters
    ----------
    predicted : array or tensor, shape (n_stimuli, ...)
        Embeddings decoded from brain data; trailing axes are flattened.
    target : array or tensor, shape (n_stimuli, ...)
        True stimulus embeddings, same row order and flattened size as ``predicted``.
    chunk_size : int
        Feature columns per chunk.

    Returns
    -------
    similarity : np.ndarray, shape (n_stimuli, n_stimuli), float32
        ``similarity[i, j] = cos(predicted[i], target[j])``; an all-zero row has similarity 0 to everything.
    """
    predicted_2d = _as_2d(predicted, "predicted")
    target_2d = _as_2d(target, "target")
    if tuple(predicted_2d.shape) != tuple(target_2d.shape):
        raise DataError(
            f"predicted has shape {tuple(predicted.shape)} and target {tuple(target.shape)}; expected the same "
            "number of rows (one per test stimulus, same order) and the same flattened embedding size "
            f"(found {predicted_2d.shape[1]} vs {target_2d.shape[1]})."
        )
    n_stimuli, n_features = predicted_2d.shape
    dots = torch.zeros(n_stimuli, n_stimuli, dtype=torch.float64)
    squared_predicted = torch.zeros(n_stimuli, dtype=torch.float64)
    squared_target = torch.zeros(n_stimuli, dtype=torch.float64)
    for start in range(0, n_features, chunk_size):
        stop = min(start + chunk_size, n_features)
        a, b = _chunk(predicted_2d, start, stop), _chunk(target_2d, start, stop)
        for name, part in (("predicted", a), ("target", b)):
            if not torch.isfinite(part).all():
                rows = torch.nonzero(~torch.isfinite(part).all(dim=1)).flatten()[:5].tolist()
                raise DataError(
                    f"{name} contains NaN or inf (rows {rows}...); retrieval needs finite embeddings. "
                    "Check the model's outputs or the embedding cache."
                )
        dots += a @ b.T
        squared_predicted += torch.linalg.vector_norm(a, dim=1, dtype=torch.float64) ** 2
        squared_target += torch.linalg.vector_norm(b, dim=1, dtype=torch.float64) ** 2
    norms = torch.outer(squared_predicted.sqrt(), squared_target.sqrt()).clamp_min(1e-12)
    return (dots / norms).to(torch.float32).numpy()


def _oriented(similarity: np.ndarray, direction: str) -> np.ndarray:
    """Rows = queries, columns = candidates, true partner of query i at column i."""
    if direction not in DIRECTIONS:
        raise DataError(f"Unknown retrieval direction {direction!r}; choose one of {DIRECTIONS}.")
    return similarity if direction == "fmri_to_image" else similarity.T


def _check_similarity(similarity: np.ndarray) -> np.ndarray:
    similarity = np.asarray(similarity)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or similarity.shape[0] < 2:
        raise DataError(
            f"similarity has shape {similarity.shape}; expected a square (n_stimuli, n_stimuli) matrix with "
            "n_stimuli >= 2, as returned by cosine_similarity."
        )
    if not np.isfinite(similarity).all():
        raise DataError(
            "similarity contains NaN or inf; compute it with cosine_similarity from finite inputs."
        )
    return similarity


def partner_ranks(similarity: np.ndarray, direction: str = "fmri_to_image") -> np.ndarray:
    """0-based rank of each query's true partner among all candidates (ties count against the query).

    Returns
    -------
    ranks : np.ndarray, shape (n_stimuli,), int64
        ``ranks[i] = number of other candidates scoring >= the true partner``; 0 means retrieved first.
    """
    scores = _oriented(_check_similarity(similarity), direction)
    true_scores = np.diagonal(scores)[:, None]
    at_least = (scores >= true_scores).sum(axis=1) - 1  # minus the partner itself
    return at_least.astype(np.int64)


def top_k_accuracy(similarity: np.ndarray, k: int, direction: str = "fmri_to_image") -> float:
    """Fraction of queries whose true partner ranks within the first ``k`` of all ``n_stimuli``."""
    n_stimuli = np.shape(similarity)[0]
    if not 1 <= k <= n_stimuli:
        raise DataError(f"top-{k} asked over {n_stimuli} test stimuli; expected 1 <= k <= {n_stimuli}.")
    return float((partner_ranks(similarity, direction) < k).mean())


def n_way_top1(
    similarity: np.ndarray,
    n_way: int = 300,
    n_draws: int = 30,
    seed: int = 0,
    direction: str = "fmri_to_image",
) -> np.ndarray:
    """N-way top-1 accuracy of each of ``n_draws`` seeded draws.

    In each draw every query gets ``n_way - 1`` distinct random distractors (never itself); it is correct when
    its true partner scores strictly higher than all of them.

    Returns
    -------
    accuracies : np.ndarray, shape (n_draws,), float64
        One accuracy per draw; report their mean and standard deviation, not their maximum.
    """
    scores = _oriented(_check_similarity(similarity), direction)
    n_stimuli = scores.shape[0]
    if not 2 <= n_way <= n_stimuli:
        raise DataError(
            f"{n_way}-way retrieval needs at least {n_way} test stimuli, found {n_stimuli}. "
            f"Lower n_way (to at most {n_stimuli}) or evaluate on a larger test set."
        )
    if n_draws < 1:
        raise DataError(f"n_draws is {n_draws}; expected at least 1.")
    rng = np.random.default_rng(seed)
    true_scores = np.diagonal(scores)[:, None]
    rows = np.arange(n_stimuli)[:, None]
    accuracies = np.empty(n_draws)
    for draw in range(n_draws):
        keys = rng.random((n_stimuli, n_stimuli))
        keys[np.arange(n_stimuli), np.arange(n_stimuli)] = np.inf  # a query is never its own distractor
        distractors = np.argpartition(keys, n_way - 2, axis=1)[:, : n_way - 1]
        accuracies[draw] = (true_scores > scores[rows, distractors]).all(axis=1).mean()
    return accuracies


def retrieval_metrics(
    predicted: ArrayLike,
    target: ArrayLike,
    top_k: Sequence[int] = (1, 5),
    n_way: int | None = 300,
    n_draws: int = 30,
    seed: int = 0,
) -> dict[str, float]:
    """All retrieval metrics, both directions, each with its chance level, as one flat dict.

    Parameters
    ----------
    predicted, target : array or tensor, shape (n_stimuli, ...)
        Brain-predicted and true stimulus embeddings; row ``i`` of both is test stimulus ``i``.
    top_k : sequence of int
        k values for top-k over the whole test set.
    n_way : int or None
        N for N-way top-1 (default 300 as in MindEye / Lite-Mind); None skips it. Raises DataError when
        larger than ``n_stimuli``.
    n_draws, seed : int
        Number of seeded random draws of distractors for N-way.

    Returns
    -------
    metrics : dict[str, float]
        Keys ``{direction}/top{k}``, ``{direction}/top{k}_chance``, ``{direction}/{N}way_top1_mean``,
        ``..._sd`` (across draws, ddof=1; 0 for one draw), ``..._chance``, and ``n_stimuli``; fractions in [0, 1].
    """
    similarity = cosine_similarity(predicted, target)
    return metrics_from_similarity(similarity, top_k=top_k, n_way=n_way, n_draws=n_draws, seed=seed)


@dataclass(frozen=True)
class RetrievalSpec(Checked):
    """How a decoder's test predictions are scored: top-k over the whole test set, and ``n_way`` candidates
    averaged over ``n_draws`` seeded draws (skipped, with a warning, when the test set is smaller)."""

    n_way: int = bounded(300, ge=2, fix="candidates per identification, the true one among them")
    n_draws: int = bounded(30, ge=1, fix="seeded draws of distractors")
    top_k: tuple[int, ...] = bounded((1, 5), ge=1)
    seed: int = bounded(0, ge=0)


def score_predictions(spec: RetrievalSpec, predicted: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """:func:`retrieval_metrics` with the settings of ``spec``."""
    n_way = spec.n_way if spec.n_way <= len(target) else None
    if n_way is None:
        logger.warning("Only %d test stimuli: %d-way retrieval skipped.", len(target), spec.n_way)
    return retrieval_metrics(predicted, target, spec.top_k, n_way, spec.n_draws, spec.seed)


def metrics_from_similarity(
    similarity: np.ndarray,
    top_k: Sequence[int] = (1, 5),
    n_way: int | None = 300,
    n_draws: int = 30,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`retrieval_metrics` from a precomputed (n_stimuli, n_stimuli) similarity matrix."""
    similarity = _check_similarity(similarity)
    n_stimuli = similarity.shape[0]
    metrics: dict[str, float] = {"n_stimuli": float(n_stimuli)}
    for direction in DIRECTIONS:
        ranks = partner_ranks(similarity, direction)
        for k in top_k:
            if not 1 <= k <= n_stimuli:
                raise DataError(
                    f"top-{k} asked over {n_stimuli} test stimuli; expected 1 <= k <= {n_stimuli}."
                )
            metrics[f"{direction}/top{k}"] = float((ranks < k).mean())
            metrics[f"{direction}/top{k}_chance"] = k / n_stimuli
        if n_way is not None:
            draws = n_way_top1(similarity, n_way, n_draws, seed, direction)
            prefix = f"{direction}/{n_way}way_top1"
            metrics[f"{prefix}_mean"] = float(draws.mean())
            metrics[f"{prefix}_sd"] = float(draws.std(ddof=1)) if n_draws > 1 else 0.0
            metrics[f"{prefix}_chance"] = 1.0 / n_way
    return metrics


def top_k_indices(
    similarity: np.ndarray, queries: Sequence[int], k: int = 5, direction: str = "fmri_to_image"
) -> np.ndarray:
    """Indices of the ``k`` best candidates for each chosen query, best first (for the report's grid).

    Parameters
    ----------
    similarity : np.ndarray, shape (n_stimuli, n_stimuli)
        From :func:`cosine_similarity`.
    queries : sequence of int
        Test-stimulus indices to look up.
    k : int
        Candidates per query.
    direction : str
        ``"fmri_to_image"`` (candidates are stimuli) or ``"image_to_fmri"`` (candidates are brain rows).

    Returns
    -------
    indices : np.ndarray, shape (n_queries, k), int64
        ``indices[q, r]`` = the r-th retrieved candidate for ``queries[q]``; it is correct when it equals
        ``queries[q]``.
    """
    scores = _oriented(_check_similarity(similarity), direction)
    n_stimuli = scores.shape[0]
    queries = np.asarray(queries, dtype=np.int64).reshape(-1)
    if queries.size and (queries.min() < 0 or queries.max() >= n_stimuli):
        raise DataError(f"Query indices {queries.tolist()} fall outside the test set [0, {n_stimuli}).")
    if not 1 <= k <= n_stimuli:
        raise DataError(f"k is {k}; expected 1 <= k <= {n_stimuli} (the number of test stimuli).")
    # stable sort on the negated scores keeps the lower index first among ties
    order = np.argsort(-scores[queries], axis=1, kind="stable")
    return order[:, :k].astype(np.int64)
