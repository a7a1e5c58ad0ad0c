"""Data model, readers of real formats, splits, and the built-in datasets."""

from __future__ import annotations

import inspect
from typing import Any

from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.data.splits import Split, make_split
from brainkit.registry import DATASETS


def load_dataset(name: str, **options: Any) -> DecodingDataset:
    """Build or read the registered dataset ``name`` (``brainkit list`` shows the names)."""
    _register_all()
    return DATASETS.get(name)(**options)


def dataset_accepts(name: str, option: str) -> bool:
    """Whether the factory of dataset ``name`` takes the keyword ``option`` (e.g. ``cache_dir``)."""
    _register_all()
    return option in inspect.signature(DATASETS.get(name)).parameters


def _register_all() -> None:
    """Import the modules that register datasets (kept lazy: they pull heavy dependencies)."""
    import brainkit.data.builtin.hcp_cohort  # noqa: F401
    import brainkit.data.builtin.hcp_movie_like  # noqa: F401
    import brainkit.data.builtin.nsd_like  # noqa: F401
    import brainkit.data.readers.nsd  # noqa: F401


__all__ = [
    "BrainSamples",
    "DecodingDataset",
    "Stimuli",
    "Split",
    "make_split",
    "load_dataset",
    "dataset_accepts",
]
