"""The run folder's mechanics for :func:`brainkit.recipes.run_recipe`: the exclusive lock on a ``.NAME.partial``
folder, claiming it (fresh, resumed, or the leftovers of a killed run removed), the saved ``config.json`` and the
record of the settings a resumed run changed. Here, not in ``brainkit.recipes``, whose submodules are independent
recipes (the import-linter contract)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from brainkit.checkpoint import FILE_MODE
from brainkit.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)
LOCK = ".lock"


def saved_config(folder: Path) -> tuple[str, dict[str, Any]]:
    """(recipe name, config mapping) of the run folder (or partial folder) ``folder``."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a brainkit run folder (no config.json).")
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is truncated or not JSON ({err}).") from None
    if not isinstance(saved, dict) or set(saved) != {"recipe", "config"}:
        raise CheckpointError(
            f"{path} names no recipe (it holds {sorted(saved) if isinstance(saved, dict) else type(saved).__name__}"
            "); it was written by an older brainkit. Re-run it with brainkit run."
        )
    return saved["recipe"], saved["config"]


class _Lock:
    """An exclusive ``fcntl.flock`` on ``folder/.lock``, held while a run writes its partial folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self.handle = open(self.path, "a")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise ConfigError(
                f"{folder} is being written by another run (its lock is held); wait for it to finish, "
                "or choose another --out."
            ) from None

    def release(self) -> None:
        self.handle.close()


def claim(name: str, cls: Any, folder: Path, work: Path, resume: bool) -> _Lock:
    """Create and lock ``work`` (or, resuming, lock the interrupted one); refuse a folder another run holds."""
    if folder.exists():
        if resume:
            raise CheckpointError(f"The run at {folder} is complete; there is nothing to resume.")
        raise ConfigError(f"Run folder {folder} already exists; choose another --out or delete it.")
    if not work.is_dir():
        if resume:
            raise CheckpointError(f"No interrupted run to resume at {work}; start it without --resume.")
        work.parent.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(dir=work.parent, prefix=f"{work.name}."))
        fresh.chmod(FILE_MODE | (FILE_MODE & 0o444) >> 2)  # what mkdir would give; mkdtemp gives 0700
        lock = _Lock(fresh)
        try:
            os.rename(fresh, work)  # fails when another run created `work` meanwhile
        except OSError:
            lock.release()
            shutil.rmtree(fresh, ignore_errors=True)
            return claim(name, cls, folder, work, resume)
        return lock
    lock = _Lock(work)  # raises when another run holds it
    if resume:
        return lock
    if getattr(cls, "resumable", False) and has_state(work):
        lock.release()
        raise ConfigError(
            f"An interrupted run of {name} is at {work}; continue it with --resume, or delete it to start over."
        )
    log.warning("Removing the leftovers of an interrupted run at %s", work)
    shutil.rmtree(work, ignore_errors=True)
    lock.release()
    return claim(name, cls, folder, work, resume)


def has_state(work: Path) -> bool:
    """Whether ``work`` holds a trainer ``state/`` (or a copy of one that a killed write left beside it: the
    reader puts it back) or a finished phase, at any depth, i.e. can be resumed."""
    states = [p for pattern in ("state", ".state.*") for p in work.rglob(pattern)]
    return any(path.is_dir() for path in states) or any(work.rglob("done.json"))


def copy_tree(source: Path, target: Path, attempts: int = 5) -> None:
    """``source`` copied into ``target``, again while rank 0's atomic renames move files under the copy."""
    for attempt in range(attempts):
        try:
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(LOCK))
            return
        except (shutil.Error, FileNotFoundError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


CHANGES = "config_changes.jsonl"  # settings changed on --resume --allow-changes, one record per resumption


def lookup_key(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]
