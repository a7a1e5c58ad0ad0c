"""What the ``sim`` recipe checks before any data are built: the movie data preset and its options (the stimulus
encoders' names and options too), the vsMAE pretraining and its model config on the data's icosphere, the SIM
model config, the subject split and a given vsMAE checkpoint. Each problem is one :class:`ConfigError`.

The model configs are built with the icosphere grid's sizes and placeholder stimulus widths (1): bounds, presets
and options are what is checked here; the sizes themselves come from the data when the run builds the models.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from brainkit.config import from_dict, to_dict
from brainkit.errors import ConfigError
from brainkit.recipes.sim.datasets import data_summary


def check_inits(config: Any, inits: dict[str, str]) -> None:
    """``config.inits``: at least one, each a known encoder initialisation (a key of ``inits``)."""
    unknown = sorted(set(config.inits) - set(inits))
    if unknown or not config.inits:
        raise ConfigError(f"sim recipe: inits must come from {sorted(inits)}, found {list(config.inits)}.")
    if "released" in config.inits and len(config.inits) > 1:
        raise ConfigError(
            f"sim recipe: inits=[released] (imported weights) stands alone, found {list(config.inits)}."
        )


def check_sim(config: Any, inits: dict[str, str]) -> None:
    """Raise :class:`ConfigError` for what a ``sim`` run of ``config`` would meet only after building its data
    (``inits``: the known encoder initialisations)."""
    from brainkit.models.sim import SIMConfig
    from brainkit.recipes.vsmae import check_vsmae, encoder_checkpoint
    from brainkit.registry import ENCODERS

    check_inits(config, inits)
    data = data_summary(config)
    for role, (name, options) in data.encoders.items():
        if name not in ENCODERS:
            raise ConfigError(
                f"sim data_options.{role}_encoder={name!r} is not a stimulus encoder; choose from "
                f"{ENCODERS.names()}."
            )
        ENCODERS.check_options(name, dict(options), f"sim data_options.{role}_options")
    if data.n_subjects is not None and not config.n_test_subjects < data.n_subjects:
        raise ConfigError(
            f"sim n_test_subjects={config.n_test_subjects} must leave subjects to train on: the data have "
            f"{data.n_subjects}; set n_test_subjects to 1..{data.n_subjects - 1} or data_options.n_subjects higher."
        )
    if config.vsmae.coarse_order >= data.order:
        raise ConfigError(
            f"sim vsmae.coarse_order={config.vsmae.coarse_order} must be below the data's icosphere order "
            f"{data.order} (data_options.order): the patches are triangles of the coarser sphere."
        )
    if "vsmae" in config.inits and not config.vsmae_checkpoint and data.order > 5:
        raise ConfigError(
            f"sim: the data are on ico{data.order}, but the vsMAE pretraining's rest run is fsaverage5 (ico5); set "
            "data_options.order=5 (or lower), or inits=[scratch]."
        )
    vsmae = dataclasses.replace(config.vsmae, fine_order=data.order, seed=config.seed)
    encoder = check_vsmae(vsmae).encoder
    options = {"encoder": to_dict(encoder), "video_dim": 1, "audio_dim": 1, **config.model}
    from_dict(SIMConfig, options, where="sim model")
    if "vsmae" in config.inits and config.vsmae_checkpoint:
        encoder_checkpoint(config.vsmae_checkpoint)
