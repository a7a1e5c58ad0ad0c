"""CLIP-MUSED's table as benchmark score rows (:mod:`brainkit.evaluation.scores`): test mAP, AUC and Hamming
loss (mean over subjects) of the model, its ablations and baselines, with the label-frequency row as chance."""

from __future__ import annotations

from typing import Any

from brainkit.evaluation.scores import score_row, table

TASK = "multi-label categories"
SPLIT = "unseen stimuli, training subjects"
TITLE = "CLIP-MUSED vs baselines and ablations"
CHANCE = "label_frequency"
METRICS = {"mAP": ("mAP", True), "AUC": ("AUC", True), "hamming": ("Hamming loss", False)}


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = table(tables, TITLE)
    chance = next((row for row in rows if row["method"] == CHANCE), {})
    out = []
    for row in rows:
        if row["method"] == CHANCE:
            continue
        role = _role(row["method"], row.get("what", ""))
        for key, (metric, higher) in METRICS.items():
            out.append(score_row(row["method"], role, TASK, SPLIT, metric, row[key], chance.get(key), higher))
    return out


def _role(method: str, what: str) -> str:
    if what.startswith("ablation"):
        return "ablation"
    if what.startswith("baseline"):
        return "baseline"
    return "method"


__all__ = ["scores"]
