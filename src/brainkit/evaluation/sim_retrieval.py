"""SIM's released movie-clip retrieval protocol (metrics-lab/sim ``tools/retrieval.py`` run with
``config/retrieval/hparams.yml``): the ``sim`` recipe's default, ``evaluation.protocol="sim"``.

A run is described by its segment table: each movie segment's (first, last) clip, inclusive (clip ``c`` starts at
second ``c``; the fMRI of clip ``c`` starts ``lag`` frames later), and which one is the test-retest segment. Rest
is outside every segment. What the released evaluation computes for one row of its split (one subject's run):

- **Targets**: 100 (``nbr_clip_to_test``), drawn with replacement. Each: a movie segment drawn uniformly
  (``random.choice`` over the ``movie_sample_*`` segments: never rest, never the test-retest segment), then a
  clip uniformly within its half (``random.randint``, both ends included): with ``hp = (first + last) // 2``, the
  held-out half is ``[hp + 1, last]`` (split ``val``: unseen subjects; ``train-for-val``: training subjects) and
  the training half ``[first, hp]`` (split ``train``). An odd-length segment's held-out half therefore starts
  ``ceil(n / 2)`` clips in, one clip later than ``n // 2``.
- **Negatives**: 32 (``nbr_stimuli_to_sample_per_test``), drawn without replacement (``random.sample``) from a
  pool made of held-out halves ``[hp + 1, last]`` only, whatever the target's half (``movie_sampling_strategy:
  half``):
  ``soft`` (``inter_movie_sample``): every OTHER segment of the run, the test-retest segment included, rest
  excluded (``exclude_negative_rest_from_eval``); ``hard`` (``intra_movie_sample``): the target's own segment.
  From the pool the target is removed and, for video, the clips within 3 of it; for audio only the target.
- **Scores**: the target and its negatives (33 candidates, chance k / 33) ranked by cosine similarity with the
  fMRI embedding; top-k per row; the table gives mean and sd (``np.std``) over rows.

SIM clamps a negative to ``n_frames - clip_duration - 1``; its tables never reach that far, and neither is it done
here. A pool smaller than 32 stops the released run (``random.sample`` raises): MOVIE1's last movie segment
``[734, 797]`` has a 32-clip held-out half, so a hard pool holds 25-28 clips (video) or 31 (audio). Here such a
target is drawn as usual, then **skipped and counted** (``n_left``): the row's top-k is over the targets it
scored, each among exactly 33 candidates (chance stays 1 / 33); the other targets are unchanged.

Determinism and pairing: a row's targets come from a generator seeded by (seed, subject, run) and each target's
negatives from one seeded by (seed, subject, run, kind, target number): every model meets the same candidates, and
the two directions meet the same targets and, where their pools agree (always for soft negatives), the same
negatives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainkit.errors import ConfigError, DataError

N_NEGATIVES, N_TARGETS, EXCLUSION, KS = 32, 100, 3, (1, 5, 10)
N_CANDIDATES = N_NEGATIVES + 1
KINDS = ("soft", "hard")
DIRECTIONS = ("video", "audio")
HALVES = ("train", "held_out")


def segment_table(segment_of: np.ndarray, retest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One run's segments in time order: (n_segments, 2) inclusive (first, last) clips and (n_segments,) bool,
    the test-retest one; from ``segment_of`` (n_clips,) (-1 = rest) and ``retest`` (n_clips,) bool."""
    segment_of, retest = np.asarray(segment_of), np.asarray(retest, dtype=bool)
    ids = [s for s in np.unique(segment_of) if s >= 0]
    bounds, is_retest = [], []
    for s in ids:
        clips = np.flatnonzero(segment_of == s)
        if clips[-1] - clips[0] + 1 != len(clips):
            raise DataError(f"segment {s} is not one block of consecutive clips: {clips.tolist()}.")
        bounds.append((clips[0], clips[-1]))
        is_retest.append(bool(retest[clips].any()))
    order = np.argsort([b[0] for b in bounds])
    return np.array(bounds, dtype=int).reshape(-1, 2)[order], np.array(is_retest, dtype=bool)[order]


def half(first: int, last: int, which: str) -> np.ndarray:
    """The clips of a segment's ``which`` half: ``[hp + 1, last]`` (held_out) or ``[first, hp]`` (train),
    ``hp = (first + last) // 2``."""
    if which not in HALVES:
        raise ConfigError(f"half must be one of {HALVES}, found {which!r}.")
    middle = (first + last) // 2
    return np.arange(middle + 1, last + 1) if which == "held_out" else np.arange(first, middle + 1)


def target_choices(
    bounds: np.ndarray, is_retest: np.ndarray, which: str, available: np.ndarray | None = None
) -> list[np.ndarray]:
    """Per movie segment (the test-retest one left out), the clips a target may be: its ``which`` half, within
    ``available`` (clips that have an fMRI embedding) when given; segments with none are dropped."""
    choices = []
    for (first, last), retest in zip(bounds, is_retest):
        if retest:
            continue
        clips = half(int(first), int(last), which)
        if available is not None:
            clips = np.intersect1d(clips, available)
        if len(clips):
            choices.append(clips)
    return choices


def candidate_pools(
    bounds: np.ndarray, is_retest: np.ndarray, targets: Sequence[int], kind: str, direction: str
) -> list[np.ndarray]:
    """Each target's negative pool (sorted clips), as SIM builds it (module doc): held-out halves of the other
    segments (soft) or of its own (hard), minus the target and, for video, the clips within 3 of it."""
    if kind not in KINDS or direction not in DIRECTIONS:
        raise ConfigError(
            f"kind must be in {KINDS} and direction in {DIRECTIONS}, found {kind!r}, {direction!r}."
        )
    bounds = np.asarray(bounds)
    halves = [half(int(a), int(b), "held_out") for a, b in bounds]
    window = EXCLUSION if direction == "video" else 0
    pools = []
    for target in targets:
        inside = np.flatnonzero((bounds[:, 0] <= target) & (target <= bounds[:, 1]))
        if len(inside) != 1 or is_retest[inside[0]]:
            raise DataError(f"target clip {target} is not in a movie segment of {bounds.tolist()}.")
        own = inside[0]
        parts = [halves[own]] if kind == "hard" else [h for i, h in enumerate(halves) if i != own]
        pool = np.concatenate(parts) if parts else np.zeros(0, int)
        pools.append(pool[np.abs(pool - target) > window])
    return pools


def draw_targets(choices: list[np.ndarray], n_targets: int, rng: np.random.Generator) -> np.ndarray:
    """(n_targets,) clips: each a segment drawn uniformly, then a clip uniformly within it (with replacement)."""
    if not choices:
        raise DataError("no movie segment has a clip that can be a target.")
    out = np.empty(n_targets, dtype=int)
    for i in range(n_targets):
        clips = choices[rng.integers(len(choices))]
        out[i] = clips[rng.integers(len(clips))]
    return out


def row_candidates(
    bounds: np.ndarray,
    is_retest: np.ndarray,
    targets: np.ndarray,
    kind: str,
    direction: str,
    seed: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """(n_kept, 33) candidates (the target first) and (n_targets,) bool kept: a target whose pool has fewer
    than 32 clips is skipped (module doc). ``seed``: the row's ints, extended by the kind and target number."""
    pools = candidate_pools(bounds, is_retest, targets, kind, direction)
    rows, kept = [], np.zeros(len(targets), dtype=bool)
    for i, (target, pool) in enumerate(zip(targets, pools)):
        if len(pool) < N_NEGATIVES:
            continue
        rng = np.random.default_rng([*seed, KINDS.index(kind), i])
        rows.append(np.concatenate([[target], rng.choice(pool, N_NEGATIVES, replace=False)]))
        kept[i] = True
    return np.array(rows, dtype=int).reshape(-1, N_CANDIDATES), kept


def sim_retrieval_scores(
    fmri: np.ndarray,
    samples,
    stimulus: np.ndarray,
    segment_of: np.ndarray,
    retest: np.ndarray,
    which: str,
    kind: str,
    direction: str,
    seed: int,
    n_targets: int = N_TARGETS,
) -> tuple[list[dict[str, float]], int, int]:
    """Top-k per (subject, run) row of one setting: ``fmri`` (len(samples), d) embeddings of the setting's
    samples (:class:`~brainkit.data.movie_samples.Samples`), ``stimulus`` (n_runs, n_clips, d), ``segment_of`` and
    ``retest`` (n_runs, n_clips) the FULL runs' layout; ``which``: the half the setting's targets come from.

    Returns (one dict per row, subjects then runs in sorted order; targets scored; targets skipped)."""
    if len(fmri) != len(samples):
        raise DataError(f"fmri has {len(fmri)} rows for {len(samples)} samples.")
    fmri = np.asarray(fmri, dtype=np.float64)
    fmri = fmri / np.maximum(np.linalg.norm(fmri, axis=1, keepdims=True), 1e-12)
    rows, n_scored, n_left = [], 0, 0
    for subject in np.unique(samples.subject):
        for run in np.unique(samples.run[samples.subject == subject]):
            where = np.flatnonzero((samples.subject == subject) & (samples.run == run))
            row_of = dict(zip(samples.clip[where].tolist(), where.tolist()))
            bounds, is_retest = segment_table(segment_of[run], retest[run])
            choices = target_choices(bounds, is_retest, which, samples.clip[where])
            if not choices:
                continue
            key = (seed, int(subject), int(run))
            targets = draw_targets(choices, n_targets, np.random.default_rng(key))
            candidates, kept = row_candidates(bounds, is_retest, targets, kind, direction, key)
            n_left += int((~kept).sum())
            if not len(candidates):
                continue
            unit = stimulus[run][candidates].astype(np.float64)  # (n_kept, 33, d)
            unit /= np.maximum(np.linalg.norm(unit, axis=2, keepdims=True), 1e-12)
            query = fmri[[row_of[int(t)] for t in candidates[:, 0]]]  # (n_kept, d)
            similarity = np.einsum("ncd,nd->nc", unit, query)
            rank = (similarity[:, 1:] >= similarity[:, :1]).sum(axis=1)  # ties count against the target
            rows.append({f"top{k}": float((rank < k).mean()) for k in KS}
                        | {f"top{k}_chance": k / N_CANDIDATES for k in KS})  # fmt: skip
            n_scored += len(candidates)
    return rows, n_scored, n_left


__all__ = ["N_CANDIDATES", "N_NEGATIVES", "N_TARGETS", "candidate_pools", "draw_targets", "half",
           "row_candidates", "segment_table", "sim_retrieval_scores", "target_choices"]  # fmt: skip
