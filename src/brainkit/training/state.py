"""A training run's resumable state as ONE atomic folder: weights, optimiser, counters, history.

``folder/model.safetensors`` (the task's state dict), ``folder/optimizer.safetensors`` (moments) and
``folder/config.json`` (training config, step, history, partial sums, best so far, optimiser metadata) are written
together under a temporary name with ``manifest.json`` (each file's size and sha256) last, and renamed in
(:func:`brainkit.checkpoint.atomic_folder`), so weights and optimiser always belong to the same step. Reading puts
back a complete copy that a write killed between its renames left beside ``folder``
(:func:`brainkit.checkpoint.recover_folder`) and checks the manifest: a damaged state is an error, not a resume
from other numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from brainkit.checkpoint import (
    CONFIG,
    WEIGHTS,
    atomic_folder,
    atomic_write_text,
    check_tensors,
    load_tensors,
    recover_folder,
    save_tensors,
    verify_folder,
)
from brainkit.errors import CheckpointError

OPTIMIZER = "optimizer.safetensors"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state into flat tensors (safetensors) and JSON-ready metadata."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(
    folder: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    """Write the whole resumable state of a run to ``folder`` (whole or absent)."""
    tensors, optimizer_meta = optimizer_tensors(optimizer)
    with atomic_folder(folder, manifest=True) as tmp:
        save_tensors(tmp / WEIGHTS, module.state_dict())
        save_tensors(tmp / OPTIMIZER, tensors)
        atomic_write_text(tmp / CONFIG, json.dumps({**meta, "optimizer": optimizer_meta}, indent=1))


def save_weights(folder: Path, module: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Write the task's weights alone (the best checkpoint) to ``folder``."""
    with atomic_folder(folder, manifest=True) as tmp:
        save_tensors(tmp / WEIGHTS, module.state_dict())
        atomic_write_text(tmp / CONFIG, json.dumps(meta, indent=1))


def read_meta(folder: Path) -> dict[str, Any]:
    """The metadata (``config.json``) of the state in ``folder``, after recovering it and checking its manifest."""
    path = folder / CONFIG
    if not recover_folder(folder) or not path.is_file():
        raise CheckpointError(
            f"Cannot resume: {path} does not exist (no complete checkpoint was written before the "
            "interruption). Start without --resume."
        )
    verify_folder(folder, required=True)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is truncated or not JSON ({err}); start without --resume.") from None


def load_weights(folder: Path, module: torch.nn.Module) -> None:
    """Load ``folder/model.safetensors`` into ``module``, every key, shape and dtype exactly (finite values)."""
    if not recover_folder(folder):
        raise CheckpointError(f"Checkpoint folder {folder} does not exist.")
    verify_folder(folder)
    _load_weights(folder, module)


def _load_weights(folder: Path, module: torch.nn.Module) -> None:
    weights = load_tensors(folder / WEIGHTS)
    check_tensors(weights, module.state_dict(), folder)
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"The weights in {folder} do not fit this model: {err}") from None


def load_state(folder: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights and optimiser from ``folder``; returns its metadata (step, history, ...)."""
    meta = read_meta(folder)
    _load_weights(folder, module)
    try:
        optimizer.load_state_dict(optimizer_state(load_tensors(folder / OPTIMIZER), meta["optimizer"]))
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"Training state in {folder} does not fit this model/optimiser: {err}"
        ) from None
    return meta
