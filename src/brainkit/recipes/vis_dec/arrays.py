"""The arrays of the ``vis_dec`` recipe: one subject's trials and images, z-scored and wrap-padded.

:func:`prepare_arrays` builds :class:`VisDecArrays` from a :class:`~brainkit.data.schema.DecodingDataset`;
:func:`phase1_voxels` adds the extra phase-1 pretraining sources; :func:`resized` brings images to one size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import ConfigError, DataError
from brainkit.models.dc_mae import padding_for
from brainkit.models.ldm import images_to_tensor, tensor_to_images

log = logging.getLogger(__name__)


@dataclass
class VisDecArrays:
    """One subject's arrays. Voxels are z-scored with training statistics and wrapped to a multiple of the
    patch size (Mind-Vis' padding).

    train_voxels (n_trials, n_voxels) float32, single trials; train_image_index (n_trials,) row of train_images;
    train_images uint8 (n_train_images, H, W, 3); test_voxels (n_test, n_voxels) averaged over repeats;
    test_images uint8 (n_test, H, W, 3); test_ids (n_test,); val_voxels (n_val, n_voxels) and val_images uint8
    (n_val, H, W, 3): training images held out of every phase (their trials averaged, like the test set), for
    choices such as the guidance scale; (0, ...) when none are held out.
    """

    train_voxels: np.ndarray
    train_image_index: np.ndarray
    train_images: np.ndarray
    test_voxels: np.ndarray
    test_images: np.ndarray
    test_ids: np.ndarray
    n_raw_voxels: int
    val_voxels: np.ndarray
    val_images: np.ndarray
    standardizer: Standardizer | None = (
        None  # fitted on the training trials: new recordings go through it too
    )
    space: str = ""  # the subject's data space (what new recordings must be in)
    mask: np.ndarray | None = (
        None  # (X, Y, Z) bool brain mask of the voxels (info["mask"] or ["masks"]), for NIfTI
    )


def brain_mask(dataset: DecodingDataset, subject: str, n_voxels: int) -> np.ndarray | None:
    """The dataset's (X, Y, Z) brain mask of ``subject``'s voxels: ``info["mask"]`` (one for all) or
    ``info["masks"][subject]`` (bids), when it is boolean and holds ``n_voxels`` voxels; None otherwise."""
    info = dataset.info
    masks = info.get("masks")
    mask = info.get("mask", masks.get(subject) if isinstance(masks, dict) else None)
    if isinstance(mask, np.ndarray) and mask.dtype == bool and int(mask.sum()) == n_voxels:
        return mask
    return None


def wrap_pad(x: np.ndarray, multiple: int, released: bool = False) -> np.ndarray:
    """(n, v) -> (n, ceil(v / multiple) * multiple): the first voxels repeated at the end (Mind-Vis' padding);
    ``released``: a whole patch more when v is already a multiple (models.dc_mae.padding_for)."""
    extra = padding_for(x.shape[1], multiple, released)
    return np.concatenate([x, x[:, :extra]], axis=1) if extra else x


def fit_voxels(x: np.ndarray, multiple: int, released: bool = False, length: int | None = None) -> np.ndarray:
    """:func:`wrap_pad`, then, with ``length``, wrapped on (``np.pad`` "wrap") or cut to ``length`` voxels: how the
    released phase-2 script fits a subject to a checkpoint's voxel count (``num_voxels`` from its pos_embed)."""
    x = wrap_pad(x, multiple, released)
    if length is None or x.shape[1] == length:
        return x
    return (
        np.pad(x, ((0, 0), (0, length - x.shape[1])), mode="wrap") if x.shape[1] < length else x[:, :length]
    )


def prepare_arrays(
    dataset: DecodingDataset,
    subject: str,
    n_test: int,
    patch_size: int,
    n_val: int = 0,
    seed: int = 0,
    released: bool = False,
    length: int | None = None,
) -> VisDecArrays:
    """The arrays of ``subject``; ``n_test`` > 0 keeps the first ``n_test`` test stimuli (0: all). ``n_val`` training
    images (a seeded draw) and all their trials leave the training set and become the validation split.
    ``released``: the released code's padding; ``length``: then fitted to that many voxels (:func:`fit_voxels`)."""
    dataset.check_subject(subject)
    stimuli = dataset.stimuli
    if stimuli.images is None:
        raise DataError(f"Dataset {dataset.name!r} has no stimulus images; Vis-Dec reconstructs images.")
    train, test = dataset.train[subject], dataset.test[subject]
    if n_test and n_test < len(test.values):
        test = test.select(np.arange(n_test))
    all_ids = np.unique(train.stimulus_ids)
    if not 0 <= n_val <= len(all_ids) - 2:
        raise ConfigError(
            f"vis_dec: n_val_images must be between 0 and {len(all_ids) - 2} (the subject has {len(all_ids)} "
            f"training images), found {n_val}."
        )
    held = np.random.default_rng(seed).choice(all_ids, n_val, replace=False)
    is_val = np.isin(train.stimulus_ids, held)
    val = train.select(is_val).average_repeats() if n_val else None
    train = train.select(~is_val)
    scaler = Standardizer().fit(train.values)
    train_ids, image_index = np.unique(train.stimulus_ids, return_inverse=True)

    def fit(values: np.ndarray) -> np.ndarray:
        return fit_voxels(scaler.transform(values), patch_size, released, length)

    return VisDecArrays(
        train_voxels=fit(train.values),
        train_image_index=image_index.astype(np.int64),
        train_images=stimuli.images[stimuli.positions(train_ids)],
        test_voxels=fit(test.values),
        test_images=stimuli.images[stimuli.positions(test.stimulus_ids)],
        test_ids=np.asarray(test.stimulus_ids),
        n_raw_voxels=train.values.shape[1],
        val_voxels=fit(val.values if val is not None else train.values[:0]),
        val_images=stimuli.images[stimuli.positions(val.stimulus_ids if val is not None else [])],
        standardizer=scaler,
        space=str(train.space),
        mask=brain_mask(dataset, subject, train.values.shape[1]),
    )


def phase1_voxels(config: Any, train_voxels: np.ndarray) -> np.ndarray:
    """The built-in training trials (n, v), with ``config.extra_pretraining`` sources' rows wrap-padded to v and
    stacked under them (a source with more than v voxels is an error, never cut)."""
    if not config.extra_pretraining:
        return train_voxels
    from brainkit.data.readers.pretraining_sources import load_pretraining_voxels

    extra = load_pretraining_voxels(dict(config.extra_pretraining), length=train_voxels.shape[1])
    log.info(
        "phase 1: %d built-in trials + %d rows from %s",
        len(train_voxels),
        len(extra),
        sorted(config.extra_pretraining),
    )
    return np.concatenate([train_voxels, extra.astype(train_voxels.dtype)])


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, H, W, 3) at size x size (for the report grid and the metrics, the LDM's own resolution)."""
    return tensor_to_images(images_to_tensor(images, size))
