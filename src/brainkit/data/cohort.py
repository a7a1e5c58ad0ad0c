"""The container of design ``"cohort"`` (:mod:`brainkit.data.contract`): many subjects' ROI runs with a phenotype
table. Built-in: ``hcp_cohort`` (simulated on real HCP connectivity); yours: ``roi_tables``
(:mod:`brainkit.data.readers.roi_tables`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from brainkit.data.contract import Dataset
from brainkit.data.timeseries import RoiTimeSeries
from brainkit.errors import ConfigError, DataError


@dataclass
class Cohort(Dataset):
    """Many subjects' ROI runs with a phenotype table (design ``"cohort"`` of :mod:`brainkit.data.contract`).

    Attributes
    ----------
    runs : list[RoiTimeSeries]
        ``run`` is ``"rest"`` or ``"task"``; task runs carry per-frame ``states``; a subject may have several
        runs of a kind (``info["source"]``: the file a run was read from).
    phenotypes : dict[str, np.ndarray]
        ``subject`` (n_subjects,) plus one array per phenotype, aligned with ``subject``: float64 for numeric
        columns, str for categorical ones (``info["phenotypes"]`` names the kind when the reader knows it).
    tr : float
        Seconds per frame, the same for every run.
    roi_names, networks : one name (and network, or None) per ROI column, the same for every run.
    """

    design: ClassVar[str] = "cohort"
    name: str
    runs: list[RoiTimeSeries]
    phenotypes: dict[str, np.ndarray]
    tr: float
    roi_names: list[str]
    networks: list[str] | None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        subjects = list(self.phenotypes.get("subject", []))
        for key, values in self.phenotypes.items():
            if len(values) != len(subjects):
                raise DataError(
                    f"Cohort {self.name}: phenotype {key!r} has {len(values)} values for {len(subjects)} subjects."
                )
        for run in self.runs:
            if run.subject not in subjects:
                raise DataError(f"Cohort {self.name}: run of unknown subject {run.subject!r}.")
            if run.n_rois != len(self.roi_names) or run.tr != self.tr:
                raise DataError(
                    f"Cohort {self.name}: run {run.subject}/{run.run} has {run.n_rois} ROIs at TR {run.tr} s; "
                    f"the cohort has {len(self.roi_names)} at TR {self.tr} s."
                )

    @property
    def subjects(self) -> list[str]:
        return [str(s) for s in self.phenotypes["subject"]]

    def runs_of(self, kind: str, subjects: list[str] | None = None) -> list[RoiTimeSeries]:
        chosen = set(self.subjects if subjects is None else subjects)
        return [r for r in self.runs if r.run == kind and r.subject in chosen]

    def phenotype(self, name: str, subjects: list[str]) -> np.ndarray:
        if name not in self.phenotypes:
            raise ConfigError(
                f"Cohort {self.name} has no phenotype {name!r}; it has {sorted(self.phenotypes)}."
            )
        index = {s: i for i, s in enumerate(self.subjects)}
        return self.phenotypes[name][[index[s] for s in subjects]]


__all__ = ["Cohort"]
