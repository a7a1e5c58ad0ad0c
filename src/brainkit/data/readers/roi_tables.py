"""Your ROI time series in: a folder of per-run ROI tables and a phenotype table -> a :class:`Cohort` (BrainMAE).

``load_roi_tables`` (registered as dataset ``"roi_tables"``) reads the layout XCP-D and other fMRIPrep-based
pipelines write, BIDS-derivatives style::

    root/participants.tsv                                     participant_id + phenotype columns
    root/atlas-<name>_dseg.tsv                                optional: ROI ``name`` (+ ``network``) per row
    root/sub-<s>/[ses-<x>/]func/sub-<s>_[ses-<x>_]task-<t>_[run-<r>_]atlas-<name>_timeseries.tsv
                                                             (or .csv / .npy; XCP-D's ``seg-<name>`` works too)
                                 ..._timeseries.json          ``RepetitionTime`` (or ``SamplingFrequency``)
                                 sub-<s>_[ses-<x>_]task-<t>_[run-<r>_]events.tsv    task runs: onset, duration,
                                                                                      trial_type

A run of a task listed in ``rest_tasks`` (default ``rest``) is a rest run; any other task is a task run, whose
per-frame states come from its BIDS ``events.tsv`` (the ``trial_type`` of the event covering the frame's onset
time, ``baseline_state`` between events). Each run is z-scored per ROI (``standardize``; what the built-in
cohort's runs are), as BrainMAE's windows expect.

Checks, each an error that names the file: the same ROI count and names in every table (and in the labels file),
one TR for every run (``tr=`` or the sidecars), NaN-free values, every subject with runs in the phenotype table,
no missing value in a phenotype column read (``phenotypes=`` chooses the columns), events that cover frames
consistently. Phenotype columns are numeric (float64) when every value is a number, else categorical (str);
``info["phenotypes"]`` says which. Subjects of the table without runs are left out, listed in
``info["subjects_without_runs"]`` and logged. Whether the runs are long enough is the recipe's check (it knows
its windows).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.cohort import Cohort
from brainkit.data.readers.roi_timeseries import read_roi_timeseries
from brainkit.data.timeseries import RoiTimeSeries, zscore
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS

log = logging.getLogger(__name__)
SUFFIXES = (".tsv", ".csv", ".npy")
LAYOUT = "sub-<s>/[ses-<x>/]func/sub-<s>_[ses-<x>_]task-<t>_[run-<r>_]atlas-<name>_timeseries.tsv"
# entities that name the derivative, not the acquisition: the events file of a run has none of them
TOLERANCE = 1e-3  # seconds: an event's onset written to the millisecond still covers the frame it starts on
DERIVATIVE_ENTITIES = ("space", "atlas", "seg", "res", "den", "stat", "desc", "hemi", "cohort")


def entities(path: Path) -> dict[str, str]:
    """The BIDS entities of a file name: ``sub-01_task-rest_atlas-X_timeseries.tsv`` -> {sub, task, atlas}."""
    name = path.name.split(".")[0]
    return dict(part.split("-", 1) for part in name.split("_") if "-" in part)


def find_tables(root: Path, atlas: str | None, tasks: Sequence[str] | None,
                subjects: Sequence[str] | None) -> tuple[list[Path], str]:  # fmt: skip
    """The run tables under ``root`` of one atlas (``atlas``, or the only one there), sorted; and the atlas."""
    if not root.is_dir():
        raise FileFormatError(f"roi_tables: root {root} is not a folder; give the folder that holds sub-*/.")
    found = [p for pattern in ("sub-*/func/*_timeseries.*", "sub-*/ses-*/func/*_timeseries.*")
             for p in root.glob(pattern) if p.suffix in SUFFIXES]  # fmt: skip
    if not found:
        raise FileFormatError(
            f"roi_tables: no ROI tables under {root}; expected files {LAYOUT} (.tsv, .csv, .npy)."
        )
    atlases = sorted({entities(p).get("atlas", entities(p).get("seg", "")) for p in found})
    if atlas is None:
        if len(atlases) != 1:
            raise ConfigError(f"roi_tables: {root} holds the atlases {atlases}; choose one with atlas=NAME.")
        atlas = atlases[0]
    elif atlas not in atlases:
        raise ConfigError(f"roi_tables: no tables of atlas {atlas!r} under {root}; it holds {atlases}.")
    tables = [p for p in found if entities(p).get("atlas", entities(p).get("seg", "")) == atlas]
    if tasks is not None:
        absent = [t for t in tasks if not any(entities(p).get("task") == t for p in tables)]
        if absent:
            found_tasks = sorted({entities(p).get("task", "") for p in tables})
            raise DataError(
                f"roi_tables: no {atlas} tables of tasks {absent} under {root}; its tasks: {found_tasks}."
            )
        tables = [p for p in tables if entities(p).get("task") in tasks]
    if subjects is not None:
        wanted = [_subject_id(s) for s in subjects]
        have = {f"sub-{entities(p).get('sub')}" for p in tables}
        absent = [s for s in wanted if s not in have]
        if absent:
            raise DataError(
                f"roi_tables: subjects {absent} have no {atlas} tables under {root}"
                + (f" of tasks {list(tasks)}" if tasks is not None else "")
                + f"; it has {sorted(have)[:10]}."
            )
        tables = [p for p in tables if f"sub-{entities(p).get('sub')}" in wanted]
    if not tables:
        raise DataError(
            f"roi_tables: no tables of atlas {atlas!r} under {root} for tasks={tasks}, subjects={subjects}."
        )
    return sorted(tables), atlas


def run_tr(path: Path, tr: float | None) -> float:
    """The run's TR: its JSON sidecar's ``RepetitionTime`` (or 1 / ``SamplingFrequency``), checked against ``tr``."""
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    found = None
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{sidecar} is not JSON ({err}).") from None
        if "RepetitionTime" in meta:
            found = float(meta["RepetitionTime"])
        elif "SamplingFrequency" in meta:
            found = 1.0 / float(meta["SamplingFrequency"])
    if found is None and tr is None:
        raise DataError(
            f"roi_tables: {path} has no TR: write {sidecar.name} with RepetitionTime (seconds), or give tr=."
        )
    if found is not None and tr is not None and not np.isclose(found, tr):
        raise DataError(f"roi_tables: {sidecar} says TR {found} s but tr={tr} was given; which is right?")
    return float(tr if tr is not None else found)


def read_labels(path: Path) -> tuple[list[str], list[str] | None]:
    """An atlas table: one row per ROI in column order, ``name`` (or ``label``) and optional ``network``."""
    import pandas as pd

    table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    column = next((c for c in ("name", "label") if c in table.columns), None)
    if column is None:
        raise FileFormatError(
            f"{path}: an atlas table needs a 'name' column (one ROI per row); it has {list(table.columns)}."
        )
    networks = list(table["network"]) if "network" in table.columns else None
    return list(table[column]), networks


def events_states(path: Path, run: Path, n_frames: int, tr: float, baseline: str) -> np.ndarray:
    """(n_frames,) the state of each frame: the ``trial_type`` of the event covering the frame's onset time
    (``frame * tr``, to ``TOLERANCE``), else ``baseline``."""
    import pandas as pd

    table = pd.read_csv(path, sep="\t", na_values=["n/a", ""], keep_default_na=False)
    missing = [c for c in ("onset", "duration", "trial_type") if c not in table.columns]
    if missing:
        raise FileFormatError(f"{path}: events need columns onset, duration, trial_type; {missing} missing.")
    if table["trial_type"].isna().any() or table[["onset", "duration"]].isna().any().any():
        raise FileFormatError(
            f"{path}: rows {np.nonzero(table.isna().any(axis=1).to_numpy())[0].tolist()} have n/a."
        )
    states = np.full(n_frames, baseline, dtype=object)
    owner = np.full(n_frames, -1)
    times = np.arange(n_frames) * tr
    for i, event in enumerate(table.itertuples()):
        frames = (times >= event.onset - TOLERANCE) & (times < event.onset + event.duration - TOLERANCE)
        clash = frames & (owner >= 0) & (states != str(event.trial_type))
        if clash.any():
            raise DataError(
                f"{path}: events {int(owner[clash][0])} and {i} ({states[clash][0]!r}, {event.trial_type!r}) both "
                f"cover the frame at {times[clash][0]:.2f} s of {run.name}; a frame has one state."
            )
        states[frames], owner[frames] = str(event.trial_type), i
    return states.astype(str)


def events_file(path: Path) -> Path:
    """Where the events of run table ``path`` are: the run's acquisition entities + ``_events.tsv``."""
    parts = [p for p in path.name.split(".")[0].split("_")[:-1] if p.split("-")[0] not in DERIVATIVE_ENTITIES]
    return path.with_name("_".join(parts) + "_events.tsv")


def read_run(
    path: Path, tr: float | None, rest_tasks: Sequence[str], baseline: str, standardize: bool
) -> RoiTimeSeries:
    """One run table as a rest or task run (states from its events), z-scored per ROI when ``standardize``."""
    where = entities(path)
    subject, rate = f"sub-{where['sub']}", run_tr(path, tr)
    try:
        raw = read_roi_timeseries(path, rate, subject=subject, run=path.name)
    except DataError as err:
        raise DataError(f"{path}: {err}" if str(path) not in str(err) else str(err)) from None
    kind = "rest" if where.get("task") in rest_tasks else "task"
    if kind == "rest":
        states = np.full(raw.n_times, "rest")
    else:
        events = events_file(path)
        if not events.is_file():
            raise DataError(
                f"roi_tables: {path} is a task run (task-{where.get('task')}) without events: write {events} "
                f"(onset, duration, trial_type), or list the task in rest_tasks if it has no states."
            )
        states = events_states(events, path, raw.n_times, rate, baseline)
    values = zscore(raw.values) if standardize else raw.values
    info = {
        "source": str(path),
        "task": where.get("task"),
        "session": where.get("ses"),
        "run": where.get("run"),
    }
    return RoiTimeSeries(values, rate, raw.roi_names, subject=subject, run=kind, states=states, info=info)


def _subject_id(value: Any) -> str:
    text = str(value).strip()
    return text if text.startswith("sub-") else f"sub-{text}"


def read_phenotypes(path: Path, subjects: list[str], columns: Sequence[str] | None,
                    sources: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:  # fmt: skip
    """The phenotype table for ``subjects`` (``participant_id`` + columns): {"subject", column: values}, the kind
    of each column ("numeric" float64 / "categorical" str) and every subject the table lists."""
    import pandas as pd

    if not path.is_file():
        raise FileFormatError(
            f"roi_tables: no phenotype table {path}; write a participants.tsv (participant_id + one column per "
            "phenotype), or give participants=FILE."
        )
    table = pd.read_csv(path, sep="," if path.suffix == ".csv" else "\t", dtype={"participant_id": str},
                        na_values=["n/a", "NA", ""], keep_default_na=False)  # fmt: skip
    if "participant_id" not in table.columns:
        raise FileFormatError(
            f"{path}: the phenotype table needs a participant_id column; it has {list(table.columns)}."
        )
    ids = [_subject_id(s) for s in table["participant_id"]]
    repeated = sorted({s for s in ids if ids.count(s) > 1})
    if repeated:
        raise FileFormatError(f"{path}: participants {repeated} appear more than once.")
    absent = [s for s in subjects if s not in ids]
    if absent:
        raise DataError(
            f"roi_tables: subjects {absent} have runs ({sources[absent[0]]}, ...) but no row in {path}; add them."
        )
    available = [c for c in table.columns if c != "participant_id"]
    chosen = available if columns is None else list(columns)
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ConfigError(
            f"roi_tables: phenotypes {unknown} are not columns of {path}; its columns: {available}."
        )
    rows = table.set_index(pd.Index(ids)).loc[subjects]
    out: dict[str, np.ndarray] = {"subject": np.array(subjects)}
    kinds = {}
    for column in chosen:
        values = rows[column]
        if values.isna().any():
            raise DataError(
                f"{path}: phenotype {column!r} is missing (n/a or empty) for {list(values.index[values.isna()])[:5]}."
                f" Fill those values, read other columns (phenotypes=[...]) or other subjects (subjects=[...])."
            )
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        kinds[column] = "numeric" if numeric else "categorical"
        out[column] = values.to_numpy(np.float64) if numeric else values.astype(str).to_numpy(dtype=str)
    return out, kinds, ids


@DATASETS.register(
    "roi_tables",
    space="the atlas of your tables (ROI columns; names from their header or atlas-<name>_dseg.tsv)",
    needs=f"root= with participants.tsv and per run {LAYOUT} (.tsv/.csv/.npy) + .json (RepetitionTime) or tr=; "
    "task runs: _events.tsv",
    help="Your ROI time series (XCP-D-style tables per subject and run) with a participants.tsv of phenotypes: a "
    "cohort for BrainMAE.",
)
def load_roi_tables(
    root: str | Path,
    atlas: str | None = None,
    tasks: Sequence[str] | None = None,
    rest_tasks: Sequence[str] = ("rest",),
    subjects: Sequence[str] | None = None,
    participants: str | Path | None = None,
    phenotypes: Sequence[str] | None = None,
    labels: str | Path | None = None,
    tr: float | None = None,
    baseline_state: str = "rest",
    standardize: bool = True,
) -> Cohort:
    """Every run table of ``atlas`` under ``root`` (sorted by subject, session, task, run) and the phenotypes.

    Parameters
    ----------
    root : the folder holding ``participants.tsv`` and ``sub-*/``
    atlas : the ``atlas-`` (or ``seg-``) label of the tables; default: the only one there
    tasks : the task labels to read (default all); ``rest_tasks``: which of them are rest (no events needed)
    subjects : which subjects (``sub-01`` or ``01``; default every subject with tables)
    participants : the phenotype table (default ``root/participants.tsv``); ``phenotypes``: its columns to read
        (default all but ``participant_id``)
    labels : an atlas table (``name``, optional ``network``; default ``root/atlas-<atlas>_dseg.tsv`` or
        ``root/atlases/atlas-<atlas>/atlas-<atlas>_dseg.tsv`` when present): names for .npy tables, networks
    tr : seconds per frame; default each table's JSON sidecar (both given: they must agree)
    baseline_state : the state of task-run frames no event covers
    standardize : z-score each run per ROI (what BrainMAE's windows expect)

    Returns
    -------
    Cohort
        ``runs``: (n_frames, n_rois) float32 :class:`RoiTimeSeries`, ``run`` "rest" or "task" (with states),
        ``info["source"]`` the file; ``phenotypes``: ``subject`` and each column; one ``tr`` and ``roi_names``.
    """
    root = Path(root)
    tables, atlas = find_tables(root, atlas, tasks, subjects)
    label_file = Path(labels) if labels is not None else next(
        (p for p in (root / f"atlas-{atlas}_dseg.tsv", root / "atlases" / f"atlas-{atlas}" / f"atlas-{atlas}_dseg.tsv")
         if p.is_file()), None)  # fmt: skip
    names, networks = read_labels(label_file) if label_file is not None else (None, None)
    runs: list[RoiTimeSeries] = []
    for path in tables:
        run = read_run(path, tr, tuple(rest_tasks), baseline_state, standardize)
        if path.suffix == ".npy" and names is not None:
            if run.n_rois != len(names):
                raise DataError(
                    f"roi_tables: {path} has {run.n_rois} ROI columns, {label_file} names {len(names)}."
                )
            run.roi_names = list(names)
        reference = (names, str(label_file)) if names is not None else (
            (runs[0].roi_names, runs[0].info["source"]) if runs else (None, None))  # fmt: skip
        if reference[0] is not None and run.roi_names != list(reference[0]):
            differ = next(i for i, (a, b) in enumerate(zip(run.roi_names, reference[0], strict=False)) if a != b) \
                if run.n_rois == len(reference[0]) else None  # fmt: skip
            found = f"{run.n_rois} ROIs" if differ is None else f"column {differ} {run.roi_names[differ]!r}"
            expected = f"{len(reference[0])}" if differ is None else f"{reference[0][differ]!r}"
            raise DataError(
                f"roi_tables: {path} has {found} where {reference[1]} has {expected}; every table of one atlas "
                "must have the same ROI columns in the same order"
                + (" (a .npy table has no names: give labels=FILE)." if path.suffix == ".npy" else ".")
            )
        if runs and run.tr != runs[0].tr:
            raise DataError(
                f"roi_tables: {path} has TR {run.tr} s, {runs[0].info['source']} {runs[0].tr} s; runs must share one TR."
            )
        if networks is not None:
            run.networks = list(networks)
        runs.append(run)
    sources = {r.subject: r.info["source"] for r in reversed(runs)}
    found = sorted(sources)
    table = Path(participants) if participants is not None else root / "participants.tsv"
    values, kinds, listed = read_phenotypes(table, found, phenotypes, sources)
    chosen = None if subjects is None else {_subject_id(s) for s in subjects}
    without = sorted(s for s in listed if s not in found and (chosen is None or s in chosen))
    if without:
        log.warning("roi_tables: %d subjects of %s have no %s tables and are left out: %s", len(without), table,
                    atlas, without[:10])  # fmt: skip
    n_rest = sum(r.run == "rest" for r in runs)
    info = {
        "summary": f"{len(found)} subjects, {runs[0].n_rois} ROIs (atlas {atlas}), TR {runs[0].tr} s, {n_rest} rest "
        f"+ {len(runs) - n_rest} task runs (roi_tables {root})",
        "root": str(root),
        "atlas": atlas,
        "labels": None if label_file is None else str(label_file),
        "participants": str(table),
        "phenotypes": kinds,
        "runs": {s: [r.info["source"] for r in runs if r.subject == s] for s in found},
        "subjects_without_runs": without,
        "standardize": standardize,
        "preprocessing": "each run z-scored per ROI" if standardize else "none (the tables as they are)",
    }
    return Cohort("roi_tables", runs, values, runs[0].tr, list(runs[0].roi_names), networks, info)


__all__ = ["load_roi_tables", "entities", "events_file", "read_phenotypes"]
