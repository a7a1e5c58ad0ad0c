"""What every registered model shares: config handling, input checks, save/load without pickle, and the small
interface the test battery (tests/test_models.py) reads.

A model class registered in :data:`brainkit.registry.MODELS` has
- ``Config``: a frozen dataclass; data-given sizes (``n_voxels``, ``output_shape``, ...) default to ``None``;
- ``PRESETS``: named ``Config`` instances (the paper's numbers, each citing its source), and ``"testing"``: tiny,
  a forward and backward in milliseconds;
- ``__init__(config)``, with the data-given sizes filled in, and ``model.config`` that config (so ``config.json``
  + safetensors rebuild it); a class whose constructor takes its parts instead (cross_modal) has a classmethod
  ``from_config(config)``, which :func:`build_model` calls;
- ``forward(*inputs)``, its shapes given in the docstring with named dimensions.

The battery interface, so that one test battery runs over every model with no model-specific code in the test:
- ``testing_sizes``: the data-given sizes of the battery's tiny inputs (unequal numbers, so that a swapped axis
  cannot pass), nested dicts for nested configs; :func:`example_config` merges them into ``PRESETS["testing"]``;
- ``example(config, batch, generator) -> tuple`` (classmethod): valid ``forward`` arguments for a model built
  from ``config``, drawn from ``generator``; the first is the brain input, whose last axis is its width;
- ``output_shape_for(batch) -> tuple | dict[str, tuple]``: the shape ``forward`` returns, or for a dict or
  named-tuple output the shape of each tensor in it the battery checks (a ``"loss"`` entry is the model's own
  loss, which the battery's optimiser step lowers; otherwise it lowers the MSE to a fixed random target);
- ``battery_skips``: ``{check: reason}`` for the checks that cannot apply (the battery reports them as skips);
- a model fitted in closed form (ridge) has ``fit_closed_form(x, y)``; the battery fits it before a forward.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainkit.checkpoint import check_tensors, load_checkpoint, save_checkpoint
from brainkit.config import from_dict, to_dict
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.registry import MODELS


def model_config(
    name: str,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
    n_voxels: int | None = None,
    output_shape: tuple[int, ...] | None = None,
    where: str | None = None,
) -> Any:
    """The config of model ``name``: a preset (or the defaults), then ``options``, then data-given sizes
    (``where``: how errors name it, default ``"NAME config"``)."""
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
    return from_dict(cls.Config, base, where=where or f"{name} config")


def build_model(name: str, config: Any) -> nn.Module:
    """Instantiate model ``name`` from its config (sizes must be filled in)."""
    cls = MODELS.get(name)
    missing = [f for f in ("n_voxels", "output_shape") if getattr(config, f, 0) is None]
    if missing:
        raise ConfigError(f"Model {name!r}: {missing} must be set (they come from the dataset).")
    return getattr(cls, "from_config", cls)(config)


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
    """Rebuild a model saved by :func:`save_model`; no pickled code is executed. Tensors must have the model's
    dtypes (no silent cast) and finite values where a freshly built model has them."""
    state, meta = load_checkpoint(folder)
    if "model" not in meta or "config" not in meta:
        raise CheckpointError(
            f"{folder}/config.json lacks 'model' or 'config'; it was not written by brainkit."
        )
    cls = MODELS.get(meta["model"])
    config = from_dict(cls.Config, meta["config"], where=f"{folder}/config.json")
    model = build_model(meta["model"], config)
    check_tensors(state, model.state_dict(), folder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"Checkpoint {folder} does not match its config: {err}") from None
    return model, meta.get("metadata", {})


def fields_of(config: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


# ------------------------------------------------------------------------------------------ battery interface
def _merge(base: dict[str, Any], sizes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in sizes.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if nested else value
    return merged


def example_config(name: str) -> Any:
    """``PRESETS["testing"]`` of model ``name`` with its ``testing_sizes`` filled in (the battery's config)."""
    cls = MODELS.get(name)
    if "testing" not in cls.PRESETS:
        raise ConfigError(f"Model {name!r} has no 'testing' preset; the test battery needs a tiny one.")
    data = _merge(to_dict(cls.PRESETS["testing"]), getattr(cls, "testing_sizes", {}))
    return from_dict(cls.Config, data, where=f"{name} testing config")


def output_tensors(output: Any) -> dict[str, torch.Tensor]:
    """A forward's result as named tensors: ``{"output": x}`` for a tensor, the tensor fields of a dict or a
    named tuple otherwise."""
    if isinstance(output, torch.Tensor):
        return {"output": output}
    items = output._asdict().items() if hasattr(output, "_asdict") else dict(output).items()
    return {key: value for key, value in items if isinstance(value, torch.Tensor)}


class VoxelModel:
    """The battery interface of a model that maps (batch, n_voxels) -> (batch, *output_shape)."""

    testing_sizes: dict[str, Any] = {"n_voxels": 53, "output_shape": (3, 5)}
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: Any, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
        return (torch.randn(batch, config.n_voxels, generator=generator),)

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.config.output_shape)
