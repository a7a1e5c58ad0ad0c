"""Checkpoints as safetensors + JSON: loading never unpickles code.

A checkpoint folder holds ``model.safetensors`` (tensors) and ``config.json`` (the model name, its config and
any metadata). Writes are atomic: the folder is built under a temporary name and renamed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from brainkit.errors import CheckpointError

WEIGHTS = "model.safetensors"
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp alone gives 0600
CONFIG = "config.json"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Atomically save a flat dict of tensors to a safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning a missing or truncated file into a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} does not exist.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"Checkpoint file {path} is truncated or not a safetensors file ({err})."
        ) from None


@contextmanager
def atomic_folder(folder: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; on success it replaces ``folder``, on error it is removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_checkpoint(folder: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` atomically (whole or absent)."""
    with atomic_folder(folder) as tmp:
        save_tensors(tmp / WEIGHTS, state)
        atomic_write_text(tmp / CONFIG, json.dumps(config, indent=2, sort_keys=True))
    return Path(folder)


def load_checkpoint(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder written by :func:`save_checkpoint`: (tensors, config)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"Checkpoint folder {folder} does not exist.")
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise CheckpointError(f"Checkpoint {folder} has no {CONFIG}; it is incomplete. Re-run training.")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path} is truncated or not JSON ({err}).") from None
    return load_tensors(folder / WEIGHTS), config
