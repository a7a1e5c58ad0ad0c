"""The reconstruction suite's numbers for people and files: the printed table and the JSON written beside a run.

:func:`metrics_table` turns :func:`brainkit.evaluation.reconstruction.evaluate_reconstructions`' dict into rows
(metric, value +- sd, best of k, shuffled baseline, chance; shares as percentages); :func:`write_metrics` writes
them, with the shuffled baseline and what was scored, as JSON (atomically).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brainkit.checkpoint import atomic_write_text
from brainkit.evaluation.literature import IDENTIFICATION_COLUMNS


def metrics_table(
    metrics: dict[str, float], shuffled: dict[str, float] | None = None, label: Callable[[str], str] = str
) -> list[dict[str, str]]:
    """Rows for printing: metric (named by ``label(key)``: the reports pass their human labels), value (+- sd),
    best of k, shuffled baseline, chance; shares as percentages."""
    rows = []
    for key, value in metrics.items():
        if key.endswith(("_sd", "_chance", "_best_of_k")) or key in ("n_images", "n_samples", "trials"):
            continue
        share = key.endswith(("way", "top1")) or key in IDENTIFICATION_COLUMNS

        def show(number: float | None, share: bool = share) -> str:
            if number is None:
                return "-"
            return f"{100 * number:.1f}%" if share else f"{number:.4f}"

        sd = metrics.get(f"{key}_sd")
        row = {"metric": label(key), "value": show(value) + (f" +- {show(sd)}" if sd is not None else "")}
        if any(k.endswith("_best_of_k") for k in metrics):
            row["best_of_k"] = show(metrics.get(f"{key}_best_of_k"))
        if shuffled is not None:
            row["shuffled"] = show(shuffled.get(key))
        row["chance"] = show(metrics.get(f"{key}_chance"))
        rows.append(row)
    return rows


def write_metrics(
    path: str | Path,
    metrics: dict[str, float],
    shuffled: dict[str, float] | None = None,
    **info: Any,
) -> Path:
    """Write ``{"metrics": ..., "shuffled_baseline": ..., **info}`` as JSON, atomically (temporary file, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "metrics": metrics,
        "shuffled_baseline": shuffled,
        **{k: _jsonable(v) for k, v in info.items()},
    }
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["metrics_table", "write_metrics"]
