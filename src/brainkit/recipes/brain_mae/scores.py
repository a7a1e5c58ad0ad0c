"""BrainMAE's tables as benchmark score rows (:mod:`brainkit.evaluation.scores`): hidden-token MSE on held-out
data (no chance: the simple fills are its baselines) and the downstream heads' phenotype / state scores on
unseen subjects beside their chance (the training-fold mean or majority class; r: 0; AUROC: 0.5)."""

from __future__ import annotations

from typing import Any

from brainkit.evaluation.scores import score_row, table

ROLES = {"BrainAE (no masking)": "ablation", "ROI mean": "baseline", "temporal interpolation": "baseline",
         "static FC + linear (baseline)": "baseline"}  # fmt: skip
ANALYTIC = {" r": 0.0, " AUROC": 0.5}
NOT_SCORES = ("method", "features", "data")


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for row in table(tables, "Masked reconstruction"):
        out.append(score_row(row["method"], ROLES.get(row["method"], "method"), "masked ROI reconstruction",
                             row["data"], "masked MSE (hidden tokens)", row["masked_mse_mean"], None, False))  # fmt: skip
    downstream = next(title for title in tables if title.startswith("Downstream"))
    split = "unseen subjects" + (f" ({downstream.split(', ', 1)[1]})" if ", " in downstream else "")
    for row in table(tables, "Downstream"):
        for key, value in row.items():
            if key in NOT_SCORES or key.endswith("_chance"):
                continue
            chance = row.get(
                f"{key}_chance", next((c for end, c in ANALYTIC.items() if key.endswith(end)), None)
            )
            out.append(score_row(row["method"], ROLES.get(row["method"], "method"), "phenotypes and states",
                                 split, key, value, chance, not key.endswith("MAE")))  # fmt: skip
    return out


__all__ = ["scores"]
