"""What every registered model shares: config handling, input checks, save/load without pickle.

A model class registered in :data:`brainkit.registry.MODELS` has
- ``Config``: a frozen dataclass; data-given sizes (``n_voxels``, ``output_shape``) default to ``None``;
- ``PRESETS``: named ``Config`` instances (the paper's numbers, each citing its source);
- ``__init__(config)``, with the data-given sizes filled in;
- ``forward(x)``: (batch, n_voxels) -> (batch, *output_shape).
A model fitted in closed form (ridge) also has ``fit_closed_form(x, y)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainkit.checkpoint import load_checkpoint, save_checkpoint
from brainkit.config import from_dict, to_dict
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.registry import MODELS


def model_config(
    name: str,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
    n_voxels: int | None = None,
    output_shape: tuple[int, ...] | None = None,
) -> Any:
    """The config of model ``name``: a preset (or the defaults), then ``options``, then data-given sizes."""
    cls = MODELS.get(name)
    if preset is not None:
        if preset not in cls.PRESETS:
            raise ConfigError(f"Model {name!r} has no preset {preset!r}; presets: {sorted(cls.PRESETS)}.")
        base = to_dict(cls.PRESETS[preset])
    else:
        base = to_dict(cls.Config())
    base.update(options or {})
    if n_voxels is not None:
        base["n_voxels"] = int(n_voxels)
    if output_shape is not None:
        base["output_shape"] = [int(s) for s in output_shape]
    return from_dict(cls.Config, base, where=f"{name} config")


def build_model(name: str, config: Any) -> nn.Module:
    """Instantiate model ``name`` from its config (sizes must be filled in)."""
    cls = MODELS.get(name)
    missing = [f for f in ("n_voxels", "output_shape") if getattr(config, f, 0) is None]
    if missing:
        raise ConfigError(f"Model {name!r}: {missing} must be set (they come from the dataset).")
    model = cls(config)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise a clear :class:`DataError` when ``x`` does not fit the model."""
    n_voxels = model.config.n_voxels
    if x.ndim != 2 or x.shape[1] != n_voxels:
        raise DataError(
            f"{type(model).__name__} expects input of shape (batch, {n_voxels}) voxels, found {tuple(x.shape)}. "
            "A checkpoint fits only the subject (voxel set) it was trained on."
        )
    if not torch.isfinite(x).all():
        raise DataError(f"{type(model).__name__}: input contains NaN or inf.")


def save_model(folder: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model as safetensors + config.json (name, config, metadata)."""
    config = {"model": model.registry_name, "config": to_dict(model.config), "metadata": metadata or {}}
    return save_checkpoint(folder, model.state_dict(), config)


def load_model(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; no pickled code is executed."""
    state, meta = load_checkpoint(folder)
    if "model" not in meta or "config" not in meta:
        raise CheckpointError(
            f"{folder}/config.json lacks 'model' or 'config'; it was not written by brainkit."
        )
    cls = MODELS.get(meta["model"])
    config = from_dict(cls.Config, meta["config"], where=f"{folder}/config.json")
    model = build_model(meta["model"], config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"Checkpoint {folder} does not match its config: {err}") from None
    return model, meta.get("metadata", {})


def fields_of(config: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]
