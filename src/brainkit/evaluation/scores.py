"""Score rows: one number of one method in one run, in the one shape ``brainkit bench`` tabulates.

A recipe's ``scores(tables) -> list[dict]`` turns its own result tables (what ``metrics.json`` holds under
``tables``) into these rows, so that the benchmark reads every method the same way:

``{"method": "Lite-Mind", "role": "method", "task": "image retrieval", "split": "unseen images",
"metric": "fMRI->image top-1 (300-way)", "value": 0.12, "chance": 1 / 300, "higher_is_better": True}``

- ``role``: ``method`` (the recipe's method, or a variant of it), ``baseline``, ``ablation`` or ``ceiling``
  (an upper reference such as a VAE round trip); the chance rows a recipe computes become ``chance`` values.
- ``chance``: what guessing scores on this metric (analytic, or a label-frequency / shuffled-pairs row of the
  same run); ``None`` only where no guess defines one (an MSE), and the recipe's simple baselines stand beside.
"""

from __future__ import annotations

import math
from typing import Any

from brainkit.errors import DataError

ROLES = ("method", "baseline", "ablation", "ceiling")
FIELDS = ("method", "role", "task", "split", "metric", "value", "chance", "higher_is_better")


def score_row(method: str, role: str, task: str, split: str, metric: str, value: Any, chance: Any = None,
              higher_is_better: bool = True) -> dict[str, Any]:  # fmt: skip
    """One checked score row (see the module docstring); ``value`` a finite number, or ``None`` where the run
    could not define it (a class without test positives): the benchmark counts it as missing, not as zero."""
    if role not in ROLES:
        raise DataError(f"Score role {role!r} is not one of {', '.join(ROLES)}.")
    if value is not None and (
        not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
    ):
        raise DataError(f"Score {method!r} / {metric!r}: value {value!r} is not a finite number or None.")
    if chance is not None and (not isinstance(chance, int | float) or not math.isfinite(chance)):
        raise DataError(f"Score {method!r} / {metric!r}: chance {chance!r} is not a finite number or None.")
    return {"method": str(method), "role": role, "task": str(task), "split": str(split), "metric": str(metric),
            "value": None if value is None else float(value), "chance": None if chance is None else float(chance),
            "higher_is_better": bool(higher_is_better)}  # fmt: skip


def table(tables: dict[str, list[dict[str, Any]]], starts: str) -> list[dict[str, Any]]:
    """The rows of the one table whose title starts with ``starts``; a :class:`DataError` naming the titles when
    there is none (a run of another recipe, or of an older brainkit)."""
    found = [rows for title, rows in tables.items() if title.startswith(starts)]
    if len(found) != 1:
        raise DataError(
            f"Expected one result table titled {starts!r}...; the run has {sorted(tables) or 'none'}."
        )
    return found[0]


__all__ = ["FIELDS", "ROLES", "score_row", "table"]
