"""The main job: Lite-Mind, ridge and a MindEye-style MLP on the built-in NSD-like data, one table, one report."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import atomic_write_text
from brainkit.config import apply_overrides, from_dict, to_dict
from brainkit.errors import ConfigError
from brainkit.pipeline import RunConfig, RunResult, load_run_config, prepare_data, train_run

log = logging.getLogger(__name__)

DEMO_PRESETS = {"Lite-Mind": "lite_mind_demo", "Ridge": "ridge_demo", "MindEye MLP": "mindeye_mlp_demo"}


@dataclass
class DemoResult:
    folder: Path
    rows: list[dict[str, Any]]
    notes: list[str]
    results: dict[str, RunResult] = field(default_factory=dict)


def _row(method: str, result: RunResult, n_way: int) -> dict[str, Any]:
    m = result.metrics
    way = f"fmri_to_image/{n_way}way_top1"
    back = f"image_to_fmri/{n_way}way_top1"
    row = {
        "method": method,
        "params": result.n_parameters,
        "train_s": round(result.train_seconds, 1),
        "fmri->image top1": m["fmri_to_image/top1"],
        "top1 chance": m["fmri_to_image/top1_chance"],
        "fmri->image top5": m["fmri_to_image/top5"],
        "top5 chance": m["fmri_to_image/top5_chance"],
    }
    if f"{way}_mean" in m:
        row[f"fmri->image {n_way}-way"] = m[f"{way}_mean"]
        row[f"{n_way}-way sd"] = m[f"{way}_sd"]
        row[f"image->fmri {n_way}-way"] = m[f"{back}_mean"]
        row[f"{n_way}-way chance"] = m[f"{way}_chance"]
    return row


def comparison_notes(rows: list[dict[str, Any]], n_way: int) -> list[str]:
    """Plain sentences on how Lite-Mind compares with the baselines (numbers from this run)."""
    key = f"fmri->image {n_way}-way"
    if not rows or key not in rows[0]:
        return []
    chance = rows[0][f"{n_way}-way chance"]
    by_name = {r["method"]: r for r in rows}
    lite = by_name.get("Lite-Mind")
    notes = []
    for r in rows:
        notes.append(
            f"{r['method']}: {n_way}-way fMRI->image top-1 {100 * r[key]:.1f}% +/- {100 * r[f'{n_way}-way sd']:.1f} "
            f"(chance {100 * chance:.2f}%, {r[key] / chance:.0f}x chance), {r['params']:,} parameters, "
            f"trained in {r['train_s']:.0f} s."
        )
    if lite:
        text = f"Lite-Mind reaches {lite[key] / chance:.0f}x chance with {lite['params']:,} parameters."
        for r in rows:
            if r is lite:
                continue
            diff = 100 * (lite[key] - r[key])
            relation = "above" if diff > 0 else "below"
            text += f" It is {abs(diff):.1f} points {relation} {r['method']} ({r['params']:,} parameters)."
        text += (
            " The simulated responses are a linear function of PCA-reduced image features plus noise, which suits"
            " linear and MLP decoders; the paper's claim for Lite-Mind is parameter efficiency on real NSD with"
            " 257x768 CLIP targets and ~25,000 trials, which this small demo does not test."
        )
        notes.append(text)
    return notes


def _retrieval_grids(results: dict[str, RunResult], data, n_queries: int = 8, k: int = 5) -> dict[str, Any]:
    from brainkit.evaluation.retrieval import cosine_similarity, top_k_indices
    from brainkit.report.html import RetrievalGrid

    images = data.dataset.stimuli.images
    if images is None:
        return {}
    positions = data.dataset.stimuli.positions(data.test_ids)
    queries = np.random.default_rng(0).choice(
        len(positions), size=min(n_queries, len(positions)), replace=False
    )
    grids = {}
    for method, result in results.items():
        top = top_k_indices(cosine_similarity(result.test_predictions, data.test.y), queries, k=k)
        grids[method] = RetrievalGrid(
            query_images=images[positions[queries]],
            retrieved_images=images[positions[top]],
            correct=top == queries[:, None],
        )
    return grids


def run_demo(
    out_root: str | Path = "runs",
    overrides: list[str] | None = None,
    methods: list[str] | None = None,
    cache_dir: str | None = None,
) -> DemoResult:
    """Train the demo methods on nsd_like subj01 and write ``out_root/demo-<time>/`` (whole or absent).

    ``overrides`` (``key=value``) apply to every method's config, e.g. ``training.epochs=5``.
    """
    from brainkit.report.html import write_report

    methods = methods or list(DEMO_PRESETS)
    unknown = sorted(set(methods) - set(DEMO_PRESETS))
    if unknown:
        raise ConfigError(f"Unknown demo method(s) {unknown}; choose from {list(DEMO_PRESETS)}.")
    configs = {}
    for method in methods:
        config = load_run_config(DEMO_PRESETS[method], overrides or [])
        if cache_dir:
            config = from_dict(RunConfig, apply_overrides(to_dict(config), [f"data.cache_dir={cache_dir}"]))
        configs[method] = config
    first = configs[methods[0]]
    out_root = Path(out_root)
    folder = out_root / time.strftime("demo-%Y%m%d-%H%M%S")
    work = out_root / f".{folder.name}.partial"
    work.mkdir(parents=True, exist_ok=False)
    try:
        start = time.perf_counter()
        data = prepare_data(first.data, seed=first.training.seed)
        log.info("Data ready in %.1f s", time.perf_counter() - start)
        results: dict[str, RunResult] = {}
        for method, config in configs.items():
            if to_dict(config.data) != to_dict(first.data):
                raise ConfigError(
                    f"Demo method {method} uses other data than {methods[0]}; keep data.* identical."
                )
            log.info("Training %s", method)
            results[method] = train_run(config, work / config.model.name, data=data)
        n_way = first.evaluation.n_way
        rows = [_row(method, result, n_way) for method, result in results.items()]
        notes = comparison_notes(rows, n_way)
        curves = {method: result.history for method, result in results.items()}
        atomic_write_text(work / "metrics.json", json.dumps({"rows": rows, "notes": notes}, indent=2))
        info = data.dataset.info
        notes = notes + [
            f"Data: {data.dataset.name}, subject {first.data.subject}: {len(data.train.x)} training trials, "
            f"{0 if data.val is None else len(data.val.x)} validation stimuli, {len(data.test.x)} test stimuli "
            f"(averaged over their repeats), {data.train.x.shape[1]} voxels; target {first.data.target} "
            f"{tuple(data.train.y.shape[1:])}. {info.get('summary', '')}"
        ]
        write_report(
            work / "report.html",
            title="brainkit demo: fMRI-to-image retrieval on the built-in NSD-like data",
            table=rows,
            curves=curves,
            retrieval=_retrieval_grids(results, data),
            notes=notes,
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    os.replace(work, folder)
    return DemoResult(folder=folder, rows=rows, notes=notes, results=results)
