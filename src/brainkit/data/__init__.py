"""Data model, readers of real formats, splits, and the built-in datasets."""

from __future__ import annotations

import inspect
from typing import Any

from brainkit.data.contract import Dataset
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.data.splits import Split, make_split
from brainkit.registry import DATASETS


def load_dataset(name: str, **options: Any) -> Dataset:
    """Build or read the registered dataset ``name`` (``brainkit list`` shows the names).

    Returns the container of the dataset's design (:mod:`brainkit.data.contract`): a :class:`DecodingDataset`
    (trial-based: ``nsd``, ``nsd_like``, ``hcp_movie_like``), a continuous one (``movie_surface_like``,
    ``rest_surface``) or a :class:`~brainkit.data.builtin.hcp_cohort.Cohort` (``hcp_cohort``); ``design`` says
    which.
    """
    return DATASETS.get(name)(**options)


def dataset_accepts(name: str, option: str) -> bool:
    """Whether the factory of dataset ``name`` takes the keyword ``option`` (e.g. ``cache_dir``)."""
    return option in inspect.signature(DATASETS.get(name)).parameters


def register_all() -> None:
    """Import the modules that register datasets (what any look-up in DATASETS does first)."""
    DATASETS.discover()


__all__ = [
    "BrainSamples",
    "Dataset",
    "DecodingDataset",
    "Stimuli",
    "Split",
    "make_split",
    "load_dataset",
    "dataset_accepts",
    "register_all",
]
