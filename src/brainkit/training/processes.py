"""Which process of a multi-process run this is, and where a secondary process reads what the primary wrote.

A run on several processes (``training.devices > 1`` or ``num_nodes > 1``) runs the whole recipe in every process:
Lightning Fabric's own launcher re-runs the command in a child per extra device (``LOCAL_RANK`` set), and
``torchrun`` / SLURM's ``srun`` start every process themselves (``RANK`` / ``SLURM_PROCID``). Each process builds
the same data and the same networks, the trainer's steps are collective, and only the primary process (rank 0)
writes the run folder: :func:`brainkit.recipes.run_recipe` runs a secondary process in a private scratch folder
that it removes at the end (its copies of the outputs are the primary's, computed again).

What a secondary process must read from the primary's folder, it reads through :func:`primary_path`: the trainer's
resumable ``state/`` and ``best/`` (written by rank 0 alone) and a finished phase's ``final/`` on resume. Inside
:func:`reading_from` (scratch, primary) a path under the scratch folder maps to the same path under the primary's.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path

# (scratch folder, primary folder) of a secondary process's run, else None
_MIRROR: contextvars.ContextVar[tuple[Path, Path] | None] = contextvars.ContextVar("mirror", default=None)


def process_rank() -> int:
    """This process's global rank as its launcher set it: ``RANK`` (torchrun), ``SLURM_PROCID`` (srun, when the
    job has several tasks), else from Fabric's ``NODE_RANK`` / ``LOCAL_RANK`` (its own launcher's children: 0 for
    the first process of the first node, a positive number for the others); 0 alone."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"])
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    local, node = int(env.get("LOCAL_RANK", "0")), int(env.get("NODE_RANK", "0"))
    return node * 1000 + local


def is_primary_process() -> bool:
    """Whether this process writes the run folder (rank 0, or the only process)."""
    return process_rank() == 0


@contextlib.contextmanager
def reading_from(scratch: str | Path, primary: str | Path) -> Iterator[None]:
    """Inside, :func:`primary_path` maps paths under ``scratch`` to the same paths under ``primary``."""
    token = _MIRROR.set((Path(scratch).resolve(), Path(primary).resolve()))
    try:
        yield
    finally:
        _MIRROR.reset(token)


def primary_path(path: str | Path) -> Path:
    """``path`` in the primary process's folder: itself, unless this is a secondary process's scratch path."""
    path = Path(path)
    mirror = _MIRROR.get()
    if mirror is None:
        return path
    scratch, primary = mirror
    try:
        return primary / path.resolve().relative_to(scratch)
    except ValueError:
        return path


__all__ = ["is_primary_process", "primary_path", "process_rank", "reading_from"]
