"""N-way identification over random distractors: the rule behind feature-space identification and the paper's
50-way top-1 semantic classification (Vis-Dec, METHODS.md 4.5).

Both reduce to one question, asked for every reconstruction and every trial: given ``scores[i, s, :]`` (how
well sample ``s`` of reconstruction ``i`` matches each of ``n_candidates`` candidates) and its true candidate
``targets[i]``, does the target score strictly higher than ``n_way - 1`` distractors drawn at random, without
replacement, from the other candidates?

- Feature identification: candidates are the real images, ``scores[i, s, j]`` = Pearson correlation between the
  features of reconstruction (i, s) and of real image j, ``targets[i] = i`` (its own real image).
- Semantic classification: candidates are the 1000 ImageNet classes, ``scores[i, s, c]`` = the classifier's
  probability of class c on reconstruction (i, s), ``targets[i]`` = the class the classifier gives the real image.

Ties count against the reconstruction (a distractor scoring at least as high as the target beats it), so
constant features or a flat probability vector score 0, not chance. One *trial* draws fresh distractors for
every reconstruction (the same draw for all samples of one reconstruction); the trial's score is the share of
the n x k (reconstruction, sample) pairs that win. We report the mean over trials and the standard deviation
across trials (ddof 0). Vis-Dec's ``eval_metrics.py`` instead reports the mean over images of each image's
standard deviation across its trials; ours is the spread of the whole-set accuracy, which is what a reader
comparing two numbers needs. Chance is ``1 / n_way``.
"""

from __future__ import annotations

import numpy as np

from brainkit.errors import ConfigError, DataError


def correlation_matrix(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Pearson correlation between every query row and every candidate row.

    Parameters
    ----------
    queries : array, shape (n_queries, n_features)
    candidates : array, shape (n_candidates, n_features)

    Returns
    -------
    float64 array, shape (n_queries, n_candidates)
        A row with zero variance (a constant feature vector) has correlation 0 with everything.
    """
    queries = np.asarray(queries, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64)
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise DataError(
            f"correlation_matrix takes (n_queries, d) and (n_candidates, d) features; found {queries.shape} "
            f"and {candidates.shape}."
        )

    def standardise(rows: np.ndarray) -> np.ndarray:
        centred = rows - rows.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 1e-12 * rows.shape[1])

    return standardise(queries) @ standardise(candidates).T


def n_way_trials(
    scores: np.ndarray, targets: np.ndarray, n_way: int, trials: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-trial accuracy of the n-way rule.

    Parameters
    ----------
    scores : array, shape (n, k, n_candidates)
        ``scores[i, s, c]``: how well sample s of reconstruction i matches candidate c (higher is better).
    targets : int array, shape (n,)
        The true candidate of each reconstruction.
    n_way : int
        Candidates per question: the target plus ``n_way - 1`` distractors (2 <= n_way <= n_candidates).
    trials : int
        Independent distractor draws.
    rng : numpy Generator
        The source of every draw (seed it for reproducible numbers).

    Returns
    -------
    float array, shape (trials,)
        The share of (reconstruction, sample) pairs whose target beats all its distractors, per trial.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 3:
        raise DataError(f"scores must have shape (n, k, n_candidates); found {scores.shape}.")
    n, k, n_candidates = scores.shape
    if targets.shape != (n,) or not np.issubdtype(targets.dtype, np.integer):
        raise DataError(
            f"targets must be {n} integer indices (one per reconstruction); found {targets.shape}."
        )
    if n == 0:
        raise DataError("n-way identification needs at least one reconstruction; found none.")
    if targets.min() < 0 or targets.max() >= n_candidates:
        raise DataError(
            f"targets must index the {n_candidates} candidates; found {targets.min()}..{targets.max()}."
        )
    if not isinstance(n_way, int | np.integer) or not 2 <= n_way <= n_candidates:
        raise ConfigError(
            f"{n_way}-way identification needs 2 <= n_way <= the number of candidates ({n_candidates}); "
            f"use fewer ways or more images."
        )
    if not isinstance(trials, int | np.integer) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, found {trials!r}.")
    rows = np.arange(n)
    target_scores = scores[rows, :, targets]  # (n, k)
    beats = scores >= target_scores[:, :, None]  # ties count against the reconstruction
    beats[rows, :, targets] = False  # the target does not compete with itself
    accuracy = np.empty(trials)
    for trial in range(trials):
        keys = rng.random((n, n_candidates))  # float64: ties between keys are practically impossible
        keys[rows, targets] = 2.0  # never drawn as a distractor
        threshold = np.partition(keys, n_way - 2, axis=1)[:, n_way - 2 : n_way - 1]  # (n, 1)
        drawn = keys <= threshold  # (n, n_candidates): the n_way - 1 smallest keys, a uniform random subset
        lost = (beats & drawn[:, None, :]).any(axis=-1)
        accuracy[trial] = 1.0 - lost.mean()
    return accuracy
