"""The inputs of one run's single-trial GLM (:mod:`brainkit.data.glm`), checked: the events table (BIDS
``events.tsv``: ``onset`` and ``duration`` in seconds from the run's start), the confounds (one row per volume)
and the acquisition times of the volumes. Every bad row raises :class:`~brainkit.errors.DataError` naming it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainkit.errors import DataError

MIN_ONSET = -24.0  # nilearn's min_onset: events earlier than this (s) are dropped from its design


def frame_times(n_scans: int, tr: float, slice_time_ref: float = 0.0) -> np.ndarray:
    """Acquisition time of each volume in seconds from the run's start: (n_scans,)."""
    return (np.arange(n_scans) + slice_time_ref) * tr


def check_events(events: pd.DataFrame, n_scans: int, tr: float, source: str = "events") -> pd.DataFrame:
    """A validated copy of ``events`` with float ``onset`` and ``duration`` (seconds from the run's start).

    Raises :class:`DataError` naming the missing column, or the row (its index label) whose onset or duration
    is not a number, whose duration is negative, or whose onset is at or past the run's end
    (``n_scans x tr``) or earlier than -24 s. Negative onsets are allowed (BIDS: events before the first
    kept volume, e.g. during discarded dummy scans).
    """
    if not isinstance(events, pd.DataFrame):
        raise DataError(f"{source}: events must be a pandas DataFrame, found {type(events).__name__}.")
    missing = [column for column in ("onset", "duration") if column not in events.columns]
    if missing:
        raise DataError(
            f"{source}: the events table has no {' or '.join(repr(c) for c in missing)} column "
            f"(columns: {list(events.columns)}). BIDS events.tsv files need onset and duration in seconds."
        )
    out = events.copy()
    end = n_scans * tr
    for column in ("onset", "duration"):
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            row = out.index[bad.to_numpy()][0]
            raise DataError(
                f"{source}: row {row} has {column} {events.loc[row, column]!r}, not a number of seconds "
                f"({int(bad.sum())} such row(s)). Fill it in or drop the row."
            )
        out[column] = values.astype(float)
    negative = out["duration"] < 0
    if negative.any():
        row = out.index[negative.to_numpy()][0]
        raise DataError(f"{source}: row {row} has a negative duration {out.loc[row, 'duration']} s.")
    early = out["onset"] < MIN_ONSET
    if early.any():
        row = out.index[early.to_numpy()][0]
        raise DataError(
            f"{source}: row {row} has onset {out.loc[row, 'onset']} s, more than {-MIN_ONSET:g} s before the "
            "run's first volume (nilearn would drop it). Drop the row or fix its onset."
        )
    late = out["onset"] >= end
    if late.any():
        row = out.index[late.to_numpy()][0]
        raise DataError(
            f"{source}: row {row} has onset {out.loc[row, 'onset']} s, at or past the run's end ({end:g} s = "
            f"{n_scans} volumes x TR {tr:g} s; {int(late.sum())} such row(s)). Is the TR right, or are these "
            "the events of another run?"
        )
    return out


def check_confounds(
    confounds: pd.DataFrame | None, n_scans: int, source: str = "confounds"
) -> pd.DataFrame | None:
    """Confound columns as floats, one row per volume; n/a (e.g. fMRIPrep's first row of derivatives and
    framewise displacement) become the column's mean over the other rows."""
    if confounds is None:
        return None
    if not isinstance(confounds, pd.DataFrame):
        raise DataError(f"{source}: confounds must be a pandas DataFrame, found {type(confounds).__name__}.")
    if len(confounds) != n_scans:
        raise DataError(
            f"{source}: the confounds have {len(confounds)} rows but the run has {n_scans} volumes "
            "(one row per volume is needed). Use the confounds file of this run."
        )
    out = pd.DataFrame(index=range(n_scans))
    for column in confounds.columns:
        values = pd.to_numeric(confounds[column], errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(values)
        if not finite.any():
            raise DataError(f"{source}: confound column {column!r} holds no numbers.")
        out[str(column)] = np.where(finite, values, values[finite].mean())
    return out


def _check_names(confounds: pd.DataFrame | None, source: str) -> None:
    if confounds is not None and any(
        c == "constant" or c.startswith(("trial_", "other_", "drift_", "lss_")) for c in confounds.columns
    ):
        raise DataError(
            f"{source}: confound names may not be 'constant' or start with trial_/other_/drift_/lss_ "
            f"(found {list(confounds.columns)}); rename those columns."
        )


def _checked(events, other_events, confounds, n_scans: int, tr: float, source: str) -> tuple:
    """The validated (events, other_events, confounds) of one run (see :func:`check_events`)."""
    events = check_events(events, n_scans, tr, source)
    if other_events is not None:
        other_events = check_events(other_events, n_scans, tr, f"{source} (other events)")
    confounds = check_confounds(confounds, n_scans, f"{source} confounds")
    _check_names(confounds, source)
    return events, other_events, confounds
