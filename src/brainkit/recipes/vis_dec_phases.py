"""Phases 1 and 2 of the ``vis_dec`` recipe: the fMRI encoder that phase 3 conditions on.

Phase 1 pretrains a DC-MAE (:mod:`brainkit.models.dc_mae`, :func:`brainkit.dc_mae_training.pretrain_dc_mae`) on
the subject's z-scored training trials; phase 2 (:mod:`brainkit.models.cross_modal`) tunes it with an image MAE.
Both are visdec-mae's code; this module only feeds them the recipe's arrays and folders.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from torch import nn

from brainkit.models import build_model, count_parameters, model_config, register_all
from brainkit.recipes.vis_dec_steps import VisDecArrays

log = logging.getLogger(__name__)


def dc_mae_config(config: Any, n_voxels: int | None = None):
    """The DC-MAE config of the recipe (preset, then overrides, then the data-given voxel count)."""
    register_all()
    return model_config("dc_mae", config.dc_mae_preset, dict(config.dc_mae), n_voxels=n_voxels)


def encoder_phases(
    config: Any, arrays: VisDecArrays, folder: Path, seconds: dict[str, float]
) -> tuple[nn.Module, dict[str, list[dict]], dict[str, int]]:
    """Run phase 1 (and phase 2 when ``config.cross_modal``); returns (fMRI encoder, histories, parameter counts)."""
    from brainkit.dc_mae_training import pretrain_dc_mae

    start = time.perf_counter()
    model = build_model("dc_mae", dc_mae_config(config, arrays.train_voxels.shape[1]))
    result = pretrain_dc_mae(
        model, arrays.train_voxels, config.pretrain, folder / "phase1_dc_mae", val_voxels=arrays.test_voxels
    )
    histories = {"phase 1: DC-MAE pretraining (voxels)": result.history}
    seconds["phase 1: DC-MAE pretraining"] = time.perf_counter() - start
    counts = {"DC-MAE (encoder + decoder)": count_parameters(model)}
    if config.cross_modal:
        model, history, extra = _cross_modal(config, model, arrays, folder)
        histories["phase 2: cross-modal tuning (voxels + images)"] = history
        counts |= extra
        seconds["phase 2: cross-modal tuning"] = (
            time.perf_counter() - start - seconds["phase 1: DC-MAE pretraining"]
        )
    return model, histories, counts


def _cross_modal(config: Any, model: nn.Module, arrays: VisDecArrays, folder: Path):
    from brainkit.errors import ConfigError

    try:
        import brainkit.models.cross_modal  # noqa: F401
    except ImportError:
        raise ConfigError(
            "vis_dec: phase 2 (brainkit.models.cross_modal) is not in this build; run with cross_modal=false "
            "(phase 3 then conditions on the phase-1 encoder)."
        ) from None
    raise ConfigError("vis_dec: phase 2 is not wired into the recipe yet; run with cross_modal=false.")
