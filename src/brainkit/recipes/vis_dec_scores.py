"""Scoring and reporting for the ``vis_dec`` recipe: the metric suite on Vis-Dec and its baselines, the report.

Rows of the main table (every metric from :mod:`brainkit.evaluation.reconstruction`, mean +- sd over the
n_test x n_samples pairs or the identification trials, chance beside it where it exists):

- ``Vis-Dec``: the reconstructions of each test image from its fMRI;
- ``shuffled pairs``: the same reconstructions scored against the wrong real images (a seeded derangement);
- ``no fMRI``: the LDM before phase 3, sampled from a zero context with the same seeds;
- ``VAE ceiling``: the VAE's own reconstruction of the real image (what a perfect latent would give).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.recipes import RecipeOutput
from brainkit.recipes.vis_dec_steps import LatentDiffusion, VisDecArrays, reconstruct, resized
from brainkit.report.html import write_report
from brainkit.report.vis_dec_figures import phase_curves, reconstruction_grid

log = logging.getLogger(__name__)

LOWER_IS_BETTER = ("mse",)
_SKIP = ("n_images", "n_samples", "trials")


def metric_row(method: str, what: str, metrics: dict[str, float]) -> dict[str, Any]:
    """One table row: ``X_mean``, ``X_sd`` and ``X_chance`` per metric (the report folds sd and chance in)."""
    row: dict[str, Any] = {"method": method, "what": what}
    for key, value in metrics.items():
        if key.endswith(("_sd", "_chance", "_best_of_k")) or key in _SKIP:
            continue
        row[f"{key}_mean"] = float(value)
        if f"{key}_sd" in metrics:
            row[f"{key}_sd"] = float(metrics[f"{key}_sd"])
        if f"{key}_chance" in metrics:
            row[f"{key}_chance"] = float(metrics[f"{key}_chance"])
    return row


def compare_notes(rows: dict[str, dict[str, float]]) -> list[str]:
    """Plain sentences: on how many metrics Vis-Dec beats each baseline, and the 50-way numbers."""
    ours = rows["Vis-Dec"]
    keys = [k for k in ours if not k.endswith(("_sd", "_chance", "_best_of_k")) and k not in _SKIP]
    notes = []
    for name in ("shuffled pairs", "no fMRI"):
        other = rows[name]
        better = [
            k for k in keys if (ours[k] < other[k] if k.startswith(LOWER_IS_BETTER) else ours[k] > other[k])
        ]
        notes.append(
            f"Vis-Dec beats the {name} baseline on {len(better)} of {len(keys)} metrics"
            + (f"; not on {', '.join(sorted(set(keys) - set(better)))}." if len(better) < len(keys) else ".")
        )
    for key in keys:
        if key.endswith("way") or key.endswith("top1"):
            chance = ours.get(f"{key}_chance")
            notes.append(
                f"{key}: Vis-Dec {100 * ours[key]:.1f}%, shuffled {100 * rows['shuffled pairs'][key]:.1f}%, "
                f"no fMRI {100 * rows['no fMRI'][key]:.1f}%, VAE ceiling {100 * rows['VAE ceiling'][key]:.1f}%"
                + (f" (chance {100 * chance:.1f}%)." if chance is not None else ".")
            )
    return notes


def select_guidance(
    config: Any, ldm: LatentDiffusion, conditioner: Any, arrays: VisDecArrays
) -> tuple[float, dict[str, float]]:
    """Choose the classifier-free guidance scale on the validation split (training images held out of every
    phase), never on the test images: one sample per validation fMRI at each of ``config.guidance_candidates``
    (same seeds), scored by ``config.guidance_layer`` 2-way identification; the best scale wins, ties go to the
    smaller. Returns (scale, {"<scale>": score}); ``config.guidance_scale`` set skips the search."""
    from brainkit.evaluation.reconstruction import reconstruction_metrics

    if config.guidance_scale is not None:
        return float(config.guidance_scale), {}
    real = resized(arrays.val_images, ldm.image_size)
    key = f"{config.guidance_layer}_2way"
    scores: dict[str, float] = {}
    for scale in sorted(config.guidance_candidates):
        recon = reconstruct(
            ldm, conditioner, arrays.val_voxels, 1, config.n_steps, config.sample_seed, guidance_scale=scale
        )
        metrics = reconstruction_metrics(
            real,
            recon,
            seed=config.seed,
            n_way=(2,),
            trials=config.metric_trials,
            feature_layers=(config.guidance_layer,),
            semantic=False,
        )
        scores[f"{scale:g}"] = metrics[key]
        log.info("vis_dec: guidance %g: validation %s %.3f", scale, key, metrics[key])
    best = max(scores.values())
    return next(float(s) for s in sorted(config.guidance_candidates) if scores[f"{s:g}"] == best), scores


def score_all(
    config: Any,
    arrays: VisDecArrays,
    ldm: LatentDiffusion,
    recon: np.ndarray,
    no_fmri: np.ndarray,
    ceiling: np.ndarray,
    histories: dict[str, list[dict]],
    seconds: dict[str, float],
    counts: dict[str, int],
    folder: Path,
    dataset_name: str,
    guidance: tuple[float, dict[str, float]],
) -> RecipeOutput:
    """Score, write ``folder/report.html`` and return the recipe's tables, notes and metrics. ``guidance`` is
    :func:`select_guidance`'s (scale used, validation scores)."""
    from brainkit.evaluation.reconstruction import (
        evaluate_reconstructions,
        metrics_table,
        reconstruction_metrics,
    )

    real = resized(arrays.test_images, ldm.image_size)
    options = {
        "seed": config.seed,
        "n_way": tuple(config.n_way),
        "trials": config.metric_trials,
        "feature_layers": tuple(config.feature_layers),
        "clip_model_dir": config.clip_model_dir,
    }
    ours, shuffled = evaluate_reconstructions(real, recon, **options)
    raw = {
        "Vis-Dec": ours,
        "shuffled pairs": shuffled,
        "no fMRI": reconstruction_metrics(real, no_fmri, **options),
        "VAE ceiling": reconstruction_metrics(real, ceiling, **options),
    }
    what = {
        "Vis-Dec": f"{config.n_samples} samples per test fMRI, {config.n_steps} {ldm.scheduler.__class__.__name__} "
        f"steps, guidance {guidance[0]:g}",
        "shuffled pairs": "the same reconstructions scored against the wrong real images",
        "no fMRI": "the LDM before phase 3, zero context, same seeds",
        "VAE ceiling": "VAE encode + decode of the real image (no diffusion)",
    }
    table = [metric_row(name, what[name], metrics) for name, metrics in raw.items()]
    notes = compare_notes(raw)
    n_train = len(arrays.train_voxels)
    notes.append(
        f"Data: {dataset_name} {config.subject}, {n_train} training trials of {len(arrays.train_images)} images, "
        f"{arrays.n_raw_voxels} voxels (padded to {arrays.train_voxels.shape[1]}); {len(real)} test images "
        f"(fMRI averaged over repeats) at {ldm.image_size} x {ldm.image_size} px. The voxels are simulated from "
        "image features (docs/datasets.md), so the numbers test the pipeline, not the paper's claims on real fMRI."
    )
    notes.append(
        f"LDM: {ldm.source}; fMRI encoder {'trained' if config.train_encoder else 'frozen'} in phase 3. Semantic "
        "and identification numbers use EfficientNet-Lite0 (offline), not the paper's ViT-H/14."
    )
    scale, val_scores = guidance
    guidance_rows = [
        {
            "guidance scale": name,
            f"validation {config.guidance_layer} 2-way": value,
            "chosen": float(name) == scale,
        }
        for name, value in val_scores.items()
    ]
    if val_scores:
        notes.append(
            f"Guidance scale {scale:g} chosen on {len(arrays.val_images)} training images held out of every phase "
            f"(1 sample each, {config.guidance_layer} 2-way identification: "
            + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in val_scores.items())
            + "); the test images played no part in it."
        )
    else:
        notes.append(f"Guidance scale {scale:g}, fixed by the configuration (no search).")
    timing = [{"stage": stage, "seconds": round(value, 1)} for stage, value in seconds.items()]
    params = [{"network": name, "parameters": value} for name, value in counts.items()]
    k = recon.shape[1]
    grid = reconstruction_grid(
        real,
        {"VAE ceiling": ceiling, "Vis-Dec": recon[:, : min(k, 3)], "no fMRI": no_fmri[:, 0]},
        n_shown=config.n_shown,
    )
    figures = {"Real test images and their reconstructions": grid}
    curves = phase_curves(histories)
    if curves is not None:
        figures["Training curves, per phase"] = curves
    suite = metrics_table(ours, shuffled)
    write_report(
        folder / "report.html",
        f"Vis-Dec image reconstruction on {dataset_name} ({config.subject})",
        table,
        {},
        {},
        notes,
        figures=figures,
        tables={
            "Metric suite: Vis-Dec vs shuffled": suite,
            "Guidance scale on the validation split": guidance_rows,
            "Time per stage": timing,
            "Parameters": params,
        },
    )
    tables = {"Vis-Dec vs baselines": table, "Time per stage (s)": timing, "Parameters": params}
    if guidance_rows:
        tables["Guidance scale on the validation split"] = guidance_rows
    chosen = {
        "scale": scale,
        "validation": val_scores,
        "metric": f"{config.guidance_layer}_2way",
        "n_val_images": len(arrays.val_images),
    }
    metrics = {"metrics": raw, "histories": histories, "seconds": seconds, "guidance": chosen}
    return RecipeOutput(tables, notes, metrics)
