"""A reconstruction method scored beside its baselines: one metric suite per row, rows for a table, comparisons.

:func:`score_with_baselines` gives the :mod:`~brainkit.evaluation.reconstruction` metrics of a method's
reconstructions, of the same reconstructions paired with the wrong real images (``shuffled pairs``, a seeded
derangement; the network features computed once for both) and of each baseline's images (e.g. Vis-Dec's "no
fMRI" and "VAE ceiling"). :func:`metric_row` turns one suite into a table row (mean, sd, chance per metric);
:func:`compare_notes` says on how many metrics the method beats each baseline, and gives the identification and
classification numbers (n-way, top-1) of every row beside chance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from brainkit.evaluation.reconstruction import evaluate_reconstructions, reconstruction_metrics

LOWER_IS_BETTER = ("mse",)
SHUFFLED = "shuffled pairs"
_SKIP = ("n_images", "n_samples", "trials")


def _metric_keys(metrics: dict[str, float]) -> list[str]:
    return [k for k in metrics if not k.endswith(("_sd", "_chance", "_best_of_k")) and k not in _SKIP]


def score_with_baselines(
    real: np.ndarray,
    recon: np.ndarray,
    baselines: dict[str, np.ndarray],
    name: str = "method",
    **options: Any,
) -> dict[str, dict[str, float]]:
    """``{name: metrics, "shuffled pairs": metrics, **{baseline: metrics}}``; ``options`` are
    :func:`~brainkit.evaluation.reconstruction.reconstruction_metrics`' keywords (seed, n_way, trials, ...)."""
    ours, shuffled = evaluate_reconstructions(real, recon, **options)
    scored = {name: ours, SHUFFLED: shuffled}
    scored.update({key: reconstruction_metrics(real, images, **options) for key, images in baselines.items()})
    return scored


def metric_row(method: str, what: str, metrics: dict[str, float]) -> dict[str, Any]:
    """One table row: ``X_mean``, ``X_sd`` and ``X_chance`` per metric (the report folds sd and chance in)."""
    row: dict[str, Any] = {"method": method, "what": what}
    for key in _metric_keys(metrics):
        row[f"{key}_mean"] = float(metrics[key])
        if f"{key}_sd" in metrics:
            row[f"{key}_sd"] = float(metrics[f"{key}_sd"])
        if f"{key}_chance" in metrics:
            row[f"{key}_chance"] = float(metrics[f"{key}_chance"])
    return row


def compare_notes(
    rows: dict[str, dict[str, float]],
    name: str,
    baselines: tuple[str, ...],
    label: Callable[[str], str] = str,
) -> list[str]:
    """Plain sentences: on how many metrics ``rows[name]`` beats each of ``baselines``, and every row's n-way and
    top-1 numbers beside chance, each metric named by ``label(key)`` (the reports pass their human labels). Lower
    is better for ``mse``; higher for the others."""
    ours = rows[name]
    keys = _metric_keys(ours)
    notes = []
    for other_name in baselines:
        other = rows[other_name]
        better = [
            k for k in keys if (ours[k] < other[k] if k.startswith(LOWER_IS_BETTER) else ours[k] > other[k])
        ]
        notes.append(
            f"{name} beats the {other_name} baseline on {len(better)} of {len(keys)} metrics"
            + (
                f"; not on {', '.join(label(k) for k in sorted(set(keys) - set(better)))}."
                if len(better) < len(keys)
                else "."
            )
        )
    others = [key for key in rows if key != name]
    for key in keys:
        if key.endswith("way") or key.endswith("top1"):
            chance = ours.get(f"{key}_chance")
            notes.append(
                f"{label(key)}: {name} {100 * ours[key]:.1f}%, "
                + ", ".join(f"{other} {100 * rows[other][key]:.1f}%" for other in others)
                + (f" (chance {100 * chance:.1f}%)." if chance is not None else ".")
            )
    return notes


__all__ = ["compare_notes", "metric_row", "score_with_baselines"]
