"""Lite-Mind's table as benchmark score rows (:mod:`brainkit.evaluation.scores`): every decoder's retrieval
top-k among all test images and its N-way top-1, both directions, each beside its chance."""

from __future__ import annotations

import re
from typing import Any

from brainkit.evaluation.scores import score_row, table

TASK = "image retrieval"
SPLIT = "unseen images"
TITLE = "fMRI-to-image retrieval"


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per decoder (the first is the recipe's model, the rest its baselines) and retrieval number."""
    out = []
    for number, row in enumerate(table(tables, TITLE)):
        role = "method" if number == 0 else "baseline"
        for key, value in row.items():
            top = re.fullmatch(r"(fmri->image|image->fmri) top(\d+)", key)
            way = re.fullmatch(r"(fmri->image|image->fmri) (\d+)-way", key)
            if top:
                chance = row[f"top{top[2]} chance"]
                metric = f"{_direction(top[1])} top-{top[2]} (all {round(int(top[2]) / chance)} test images)"
            elif way:
                chance = row[f"{way[2]}-way chance"]
                metric = f"{_direction(way[1])} top-1 ({way[2]}-way)"
            else:
                continue
            out.append(score_row(row["method"], role, TASK, SPLIT, metric, value, chance))
    return out


def _direction(text: str) -> str:
    return text.replace("fmri", "fMRI")


__all__ = ["scores"]
