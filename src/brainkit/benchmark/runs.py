"""The benchmark's runs: one ``brainkit run`` process per (entry, seed), ``jobs`` at a time, each a run folder.

A run folder is whole or absent (:func:`brainkit.recipes.run_recipe`), so an interrupted benchmark run again
with the same command and ``--out`` reuses every finished run (after checking that its ``config.json`` is the
config this command asks for) and runs the rest. Each run's output goes to ``OUT/logs/SLUG-seedS.log``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainkit.benchmark.presets import BenchEntry
from brainkit.config import from_dict, to_dict
from brainkit.errors import ConfigError
from brainkit.recipes import recipe_config, register_all
from brainkit.registry import RECIPES


@dataclass(frozen=True)
class Job:
    """One run of the benchmark: ``entry`` at ``seed``, into ``folder``."""

    entry: BenchEntry
    seed: int
    folder: Path
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.entry.slug}-seed{self.seed}"


@dataclass
class Outcome:
    """What one job gave: its tables (empty when it failed), seconds, and why it failed."""

    job: Job
    tables: dict[str, list[dict[str, Any]]]
    seconds: float
    reused: bool = False
    error: str = ""


def seed_overrides(recipe: str, seed: int) -> tuple[str, ...]:
    """``KEY=seed`` for every key of the recipe's ``BENCH_SEEDS``."""
    keys = getattr(RECIPES.get(recipe), "BENCH_SEEDS", None)
    if not keys:
        raise ConfigError(f"Recipe {recipe!r} declares no BENCH_SEEDS, so brainkit bench cannot seed it.")
    return tuple(f"{key}={seed}" for key in keys)


def plan(
    entries: list[BenchEntry], seeds: tuple[int, ...], out: Path, extra: tuple[str, ...] = ()
) -> list[Job]:
    """Every (entry, seed) as a job, its config built and checked now (a wrong key fails before any run)."""
    register_all()
    jobs = []
    for entry in entries:
        if not hasattr(RECIPES.get(entry.recipe), "scores"):
            raise ConfigError(
                f"Recipe {entry.recipe!r} has no scores(), so brainkit bench cannot tabulate it."
            )
        for seed in seeds:
            overrides = (*entry.data, *entry.overrides, *extra, *seed_overrides(entry.recipe, seed))
            config = recipe_config(
                entry.recipe, entry.preset, list(overrides)
            )  # raises on a bad key or value
            _check_dataset(entry, config)
            jobs.append(Job(entry, seed, out / "runs" / entry.slug / f"seed{seed}", overrides))
    return jobs


def _check_dataset(entry: BenchEntry, config: Any) -> None:
    """The entry's config reads the dataset the entry names (a registered name; a recipe's own name for its
    built-in data, such as SIM's movie_surface_like preset, is taken as it is)."""
    from brainkit.registry import DATASETS

    node: Any = config
    for part in getattr(RECIPES.get(entry.recipe), "DATA_FIELDS", {"name": ""})["name"].split("."):
        node = getattr(node, part, None)
    if isinstance(node, str) and node in DATASETS and node != entry.dataset:
        raise ConfigError(
            f"Bench entry {entry.slug}: its config reads {node!r}, not {entry.dataset!r}; give data.name="
            f"{entry.dataset} in the entry's data."
        )


def _command(job: Job) -> list[str]:
    command = [sys.executable, "-m", "brainkit.cli", "run", job.entry.recipe, "--preset", job.entry.preset,
               "--out", str(job.folder)]  # fmt: skip
    for text in job.overrides:
        command += ["--set", text]
    return command


def _reused(job: Job) -> Outcome | None:
    """The finished run of ``job`` when its folder holds one, made with exactly this job's config."""
    if not job.folder.is_dir():
        return None
    saved = json.loads((job.folder / "config.json").read_text())
    wanted = to_dict(recipe_config(job.entry.recipe, job.entry.preset, list(job.overrides)))
    cls = RECIPES.get(job.entry.recipe)
    # through the config class, so that a field added since (at its default) is not a difference
    same = saved.get("recipe") == job.entry.recipe and json.loads(json.dumps(wanted)) == json.loads(
        json.dumps(
            to_dict(from_dict(cls.Config, saved.get("config", {}), where=str(job.folder / "config.json")))
        )
    )
    if not same:
        raise ConfigError(
            f"{job.folder} holds a run made with other settings than this benchmark's {job.name}; delete it, or "
            "give another --out."
        )
    metrics = json.loads((job.folder / "metrics.json").read_text())
    return Outcome(job, metrics["tables"], float(metrics["seconds"]), reused=True)


def run_jobs(jobs: list[Job], out: Path, n_jobs: int = 1, threads: int | None = None,
             progress: Any = print) -> list[Outcome]:  # fmt: skip
    """Run every job not finished yet, ``n_jobs`` processes at a time with ``threads`` torch threads each
    (default: the CPUs shared out); the outcomes in ``jobs``' order. A failed run is an outcome with its error
    (the log's last lines), not an exception: the other runs go on."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    threads = threads or max(1, (os.cpu_count() or 1) // n_jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    outcomes: dict[int, Outcome] = {}
    waiting = []
    for number, job in enumerate(jobs):
        reused = _reused(job)
        if reused is None:
            waiting.append(number)
        else:
            outcomes[number] = reused
            progress(f"[bench] {job.name}: finished before, reused ({reused.seconds:.0f} s)")
    running: dict[int, tuple[subprocess.Popen, float, Any]] = {}
    while waiting or running:
        while waiting and len(running) < n_jobs:
            number = waiting.pop(0)
            job = jobs[number]
            log = open(logs / f"{job.name}.log", "w")  # noqa: SIM115 (closed when the process ends)
            log.write(" ".join(_command(job)) + "\n")
            log.flush()
            process = subprocess.Popen(_command(job), stdout=log, stderr=subprocess.STDOUT, env=env)
            running[number] = (process, time.perf_counter(), log)
            progress(f"[bench] {job.name}: started")
        time.sleep(0.2)
        for number, (process, start, log) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[number]
            outcomes[number] = _finished(jobs[number], process.returncode, time.perf_counter() - start, logs)
            state = outcomes[number].error or "done"
            progress(
                f"[bench] {jobs[number].name}: {state.splitlines()[0]} ({outcomes[number].seconds:.0f} s)"
            )
    return [outcomes[number] for number in range(len(jobs))]


def _finished(job: Job, code: int, seconds: float, logs: Path) -> Outcome:
    log = logs / f"{job.name}.log"
    if code == 0 and (job.folder / "metrics.json").is_file():
        metrics = json.loads((job.folder / "metrics.json").read_text())
        return Outcome(job, metrics["tables"], float(metrics["seconds"]))
    tail = " | ".join(line for line in log.read_text().splitlines()[-3:] if line.strip())
    return Outcome(job, {}, seconds, error=f"failed (exit {code}): {tail} (log: {log})")


__all__ = ["Job", "Outcome", "plan", "run_jobs", "seed_overrides"]
