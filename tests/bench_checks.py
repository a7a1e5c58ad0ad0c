"""What every recipe's ``scores()`` must give for ``brainkit bench`` (used by each recipe's end-to-end test)."""

from __future__ import annotations

import math

from brainkit.evaluation.scores import FIELDS, ROLES
from brainkit.registry import RECIPES


def check_scores(
    recipe: str, tables: dict, methods: set[str], chance_metrics: set[str] = frozenset()
) -> list[dict]:
    """The recipe's score rows of ``tables``: the uniform fields, the method first, ``methods`` all present,
    every value the table's, chance on every metric of ``chance_metrics``; returns the rows."""
    rows = RECIPES.get(recipe).scores(tables)
    assert rows and rows[0]["role"] == "method"
    assert all(tuple(row) == FIELDS and row["role"] in ROLES for row in rows)
    assert methods <= {row["method"] for row in rows}, {row["method"] for row in rows}
    assert all(row["value"] is None or math.isfinite(row["value"]) for row in rows)
    for row in rows:
        if row["metric"] in chance_metrics:
            assert row["chance"] is not None, row
    # one number per (method, split, metric): the benchmark's key
    keys = [(row["task"], row["split"], row["metric"], row["method"]) for row in rows]
    assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1][:3]
    return rows
