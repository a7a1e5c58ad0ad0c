"""A run folder from a method's released weights: ``brainkit import-weights METHOD PATH --out RUN``.

The recipe's config is built as for ``brainkit run`` (a preset, a config file, ``--set`` overrides: choose the
preset whose sizes the released checkpoint has, usually ``paper``). The file is read with
``torch.load(weights_only=True)`` only (:func:`brainkit.checkpoint.read_torch_weights`: no code from a file ever
runs; a folder where the released code saves the model in several files, :func:`read_released`), then the recipe's ``import_weights(config, weights, folder, source)`` hook maps the released keys onto its
networks (:func:`brainkit.models.released.map_state`) and writes them where its ``evaluate`` reads trained ones.
Finally ``evaluate`` scores the imported networks on the config's data, into ``metrics.json``: the released model's
numbers under brainkit's evaluation. Like every run folder the result is whole or absent (a locked
``.RUN.partial`` beside it, renamed when complete), and ``brainkit eval RUN`` / ``brainkit.load(RUN)`` work on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from brainkit.checkpoint import atomic_write_text, read_torch_weights, sha256_file
from brainkit.config import to_dict
from brainkit.errors import ConfigError
from brainkit.recipes import RecipeResult, in_folder, recipe_config, register_all
from brainkit.registry import RECIPES
from brainkit.training.run_folder import LOCK, claim

log = logging.getLogger(__name__)


def importers() -> list[str]:
    """The recipes whose released weights can be imported."""
    register_all()
    return [name for name in RECIPES if hasattr(RECIPES.get(name), "import_weights")]


def read_released(cls: Any, method: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The released tensors at ``path`` and their ``source`` record (file, sha256, tensor count).

    A file is read whole (``RELEASED_METADATA``: classes the released scripts pickle beside the weights, read as
    inert records). A folder is read where the recipe names the files its released code saves one part of the
    model in (``RELEASED_FILES``: file name -> the key prefix its tensors get, e.g. SIM's
    ``fmri-encoder-best.pt`` -> ``fmri_encoder.``); every named file must be there, and its sha256 is that of
    the sorted ``name sha256`` lines of the files."""
    metadata = getattr(cls, "RELEASED_METADATA", ())
    if not path.is_dir():
        weights = read_torch_weights(path, metadata)
        return weights, {"file": str(path.resolve()), "sha256": sha256_file(path), "tensors": len(weights)}
    files = getattr(cls, "RELEASED_FILES", None)
    if not files:
        raise ConfigError(
            f"{path} is a folder; {method} import-weights reads one .pth / .ckpt file: name it."
        )
    missing = [name for name in files if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            f"{path} lacks {missing}: {method}'s released code saves its model as {sorted(files)} in one folder."
        )
    weights: dict[str, Any] = {}
    digests = []
    for name, prefix in sorted(files.items()):
        part = read_torch_weights(path / name, metadata)
        weights |= {prefix + key: tensor for key, tensor in part.items()}
        digests.append(f"{name} {sha256_file(path / name)}")
    digest = hashlib.sha256("\n".join(digests).encode()).hexdigest()
    source = {"file": str(path.resolve()), "sha256": digest, "tensors": len(weights), "files": sorted(files)}
    return weights, source


def import_run(
    method: str,
    path: str | Path,
    folder: str | Path,
    preset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
) -> RecipeResult:
    """Import the released checkpoint ``path`` of ``method`` into the run folder ``folder`` and evaluate it."""
    register_all()
    cls = RECIPES.get(method)
    if not hasattr(cls, "import_weights"):
        raise ConfigError(
            f"Recipe {method!r} has no released weights to import; recipes that do: {', '.join(importers())}."
        )
    if not hasattr(cls, "evaluate"):
        raise ConfigError(
            f"Recipe {method!r} cannot evaluate a run folder, so an imported one would be unusable."
        )
    # IMPORT_OVERRIDES: what a run of imported weights always sets (sim: inits=[released]); the user's come after
    overrides = list(getattr(cls, "IMPORT_OVERRIDES", ())) + list(overrides or [])
    config = recipe_config(method, preset, overrides, config_file)
    if hasattr(cls, "check"):
        cls.check(config)
    # before any folder exists: a refused file leaves nothing behind
    weights, source = read_released(cls, method, Path(path))
    folder = Path(folder)
    work = folder.parent / f".{folder.name}.partial"
    lock = claim(method, cls, folder, work, resume=False)
    start = time.perf_counter()
    try:
        atomic_write_text(
            work / "config.json", json.dumps({"recipe": method, "config": to_dict(config)}, indent=2)
        )
        runnable = in_folder(cls, config, work)
        recipe = cls()
        notes = list(recipe.import_weights(runnable, weights, work, source))
        metrics = recipe.evaluate(runnable, work)
        seconds = time.perf_counter() - start
        notes.append(
            f"Weights imported from {source['file']} (sha256 {source['sha256'][:12]}...), not trained."
        )
        summary: dict[str, Any] = {"recipe": method, "seconds": seconds, "tables": {}, "notes": notes}
        atomic_write_text(
            work / "metrics.json", json.dumps({**summary, "imported": source, "metrics": metrics}, indent=2)
        )
        (work / LOCK).unlink()
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        lock.release()
    log.info("Imported %s weights into %s in %.0f s", method, folder, seconds)
    return RecipeResult({}, notes, metrics, folder=folder, seconds=seconds)


__all__ = ["import_run", "importers", "read_released"]
