"""SIM's released retrieval protocol (evaluation/sim_retrieval.py) on tiny segment tables, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.data.movie_samples import Samples
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.sim_retrieval import (
    N_CANDIDATES,
    candidate_pools,
    draw_targets,
    half,
    row_candidates,
    segment_table,
    sim_retrieval_scores,
    target_choices,
)


def tiny_run() -> tuple[np.ndarray, np.ndarray]:
    """40 clips: rest 0-1, A = 2-10 (9 clips), rest 11-12, B = 13-20 (8), rest 21, test-retest 22-26, rest."""
    segment_of = np.full(40, -1)
    segment_of[2:11], segment_of[13:21], segment_of[22:27] = 4, 5, 9
    retest = segment_of == 9
    return segment_of, retest


def long_run() -> tuple[np.ndarray, np.ndarray]:
    """A = 0-79 (held-out half 40-79), B = 90-153 (held-out 122-153: 32 clips, as SIM's MOVIE1 [734, 797]),
    test-retest 160-199 (held-out 180-199), rest between."""
    segment_of = np.full(210, -1)
    segment_of[0:80], segment_of[90:154], segment_of[160:200] = 0, 1, 2
    return segment_of, segment_of == 2


def test_segment_table_and_halves() -> None:
    bounds, is_retest = segment_table(*tiny_run())
    assert bounds.tolist() == [[2, 10], [13, 20], [22, 26]] and is_retest.tolist() == [False, False, True]
    # A has 9 clips: hp = 6, so its held-out half starts at 7 = 2 + ceil(9 / 2) (2 + 9 // 2 would be 6)
    assert half(2, 10, "held_out").tolist() == [7, 8, 9, 10] and half(2, 10, "train").tolist() == [
        2,
        3,
        4,
        5,
        6,
    ]
    assert half(13, 20, "held_out").tolist() == [17, 18, 19, 20] and half(22, 26, "held_out").tolist() == [
        25,
        26,
    ]
    # SIM's MOVIE1 first segment: [20, 263] in tools/datasets.py -> 142..263; [21, 263] in retrieval.py -> 143..
    assert half(20, 263, "held_out")[0] == 142 and half(21, 263, "held_out")[0] == 143
    with pytest.raises(ConfigError, match="half must be one of"):
        half(2, 10, "test")
    broken = tiny_run()[0].copy()
    broken[6] = -1
    with pytest.raises(DataError, match="segment 4 is not one block"):
        segment_table(broken, tiny_run()[1])


def test_the_test_retest_segment_is_never_a_target() -> None:
    bounds, is_retest = segment_table(*tiny_run())
    held = target_choices(bounds, is_retest, "held_out")
    assert [c.tolist() for c in held] == [[7, 8, 9, 10], [17, 18, 19, 20]]
    train = target_choices(bounds, is_retest, "train", available=np.array([3, 4, 14, 25]))
    assert [c.tolist() for c in train] == [[3, 4], [14]]  # 25 (test-retest) is available but never a target
    targets = draw_targets(held, 500, np.random.default_rng(0))
    assert set(targets) <= {7, 8, 9, 10, 17, 18, 19, 20}
    with pytest.raises(DataError, match="no movie segment"):
        draw_targets([], 3, np.random.default_rng(0))


class Scripted:
    """A stand-in generator whose ``integers`` returns the scripted values in turn."""

    def __init__(self, values):
        self.values = iter(values)

    def integers(self, n):
        value = next(self.values)
        assert 0 <= value < n
        return value


def test_targets_draw_a_segment_uniformly_then_a_clip() -> None:
    choices = [np.array([5]), np.arange(50, 150)]
    # (segment index among 2, clip index within it) per target
    assert draw_targets(choices, 3, Scripted([1, 10, 0, 0, 1, 99])).tolist() == [60, 5, 149]


def test_pools_on_a_tiny_table() -> None:
    bounds, is_retest = segment_table(*tiny_run())
    pools = lambda targets, kind, direction: [  # noqa: E731
        p.tolist() for p in candidate_pools(bounds, is_retest, targets, kind, direction)
    ]
    # soft: the other segments' held-out halves, the test-retest one included; the window is far away
    assert pools([8], "soft", "video") == pools([8], "soft", "audio") == [[17, 18, 19, 20, 25, 26]]
    assert pools([3], "soft", "video") == [[17, 18, 19, 20, 25, 26]]
    # hard: the own held-out half; video drops the clips within 3 of the target, audio only the target
    assert pools([8, 3, 6], "hard", "video") == [[], [7, 8, 9, 10], [10]]
    assert pools([8, 3, 6], "hard", "audio") == [[7, 9, 10], [7, 8, 9, 10], [7, 8, 9, 10]]
    assert pools([18], "hard", "video") == [[]] and pools([18], "hard", "audio") == [[17, 19, 20]]
    with pytest.raises(DataError, match="target clip 25 is not in a movie segment"):
        candidate_pools(bounds, is_retest, [25], "soft", "video")
    with pytest.raises(DataError, match="target clip 12 is not in a movie segment"):
        candidate_pools(bounds, is_retest, [12], "soft", "video")
    with pytest.raises(ConfigError, match="kind must be in"):
        candidate_pools(bounds, is_retest, [8], "medium", "video")


def test_pool_sizes_on_sims_movie1_table() -> None:
    from brainkit.data.readers.hcp_movie_surface import SEGMENTS

    bounds = np.array(SEGMENTS[1])
    is_retest = np.array([False] * 4 + [True])
    (soft,) = candidate_pools(bounds, is_retest, [200], "soft", "video")
    assert len(soft) == 110 + 94 + 32 + 41  # 395-504, 620-713, 766-797, 860-900
    sizes = [len(p) for p in candidate_pools(bounds, is_retest, [780, 766, 797], "hard", "video")]
    assert sizes == [25, 28, 28]  # 766-797 minus the target's 7-clip (or 4-clip) window: fewer than 32
    assert [len(p) for p in candidate_pools(bounds, is_retest, [780], "hard", "audio")] == [31]


def test_a_small_hard_pool_skips_its_target() -> None:
    bounds, is_retest = segment_table(*long_run())
    targets = np.array([60, 130, 41, 150])
    candidates, kept = row_candidates(bounds, is_retest, targets, "hard", "video", (0, 1, 2))
    assert kept.tolist() == [True, False, True, False] and candidates.shape == (2, N_CANDIDATES) == (2, 33)
    assert candidates[:, 0].tolist() == [60, 41]
    for row in candidates:
        negatives = row[1:]
        assert len(set(negatives)) == 32 and ((40 <= negatives) & (negatives <= 79)).all()
        assert (np.abs(negatives - row[0]) > 3).all()
    _, kept = row_candidates(bounds, is_retest, targets, "hard", "audio", (0, 1, 2))
    assert kept.tolist() == [True, False, True, False]  # B's held-out half: 32 clips, 31 without the target
    soft, kept = row_candidates(bounds, is_retest, targets, "soft", "video", (0, 1, 2))
    assert kept.all()  # soft pools: 32 + 20 (for A's targets), 40 + 20 (for B's)
    again, _ = row_candidates(bounds, is_retest, targets, "soft", "audio", (0, 1, 2))
    assert np.array_equal(
        soft, again
    )  # the same pools, the same seeds: both directions meet the same negatives


def test_scores_per_row_and_their_counts() -> None:
    segment_of, retest = long_run()
    n_runs, subjects = 2, np.array([3, 5])
    layout, flags = np.stack([segment_of] * n_runs), np.stack([retest] * n_runs)
    stimulus = np.random.default_rng(0).standard_normal((n_runs, 210, 8))
    clips = np.flatnonzero(segment_of >= 0)
    samples = Samples(np.repeat(subjects, n_runs * len(clips)), np.tile(np.repeat(np.arange(n_runs), len(clips)), 2),
                      np.tile(clips, 2 * n_runs))  # fmt: skip
    perfect = stimulus[samples.run, samples.clip]
    rows, scored, left = sim_retrieval_scores(perfect, samples, stimulus, layout, flags, "held_out", "soft", "video",
                                              seed=7, n_targets=50)  # fmt: skip
    assert len(rows) == 4 and (scored, left) == (200, 0)  # (subject, run) rows x 50 targets
    assert all(r["top1"] == 1.0 and r["top1_chance"] == 1 / 33 and r["top10_chance"] == 10 / 33 for r in rows)
    rows, scored, left = sim_retrieval_scores(perfect, samples, stimulus, layout, flags, "held_out", "hard", "video",
                                              seed=7, n_targets=50)  # fmt: skip
    bounds, is_retest = segment_table(segment_of, retest)
    in_b = sum(int((draw_targets(target_choices(bounds, is_retest, "held_out", clips), 50,
                                 np.random.default_rng((7, s, r))) >= 90).sum())
               for s in subjects for r in range(n_runs))  # fmt: skip
    assert left == in_b > 0 and scored == 200 - in_b  # exactly B's targets skipped
    with pytest.raises(DataError, match="fmri has 3 rows"):
        sim_retrieval_scores(
            perfect[:3], samples, stimulus, layout, flags, "held_out", "soft", "video", seed=0
        )
