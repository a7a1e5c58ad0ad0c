"""``brainkit bench``: every method and baseline on every dataset it reads, the same splits, seeds, one table.

:func:`run_bench` runs a preset's entries (:mod:`brainkit.benchmark.presets`) once per seed through the one run
system (:mod:`brainkit.benchmark.runs`: a ``brainkit run`` process per run, each a run folder under
``OUT/runs/``), turns each run's tables into score rows with its recipe's ``scores()``
(:mod:`brainkit.evaluation.scores`), and writes (:mod:`brainkit.benchmark.table`):

- ``OUT/bench.csv``: mean and 95 % t-interval over seeds with chance, one row per dataset, task, split, metric
  and method; ``OUT/scores.csv``: every seed's number;
- ``OUT/bench.html``: the headline table and figure, one table per dataset and task, the runs and their times,
  and every (recipe, dataset) pair that was not run with the reason;
- ``OUT/bench.json``: the command's settings, the runs, failures and seconds.

``dataset=NAME`` (``brainkit bench --dataset nsd --set data.options.root=DIR``) runs every recipe of the preset
that reads NAME's design on NAME instead of the built-in data, with the same sizes and seeds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainkit.benchmark import table as tables
from brainkit.benchmark.presets import FULL, NOT_RUN, PRESETS, BenchEntry, BenchPreset, bench_preset
from brainkit.benchmark.runs import Outcome, plan, run_jobs
from brainkit.checkpoint import atomic_write_text
from brainkit.errors import BrainkitError, ConfigError
from brainkit.recipes import DATA_KEYS, register_all
from brainkit.registry import DATASETS, RECIPES

log = logging.getLogger(__name__)
TITLE = "brainkit bench: every method and baseline, the same splits, seeds and chance"


@dataclass
class BenchResult:
    """The table's rows (:func:`brainkit.benchmark.table.aggregate`), the failed runs, where it all is."""

    rows: list[dict[str, Any]]
    failures: list[str]
    out: Path
    seconds: float
    runs: list[dict[str, Any]] = field(default_factory=list)


def builtin_datasets() -> dict[str, str]:
    """Built-in dataset name -> design: the registered datasets that need nothing on disk."""
    from brainkit.data.contract import returns_of

    return {name: returns_of(DATASETS.get(name)).design for name in DATASETS
            if DATASETS.details(name).get("needs", "").startswith("nothing")}  # fmt: skip


def not_run(entries: list[BenchEntry], dataset: str | None) -> list[dict[str, str]]:
    """Every (recipe, dataset) pair a benchmark could hold and this one does not, with the reason."""
    ran = {(e.recipe, e.dataset) for e in entries}
    rows = []
    for recipe in RECIPES:
        cls = RECIPES.get(recipe)
        if not hasattr(cls, "scores"):
            why = getattr(cls, "BENCH_SKIP", "the recipe defines no scores()")
            rows.append({"recipe": recipe, "dataset": "any", "why": why})
            continue
        designs = getattr(cls, "DESIGNS", ())
        candidates = {dataset: _design(dataset)} if dataset is not None else builtin_datasets()
        for name, design in candidates.items():
            if (recipe, name) in ran:
                continue
            if design not in designs:
                if dataset is not None:
                    rows.append({"recipe": recipe, "dataset": name,
                                 "why": f"reads {', '.join(designs)} datasets; {name} is {design}"})  # fmt: skip
                continue
            if recipe not in {e.recipe for e in entries}:
                rows.append({"recipe": recipe, "dataset": name, "why": "left out with --only"})
                continue
            full = any((e.recipe, e.dataset) == (recipe, name) for e in FULL.entries)
            why = NOT_RUN.get((recipe, name), "not in this preset (the full preset runs it)" if full else "")
            rows.append({"recipe": recipe, "dataset": name, "why": why or "not in any preset"})
    return rows


def _design(name: str) -> str:
    from brainkit.data.contract import returns_of

    return returns_of(DATASETS.get(name)).design


def entries_for(preset: BenchPreset, only: tuple[str, ...], dataset: str | None,
                data: tuple[str, ...]) -> list[BenchEntry]:  # fmt: skip
    """The preset's entries (``only``: these recipes), or with ``dataset``: each recipe's first entry that reads
    its design, on ``dataset`` with the user's ``data`` overrides (``data.options.root=DIR``, ``data.subject=``:
    given to the recipes that have that key)."""
    register_all()
    unknown = sorted(set(only) - {e.recipe for e in preset.entries})
    if unknown:
        raise ConfigError(
            f"--only names {unknown}, which this preset does not run; it runs "
            f"{', '.join(dict.fromkeys(e.recipe for e in preset.entries))}."
        )
    entries = [e for e in preset.entries if not only or e.recipe in only]
    if dataset is None:
        if data:
            raise ConfigError(
                "data.* settings need --dataset NAME: the built-in entries keep their own data."
            )
        return entries
    if dataset not in DATASETS:
        DATASETS.get(dataset)  # the registry's "did you mean" error
    design = _design(dataset)
    chosen: dict[str, BenchEntry] = {}
    for entry in entries:
        cls = RECIPES.get(entry.recipe)
        if entry.recipe in chosen or design not in getattr(cls, "DESIGNS", ()):
            continue
        fields = getattr(cls, "DATA_FIELDS", {})
        mine = tuple(t for t in data if t.split("=", 1)[0].split(".")[1] in fields)
        chosen[entry.recipe] = BenchEntry(entry.recipe, entry.preset, dataset, "", (f"data.name={dataset}", *mine),
                                          entry.overrides)  # fmt: skip
    if not chosen:
        readers = sorted({e.recipe for e in entries})
        raise ConfigError(f"{dataset!r} is a {design!r} dataset, which none of {readers} reads.")
    return list(chosen.values())


def split_settings(settings: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--set`` values -> (the uniform ``data.*`` keys, every other override)."""
    data, other = [], []
    for text in settings:
        key = text.split("=", 1)[0].strip().split(".")
        (data if len(key) >= 2 and key[0] == "data" and key[1] in DATA_KEYS else other).append(text)
    return tuple(data), tuple(other)


def run_bench(preset: str = "cpu_small", out: str | Path | None = None, seeds: tuple[int, ...] | None = None,
              only: tuple[str, ...] = (), dataset: str | None = None, settings: tuple[str, ...] = (),
              jobs: int = 1, threads: int | None = None, progress: Any = print) -> BenchResult:  # fmt: skip
    """Run benchmark ``preset`` into ``out`` (default ``runs/bench-<time>``); see the module docstring."""
    start = time.perf_counter()
    chosen = bench_preset(preset)
    seeds = tuple(chosen.seeds if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"seeds={list(seeds)}: give one or more distinct seeds >= 0.")
    if jobs < 1:
        raise ConfigError(f"jobs={jobs}: give 1 or more processes.")
    out = Path(out) if out is not None else Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S")
    data, other = split_settings(settings)
    entries = entries_for(chosen, only, dataset, data)
    job_list = plan(entries, seeds, out, other)
    progress(f"[bench] {len(job_list)} runs ({len(entries)} entries x {len(seeds)} seeds) into {out}")
    outcomes = run_jobs(job_list, out, jobs, threads, progress)
    scores, failures = collect(outcomes)
    rows = tables.aggregate(scores)
    runs = [{"run": o.job.name, "recipe": o.job.entry.recipe, "preset": o.job.entry.preset,
             "dataset": o.job.entry.label, "seed": o.job.seed, "seconds": round(o.seconds, 1),
             "status": o.error or ("reused" if o.reused else "done"), "folder": str(o.job.folder)}
            for o in outcomes]  # fmt: skip
    seconds = time.perf_counter() - start
    skipped = not_run(entries, dataset)
    tables.write_tables(out, scores, rows)
    write_page(out, chosen, preset, seeds, rows, runs, skipped, failures, seconds, dataset)
    summary = {"preset": preset, "seeds": list(seeds), "dataset": dataset, "settings": list(settings),
               "jobs": jobs, "seconds": seconds, "runs": runs, "failures": failures, "not_run": skipped}  # fmt: skip
    atomic_write_text(out / "bench.json", json.dumps(summary, indent=2))
    return BenchResult(rows, failures, out, seconds, runs)


def collect(outcomes: list[Outcome]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every finished run's score rows (with dataset, recipe, seed and run folder), and what failed."""
    scores, failures = [], []
    for outcome in outcomes:
        job = outcome.job
        if outcome.error:
            failures.append(f"{job.name}: {outcome.error}")
            continue
        try:
            rows = RECIPES.get(job.entry.recipe).scores(outcome.tables)
        except BrainkitError as err:
            failures.append(f"{job.name}: its tables could not be read as scores: {err}")
            continue
        place = {
            "dataset": job.entry.label,
            "recipe": job.entry.recipe,
            "seed": job.seed,
            "run": str(job.folder),
        }
        scores += [{**place, **row} for row in rows]
    return scores, failures


def write_page(out: Path, chosen: BenchPreset, preset: str, seeds: tuple[int, ...], rows: list[dict[str, Any]],
               runs: list[dict[str, Any]], skipped: list[dict[str, str]], failures: list[str], seconds: float,
               dataset: str | None) -> Path:  # fmt: skip
    from brainkit.report.html import write_report

    where = f"on {dataset}" if dataset else "on the built-in data"
    notes = [
        f"Preset {preset} ({chosen.about}), {where}; seeds {', '.join(map(str, seeds))}; {len(runs)} runs in "
        f"{seconds / 60:.1f} min. Each cell: the mean over seeds and its 95 % t-interval (t with n-1 degrees of "
        "freedom); chance is the metric's guessing level (1/N for N-way, 0.5 for AUC and 2-way, label frequency "
        "for mAP, shuffled pairs for PixCorr / SSIM / MSE, the training mean / majority for phenotypes, 0 for r); "
        "'-' where guessing defines none (MSE: the recipe's simple fills are its baselines).",
        "Splits: each recipe's methods share one run, so its baselines and ablations meet the same test data; "
        "a dataset's test split is the dataset's own, the same for every recipe that reads it. What a seed "
        "redraws is each recipe's BENCH_SEEDS (docs/benchmark.md).",
    ]
    if failures:
        notes.append(f"{len(failures)} run(s) failed and are not in the means: " + "; ".join(failures))
    detail: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        detail.setdefault(f"{row['dataset']}: {row['task']} ({row['recipe']})", []).append(row)
    extra = {title: tables.page_rows(mine, with_place=False) for title, mine in detail.items()}
    extra["Runs"] = [{k: str(v) for k, v in run.items()} for run in runs]
    extra["Not run, and why"] = skipped
    figure = tables.headline_figure(rows)
    figures = (
        {"Headline metric per dataset and task: mean and 95 % interval over seeds": figure} if figure else {}
    )
    return write_report(out / "bench.html", TITLE, tables.page_rows(tables.headline(rows), with_place=True), {}, {},
                        notes, figures=figures, tables=extra)  # fmt: skip


__all__ = ["BenchResult", "PRESETS", "builtin_datasets", "not_run", "run_bench"]
