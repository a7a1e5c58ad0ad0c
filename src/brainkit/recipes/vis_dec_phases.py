"""Phases 1 and 2 of the ``vis_dec`` recipe: the fMRI encoder that phase 3 conditions on.

Phase 1 pretrains a DC-MAE (:mod:`brainkit.models.dc_mae`, :func:`brainkit.dc_mae_training.pretrain_dc_mae`) on
the subject's z-scored training trials; phase 2 (:mod:`brainkit.models.cross_modal`) tunes it with an image MAE.
Both are visdec-mae's code (:mod:`brainkit.cross_modal_training`); this module feeds them the recipe's arrays
and folders: ``phase1_dc_mae/``, ``phase2_image_mae/``, ``phase2_cross_modal/`` under the run folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from brainkit.models import build_model, count_parameters, model_config
from brainkit.recipes.vis_dec_steps import VisDecArrays, resized

log = logging.getLogger(__name__)


def dc_mae_config(config: Any, n_voxels: int | None = None):
    """The DC-MAE config of the recipe (preset, then overrides, then the data-given voxel count)."""
    return model_config("dc_mae", config.dc_mae_preset, dict(config.dc_mae), n_voxels=n_voxels)


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


def encoder_phases(
    config: Any, arrays: VisDecArrays, folder: Path, seconds: dict[str, float]
) -> tuple[nn.Module, dict[str, list[dict]], dict[str, int]]:
    """Run phase 1 (and phase 2 when ``config.cross_modal``); returns (fMRI encoder, histories, parameter counts)."""
    from brainkit.dc_mae_training import pretrain_dc_mae

    start = time.perf_counter()
    model = build_model("dc_mae", dc_mae_config(config, arrays.train_voxels.shape[1]))
    result = pretrain_dc_mae(
        model,
        phase1_voxels(config, arrays.train_voxels),
        config.pretrain,
        folder / "phase1_dc_mae",
        val_voxels=arrays.test_voxels,
    )
    histories = {"phase 1: DC-MAE pretraining (voxels)": result.history}
    seconds["phase 1: DC-MAE pretraining"] = time.perf_counter() - start
    counts = {"DC-MAE (encoder + decoder)": count_parameters(model)}
    if config.cross_modal:
        start = time.perf_counter()
        model, more, extra = _cross_modal(config, model, arrays, folder)
        histories |= more
        counts |= extra
        seconds["phase 2: image MAE + cross-modal tuning"] = time.perf_counter() - start
    return model, histories, counts


def _cross_modal(config: Any, dc_mae: nn.Module, arrays: VisDecArrays, folder: Path):
    """Phase 2: the image MAE (from ``image_mae_dir``, or a small one pretrained on the training images), then
    both MAEs tuned together on (trial, image) pairs. Returns the tuned DC-MAE (what phase 3 encodes with)."""
    from brainkit.config import from_dict, to_dict
    from brainkit.cross_modal_training import pretrain_image_mae, tune_cross_modal
    from brainkit.errors import ConfigError
    from brainkit.models.cross_modal import (
        CROSS_PRESETS,
        CrossModalConfig,
        image_norm_stats,
        load_image_mae,
        small_image_mae,
    )

    start = time.perf_counter()
    histories: dict[str, list[dict]] = {}
    if config.cross_modal_preset not in CROSS_PRESETS:
        raise ConfigError(
            f"vis_dec: cross_modal_preset must be one of {sorted(CROSS_PRESETS)}, found {config.cross_modal_preset!r}."
        )
    base = to_dict(CROSS_PRESETS[config.cross_modal_preset])
    cross = from_dict(CrossModalConfig, base | dict(config.cross_modal_options), "cross_modal")
    if config.image_mae_dir:
        image = load_image_mae(config.image_mae_dir)
        mean, std = image_norm_stats(config.image_mae_dir)
        cross = from_dict(
            CrossModalConfig, to_dict(cross) | {"image_mean": mean, "image_std": std}, "cross_modal"
        )
    else:
        image = small_image_mae(config.image_mae_preset, seed=config.seed)
    size = image.config.image_size if isinstance(image.config.image_size, int) else image.config.image_size[0]
    train_images = resized(arrays.train_images, size)  # once at the MAE's size: small arrays per trial
    test_images = resized(arrays.test_images, size)
    if not config.image_mae_dir:
        result = pretrain_image_mae(
            image, train_images, config.image_pretrain, folder / "phase2_image_mae", val_images=test_images
        )
        histories["phase 2a: image MAE pretraining (images)"] = result.history
    log.info("vis_dec: image MAE ready in %.0f s", time.perf_counter() - start)
    model, result = tune_cross_modal(
        dc_mae,
        image,
        arrays.train_voxels,
        train_images[arrays.train_image_index],
        config.tune,
        folder / "phase2_cross_modal",
        cross,
        val_voxels=arrays.test_voxels,
        val_images=test_images,
    )
    histories["phase 2: cross-modal tuning (voxels + images)"] = result.history
    counts = {
        "image MAE": count_parameters(image),
        "cross-attention stacks": count_parameters(model)
        - count_parameters(image)
        - count_parameters(dc_mae),
    }
    return model.fmri, histories, counts
