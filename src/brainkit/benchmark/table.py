"""The benchmark's table: per-seed score rows -> mean and 95 % t-interval over seeds, chance beside; CSV + HTML.

``scores.csv``: one row per (run, score) as the recipes' ``scores()`` gave it, with dataset and seed.
``bench.csv``: one row per (dataset, task, split, metric, method): ``n_seeds``, ``mean``, ``low``, ``high`` (the
95 % t-interval over seeds; empty for one seed), ``chance`` (its mean over seeds: a label-frequency chance can
move with the seed's draw), ``higher_is_better``. A seed whose run failed, or which could not define a number,
is not in ``n_seeds``: the count says how many numbers the mean is of.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainkit.checkpoint import atomic_write_text
from brainkit.report.adaptation import interval

KEY = ("dataset", "task", "split", "metric", "method")
SUMMARY = ("dataset", "recipe", "task", "split", "metric", "method", "role", "n_seeds", "mean", "low", "high",
           "chance", "higher_is_better")  # fmt: skip


def aggregate(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, task, split, metric, method), in the order the scores first name them."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in scores:
        groups.setdefault(tuple(row[k] for k in KEY), []).append(row)
    out = []
    for rows in groups.values():
        values = [r["value"] for r in rows if r["value"] is not None]
        chances = [r["chance"] for r in rows if r["chance"] is not None]
        mean, low, high = interval(values) if values else (None, None, None)
        first = rows[0]
        out.append({**{k: first[k] for k in ("dataset", "recipe", "task", "split", "metric", "method", "role")},
                    "n_seeds": len(values), "mean": mean, "low": low, "high": high,
                    "chance": float(np.mean(chances)) if chances else None,
                    "higher_is_better": first["higher_is_better"]})  # fmt: skip
    return out


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return buffer.getvalue()


def number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def cell(row: dict[str, Any]) -> str:
    """``mean [low, high]`` as the page shows it."""
    if row["mean"] is None:
        return "-"
    if row["low"] is None:
        return number(row["mean"])
    return f"{number(row['mean'])} [{number(row['low'])}, {number(row['high'])}]"


def headline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (dataset, task): the rows of its first split and metric (each recipe's scores name its main one first)."""
    first: dict[tuple, tuple] = {}
    for row in rows:
        first.setdefault((row["dataset"], row["task"]), (row["split"], row["metric"]))
    return [row for row in rows if first[(row["dataset"], row["task"])] == (row["split"], row["metric"])]


def page_rows(rows: list[dict[str, Any]], with_place: bool) -> list[dict[str, Any]]:
    """Rows of strings for the HTML tables (numbers formatted here, so the page shows them as measured)."""
    out = []
    for row in rows:
        shown = {"dataset": row["dataset"], "task": row["task"]} if with_place else {}
        shown |= {"split": row["split"], "metric": row["metric"] + ("" if row["higher_is_better"] else " (lower better)"),
                  "method": row["method"], "role": row["role"], "mean [95 % interval]": cell(row),
                  "chance": number(row["chance"]), "seeds": f"{row['n_seeds']}"}  # fmt: skip
        out.append(shown)
    return out


def headline_figure(rows: list[dict[str, Any]]) -> Figure | None:
    """One panel per (dataset, task) of :func:`headline`: a dot per method with its 95 % interval, chance dashed."""
    panels: dict[tuple, list[dict[str, Any]]] = {}
    for row in headline(rows):
        if row["mean"] is not None:
            panels.setdefault((row["dataset"], row["task"]), []).append(row)
    if not panels:
        return None
    n_columns = min(3, len(panels))
    n_rows = -(-len(panels) // n_columns)
    figure = Figure(figsize=(4.6 * n_columns, 2.8 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for axis, ((dataset, task), mine) in zip(axes, panels.items()):
        for y, row in enumerate(mine):
            low, high = row["low"], row["high"]
            err = None if low is None else [[row["mean"] - low], [high - row["mean"]]]
            axis.errorbar(row["mean"], y, xerr=err, fmt="o", color="C0", capsize=3)
        chances = [r["chance"] for r in mine if r["chance"] is not None]
        if chances:
            axis.axvline(float(np.mean(chances)), color="0.4", linestyle="--", linewidth=1, label="chance")
            axis.legend(fontsize=7, loc="best")
        axis.set_yticks(range(len(mine)), [r["method"] for r in mine], fontsize=8)
        axis.invert_yaxis()
        axis.set_title(f"{dataset}: {task}", fontsize=9)
        axis.set_xlabel(
            mine[0]["metric"] + ("" if mine[0]["higher_is_better"] else " (lower better)"), fontsize=8
        )
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    return figure


def write_tables(out: Path, scores: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    per_seed = ("dataset", "recipe", "seed", "task", "split", "metric", "method", "role", "value", "chance",
                "higher_is_better", "run")  # fmt: skip
    atomic_write_text(out / "scores.csv", csv_text(scores, per_seed))
    atomic_write_text(out / "bench.csv", csv_text(rows, SUMMARY))


__all__ = ["aggregate", "csv_text", "headline", "headline_figure", "page_rows", "write_tables"]
