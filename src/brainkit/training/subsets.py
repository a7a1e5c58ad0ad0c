"""What the new-subject adaptation protocols share (recipes ``adaptation`` and ``clip_mused``'s adaptation): the
seeded, nested draw of k of a subject's training rows, and the training length of a fit on k rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from brainkit.errors import ConfigError
from brainkit.training.config import TrainingConfig


def nested_rows(n_rows: int, k: int, seed: int) -> np.ndarray:
    """The first ``k`` of a seeded permutation of ``n_rows`` rows, in ascending order: for one seed the draws are
    nested over k (k=50 is inside k=150)."""
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:k])


def k_training(config: TrainingConfig, k: int, seed: int, min_steps: int) -> TrainingConfig:
    """``config`` for k rows: ``epochs`` passes (at least ``min_steps`` steps), seeded with ``seed``; unless
    ``validate_every`` is set, validated (and its resumable state written) 4 times, not after every pass (a pass
    over 50 rows is one step)."""
    per_epoch = max(1, k // min(config.batch_size, k))
    steps = config.steps if config.steps is not None else max(min_steps, config.epochs * per_epoch)
    every = config.validate_every if config.validate_every is not None else max(1, steps // 4)
    return dataclasses.replace(config, steps=steps, seed=seed, validate_every=every)


def check_k_and_seeds(ks: Sequence[int | str], seeds: Sequence[int], unit: str, minimum: int = 1,
                      why: str = "") -> None:  # fmt: skip
    """Raise :class:`ConfigError` unless every k is a whole number of ``unit`` >= ``minimum`` or "all", and the
    seeds are one or more distinct ones (``why``: said after the minimum)."""
    bad = [
        k for k in ks if not (k == "all" or (isinstance(k, int) and not isinstance(k, bool) and k >= minimum))
    ]
    if not ks or bad:
        raise ConfigError(
            f"adaptation.k={list(ks)}: each k must be a number of {unit} >= {minimum}{why} or 'all'."
        )
    if not seeds or len(set(seeds)) < len(seeds):
        raise ConfigError(f"adaptation.seeds={list(seeds)}: give one or more distinct seeds.")


def held_out_subject(recipe: str, subjects: Sequence[str], target: str | None, n_train: Callable[[str], int],
                     ks: Sequence[int | str], unit: str) -> tuple[str, list[int]]:  # fmt: skip
    """(the held-out subject: ``target``, or the last of ``subjects`` when None; the distinct k values, sorted,
    "all" = its ``n_train(subject)``), checked against the data: at least 2 subjects, a known target, no k above
    its training ``unit``. Raises :class:`ConfigError`."""
    subjects = list(subjects)
    if len(subjects) < 2:
        raise ConfigError(
            f"{recipe} adaptation needs at least 2 subjects (pretraining on the others, adapting to one); the "
            f"dataset has {len(subjects)}: {subjects}."
        )
    if target is not None and target not in subjects:
        raise ConfigError(f"adaptation.target_subject={target!r} is not a subject of the data: {subjects}.")
    name = target if target is not None else subjects[-1]
    n = n_train(name)
    values = [n if k == "all" else int(k) for k in ks]
    over = sorted({k for k in values if k > n})
    if over:
        raise ConfigError(
            f"adaptation.k={over} exceeds the {n} training {unit} of the held-out subject {name!r}; use "
            f"k <= {n} or 'all'."
        )
    return name, sorted(set(values))


__all__ = ["check_k_and_seeds", "held_out_subject", "k_training", "nested_rows"]
