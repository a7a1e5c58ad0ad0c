"""Splits of brain samples: unseen stimuli, unseen subjects, or both.

A split takes a pool of samples (subject -> :class:`BrainSamples`) and returns the train and test pools.
Nothing is dropped silently: a sample is either in train, in test, or (for ``unseen_both``) counted in
``Split.excluded`` because it pairs a training subject with a test stimulus or the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainkit.data.schema import BrainSamples
from brainkit.errors import DataError

KINDS = ("unseen_stimuli", "unseen_subjects", "unseen_both")


@dataclass
class Split:
    kind: str
    train: dict[str, BrainSamples]
    test: dict[str, BrainSamples]
    excluded: int = 0


def _check_subjects(pool: dict[str, BrainSamples], subjects: list[str]) -> None:
    unknown = sorted(set(subjects) - set(pool))
    if unknown:
        raise DataError(f"Unknown subject(s) {unknown}; the pool has {sorted(pool)}.")


def _check_stimuli(pool: dict[str, BrainSamples], stimulus_ids: list[str]) -> None:
    shown = set().union(*(set(s.stimulus_ids.tolist()) for s in pool.values()))
    unknown = sorted(set(stimulus_ids) - shown)
    if unknown:
        raise DataError(f"{len(unknown)} test stimulus id(s) were never shown, e.g. {unknown[:3]}.")


def make_split(
    pool: dict[str, BrainSamples],
    kind: str,
    test_subjects: list[str] | None = None,
    test_stimuli: list[str] | None = None,
) -> Split:
    """Split ``pool`` by ``kind``.

    - ``unseen_stimuli``: every subject in both parts; samples of ``test_stimuli`` go to test.
    - ``unseen_subjects``: all samples of ``test_subjects`` go to test, the rest to train.
    - ``unseen_both``: test = test subjects x test stimuli; train = other subjects x other stimuli.
    """
    if kind not in KINDS:
        raise DataError(f"Unknown split kind {kind!r}; choose one of {KINDS}.")
    test_subjects = list(test_subjects or [])
    test_stimuli = list(test_stimuli or [])
    if kind in ("unseen_subjects", "unseen_both"):
        if not test_subjects:
            raise DataError(f"Split {kind!r} needs test_subjects.")
        _check_subjects(pool, test_subjects)
        if set(test_subjects) == set(pool):
            raise DataError(
                f"Split {kind!r}: every subject is a test subject; leave at least one for training."
            )
    if kind in ("unseen_stimuli", "unseen_both"):
        if not test_stimuli:
            raise DataError(f"Split {kind!r} needs test_stimuli.")
        _check_stimuli(pool, test_stimuli)
    held = np.asarray(test_stimuli, dtype=str)
    train: dict[str, BrainSamples] = {}
    test: dict[str, BrainSamples] = {}
    excluded = 0
    for subject, samples in pool.items():
        is_test_stimulus = np.isin(samples.stimulus_ids, held)
        if kind == "unseen_stimuli":
            train[subject] = samples.select(~is_test_stimulus)
            test[subject] = samples.select(is_test_stimulus)
        elif kind == "unseen_subjects":
            (test if subject in test_subjects else train)[subject] = samples
        else:
            keep = is_test_stimulus if subject in test_subjects else ~is_test_stimulus
            (test if subject in test_subjects else train)[subject] = samples.select(keep)
            excluded += int((~keep).sum())
    return Split(kind=kind, train=train, test=test, excluded=excluded)
