"""Recipes: a method's whole protocol (data, pretraining, fine-tuning, evaluation, report) under one name.

A recipe is a class registered in :data:`brainkit.registry.RECIPES` with
- ``Config``: a frozen dataclass (every field has a default);
- ``PRESETS``: named ``Config`` instances (``"cpu_small"`` is what ``brainkit run NAME`` uses by default,
  the paper's settings under their own names, ``"testing"`` a seconds-long one for the tests);
- ``run(config, folder) -> RecipeOutput``: does the work, writing whatever it wants under ``folder``;
- optionally ``resumable = True`` with ``run(config, folder, resume=False)``: continues an interrupted run
  (its trainer ``state/`` folders), and ``evaluate(config, folder) -> dict``: scores a finished run folder again;
- optionally ``check(config)``: raises :class:`ConfigError` for names and options the run would meet only after
  building its data (model names, option keys); :func:`run_recipe` calls it before it creates any folder;
- optionally ``DESIGNS`` (the data designs it reads: ``("trials",)``) and ``with_dataset(config, name, options)``:
  the config reading dataset ``name`` with ``options`` instead (what ``run_recipe(..., dataset=...)`` uses);
  ``DATA_FIELDS``: where its config keeps the dataset's ``name``, ``options`` and ``subject`` (one-subject
  recipes) or ``subjects`` (several; reset to all of them when another dataset is named), e.g.
  ``{"name": "dataset", "options": "data", "subject": "subject"}``, so that the same overrides
  ``data.name=bids``, ``data.options.root=DIR``, ``data.subject=sub-01`` work for every recipe; and
  ``predictor(config, folder)``: an object with ``predict(x, ...)`` for :func:`brainkit.load` and
  ``brainkit predict``.

A string of a config that contains ``${run}`` names a path inside the run folder (the data a run carries:
``${run}/data``); it is replaced by the folder the run is in when the recipe runs, is evaluated or predicts.

:func:`run_recipe` is THE run folder: it builds the config (a preset or a YAML/JSON file, then ``key=value``
overrides), runs the recipe in a hidden ``.NAME.partial`` folder beside the destination (locked, so a second run
into the same folder refuses to start), writes ``config.json`` (the recipe's name and config) and ``metrics.json``
there and renames it when complete, so a run folder is whole or absent. :func:`evaluate_run` re-evaluates one.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainkit.checkpoint import atomic_write_text
from brainkit.config import apply_overrides, from_dict, load_config_file, parse_override, to_dict
from brainkit.errors import CheckpointError, ConfigError
from brainkit.registry import RECIPES
from brainkit.training.config import RESUMABLE_CHANGES
from brainkit.training.run_folder import (
    CHANGES,
    LOCK,
    changed_keys,
    claim,
    copy_tree,
    has_state,
    lookup_key,
    saved_config,
)

log = logging.getLogger(__name__)
DEFAULT_PRESET = "cpu_small"
RUN_FOLDER = "${run}"
DATA_FOLDER = "data"  # where run_recipe(..., dataset=...) saves the user's dataset inside the run folder


@dataclass
class RecipeOutput:
    """What a recipe hands back: titled tables (one row per method/setting), plain-text notes, raw metrics."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeResult(RecipeOutput):
    folder: Path | None = Path(".")  # None: a secondary process of a multi-process run (it writes no folder)
    seconds: float = 0.0


def register_all() -> None:
    """Import every recipe module so that its registration runs (what any look-up in RECIPES does first)."""
    RECIPES.discover()


def _preset(name: str, cls: Any, preset: str) -> Any:
    if preset not in cls.PRESETS:
        close = difflib.get_close_matches(preset, list(cls.PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Recipe {name!r} has no preset {preset!r}.{hint} Presets: {', '.join(sorted(cls.PRESETS))}."
        )
    return cls.PRESETS[preset]


def _file_config(name: str, path: str | Path) -> dict[str, Any]:
    """The config mapping of a YAML/JSON file: a whole config, or a run's config.json (``{recipe, config}``)."""
    path = Path(path)
    data = load_config_file(path)
    if set(data) == {"recipe", "config"}:
        if data["recipe"] != name:
            raise ConfigError(f"{path} is a config of recipe {data['recipe']!r}, not {name!r}.")
        data = data["config"]
    return data


# data.<key> overrides every recipe with DATA_FIELDS takes ("subjects": a recipe that reads several, () = all)
DATA_KEYS = ("name", "options", "subject", "subjects")


def data_overrides(name: str, cls: Any, overrides: list[str]) -> list[str]:
    """``overrides`` with the uniform data keys (``data.name=``, ``data.options[.KEY]=``, ``data.subject=``)
    moved to where recipe ``name`` keeps them (its ``DATA_FIELDS``); a recipe that reads only its built-in data,
    or a key it does not have, is a :class:`ConfigError` saying which recipes read which designs."""
    fields = getattr(cls, "DATA_FIELDS", None)
    moved = []
    for text in overrides:
        key, sep, value = text.partition("=")
        parts = key.strip().split(".")
        if len(parts) < 2 or parts[0] != "data" or parts[1] not in DATA_KEYS or not sep:
            moved.append(text)
            continue
        if fields is None:
            raise ConfigError(
                f"Recipe {name!r} reads only its built-in data, so {key.strip()!r} cannot be set. Recipes and the "
                f"data designs they read: {_designs_table()}."
            )
        if parts[1] not in fields:
            raise ConfigError(
                f"Recipe {name!r} has no {'.'.join(parts[:2])!r} (it reads the dataset's "
                f"{', '.join('data.' + k for k in fields)})."
            )
        moved.append(".".join([fields[parts[1]], *parts[2:]]) + sep + value)
    return moved


def _check_design(name: str, cls: Any, config: Any) -> None:
    """A :class:`ConfigError` when the dataset ``config`` names is of a design recipe ``name`` does not read."""
    fields = getattr(cls, "DATA_FIELDS", None)
    if fields is None:
        return
    from brainkit.data.contract import returns_of
    from brainkit.registry import DATASETS

    node: Any = config
    for part in fields["name"].split("."):
        node = getattr(node, part)
    if node not in DATASETS:  # a recipe's own name for its built-in data (sim: a movie_surface_like preset)
        return
    design = getattr(returns_of(DATASETS.get(node)), "design", None)
    if design not in getattr(cls, "DESIGNS", ()):
        readers = [n for n in RECIPES if design in getattr(RECIPES.get(n), "DESIGNS", ())]
        raise ConfigError(
            f"Recipe {name!r} reads {', '.join(cls.DESIGNS)} datasets; {node!r} is a {design!r} dataset, which "
            f"{', '.join(readers) or 'no recipe'} read{'s' if len(readers) == 1 else ''}. Recipes and the data "
            f"designs they read: {_designs_table()}."
        )


def recipe_config(
    name: str,
    preset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
) -> Any:
    """The config of recipe ``name``: ``preset`` (default ``cpu_small``) or a YAML/JSON ``config_file`` (its
    keys over the config's defaults; a run's ``config.json`` works too), then ``key=value`` overrides (the
    uniform ``data.name`` / ``data.options`` / ``data.subject`` keys: :func:`data_overrides`)."""
    cls = RECIPES.get(name)
    overrides = data_overrides(name, cls, overrides or [])
    if config_file is not None and preset is not None:
        raise ConfigError("Give a preset or a config file, not both (put the preset's changes in the file).")
    if config_file is not None:
        data, where = _file_config(name, config_file), str(config_file)
    else:
        data, where = to_dict(_preset(name, cls, preset or DEFAULT_PRESET)), f"{name} config"
    config = from_dict(
        cls.Config, apply_overrides(_fresh_options(cls, data, overrides), overrides), where=where
    )
    _check_design(name, cls, config)
    return config


def _fresh_options(cls: Any, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` without the preset's dataset options when ``overrides`` name another dataset: the preset's
    options belong to its own dataset, so ``data.name=bids data.options.root=DIR`` means bids with root=DIR."""
    fields = getattr(cls, "DATA_FIELDS", None)
    if fields is None:
        return data
    names = [parse_override(text) for text in overrides if text.partition("=")[0].strip() == fields["name"]]
    path, options = fields["name"].split("."), fields["options"].split(".")
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if not names or names[-1][1] == node:
        return data
    data = json.loads(json.dumps(data))
    holder = data
    for part in options[:-1]:
        holder = holder.setdefault(part, {})
    holder[options[-1]] = {}
    if "subjects" in fields:  # the preset's subjects are its own dataset's: another one reads all of its own
        holder = data
        *parents, last = fields["subjects"].split(".")
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[last] = []
    return data


def saved_run(folder: str | Path) -> tuple[str, Any, Any]:
    """(recipe name, recipe class, config with ``${run}`` resolved) of the finished run folder ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        partial = folder.parent / f".{folder.name}.partial"
        hint = f" An unfinished run is at {partial}." if partial.is_dir() else ""
        raise CheckpointError(f"Run folder {folder} does not exist.{hint}")
    name, data = saved_config(folder)
    register_all()
    cls = RECIPES.get(name)
    config = from_dict(cls.Config, data, where=f"{folder}/config.json")
    return name, cls, in_folder(cls, config, folder)


def in_folder(cls: Any, config: Any, folder: Path) -> Any:
    """``config`` with every ``${run}`` in its strings replaced by ``folder`` (absolute)."""
    where = str(Path(folder).resolve())

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(RUN_FOLDER, where)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [swap(v) for v in value]
        return value

    return from_dict(cls.Config, swap(to_dict(config)), where="run config")


def _designs_table() -> str:
    return "; ".join(
        f"{n}: {', '.join(getattr(RECIPES.get(n), 'DESIGNS', ())) or 'its built-in data only'}"
        for n in RECIPES
    )


def _with_dataset(name: str, cls: Any, config: Any, dataset: Any) -> Any:
    """The config of a run on the user's ``dataset`` (saved into the run folder as ``${run}/data``)."""
    designs = getattr(cls, "DESIGNS", ())
    if not hasattr(cls, "with_dataset") or dataset.design not in designs:
        raise ConfigError(
            f"Recipe {name!r} cannot read a {dataset.design!r} dataset of your own. Recipes and the data designs "
            f"they read: {_designs_table()}."
        )
    if dataset.design != "trials":
        raise ConfigError(
            f"A {dataset.design!r} dataset cannot be passed in memory (the run saves what it reads, and the saved "
            "format holds trial datasets); name a registered dataset of that design instead "
            "(`--set data.name=NAME --set data.options.root=DIR`, `brainkit list` shows them)."
        )
    return cls.with_dataset(config, "folder", {"root": f"{RUN_FOLDER}/{DATA_FOLDER}"})


def run_recipe(
    name: str,
    config: Any = None,
    folder: str | Path | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
    resume: bool = False,
    dataset: Any = None,
    allow_changes: tuple[str, ...] | list[str] = (),
) -> RecipeResult:
    """Run recipe ``name`` into ``folder`` (default ``runs/NAME-<time>``); the folder appears only when done.

    ``dataset`` (yours, e.g. from :func:`brainkit.data.from_arrays`) is saved into the run folder
    (``data/``) and read from there, so ``brainkit eval`` and ``brainkit predict`` work on the run later.

    The work happens in ``.FOLDER.partial`` beside it, locked (``fcntl.flock``) so that a second run into the
    same folder refuses to start. On failure it is removed, unless the recipe can resume (``resumable``) and a
    trainer ``state/`` exists: then ``resume=True`` continues it with its saved ``config.json``. A resumed run
    refuses any setting that differs from that config (``overrides``, or a preset / file given again) unless
    ``allow_changes`` names it (a dotted path such as ``training.lr``, or a field name such as ``lr`` matching
    every path that ends in it); accepted changes are appended to ``config_changes.jsonl`` in the run folder and
    recorded in each resumed trainer phase's state.
    """
    if allow_changes and not resume:
        raise ConfigError("--allow-changes applies to --resume only: a new run takes its settings as given.")
    cls = RECIPES.get(name)
    if resume and not getattr(cls, "resumable", False):
        raise ConfigError(
            f"Recipe {name!r} cannot resume an interrupted run; start it again without --resume."
        )
    if resume and folder is None:
        raise ConfigError("--resume needs the run folder (--out DIR) of the interrupted run.")
    folder = Path(folder) if folder is not None else Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S")
    work = folder.parent / f".{folder.name}.partial"
    if config is not None and not isinstance(config, cls.Config):
        raise ConfigError(f"Recipe {name!r} takes a {cls.Config.__name__}, found {type(config).__name__}.")
    if config is None and not resume:
        config = recipe_config(name, preset, overrides, config_file)
    if dataset is not None:
        if resume:
            raise ConfigError("--resume reads the dataset saved in the run folder; do not pass one again.")
        config = _with_dataset(name, cls, config, dataset)
    if config is not None and hasattr(cls, "check"):
        cls.check(config)
    from brainkit.training.processes import is_primary_process

    if not is_primary_process():  # rank > 0 of a multi-process run: the same work, written nowhere it stays
        return _secondary_run(
            name, cls, work, config, preset, overrides, config_file, resume, dataset, allow_changes
        )
    lock = claim(name, cls, folder, work, resume)
    start = time.perf_counter()
    try:
        if resume:
            config = _resumed_config(name, cls, work, config, preset, overrides, config_file, allow_changes)
            if hasattr(cls, "check"):
                cls.check(config)
        if dataset is not None:
            from brainkit.data import save_dataset

            save_dataset(dataset, work / DATA_FOLDER)
        atomic_write_text(
            work / "config.json", json.dumps({"recipe": name, "config": to_dict(config)}, indent=2)
        )
        runnable = in_folder(cls, config, work)
        from brainkit.training import allowing_changes

        with allowing_changes(allow_changes):
            output = cls().run(runnable, work, resume=True) if resume else cls().run(runnable, work)
        seconds = time.perf_counter() - start
        summary = {"recipe": name, "seconds": seconds, "tables": output.tables, "notes": output.notes}
        atomic_write_text(work / "metrics.json", json.dumps({**summary, "metrics": output.metrics}, indent=2))
        (work / LOCK).unlink()
        os.replace(work, folder)
    except BaseException:
        if resume or (getattr(cls, "resumable", False) and has_state(work)):
            log.error(
                "Run interrupted; continue it with --resume --out %s (partial state kept in %s).",
                folder,
                work,
            )
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        lock.release()
    log.info("Recipe %s finished in %.0f s: %s", name, seconds, folder)
    return RecipeResult(output.tables, output.notes, output.metrics, folder=folder, seconds=seconds)


def _secondary_run(name: str, cls: Any, work: Path, config: Any, preset: str | None, overrides: list[str] | None,
                   config_file: str | Path | None, resume: bool, dataset: Any, allow_changes: Any) -> RecipeResult:  # fmt: skip
    """A secondary process (rank > 0) of a multi-process run (:mod:`brainkit.training.processes`): the recipe in
    a private scratch folder, removed at the end, so that only rank 0 writes the run folder; its trainer steps are
    collective with rank 0's. Resuming, the scratch folder starts as a copy of rank 0's ``work`` and the trainer
    reads its state from ``work`` itself. Returns the same tables and metrics as rank 0, with no folder."""
    from brainkit.training import allowing_changes
    from brainkit.training.processes import process_rank, reading_from

    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"brainkit-{name}-rank{process_rank()}-"))
    try:
        if resume:
            copy_tree(work, scratch)
            config = _resumed_config(name, cls, work, config, preset, overrides, config_file, allow_changes,
                                     record=False)  # fmt: skip
        if dataset is not None:
            from brainkit.data import save_dataset

            save_dataset(dataset, scratch / DATA_FOLDER)
        runnable = in_folder(cls, config, scratch)
        with reading_from(scratch, work), allowing_changes(allow_changes):
            output = cls().run(runnable, scratch, resume=True) if resume else cls().run(runnable, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return RecipeResult(
        output.tables, output.notes, output.metrics, folder=None, seconds=time.perf_counter() - start
    )


def _resumed_config(
    name: str,
    cls: Any,
    work: Path,
    config: Any,
    preset: str | None,
    overrides: list[str] | None,
    config_file: str | Path | None,
    allow_changes: tuple[str, ...] | list[str] = (),
    record: bool = True,
) -> Any:
    """The config to resume with: the saved config of the interrupted run in ``work``, with ``overrides`` (or
    the config given / built from ``preset`` / ``config_file``). A difference from the saved config is refused
    unless ``allow_changes`` names every changed key; allowed ones are appended to ``config_changes.jsonl``."""
    saved_name, saved = saved_config(work)
    if saved_name != name:
        raise ConfigError(f"{work} is a run of recipe {saved_name!r}, not {name!r}.")
    original = to_dict(from_dict(cls.Config, saved, where=f"{work}/config.json"))
    resumed = from_dict(
        cls.Config,
        apply_overrides(saved, data_overrides(name, cls, overrides or [])),
        where=f"{work}/config.json",
    )
    if config is None and (preset is not None or config_file is not None):
        config = recipe_config(name, preset, overrides, config_file)
    resumed = resumed if config is None else config
    changed = changed_keys(original, to_dict(resumed))
    free = (*RESUMABLE_CHANGES, "cache_dir")  # where and how it runs, not what it computes: never refused
    allowed = (*allow_changes, *free)
    refused = [k for k in changed if not any(k == a or k.startswith(f"{a}.") or k.endswith(f".{a}") for a in allowed)]  # fmt: skip
    if refused:
        raise ConfigError(
            f"Cannot resume {work}: the settings given differ from its saved config.json in {refused}. Resume "
            f"with --out and --resume alone, or continue with the new values on purpose: --allow-changes "
            f"{','.join(refused)} (recorded in config_changes.jsonl)."
        )
    if changed and record:
        new = to_dict(resumed)
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "changes": {k: [lookup_key(original, k), lookup_key(new, k)] for k in changed}}  # fmt: skip
        log.warning("Resuming %s with changed settings %s, as allowed.", work, record["changes"])
        path = work / CHANGES
        previous = path.read_text() if path.is_file() else ""
        atomic_write_text(path, previous + json.dumps(record) + "\n")
    return resumed


def evaluate_run(folder: str | Path) -> dict[str, Any]:
    """Re-evaluate a finished run folder: its ``config.json`` names the recipe, whose ``evaluate`` does it."""
    folder = Path(folder)
    name, cls, config = saved_run(folder)
    if not hasattr(cls, "evaluate"):
        able = [n for n in RECIPES if hasattr(RECIPES.get(n), "evaluate")]
        raise ConfigError(
            f"Recipe {name!r} cannot re-evaluate a run folder (it defines no evaluate()); its results are in "
            f"{folder / 'metrics.json'}. Recipes that can: {', '.join(able) or 'none'}."
        )
    return cls().evaluate(config, folder)


__all__ = ["RecipeOutput", "RecipeResult", "recipe_config", "run_recipe", "evaluate_run", "register_all",
           "in_folder", "saved_run", "DEFAULT_PRESET"]  # fmt: skip
