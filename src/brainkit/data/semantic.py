"""Multi-label semantic decoding samples (CLIP-MUSED): per subject, standardised voxels, 0/1 category labels and
the low- and high-level stimulus targets, plus the scatter of masked voxels back into the volume grid.

:func:`semantic_samples` builds them from a :class:`~brainkit.data.schema.DecodingDataset` whose ``info`` has
``labels`` (n_stimuli, n_classes), ``mask`` (X, Y, Z) and ``parameters["features"]`` (the stimulus embeddings by
role: ``low``, ``image``, ``text``), as ``hcp_movie_like`` and the HCP movie reader give. Everything that is
fitted (voxel z-scores, the target PCA) is fitted on the training split only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import DataError
from brainkit.stimuli.cache import embed_stimuli
from brainkit.stimuli.semantic_features import semantic_targets

FIELDS = ("values", "subject", "labels", "high", "low")


@dataclass
class SampleArrays:
    """Rows of one or several subjects: ``values`` (n, n_voxels) masked, ``subject`` (n,) model indices,
    ``labels`` (n, n_classes) 0/1, ``high`` (n, d_high) and ``low`` (n, d_low) stimulus targets."""

    values: np.ndarray
    subject: np.ndarray
    labels: np.ndarray
    high: np.ndarray
    low: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.values)
        if any(len(a) != n for a in (self.subject, self.labels, self.high, self.low)):
            raise DataError(
                "SampleArrays: values, subject, labels, high and low need the same number of rows."
            )

    def select(self, rows: np.ndarray) -> SampleArrays:
        return SampleArrays(*(getattr(self, f)[rows] for f in FIELDS))

    def with_subject(self, index: int) -> SampleArrays:
        """The same rows, every one given model subject index ``index``."""
        return SampleArrays(self.values, np.full(len(self.values), index), self.labels, self.high, self.low)


def stack_subjects(parts: list[SampleArrays]) -> SampleArrays:
    """Concatenate the rows of several subjects, re-indexed 0..len(parts) - 1 in the given order."""
    parts = [part.with_subject(index) for index, part in enumerate(parts)]
    return SampleArrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


class VolumeGrid:
    """Scatter masked voxel values into the model grid: (batch, n_voxels) -> (batch, X, Y, Z)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.shape = tuple(int(s) for s in mask.shape)
        self.flat = torch.from_numpy(np.flatnonzero(mask))

    def __call__(self, values: np.ndarray | torch.Tensor) -> torch.Tensor:
        values = torch.as_tensor(values, dtype=torch.float32)
        out = values.new_zeros(len(values), math.prod(self.shape))
        out[:, self.flat] = values
        return out.view(len(values), *self.shape)


@dataclass
class SemanticSamples:
    """Per subject (dataset order): ``train`` / ``test`` :class:`SampleArrays` (subject index = the subject's
    position), the stimulus ids of their rows (``ids[(part, subject)]``) and the number of categories."""

    subjects: list[str]
    train: dict[str, SampleArrays]
    test: dict[str, SampleArrays]
    ids: dict[tuple[str, str], np.ndarray]
    n_classes: int


def semantic_samples(
    dataset: DecodingDataset,
    high_dim: int = 64,
    feature_clip: float = 1.5,
    clip_model_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> SemanticSamples:
    """Standardised voxels (training statistics per subject), labels and stimulus targets of every subject.

    ``high_dim``: common PCA width of the image and text features; ``feature_clip``: the targets' clip value;
    ``clip_model_dir``: a local CLIP folder whose image and text towers replace the dataset's image and text
    features (joint space: ``high_dim`` is not used then). See :func:`~brainkit.stimuli.semantic_features.semantic_targets`.
    """
    stimuli, labels = dataset.stimuli, dataset.info["labels"]
    features = {role: spec[0] for role, spec in dataset.info["parameters"]["features"].items()}
    subjects = list(dataset.subjects)
    train_rows = stimuli.positions(np.unique(dataset.train[subjects[0]].stimulus_ids))
    image, text = stimuli.embedding(features["image"]), stimuli.embedding(features["text"])
    if clip_model_dir:  # both towers of the local CLIP: image and label text in CLIP's joint space
        image, text = (
            embed_stimuli(stimuli, encoder, cache_dir=cache_dir, model_dir=clip_model_dir)
            for encoder in ("clip_vit_l14_pooled", "clip_text")
        )
    low, high = semantic_targets(
        stimuli.embedding(features["low"]),
        image,
        text,
        train_rows,
        high_dim,
        feature_clip,
        joint_space=bool(clip_model_dir),
    )
    out = SemanticSamples(subjects, {}, {}, {}, labels.shape[1])
    for index, subject in enumerate(subjects):
        scaler = Standardizer().fit(dataset.train[subject].values)
        for part, samples in (("train", dataset.train[subject]), ("test", dataset.test[subject])):
            rows = stimuli.positions(samples.stimulus_ids)
            out.ids[(part, subject)] = samples.stimulus_ids
            getattr(out, part)[subject] = SampleArrays(
                scaler.transform(samples.values),
                np.full(len(rows), index),
                labels[rows].astype(np.float32),
                high[rows],
                low[rows],
            )
    return out


def aligned_training_data(samples: SemanticSamples) -> tuple[list[np.ndarray], np.ndarray]:
    """Every subject's training voxels in one stimulus order (for the shared response model), and the labels.

    Raises DataError when the subjects did not see the same training stimuli (their responses cannot be aligned
    in time).
    """
    subjects, data, reference, labels = samples.subjects, [], None, None
    for subject in subjects:
        ids = samples.ids[("train", subject)]
        order = np.argsort(ids, kind="stable")
        if reference is not None and not np.array_equal(ids[order], reference):
            raise DataError(
                f"srm: {subject} did not see the same training stimuli as {subjects[0]}, so the subjects' "
                "responses cannot be aligned in time; use a dataset where every subject sees every training stimulus."
            )
        reference = ids[order] if reference is None else reference
        data.append(samples.train[subject].values[order])
        labels = samples.train[subject].labels[order]
    return data, labels
