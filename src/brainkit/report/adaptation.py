"""The adaptation recipe's curve: accuracy against k (trials and scan-minutes), adapt beside scratch, the mean
and 95 % t-interval over seeds with chance beside every number; ``curve.csv`` and ``report.html``."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainkit.checkpoint import atomic_write_text
from brainkit.report.html import write_report

TITLE = "New-subject adaptation: accuracy against k"
LABELS = {"adapt": "adapt (pretrained, new subject's Linear only)", "scratch": "scratch (same k trials)"}


def interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean and 95 % t-interval (low, high) of ``values``; no interval for a single value."""
    from scipy.stats import t

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    half = float(t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def score_keys(n_way: int, cells: dict[str, dict[str, float]]) -> dict[str, str]:
    """Row column stem -> metric key: top-1 over the whole test set, and N-way when it was scored."""
    keys = {"top1": "fmri_to_image/top1"}
    way = f"fmri_to_image/{n_way}way_top1_mean"
    if all(way in scores for scores in cells.values()):
        keys[f"{n_way}way_top1"] = way
    return keys


def curve_rows(cells: dict[str, dict[str, float]], ks: list[int], seeds: tuple[int, ...], seconds_per_trial: float,
               n_way: int, keys: dict[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per method and k: k, scan-minutes, seeds, and per score its mean, 95 % low and high, and chance.
    ``cells["<method>/k=<k>/seed=<seed>"]`` holds each score ``key`` with its chance under ``key`` less ``_mean``,
    plus ``_chance``, and ``train_s``; ``keys`` (column stem -> score key): the scores, by default
    :func:`score_keys` (top-1 and N-way)."""
    rows = []
    keys = score_keys(n_way, cells) if keys is None else keys
    for method in ("adapt", "scratch"):
        for k in ks:
            scored = [cells[f"{method}/k={k}/seed={seed}"] for seed in seeds]
            row: dict[str, Any] = {"method": method, "k": k, "minutes": round(k * seconds_per_trial / 60, 2),
                                   "n_seeds": len(seeds)}  # fmt: skip
            for stem, key in keys.items():
                chance_key = key.removesuffix("_mean") + "_chance"
                row[f"{stem}_mean"], row[f"{stem}_low"], row[f"{stem}_high"] = interval(
                    [s[key] for s in scored]
                )
                row[f"{stem}_chance"] = scored[0][chance_key]
            row["train_s"] = round(float(np.mean([s["train_s"] for s in scored])), 1)
            rows.append(row)
    return rows


def curve_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def retrieval_label(stem: str) -> str:
    return f"fMRI → image {stem.replace('way_top1', '-way top-1').replace('top1', 'top-1')} (%)"


def curve_figure(rows: list[dict[str, Any]], seconds_per_trial: float, labels: dict[str, str] = LABELS,
                 ylabel=retrieval_label, unit: str = "trials") -> Figure:  # fmt: skip
    """One panel per score: mean against k (log axis; scan-minutes on top), the 95 % interval shaded, chance dashed.
    ``labels``: method -> legend; ``ylabel``: column stem -> axis label; ``unit``: what k counts."""
    stems = [key.removesuffix("_mean") for key in rows[0] if key.endswith("_mean")]
    figure = Figure(figsize=(5.2 * len(stems), 3.8), layout="constrained")
    axes = figure.subplots(1, len(stems), squeeze=False).ravel()
    for axis, stem in zip(axes, stems):
        for colour, method in (("C0", "adapt"), ("C1", "scratch")):
            mine = [r for r in rows if r["method"] == method]
            ks = [r["k"] for r in mine]
            axis.plot(
                ks, [100 * r[f"{stem}_mean"] for r in mine], marker="o", color=colour, label=labels[method]
            )
            if mine[0][f"{stem}_low"] is not None:
                low = [100 * r[f"{stem}_low"] for r in mine]
                high = [100 * r[f"{stem}_high"] for r in mine]
                axis.fill_between(ks, low, high, color=colour, alpha=0.2)
        axis.axhline(
            100 * rows[0][f"{stem}_chance"], color="0.4", linestyle="--", linewidth=1, label="chance"
        )
        axis.set_xscale("log")
        axis.set_xlabel(f"k (held-out subject's training {unit})")
        axis.set_ylabel(ylabel(stem))
        top = axis.secondary_xaxis(
            "top", functions=(lambda k: k * seconds_per_trial / 60, lambda m: m * 60 / seconds_per_trial)
        )
        top.set_xlabel("scan-minutes")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    return figure


def smallest_k_note(rows: list[dict[str, Any]], stem: str | None = None, unit: str = "trials") -> str:
    """Whether adapting beats scratch at the smallest k, with the numbers, on the score ``stem`` (higher is better;
    by default the last score of the rows)."""
    stem = stem or [key.removesuffix("_mean") for key in rows[0] if key.endswith("_mean")][-1]
    k = min(r["k"] for r in rows)
    adapt, scratch = ([r for r in rows if r["method"] == m and r["k"] == k][0] for m in ("adapt", "scratch"))

    def shown(row: dict[str, Any]) -> str:
        spread = (
            ""
            if row[f"{stem}_low"] is None
            else f" [{100 * row[f'{stem}_low']:.1f}, {100 * row[f'{stem}_high']:.1f}]"
        )
        return f"{100 * row[f'{stem}_mean']:.1f}%{spread}"

    verdict = "beats" if adapt[f"{stem}_mean"] > scratch[f"{stem}_mean"] else "does not beat"
    separate = adapt[f"{stem}_low"] is not None and (
        adapt[f"{stem}_low"] > scratch[f"{stem}_high"] or scratch[f"{stem}_low"] > adapt[f"{stem}_high"]
    )
    return (
        f"At the smallest k ({k} {unit}, {adapt['minutes']:g} scan-minutes), adapting the pretrained model "
        f"{verdict} training from scratch: {stem.replace('_', ' ')} {shown(adapt)} vs {shown(scratch)} (mean [95 % "
        f"interval] over {adapt['n_seeds']} seeds; chance {100 * adapt[f'{stem}_chance']:.2f}%); the intervals "
        f"{'do not overlap' if separate else 'overlap'}."
    )


def write_curve(folder: Path, title: str, table: str, rows: list[dict[str, Any]], notes: list[str], figure: Figure,
                cells: dict[str, dict[str, float]], **metrics: Any) -> dict[str, Any]:  # fmt: skip
    """``curve.csv`` and ``report.html`` (``figure`` under ``table``) in ``folder``; returns the run's metrics: the
    cells' scores without their training seconds (not re-computable), then ``metrics``."""
    atomic_write_text(Path(folder) / "curve.csv", curve_csv(rows))
    write_report(Path(folder) / "report.html", title, rows, {}, {}, notes, figures={table: figure})
    return {
        "cells": {key: {m: v for m, v in s.items() if m != "train_s"} for key, s in cells.items()},
        **metrics,
    }


def write_adaptation_report(folder: Path, config: Any, metrics: dict[str, Any]) -> tuple[dict, list[str]]:
    """``curve.csv`` and ``report.html`` in ``folder``; returns the recipe's tables and notes."""
    rows = metrics["curve"]
    spec = config.adaptation
    atomic_write_text(Path(folder) / "curve.csv", curve_csv(rows))
    notes = [
        smallest_k_note(rows),
        f"Pretrained on {', '.join(metrics['pretraining_subjects'])} ({config.model.name} behind a "
        f"{spec.d_shared}-d shared-subject latent, one subject per step); adapted to {metrics['target_subject']} "
        f"with k of its training trials (a seeded draw per seed, nested over k), z-scored on those k trials; "
        f"scan-minutes = k x {spec.seconds_per_trial:g} s / 60. Scored on its whole test set.",
    ]
    write_report(Path(folder) / "report.html", TITLE, rows, {}, {}, notes,
                 figures={"Accuracy against k": curve_figure(rows, spec.seconds_per_trial)})  # fmt: skip
    return {"Accuracy against k": rows}, notes


__all__ = [
    "curve_csv",
    "curve_figure",
    "curve_rows",
    "interval",
    "retrieval_label",
    "smallest_k_note",
    "write_adaptation_report",
    "write_curve",
]
