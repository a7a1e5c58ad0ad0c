"""Windows of ROI runs as the BrainMAE protocol reads them: checked window stacks, windows of many runs,
transient-state windows of task runs (labelled after the haemodynamic delay), and the static-connectivity
features of a window (the baseline the learned readouts are compared with)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from brainkit.data.timeseries import RoiTimeSeries, connectivity, fisher_z, upper_triangle, windows
from brainkit.errors import ConfigError, DataError

HRF_DELAY_SECONDS = 5.0  # task labels are shifted by this much before windows are labelled


def check_windows(values: np.ndarray, n_rois: int, name: str) -> torch.Tensor:
    """``values`` as float32 windows (n_windows, n_frames, n_rois), or a DataError saying what was found."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 3 or values.shape[2] != n_rois or len(values) == 0:
        raise DataError(
            f"{name}: expected windows (n_windows, n_frames, {n_rois} ROIs), found {values.shape}."
        )
    if not np.isfinite(values).all():
        raise DataError(f"{name}: windows contain NaN or inf.")
    return torch.from_numpy(values)


def run_windows(runs: list[RoiTimeSeries], n_frames: int, step: int) -> np.ndarray:
    """The ``n_frames`` windows every ``step`` frames of each run, stacked: (n_windows, n_frames, n_rois)."""
    return np.concatenate([windows(r.values, n_frames, step) for r in runs])


@dataclass
class StateWindows:
    padded: np.ndarray  # (n, segment_frames, n_rois): the window centred in one segment, zeros around it
    raw: np.ndarray  # (n, window_frames, n_rois)
    labels: np.ndarray  # (n,) state names
    groups: np.ndarray  # (n,) subjects
    n_dropped: int  # windows that straddle a state change (after the HRF shift), left out


def transient_windows(cohort, subjects: list[str], frames: int, seconds: float) -> StateWindows:
    """Non-overlapping ``seconds`` windows of the task runs, labelled by the state ``HRF_DELAY_SECONDS`` earlier."""
    width = max(2, int(round(seconds / cohort.tr)))
    if width > frames:
        raise ConfigError(
            f"transient_seconds={seconds} gives {width}-frame windows, longer than a {frames}-frame segment; "
            "use a transient_seconds at most segment_seconds."
        )
    delay = int(round(HRF_DELAY_SECONDS / cohort.tr))
    padded, raw, labels, groups, dropped = [], [], [], [], 0
    left = (frames - width) // 2
    for run in cohort.runs_of("task", subjects):
        for start in range(delay, run.n_times - width + 1, width):
            states = set(run.states[start - delay : start - delay + width])
            if len(states) != 1:
                dropped += 1
                continue
            window = run.values[start : start + width]
            block = np.zeros((frames, run.n_rois), dtype=np.float32)
            block[left : left + width] = window
            padded.append(block)
            raw.append(window)
            labels.append(states.pop())
            groups.append(run.subject)
    return StateWindows(np.stack(padded), np.stack(raw), np.array(labels), np.array(groups), dropped)


def fc_window_features(raw: np.ndarray) -> np.ndarray:
    """The connectivity baseline for short windows (n, n_frames, n_rois): mean activity and correlation edges."""
    return np.stack(
        [np.concatenate([w.mean(axis=0), upper_triangle(fisher_z(connectivity(w)))]) for w in raw]
    )
