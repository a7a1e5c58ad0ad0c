"""SIM's retrieval table as benchmark score rows (:mod:`brainkit.evaluation.scores`): top-1 among the protocol's
candidates for every setting (unseen subjects / unseen clips / both), direction and negatives, per model."""

from __future__ import annotations

import re
from typing import Any

from brainkit.evaluation.scores import score_row, table

TASK = "movie clip retrieval"
TITLE = "SIM retrieval among"
# column name of the table -> (benchmark method, role)
MODELS = {"from vsMAE": ("SIM (vsMAE init)", "method"), "from scratch": ("SIM (from scratch)", "ablation"),
          "ridge baseline": ("ridge", "baseline"), "released": ("SIM (released weights)", "method")}  # fmt: skip


def scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    title = next((t for t in tables if t.startswith(TITLE)), "")
    candidates = re.match(r"SIM retrieval among (\d+) candidates", title)
    among = f", {candidates[1]} candidates" if candidates else ""
    out = []
    for row in table(tables, TITLE):
        metric = f"{row['retrieval']} top-1 ({row['negatives']} negatives{among})"
        mine = []
        for key, value in row.items():
            found = re.fullmatch(r"top1 (.+)_mean", key)
            if not found:
                continue
            method, role = MODELS.get(found[1], (f"SIM ({found[1]})", "method"))
            mine.append(score_row(method, role, TASK, row["setting"], metric, value, row["top1_chance"]))
        out += sorted(mine, key=lambda score: score["role"] != "method")  # SIM first, then the others
    return out


__all__ = ["scores"]
