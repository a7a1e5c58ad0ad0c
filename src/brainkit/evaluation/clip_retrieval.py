"""Our movie-clip retrieval protocol, the ``sim`` recipe's ``evaluation.protocol="all_targets"`` (METHODS.md
sec. 1.5's reading of SIM's ``tools/retrieval.py``; the released code itself is :mod:`.sim_retrieval`).

A run is a sequence of 1-s-shifted 3-s stimulus clips, clip ``c`` starting at second ``c``; each clip belongs to a
movie segment (``segment_of[c] >= 0``) or to rest (``-1``). The fMRI sample that starts at frame ``t`` is paired
with clip ``max(0, t - lag)`` (``lag`` = 6 s: the haemodynamic delay, SIM's ``temporal_lag``).

For each test clip (the target), 32 candidates are drawn: the target and 31 negatives,
- ``soft``: from *other* segments of the run (SIM's ``inter_movie_sample``),
- ``hard``: from the *same* segment (``intra_movie_sample``),
never a rest clip and never a clip starting within ``exclusion`` (3) seconds of the target. The fMRI embedding
of the target ranks the candidates' stimulus embeddings by cosine similarity; top-k = the target within the
first k (ties count against it). The recipe makes every clip of a setting a target and reports the mean and
sd over subjects. Chance: k / 32. (SIM's released code differs: 32 negatives, 33 candidates, negatives from
held-out halves only, 100 drawn targets per run; see :mod:`.sim_retrieval`.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainkit.errors import DataError

KINDS = ("soft", "hard")


def paired_clip(frame: np.ndarray | int, lag: int = 6) -> np.ndarray:
    """The stimulus clip paired with the fMRI sample starting at ``frame`` (TR = 1 s): ``max(0, frame - lag)``."""
    return np.maximum(0, np.asarray(frame) - lag)


def draw_candidates(
    target: int,
    segment_of: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    n_candidates: int = 32,
    exclusion: int = 3,
) -> np.ndarray:
    """Clip indices (n_candidates,): ``target`` first, then ``n_candidates - 1`` negatives of ``kind``."""
    segment_of = np.asarray(segment_of)
    if kind not in KINDS:
        raise DataError(f"negatives kind {kind!r} is not one of {KINDS}.")
    if segment_of[target] < 0:
        raise DataError(f"clip {target} is a rest clip; rest is excluded from the protocol.")
    clips = np.arange(len(segment_of))
    allowed = (segment_of >= 0) & (np.abs(clips - target) > exclusion)
    same = segment_of == segment_of[target]
    pool = clips[allowed & (same if kind == "hard" else ~same)]
    if len(pool) < n_candidates - 1:
        raise DataError(
            f"{kind} negatives for clip {target}: {len(pool)} clips available, {n_candidates - 1} needed. Use "
            "longer segments, fewer candidates, or the other kind of negatives."
        )
    return np.concatenate([[target], rng.choice(pool, n_candidates - 1, replace=False)])


def clip_retrieval(
    fmri: np.ndarray,
    stimulus: np.ndarray,
    segment_of: np.ndarray,
    targets: np.ndarray,
    kind: str,
    seed: int = 0,
    n_candidates: int = 32,
    exclusion: int = 3,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Top-k (fractions) of one subject: ``fmri[i]`` (n_clips, d) is the embedding of the fMRI paired with
    clip ``i``, ``stimulus`` (n_clips, d) the clips' embeddings; ``targets`` the test clips."""
    fmri, stimulus = np.asarray(fmri, dtype=np.float64), np.asarray(stimulus, dtype=np.float64)
    if fmri.shape != stimulus.shape or fmri.ndim != 2 or len(fmri) != len(segment_of):
        raise DataError(
            f"fmri {fmri.shape} and stimulus {stimulus.shape} must both be (n_clips = {len(segment_of)}, dim)."
        )
    fmri = fmri / np.maximum(np.linalg.norm(fmri, axis=1, keepdims=True), 1e-12)
    stimulus = stimulus / np.maximum(np.linalg.norm(stimulus, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    hits = {k: 0 for k in ks}
    for target in np.asarray(targets):
        candidates = draw_candidates(int(target), segment_of, kind, rng, n_candidates, exclusion)
        scores = stimulus[candidates] @ fmri[target]
        rank = int((scores[1:] >= scores[0]).sum())  # other candidates at least as similar
        for k in ks:
            hits[k] += rank < k
    out = {f"top{k}": hits[k] / len(targets) for k in ks}
    out.update({f"top{k}_chance": k / n_candidates for k in ks})
    return out


def summarise(per_subject: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and sd over subjects of every metric: ``{"top1_mean": ..., "top1_sd": ...}`` (chance kept)."""
    if not per_subject:
        raise DataError("summarise: no subjects.")
    out = {}
    for key in per_subject[0]:
        values = np.array([row[key] for row in per_subject], dtype=float)
        if key.endswith("_chance"):
            out[key] = float(values[0])
        else:
            out[f"{key}_mean"], out[f"{key}_sd"] = float(values.mean()), float(values.std())
    return out


__all__ = ["KINDS", "clip_retrieval", "draw_candidates", "paired_clip", "summarise"]
