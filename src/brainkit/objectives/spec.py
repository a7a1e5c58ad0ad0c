"""An objective named in a recipe's config: a registered objective and its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective (``brainkit list``: ``infonce``, ...) and its options."""

    name: str = "infonce"
    options: dict[str, Any] = field(default_factory=dict)
