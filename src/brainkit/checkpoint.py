"""Checkpoints as safetensors + JSON: loading never unpickles code.

A checkpoint folder holds ``model.safetensors`` (tensors), ``config.json`` (the model name, its config and any
metadata) and ``manifest.json`` (each file's size and sha256, written last). Writes are atomic: the folder is built
under a temporary name ``.NAME.<pid>.XXXX.tmp`` and swapped in by renames that never leave zero complete copies on
disk: the old folder is renamed aside (``.NAME.old-<pid>``), the new one renamed in, then the old one removed. A
process killed between two of those renames leaves ``NAME`` missing beside a complete copy;
:func:`recover_folder` (which every reader here calls) puts the newest complete copy back. Readers verify the
manifest, so a file changed or damaged after it was written is an error, not silently different weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
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

log = logging.getLogger(__name__)
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
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


# ------------------------------------------------------------------------------------------------ manifest
def sha256_file(path: str | Path) -> str:
    """The hex sha256 of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Write ``folder/manifest.json``: the size and sha256 of every file in ``folder`` (at any depth)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    }
    atomic_write_text(folder / MANIFEST, json.dumps({"files": entries}, indent=1))


def manifest_problem(folder: Path) -> str | None:
    """Why ``folder`` does not match its manifest (``None``: it does); a folder without one is reported too."""
    path = folder / MANIFEST
    try:
        entries = json.loads(path.read_text())["files"]
    except FileNotFoundError:
        return f"it has no {MANIFEST}"
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        return f"its {MANIFEST} is truncated or not a manifest"
    for name, entry in entries.items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != entry["size"]:
            return f"{name} has {file.stat().st_size} bytes, its manifest says {entry['size']}"
        if sha256_file(file) != entry["sha256"]:
            return f"{name} does not match the sha256 its manifest recorded"
    return None


def verify_folder(folder: str | Path, required: bool = False) -> None:
    """Raise a :class:`CheckpointError` when ``folder`` does not match its manifest (or, when ``required``, has
    none); a folder written before manifests existed passes when not ``required``."""
    folder = Path(folder)
    problem = manifest_problem(folder)
    if problem is None or (problem == f"it has no {MANIFEST}" and not required):
        return
    raise CheckpointError(
        f"Checkpoint {folder} is damaged: {problem} (its files changed after they were written). Restore it "
        "from a copy, or delete it and train again."
    )


# ------------------------------------------------------------------------------------------------ the swap
def _aside_name(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.old-{os.getpid()}"


def _copies(folder: Path) -> tuple[list[Path], list[Path]]:
    """(temporary copies, aside copies) a write of ``folder`` may have left beside it, newest first."""
    name = re.escape(folder.name)
    tmp_re, old_re = re.compile(rf"\.{name}\.(\d+\.)?[a-z0-9_]+\.tmp"), re.compile(rf"\.{name}\.old-\d+")
    if not folder.parent.is_dir():
        return [], []
    found = [p for p in folder.parent.iterdir() if p.is_dir()]

    def newest(paths: list[Path]) -> list[Path]:
        return sorted(paths, key=lambda p: p.stat().st_mtime_ns, reverse=True)

    return newest([p for p in found if tmp_re.fullmatch(p.name)]), newest(
        [p for p in found if old_re.fullmatch(p.name)]
    )


def _pid_of(path: Path) -> int | None:
    match = re.search(r"\.old-(\d+)$|\.(\d+)\.[^.]+\.tmp$", path.name)
    return int(match.group(1) or match.group(2)) if match else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers are never in use once the swap is done
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(folder: Path) -> None:
    """Remove the copies that killed writes of ``folder`` left beside it (never a live process's)."""
    for path in [p for group in _copies(folder) for p in group]:
        pid = _pid_of(path)
        if pid is not None and not _alive(pid):
            try:
                shutil.rmtree(path)
            except OSError as err:
                log.warning("Could not remove %s (left by an interrupted write): %s", path, err)


def tidy_folder(folder: str | Path) -> None:
    """Put back a complete copy of a missing ``folder`` (:func:`recover_folder`), then remove the copies that
    interrupted writes of it left beside it (never a live process's)."""
    recover_folder(folder)
    _remove_leftovers(Path(folder))


def remove_folder(folder: str | Path) -> None:
    """Remove ``folder`` and every copy that interrupted writes of it left beside it."""
    folder = Path(folder)
    for path in [folder, *(p for group in _copies(folder) for p in group)]:
        shutil.rmtree(path, ignore_errors=True)


def recover_folder(folder: str | Path) -> bool:
    """Whether ``folder`` exists, after putting back the newest complete copy that a write killed between its
    renames left beside it (a temporary copy whose manifest checks, else the old copy renamed aside).

    Logs what it put back. Returns False when no complete copy exists (incomplete leftovers are named in the log).
    """
    folder = Path(folder)
    if folder.is_dir():
        return True
    temporary, aside = _copies(folder)
    for copy in [p for p in temporary if manifest_problem(p) is None] + aside:
        try:
            os.replace(copy, folder)
        except FileNotFoundError:  # another process (rank) put it back first
            pass
        if folder.is_dir():
            log.warning(
                "%s was missing (a write was interrupted between its renames): put back the complete copy %s.",
                folder,
                copy.name,
            )
            _remove_leftovers(folder)
            return True
    if temporary:
        log.warning(
            "%s is missing and the copies beside it (%s) are incomplete: no complete checkpoint was written.",
            folder,
            ", ".join(p.name for p in temporary),
        )
    return False


@contextmanager
def atomic_folder(folder: str | Path, manifest: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; on success it replaces ``folder``, on error it is removed.

    With ``manifest``, ``manifest.json`` (sizes and sha256 of its files) is written last inside it. The swap never
    leaves zero complete copies: old aside, new in, old removed (see the module docstring).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp"))
    aside = _aside_name(folder)
    try:
        yield tmp
        if manifest:
            write_manifest(tmp)
        if folder.exists():
            if aside.exists():  # left by an earlier failed write of this process; `folder` is complete
                shutil.rmtree(aside)
            os.replace(folder, aside)
        os.replace(tmp, folder)
    except BaseException:
        _undo(folder, tmp, aside)
        raise
    try:
        _remove_leftovers(folder)
    except OSError as err:
        log.warning("Could not remove the old copy of %s: %s", folder, err)


def _undo(folder: Path, tmp: Path, aside: Path) -> None:
    """After a failed write: put the old folder back if it was renamed aside, then drop the temporary one,
    never the last complete copy (each step best effort: the failure may be the file system's)."""
    try:
        if not folder.exists() and aside.exists():
            os.replace(aside, folder)
        if folder.exists() or not aside.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        log.warning("Could not tidy up after the failed write of %s: %s", folder, err)


# ------------------------------------------------------------------------------------------------ checkpoints
def save_checkpoint(folder: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write ``folder/model.safetensors``, ``folder/config.json`` and the manifest atomically (whole or absent)."""
    with atomic_folder(folder, manifest=True) as tmp:
        save_tensors(tmp / WEIGHTS, state)
        atomic_write_text(tmp / CONFIG, json.dumps(config, indent=2, sort_keys=True))
    return Path(folder)


def load_checkpoint(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder written by :func:`save_checkpoint`: (tensors, config), its manifest checked."""
    folder = Path(folder)
    if not recover_folder(folder):
        raise CheckpointError(f"Checkpoint folder {folder} does not exist.")
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise CheckpointError(f"Checkpoint {folder} has no {CONFIG}; it is incomplete. Re-run training.")
    verify_folder(folder)
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is truncated or not JSON ({err}).") from None
    return load_tensors(folder / WEIGHTS), config


def check_tensors(
    loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: str | Path
) -> None:
    """Refuse tensors of ``loaded`` whose dtype differs from ``expected``'s (loading would cast them silently)
    and floating tensors with NaN/inf where ``expected`` (a freshly built model's) has none."""
    for key, tensor in loaded.items():
        target = expected.get(key)
        if target is None:
            continue  # strict loading reports unknown keys
        if tensor.dtype != target.dtype:
            raise CheckpointError(
                f"Checkpoint {where}: tensor {key!r} is {tensor.dtype}, the model's is {target.dtype}; brainkit does "
                "not cast weights silently. Save the checkpoint from a model of this config (save_model)."
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            if bool(torch.isfinite(target).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise CheckpointError(
                    f"Checkpoint {where}: tensor {key!r} has {bad} NaN/inf value(s); the training that wrote it "
                    "diverged or the file was damaged. Use an earlier checkpoint, or train again."
                )


TORCH_CONTAINERS = (
    "state_dict",
    "model",
    "model_state_dict",
    "module",
    "net",
)  # where trainers nest the weights


class MetadataRecord:
    """Stands in for a class a released checkpoint pickles as metadata (a training script's config object): the
    unpickler builds this instead, with the object's attributes as ``state``; no code of the file's class runs."""

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def read_torch_weights(path: str | Path, metadata_classes: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The tensors of a released PyTorch checkpoint (``.pth`` / ``.pt`` / ``.ckpt``), read without running code.

    Only ``torch.load(weights_only=True)``: a file whose pickle names code or objects other than tensors and plain
    containers is refused. A checkpoint that nests its weights one level down (``{"state_dict": {...}, "epoch":
    ..}``, also ``model`` / ``model_state_dict`` / ``module`` / ``net``) is unwrapped (the other entries are
    training metadata, not weights); a DDP ``module.`` prefix on every key is removed. Returns ``{key: tensor}``
    on the CPU; raises :class:`CheckpointError` for anything else (non-tensor entries in the weights, no
    tensors at all, several candidate containers). ``metadata_classes`` ("module.Name") are classes the file may
    pickle beside the weights (e.g. Vis-Dec's ``config.Config_MBM_fMRI``): each is read as an inert
    :class:`MetadataRecord`, still under ``weights_only=True``; any other class is refused by name.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Weights file {path} does not exist.")
    try:
        with torch.serialization.safe_globals([(MetadataRecord, name) for name in metadata_classes]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises UnpicklingError, RuntimeError, EOFError, zip errors)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise CheckpointError(
                f"{path} pickles {found.group(1)}, not only tensors; brainkit reads weights with "
                "torch.load(weights_only=True) and never runs code from a file. Where you trust the file, re-save "
                "its state dict alone: torch.save(torch.load(f, weights_only=False)['state_dict'], g)."
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        message = reason.group(1) if reason else (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({message.strip()[:200]}); is it the .pth/.ckpt file itself?"
        ) from None
    return _weights_of(loaded, path)


def _weights_of(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(loaded, dict):
        raise CheckpointError(
            f"{path} holds a {type(loaded).__name__}, not a state dict ({{name: tensor}}); save "
            "model.state_dict() rather than the model."
        )
    nested = [key for key in TORCH_CONTAINERS if isinstance(loaded.get(key), dict)]
    if len(nested) > 1:
        raise CheckpointError(
            f"{path} nests weights under several keys ({', '.join(nested)}); save the one you mean alone."
        )
    if nested and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        log.info("%s: weights read from its %r entry (other entries: %s)", path, nested[0],
                 ", ".join(sorted(k for k in loaded if k != nested[0])) or "none")  # fmt: skip
        loaded = loaded[nested[0]]
    bad = sorted(k for k, v in loaded.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(
            f"{path}: entries {bad[:10]} are not tensors; a state dict holds tensors only (a training checkpoint "
            f"nests them under one of {', '.join(TORCH_CONTAINERS)})."
        )
    if not loaded:
        raise CheckpointError(f"{path} holds no tensors.")
    if all(k.startswith("module.") for k in loaded):
        loaded = {k[len("module.") :]: v for k, v in loaded.items()}
    return {k: v.detach().cpu() for k, v in loaded.items()}
