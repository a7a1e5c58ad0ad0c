"""Vis-Dec's table as benchmark score rows (:mod:`brainkit.evaluation.scores`): every reconstruction metric of
Vis-Dec, the no-fMRI LDM and the VAE ceiling. Chance is the metric's own (2-way: 0.5, N-way: 1/N) or, where
none exists (PixCorr, SSIM, MSE), the shuffled-pairs row: the same reconstructions scored against wrong images."""

from __future__ import annotations

from typing import Any

from brainkit.evaluation.scores import score_row, table
from brainkit.report.labels import column_label

TASK = "image reconstruction"
SPLIT = "unseen images"
TITLE = "Vis-Dec vs baselines"
SHUFFLED = "shuffled pairs"
ROLES = {"Vis-Dec": "method", "no fMRI": "baseline", "VAE ceiling": "ceiling"}
LOWER = ("mse",)


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = table(tables, TITLE)
    shuffled = next((row for row in rows if row["method"] == SHUFFLED), {})
    out = []
    for row in rows:
        if row["method"] == SHUFFLED:
            continue
        role = ROLES.get(row["method"], "baseline")
        for key, value in row.items():
            if not key.endswith("_mean"):
                continue
            stem = key.removesuffix("_mean")
            chance = row.get(f"{stem}_chance", shuffled.get(key))
            metric = column_label(key)  # the report's words: PixCorr, EffNet-Lite0 block 1 (ours) 2-way
            out.append(score_row(row["method"], role, TASK, SPLIT, metric, value, chance, stem not in LOWER))
    return out


__all__ = ["scores"]
