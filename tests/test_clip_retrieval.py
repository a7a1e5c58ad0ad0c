"""SIM's clip retrieval protocol: candidate draws (soft/hard, exclusion, rest), top-k on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.errors import DataError
from brainkit.evaluation.clip_retrieval import clip_retrieval, draw_candidates, paired_clip, summarise


def run_layout() -> np.ndarray:
    """MOVIE1's structure (METHODS.md sec. 1.1): rest 0-19, clips 20-263, 285-504, 526-713, 734-797 (rest
    between), test-retest 818-900; as clip -> segment (-1 = rest)."""
    segment_of = np.full(921, -1)
    for s, (start, stop) in enumerate([(20, 263), (285, 504), (526, 713), (734, 797), (818, 900)]):
        segment_of[start : stop + 1] = s
    return segment_of


def test_candidates_follow_the_rules() -> None:
    segment_of = run_layout()
    rng = np.random.default_rng(0)
    for kind in ("soft", "hard"):
        for target in (21, 300, 760):
            c = draw_candidates(target, segment_of, kind, rng)
            assert len(c) == 32 and c[0] == target and len(set(c)) == 32
            negatives = c[1:]
            assert (segment_of[negatives] >= 0).all() and (np.abs(negatives - target) > 3).all()
            same = segment_of[negatives] == segment_of[target]
            assert same.all() if kind == "hard" else not same.any()
    with pytest.raises(DataError, match="is a rest clip"):
        draw_candidates(5, segment_of, "soft", rng)
    short = np.array([0] * 20 + [1] * 40)
    with pytest.raises(DataError, match="hard negatives for clip 3: 13 clips available, 31 needed"):
        draw_candidates(3, short, "hard", rng)


def test_topk_known_answers() -> None:
    segment_of = run_layout()
    rng = np.random.default_rng(1)
    stimulus = rng.standard_normal((921, 16))
    targets = np.flatnonzero(segment_of >= 0)[::9]
    perfect = clip_retrieval(stimulus, stimulus, segment_of, targets, "hard")
    assert perfect["top1"] == 1.0 and perfect["top1_chance"] == 1 / 32
    constant = clip_retrieval(np.ones((921, 16)), stimulus, segment_of, targets, "soft")
    assert constant["top10"] <= 10 / 32 + 0.15
    same = clip_retrieval(np.ones_like(stimulus), np.ones_like(stimulus), segment_of, targets, "soft")
    assert same["top1"] == 0.0 and same["top10"] == 0.0  # ties count against the target
    noisy = [clip_retrieval(stimulus + rng.standard_normal(stimulus.shape) * 3, stimulus, segment_of, targets,
                            "soft", seed=s) for s in range(3)]  # fmt: skip
    summary = summarise(noisy)
    assert (
        1 / 32 < summary["top1_mean"] < 1.0 and summary["top1_sd"] >= 0 and summary["top5_chance"] == 5 / 32
    )
    assert paired_clip(np.array([0, 5, 6, 30])).tolist() == [0, 0, 0, 24]
    with pytest.raises(DataError, match="must both be"):
        clip_retrieval(stimulus[:10], stimulus, segment_of, targets, "soft")
