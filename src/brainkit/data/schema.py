"""The data model: stimuli, brain samples, and the decoding dataset that pairs them (the trial-based
container of the data contract, :mod:`brainkit.data.contract`).

Shapes at this boundary:
- ``Stimuli.images``: (n_stimuli, height, width, 3) uint8, or ``None`` when media live elsewhere.
- ``Stimuli.embeddings[encoder]``: (n_stimuli, *embedding_shape) float32.
- ``BrainSamples.values``: (n_samples, n_features) float32, features being voxels, vertices or ROIs of ``space``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from brainkit.data.contract import Dataset
from brainkit.data.disk_rows import DiskRows, row_blocks
from brainkit.errors import DataError


def _as_1d(name: str, value: Any, n: int, dtype: Any, owner: str) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.shape != (n,):
        raise DataError(f"{owner}: {name} has shape {array.shape}, expected ({n},) (one entry per sample).")
    return array


@dataclass
class Stimuli:
    """A set of stimuli with ids, optional media, labels and embeddings from named encoders.

    Parameters
    ----------
    ids : array of str, shape (n_stimuli,)
        Unique stimulus ids (an NSD id, a COCO id, a file name...).
    images : uint8 array, shape (n_stimuli, height, width, 3), optional
        The images themselves, when they fit in memory.
    labels : array of str, shape (n_stimuli,), optional
        A short text label per stimulus (used for text embeddings and reports).
    embeddings : dict of encoder name -> float32 array, shape (n_stimuli, ...)
    """

    ids: np.ndarray
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=str)
        if self.ids.ndim != 1:
            raise DataError(f"Stimuli: ids must be 1-D, found shape {self.ids.shape}.")
        unique, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"Stimuli: ids must be unique; repeated: {unique[counts > 1][:5].tolist()}.")
        n = len(self.ids)
        if self.images is not None:
            self.images = np.asarray(self.images)
            if self.images.ndim != 4 or self.images.shape[0] != n or self.images.shape[-1] != 3:
                raise DataError(
                    f"Stimuli: images have shape {self.images.shape}, expected ({n}, height, width, 3) uint8."
                )
        if self.labels is not None:
            self.labels = _as_1d("labels", self.labels, n, str, "Stimuli")
        for name, array in list(self.embeddings.items()):
            self.embeddings[name] = self._check_embedding(name, array)
        self._position = {sid: i for i, sid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def _check_embedding(self, name: str, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array, dtype=np.float32)
        if array.shape[0] != len(self.ids):
            raise DataError(
                f"Stimuli: embedding {name!r} has {array.shape[0]} rows, expected {len(self.ids)} (one per stimulus)."
            )
        if not np.isfinite(array).all():
            raise DataError(
                f"Stimuli: embedding {name!r} contains NaN or inf; re-compute it (clear its cache)."
            )
        return array

    def add_embedding(self, name: str, array: np.ndarray) -> None:
        self.embeddings[name] = self._check_embedding(name, array)

    def embedding(self, name: str) -> np.ndarray:
        if name not in self.embeddings:
            raise DataError(
                f"Stimuli have no embedding from encoder {name!r}; available: {sorted(self.embeddings)}. "
                f"Compute it with brainkit.stimuli.embed_stimuli(stimuli, {name!r})."
            )
        return self.embeddings[name]

    def positions(self, ids: np.ndarray | list[str]) -> np.ndarray:
        """Row of each id in this set; unknown ids raise (they are never silently dropped)."""
        ids = np.asarray(ids, dtype=str)
        missing = [str(sid) for sid in ids if sid not in self._position]
        if missing:
            raise DataError(
                f"{len(missing)} stimulus id(s) are not among the {len(self)} stimuli, e.g. {missing[:3]}. "
                "Check that the brain data and the stimulus set come from the same dataset."
            )
        return np.array([self._position[sid] for sid in ids], dtype=np.int64)

    def subset(self, ids: np.ndarray | list[str]) -> Stimuli:
        rows = self.positions(ids)
        return Stimuli(
            ids=self.ids[rows],
            images=None if self.images is None else self.images[rows],
            labels=None if self.labels is None else self.labels[rows],
            embeddings={k: v[rows] for k, v in self.embeddings.items()},
        )


@dataclass
class BrainSamples:
    """Brain responses of ONE subject, one row per trial (or per averaged stimulus, or per time point).

    Parameters
    ----------
    subject : str
    values : float32 array, shape (n_samples, n_features), or :class:`~brainkit.data.disk_rows.DiskRows`
        (rows on disk, read on demand: ``select`` stays lazy, ``average_repeats`` reads block by block)
    stimulus_ids : array of str, shape (n_samples,)
        The stimulus shown on each sample ("" for none, e.g. rest).
    space : str
        Where the features live: "nsdgeneral", "fsaverage5", "schaefer100", ...
    session, run, trial : int arrays, shape (n_samples,), optional (default 0, 0, arange)
    n_repeats : int array, shape (n_samples,), optional
        How many trials were averaged into each row (1 for single trials).
    feature_coords : float array, shape (n_features, 3), optional
        Position of each feature (mm or sphere coordinates), for maps and reports.
    """

    subject: str
    values: np.ndarray
    stimulus_ids: np.ndarray
    space: str
    session: np.ndarray | None = None
    run: np.ndarray | None = None
    trial: np.ndarray | None = None
    n_repeats: np.ndarray | None = None
    feature_coords: np.ndarray | None = None

    def __post_init__(self) -> None:
        owner = f"BrainSamples(subject={self.subject!r})"
        if not isinstance(self.values, DiskRows):  # rows on disk: float32 (n, d), checked finite when written
            self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise DataError(
                f"{owner}: values have shape {self.values.shape}, expected (n_samples, n_features)."
            )
        n = self.values.shape[0]
        bad = np.zeros((0, 0), bool) if isinstance(self.values, DiskRows) else ~np.isfinite(self.values)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise DataError(
                f"{owner}: values contain {int(bad.sum())} NaN/inf entries in {len(rows)} sample(s) "
                f"(first rows {rows[:5].tolist()}). Mask those voxels or drop those trials before use."
            )
        self.stimulus_ids = _as_1d("stimulus_ids", self.stimulus_ids, n, str, owner)
        self.session = _as_1d(
            "session", np.zeros(n) if self.session is None else self.session, n, np.int64, owner
        )
        self.run = _as_1d("run", np.zeros(n) if self.run is None else self.run, n, np.int64, owner)
        self.trial = _as_1d("trial", np.arange(n) if self.trial is None else self.trial, n, np.int64, owner)
        self.n_repeats = _as_1d(
            "n_repeats", np.ones(n) if self.n_repeats is None else self.n_repeats, n, np.int64, owner
        )
        if self.feature_coords is not None:
            self.feature_coords = np.asarray(self.feature_coords, dtype=np.float32)
            if self.feature_coords.shape != (self.n_features, 3):
                raise DataError(
                    f"{owner}: feature_coords have shape {self.feature_coords.shape}, "
                    f"expected ({self.n_features}, 3)."
                )

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_features(self) -> int:
        return self.values.shape[1]

    def select(self, rows: np.ndarray) -> BrainSamples:
        """The samples at ``rows`` (an index or boolean array)."""
        return BrainSamples(
            subject=self.subject,
            values=self.values.select(rows) if isinstance(self.values, DiskRows) else self.values[rows],
            stimulus_ids=self.stimulus_ids[rows],
            space=self.space,
            session=self.session[rows],
            run=self.run[rows],
            trial=self.trial[rows],
            n_repeats=self.n_repeats[rows],
            feature_coords=self.feature_coords,
        )

    def average_repeats(self) -> BrainSamples:
        """One row per stimulus: the mean of its trials (as NSD's test set is used), in first-seen order."""
        ids, first, inverse = np.unique(self.stimulus_ids, return_index=True, return_inverse=True)
        order = np.argsort(first)
        sums = np.zeros((len(ids), self.n_features), dtype=np.float64)
        for start, block in row_blocks(
            self.values
        ):  # rows added in order: the same sums in memory or on disk
            np.add.at(sums, inverse[start : start + len(block)], block)
        counts = np.bincount(inverse, minlength=len(ids))
        mean = (sums / counts[:, None]).astype(np.float32)
        repeats = np.bincount(inverse, weights=self.n_repeats, minlength=len(ids)).astype(np.int64)
        return BrainSamples(
            subject=self.subject,
            values=mean[order],
            stimulus_ids=ids[order],
            space=self.space,
            session=self.session[first[order]],
            run=self.run[first[order]],
            trial=self.trial[first[order]],
            n_repeats=repeats[order],
            feature_coords=self.feature_coords,
        )


@dataclass
class DecodingDataset(Dataset):
    """Stimuli plus per-subject train and test brain samples (design ``"trials"``).

    ``train[subject]`` holds single trials; ``test[subject]`` holds the test stimuli (averaged over their
    repeats when the dataset says so). ``info`` documents the dataset (source, generative model, TR...).
    """

    design: ClassVar[str] = "trials"
    name: str
    stimuli: Stimuli
    train: dict[str, BrainSamples]
    test: dict[str, BrainSamples]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.train) != set(self.test):
            raise DataError(
                f"Dataset {self.name!r}: train subjects {sorted(self.train)} differ from test subjects "
                f"{sorted(self.test)}."
            )
        for part in (self.train, self.test):
            for subject, samples in part.items():
                if samples.subject != subject:
                    raise DataError(
                        f"Dataset {self.name!r}: samples under {subject!r} say {samples.subject!r}."
                    )
                shown = samples.stimulus_ids[samples.stimulus_ids != ""]
                self.stimuli.positions(shown)  # raises on ids that are not in the stimulus set
            for subject in part:
                if part[subject].n_features != self.train[subject].n_features:
                    raise DataError(
                        f"Dataset {self.name!r}: {subject} has different train/test feature counts."
                    )

    @property
    def subjects(self) -> list[str]:
        return sorted(self.train)

    def check_subject(self, subject: str) -> str:
        if subject not in self.train:
            raise DataError(f"Unknown subject {subject!r} in dataset {self.name!r}; known: {self.subjects}.")
        return subject

    def n_features(self, subject: str) -> int:
        return self.train[self.check_subject(subject)].n_features
