"""Data model, readers of real formats, splits, and the built-in datasets."""

from __future__ import annotations

import inspect
from typing import Any

from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.data.splits import Split, make_split
from brainkit.registry import DATASETS


def load_dataset(name: str, **options: Any) -> DecodingDataset:
    """Build or read the registered dataset ``name`` (``brainkit list`` shows the names)."""
    return DATASETS.get(name)(**options)


def dataset_accepts(name: str, option: str) -> bool:
    """Whether the factory of dataset ``name`` takes the keyword ``option`` (e.g. ``cache_dir``)."""
    return option in inspect.signature(DATASETS.get(name)).parameters


def register_all() -> None:
    """Import the modules that register datasets (what any look-up in DATASETS does first)."""
    DATASETS.discover()


__all__ = [
    "BrainSamples",
    "DecodingDataset",
    "Stimuli",
    "Split",
    "make_split",
    "load_dataset",
    "dataset_accepts",
    "register_all",
]
