"""Recipes: a method's whole protocol (data, pretraining, fine-tuning, evaluation, report) under one name.

A recipe is a class registered in :data:`brainkit.registry.RECIPES` with
- ``Config``: a frozen dataclass (every field has a default);
- ``PRESETS``: named ``Config`` instances (``"cpu_small"`` is what ``brainkit run NAME`` uses by default,
  the paper's settings under their own names, ``"testing"`` a seconds-long one for the tests);
- ``run(config, folder) -> RecipeOutput``: does the work, writing whatever it wants under ``folder``.

:func:`run_recipe` builds the config (preset, then ``key=value`` overrides), runs the recipe in a hidden
``.NAME.partial`` folder beside the destination, writes ``config.json`` and ``metrics.json`` there and renames
it when complete, so a run folder is whole or absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainkit.checkpoint import atomic_write_text
from brainkit.config import apply_overrides, from_dict, to_dict
from brainkit.errors import ConfigError
from brainkit.registry import RECIPES

log = logging.getLogger(__name__)
DEFAULT_PRESET = "cpu_small"


@dataclass
class RecipeOutput:
    """What a recipe hands back: titled tables (one row per method/setting), plain-text notes, raw metrics."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeResult(RecipeOutput):
    folder: Path = Path(".")
    seconds: float = 0.0


def register_all() -> None:
    """Import every recipe module so that its registration runs (what any look-up in RECIPES does first)."""
    RECIPES.discover()


def recipe_config(name: str, preset: str | None = None, overrides: list[str] | None = None) -> Any:
    """The config of recipe ``name``: ``preset`` (default ``cpu_small``), then ``key=value`` overrides."""
    cls = RECIPES.get(name)
    preset = preset or DEFAULT_PRESET
    if preset not in cls.PRESETS:
        raise ConfigError(f"Recipe {name!r} has no preset {preset!r}; presets: {sorted(cls.PRESETS)}.")
    data = apply_overrides(to_dict(cls.PRESETS[preset]), overrides or [])
    return from_dict(cls.Config, data, where=f"{name} config")


def run_recipe(
    name: str,
    config: Any = None,
    folder: str | Path | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
) -> RecipeResult:
    """Run recipe ``name`` into ``folder`` (default ``runs/NAME-<time>``); the folder appears only when done."""
    cls = RECIPES.get(name)
    if config is None:
        config = recipe_config(name, preset, overrides)
    elif not isinstance(config, cls.Config):
        raise ConfigError(f"Recipe {name!r} takes a {cls.Config.__name__}, found {type(config).__name__}.")
    folder = Path(folder) if folder is not None else Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S")
    if folder.exists():
        raise ConfigError(f"Run folder {folder} already exists; choose another --out or delete it.")
    work = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    try:
        atomic_write_text(
            work / "config.json", json.dumps({"recipe": name, "config": to_dict(config)}, indent=2)
        )
        output = cls().run(config, work)
        seconds = time.perf_counter() - start
        summary = {"recipe": name, "seconds": seconds, "tables": output.tables, "notes": output.notes}
        atomic_write_text(work / "metrics.json", json.dumps({**summary, "metrics": output.metrics}, indent=2))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    os.replace(work, folder)
    log.info("Recipe %s finished in %.0f s: %s", name, seconds, folder)
    return RecipeResult(output.tables, output.notes, output.metrics, folder=folder, seconds=seconds)


__all__ = ["RecipeOutput", "RecipeResult", "recipe_config", "run_recipe", "register_all", "DEFAULT_PRESET"]
