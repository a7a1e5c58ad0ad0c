"""Multi-label semantic decoding samples (CLIP-MUSED): per subject, standardised voxels, 0/1 category labels and
the low- and high-level stimulus targets, plus the scatter of masked voxels back into the volume grid.

:func:`semantic_samples` builds them from a :class:`~brainkit.data.schema.DecodingDataset` whose ``info`` has
``labels`` (n_stimuli, n_classes), ``mask`` (X, Y, Z) and ``parameters["features"]`` (the stimulus embeddings by
role: ``low``, ``image``, ``text``), as ``hcp_movie_like`` and ``hcp_movie`` give. Your own data
(:func:`brainkit.data.from_arrays`, a saved ``folder``, ``bids``) need ``info["labels"]``, ``info["categories"]``
and a volume mask (``info["mask"]``, or ``bids``' ``info["masks"]`` when every subject's is the same); the targets
then come from the encoders the caller names (``features``), computed on the stimuli's images and labels, or from
embeddings the stimuli carry under those names: :func:`check_semantic_dataset` says what is missing and how to
give it. Everything that is fitted (voxel z-scores, the target PCA) is fitted on the training split only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brainkit.data.roi_patches import ROIPatches
from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import DataError
from brainkit.stimuli.cache import embed_stimuli
from brainkit.stimuli.semantic_features import semantic_targets

FIELDS = ("values", "subject", "labels", "high", "low")
ROLES = ("low", "image", "text")
HOW = (
    "CLIP-MUSED decodes multi-label categories from brain volumes. Give them with your data: "
    "from_arrays(..., info={'labels': Y, 'categories': names, 'mask': mask}) with Y 0/1 (n_stimuli, n_classes) "
    "in the order of stimulus_ids, names the n_classes category names, and mask a bool (X, Y, Z) volume whose "
    "True voxels (C order, numpy.flatnonzero) are your columns, the same grid for every subject"
)


def semantic_mask(dataset: DecodingDataset) -> np.ndarray:
    """The dataset's one volume mask (X, Y, Z) bool: ``info["mask"]``, or ``info["masks"]`` when every subject's
    is the same (``bids`` in a common space). Raises DataError saying how to give one."""
    info = dataset.info
    if "mask" in info:
        mask = np.asarray(info["mask"])
    elif isinstance(info.get("masks"), dict) and info["masks"]:
        masks = [np.asarray(m, dtype=bool) for m in info["masks"].values()]
        if any(m.shape != masks[0].shape or not np.array_equal(m, masks[0]) for m in masks):
            raise DataError(
                f"{dataset.name}: the subjects' brain masks (info['masks']) differ; CLIP-MUSED reads every subject "
                "on one grid. Use runs in one standard space with one mask (bids: space=MNI152NLin2009cAsym and "
                "mask=<one NIfTI>)."
            )
        mask = masks[0]
    else:
        raise DataError(f"{dataset.name} has no volume mask (info['mask']). {HOW}.")
    if mask.ndim != 3 or mask.dtype != np.bool_:
        raise DataError(
            f"{dataset.name}: info['mask'] must be a bool (X, Y, Z) volume, found {mask.dtype} {mask.shape}."
        )
    for subject in dataset.subjects:
        for part in (dataset.train[subject], dataset.test[subject]):
            if part.values.shape[1] != int(mask.sum()):
                raise DataError(
                    f"{dataset.name}: subject {subject} has {part.values.shape[1]} features, the mask "
                    f"{int(mask.sum())} voxels; the columns must be the mask's True voxels in C order."
                )
    return mask


def check_semantic_dataset(dataset: DecodingDataset, volume: bool = True) -> np.ndarray | None:
    """Raise DataError unless ``dataset`` has what CLIP-MUSED reads: labels (n_stimuli, n_classes) 0/1 in the
    stimuli's order, one category name per class, and (``volume``: the hcp variant) a volume mask; returns the
    mask (None when not ``volume``: the nsd variant reads ROI patches, :mod:`brainkit.data.roi_patches`)."""
    if not isinstance(dataset, DecodingDataset):
        raise DataError(f"CLIP-MUSED reads trial-based datasets; {type(dataset).__name__} is not one.")
    info, n = dataset.info, len(dataset.stimuli)
    if "labels" not in info or "categories" not in info:
        missing = [k for k in ("labels", "categories") if k not in info]
        raise DataError(f"{dataset.name} has no {' or '.join(missing)} in its info. {HOW}.")
    labels = np.asarray(info["labels"])
    if labels.ndim != 2 or len(labels) != n or not np.isin(labels, (0, 1)).all():
        raise DataError(
            f"{dataset.name}: info['labels'] must be 0/1 (n_stimuli={n}, n_classes), one row per stimulus in "
            f"stimulus order; found {labels.dtype} {labels.shape}."
        )
    categories = info["categories"]
    if not isinstance(categories, list | tuple) or len(categories) != labels.shape[1]:
        raise DataError(
            f"{dataset.name}: info['categories'] must list {labels.shape[1]} category names (one per label "
            f"column), found {categories!r:.80}."
        )
    return semantic_mask(dataset) if volume else None


def _embedding(stimuli, spec: list | tuple, cache_dir: str | Path | None) -> np.ndarray:
    """The stimuli's embedding named ``spec[0]``: one they carry, else computed with that encoder."""
    if not isinstance(spec, list | tuple) or not spec or not isinstance(spec[0], str) or len(spec) > 2:
        raise DataError(f"features: each role takes [encoder, options] (or [encoder]), found {spec!r}.")
    name, options = spec[0], dict(spec[1]) if len(spec) > 1 else {}
    if name in stimuli.embeddings:
        return stimuli.embedding(name)
    return embed_stimuli(stimuli, name, cache_dir=cache_dir, **options)


@dataclass
class SampleArrays:
    """Rows of one or several subjects: ``values`` (n, n_voxels) masked (nsd variant: (n, n_rois, roi_size) ROI
    patches), ``subject`` (n,) model indices,
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
    features: dict[str, list] | None = None,
    patches: ROIPatches | None = None,
) -> SemanticSamples:
    """Standardised voxels (training statistics per subject), labels and stimulus targets of every subject.

    ``high_dim``: common PCA width of the image and text features; ``feature_clip``: the targets' clip value;
    ``clip_model_dir``: a local CLIP folder whose image and text towers replace the dataset's image and text
    features (joint space: ``high_dim`` is not used then); ``features``: role -> [encoder, options] for a
    dataset that names none (``info["parameters"]["features"]``), e.g. yours; ``patches``: the nsd variant's ROI
    patching, applied to each subject's standardised voxels (``values`` then (n, n_rois, roi_size); no volume
    mask needed). See :func:`~brainkit.stimuli.semantic_features.semantic_targets`.
    """
    check_semantic_dataset(dataset, volume=patches is None)
    stimuli, labels = dataset.stimuli, np.asarray(dataset.info["labels"])
    named = dataset.info.get("parameters", {}).get("features") or features
    if named is None:
        from brainkit.data.builtin.hcp_movie_like import default_features

        size = 160 if stimuli.images is None else int(stimuli.images.shape[1])
        named = default_features(size)
    if set(named) != set(ROLES):
        raise DataError(f"semantic_samples: features takes the roles {list(ROLES)}, found {sorted(named)}.")
    embedded = {role: _embedding(stimuli, named[role], cache_dir) for role in ROLES}
    subjects = list(dataset.subjects)
    train_rows = stimuli.positions(np.unique(dataset.train[subjects[0]].stimulus_ids))
    image, text = embedded["image"], embedded["text"]
    if clip_model_dir:  # both towers of the local CLIP: image and label text in CLIP's joint space
        image, text = (
            embed_stimuli(stimuli, encoder, cache_dir=cache_dir, model_dir=clip_model_dir)
            for encoder in ("clip_vit_l14_pooled", "clip_text")
        )
    low, high = semantic_targets(
        embedded["low"],
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
            values = scaler.transform(samples.values)
            getattr(out, part)[subject] = SampleArrays(
                values if patches is None else patches(values, subject),
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
        values = samples.train[subject].values[order]
        data.append(values.reshape(len(values), -1))  # ROI patches (n, n_rois, roi_size): flattened
        labels = samples.train[subject].labels[order]
    return data, labels
