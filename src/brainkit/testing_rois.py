"""A small ``roi_tables`` folder with a known answer, for tests and examples of BrainMAE on your own ROI series.

:func:`write_roi_tables` samples subjects of the built-in ``hcp_cohort`` (Schaefer-100 ROIs on real HCP
connectivity, phenotype effects on named networks: docs/datasets.md) and writes them as XCP-D-style files under
``root``:

- ``participants.tsv``: ``participant_id``, ``age`` (years), ``sex`` (``F`` / ``M``: a categorical column),
  ``behaviour`` (a score), ``site`` (categorical, unrelated to the signal);
- ``atlas-Schaefer100_dseg.tsv``: ``index``, ``name``, ``network`` (Yeo-7) per ROI;
- per subject ``sub-XXX/func/sub-XXX_task-rest_atlas-Schaefer100_timeseries.tsv`` (a header of ROI names, one
  row per frame) and ``sub-XXX_task-motorwm_atlas-Schaefer100_timeseries.tsv`` with their ``.json`` sidecars
  (``RepetitionTime`` 0.72) and the task run's ``sub-XXX_task-motorwm_events.tsv`` (``onset``, ``duration``,
  ``trial_type``: the cohort's motor / working-memory blocks; rest between them).

The tables hold the cohort's z-scored series in raw-looking units (``1000 + 20 x`` per ROI, rounded to 4
decimals), so the reader's per-run z-scoring gives back the cohort's series (to that rounding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ATLAS = "Schaefer100"
TASK = "motorwm"


@dataclass(frozen=True)
class RoiTablesExample:
    """What :func:`write_roi_tables` wrote: the folder, its subjects (``sub-XXX``), ROI count, TR, the
    cohort's phenotypes of those subjects (the truth the tables' signal carries) and the whole built-in cohort
    the tables were sampled from (every ROI; the tables hold ``keep`` of them)."""

    root: Path
    subjects: list[str]
    n_rois: int
    tr: float
    phenotypes: dict[str, np.ndarray]
    cohort: Any
    keep: np.ndarray


def _events(states: np.ndarray, tr: float) -> pd.DataFrame:
    """The blocks of non-rest states as BIDS events (onset, duration in seconds, trial_type)."""
    rows, start = [], 0
    for i in range(1, len(states) + 1):
        if i == len(states) or states[i] != states[start]:
            if states[start] != "rest":
                rows.append({"onset": round(start * tr, 4), "duration": round((i - start) * tr, 4),
                             "trial_type": str(states[start])})  # fmt: skip
            start = i
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])


def write_roi_tables(
    root: str | Path,
    n_subjects: int = 10,
    rest_seconds: float = 120.0,
    task_seconds: float = 90.0,
    seed: int = 0,
    roi_step: int = 1,
) -> RoiTablesExample:
    """Write ``n_subjects`` subjects of ``hcp_cohort(seed=seed)`` under ``root`` as described above; with
    ``roi_step`` k > 1 only every k-th ROI (100 / k ROIs of every network: smaller, faster tests)."""
    from brainkit.data.builtin.hcp_cohort import hcp_cohort

    cohort = hcp_cohort(
        n_subjects=n_subjects, rest_seconds=rest_seconds, task_seconds=task_seconds, seed=seed
    )
    keep = np.arange(0, len(cohort.roi_names), roi_step)
    names, networks = [cohort.roi_names[i] for i in keep], [cohort.networks[i] for i in keep]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "brainkit roi_tables example",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "brainkit.testing_rois"}],
            },
            indent=1,
        )  # fmt: skip
    )
    pd.DataFrame({"index": np.arange(1, len(names) + 1), "name": names, "network": networks}).to_csv(root / f"atlas-{ATLAS}_dseg.tsv", sep="\t", index=False)  # fmt: skip
    rng = np.random.default_rng(seed + 1)
    sex = np.where(cohort.phenotypes["sex"] == 1, "M", "F")
    pd.DataFrame(
        {
            "participant_id": cohort.subjects,
            "age": np.round(cohort.phenotypes["age"], 2),
            "sex": sex,
            "behaviour": np.round(cohort.phenotypes["behaviour"], 4),
            "site": rng.choice(["siteA", "siteB"], len(cohort.subjects)),
        }
    ).to_csv(root / "participants.tsv", sep="\t", index=False)
    for run in cohort.runs:
        func = root / run.subject / "func"
        func.mkdir(parents=True, exist_ok=True)
        task = "rest" if run.run == "rest" else TASK
        stem = f"{run.subject}_task-{task}_atlas-{ATLAS}_timeseries"
        values = np.round(1000.0 + 20.0 * run.values[:, keep].astype(np.float64), 4)
        pd.DataFrame(values, columns=names).to_csv(func / f"{stem}.tsv", sep="\t", index=False)
        (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": cohort.tr}))
        if task != "rest":
            _events(run.states, cohort.tr).to_csv(func / f"{run.subject}_task-{task}_events.tsv", sep="\t",
                                                   index=False)  # fmt: skip
    phenotypes = {k: v for k, v in cohort.phenotypes.items() if k != "snr"}
    return RoiTablesExample(root, cohort.subjects, len(names), cohort.tr, phenotypes, cohort, keep)


__all__ = ["RoiTablesExample", "write_roi_tables", "ATLAS", "TASK"]
