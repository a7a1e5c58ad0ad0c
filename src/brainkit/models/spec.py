"""A model named in a recipe's config: a registered model, its preset and option changes (what
:func:`brainkit.models.model_config` takes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A registered model (``brainkit list``), its preset (null: the model's defaults) and option changes."""

    name: str = "lite_mind"
    preset: str | None = "cpu_small"
    options: dict[str, Any] = field(default_factory=dict)
