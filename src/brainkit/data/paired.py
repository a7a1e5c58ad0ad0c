"""Paired (brain, target) arrays for decoding: pick a subject, hold out validation stimuli, z-score on the
training trials, look up (or compute) each trial's target embedding.

:func:`prepare_data` is what Lite-Mind and its baselines train on: training trials one by one, validation and
test stimuli averaged over their repeats, everything standardised with the training trials' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainkit.config import Checked, bounded
from brainkit.data import DecodingDataset, dataset_accepts, load_dataset
from brainkit.data.disk_rows import is_lazy
from brainkit.data.transforms import Standardizer
from brainkit.errors import DataError


@dataclass
class Arrays:
    """Paired training arrays: ``x`` (n, n_voxels) float32 and ``y`` (n, *target_shape) float32.

    ``x`` may be rows read on demand (:class:`~brainkit.data.disk_rows.Standardized` rows of a subject streamed
    from disk): indexing reads the rows asked for; their values were checked finite when the file was written."""

    x: np.ndarray | Any
    y: np.ndarray
    name: str = "train"

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"{self.name}: {len(self.x)} brain samples but {len(self.y)} targets.")
        if len(self.x) == 0:
            raise DataError(f"{self.name}: no samples.")
        for what, array in (("brain data", self.x), ("targets", self.y)):
            if not is_lazy(array) and not np.isfinite(array).all():
                raise DataError(f"{self.name}: {what} contain NaN or inf.")


@dataclass(frozen=True)
class DataSpec(Checked):
    """Which dataset, subject and target embedding. ``options`` go to the dataset (e.g. ``root`` for nsd),
    ``encoder_options`` to the target's encoder (e.g. ``model_dir``); ``val_fraction`` of the TRAINING stimuli
    is held out for validation."""

    name: str = "nsd_like"
    subject: str = "subj01"
    target: str = "efficientnet_lite0"
    options: dict[str, Any] = field(default_factory=dict)
    encoder_options: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = bounded(0.1, ge=0, lt=1, fix="the share of training stimuli held out")
    cache_dir: str | None = None


@dataclass
class PreparedData:
    dataset: DecodingDataset
    standardizer: Standardizer
    train: Arrays
    val: Arrays | None
    test: Arrays
    test_ids: np.ndarray


def open_dataset(spec: DataSpec) -> DecodingDataset:
    """The dataset of ``spec`` (datasets that cache, the built-in ones, share ``spec.cache_dir``)."""
    options = dict(spec.options)
    if spec.cache_dir is not None and dataset_accepts(spec.name, "cache_dir"):
        options.setdefault("cache_dir", spec.cache_dir)
    return load_dataset(spec.name, **options)


def targets_for(dataset: DecodingDataset, spec: DataSpec, ids: np.ndarray) -> np.ndarray:
    """The target embedding of each stimulus id (embedded and cached first when the dataset lacks it)."""
    if spec.target not in dataset.stimuli.embeddings:
        from brainkit.stimuli.cache import embed_stimuli

        embed_stimuli(dataset.stimuli, spec.target, cache_dir=spec.cache_dir, **spec.encoder_options)
    return dataset.stimuli.embedding(spec.target)[dataset.stimuli.positions(ids)]


def prepare_data(spec: DataSpec, dataset: DecodingDataset | None = None, seed: int = 0) -> PreparedData:
    """Load the dataset, pick the subject, hold out ``val_fraction`` of TRAINING stimuli (seeded), z-score on
    the remaining training trials, average the test set's repeats when it has any (most datasets average them
    already), and pair every row with its target."""
    dataset = dataset if dataset is not None else open_dataset(spec)
    subject = dataset.check_subject(spec.subject)
    train_samples, test_samples = dataset.train[subject], dataset.test[subject]
    stimuli = np.unique(train_samples.stimulus_ids)
    rng = np.random.default_rng(seed)
    n_val = int(round(spec.val_fraction * len(stimuli)))
    val_ids = rng.choice(stimuli, size=n_val, replace=False) if n_val else np.array([], dtype=str)
    is_val = np.isin(train_samples.stimulus_ids, val_ids)
    fit_samples = train_samples.select(~is_val)
    standardizer = Standardizer().fit(fit_samples.values)

    def paired(samples, name: str) -> Arrays:
        x = standardizer.transform(samples.values)
        return Arrays(x, targets_for(dataset, spec, samples.stimulus_ids), name)

    val = paired(train_samples.select(is_val).average_repeats(), "val") if n_val else None
    if len(np.unique(test_samples.stimulus_ids)) < len(test_samples.stimulus_ids):
        # a dataset that keeps its test repeats (hcp_movie_like): one row per stimulus, so that retrieval ranks
        # distinct candidates (a repeat's duplicate target would tie with the right one)
        test_samples = test_samples.average_repeats()
    return PreparedData(
        dataset,
        standardizer,
        paired(fit_samples, "train"),
        val,
        paired(test_samples, "test"),
        test_samples.stimulus_ids,
    )


__all__ = ["Arrays", "DataSpec", "PreparedData", "open_dataset", "prepare_data", "targets_for"]
