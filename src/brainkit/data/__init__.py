"""Data model, readers of real formats, splits, and the built-in datasets.

Your own data: :func:`from_arrays` (arrays per subject -> the trial-based contract), :func:`save_dataset`
(a folder that ``data.name=folder`` / ``data.options.root=DIR`` reads back), :func:`load_dataset` (any
registered dataset by name: ``brainkit list``).
"""

from __future__ import annotations

import inspect
from typing import Any

from brainkit.data.arrays import from_arrays
from brainkit.data.contract import Dataset
from brainkit.data.readers.saved import save_dataset
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.data.splits import Split, make_split
from brainkit.registry import DATASETS


def load_dataset(name: str, **options: Any) -> Dataset:
    """Build or read the registered dataset ``name`` (``brainkit list`` shows the names).

    Returns the container of the dataset's design (:mod:`brainkit.data.contract`): a :class:`DecodingDataset`
    (trial-based: ``nsd``, ``nsd_like``, ``hcp_movie_like``), a continuous one (``movie_surface_like``,
    ``rest_surface``) or a :class:`~brainkit.data.cohort.Cohort` (``hcp_cohort``, ``roi_tables``); ``design`` says
    which.
    """
    DATASETS.check_options(name, options, "options")
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
    "from_arrays",
    "save_dataset",
    "dataset_accepts",
    "register_all",
]
