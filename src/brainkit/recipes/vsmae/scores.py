"""vsMAE's table as benchmark score rows (:mod:`brainkit.evaluation.scores`): masked-patch MSE (no chance: the
simple fills are its baselines) and correlation (chance 0) on held-out real frames."""

from __future__ import annotations

from typing import Any

from brainkit.evaluation.scores import score_row, table

TASK = "masked surface reconstruction"
SPLIT = "held-out frames"
METRICS = {"masked_mse_mean": ("masked MSE", None, False), "r_mean": ("r (hidden patches)", 0.0, True)}


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for row in table(tables, "Masked-patch reconstruction"):
        role = "method" if row["method"].startswith("vsMAE") else "baseline"
        for key, (metric, chance, higher) in METRICS.items():
            if key in row:
                out.append(score_row(row["method"], role, TASK, SPLIT, metric, row[key], chance, higher))
    return out


__all__ = ["scores"]
