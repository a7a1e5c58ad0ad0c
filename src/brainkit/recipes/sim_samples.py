"""SIM's samples, clip splits and generalisation settings, on a :class:`MovieSurfaceData`-like dataset.

Sizes (from the dataset): ``fmri`` (n_subjects, n_runs, n_frames, n_vertices); ``segment_of`` and ``retest``
(n_runs, n_clips) with ``n_clips = n_frames - 2`` (clip ``c`` = seconds [c, c + 3)).

- A **sample** is (subject, run, clip): the fMRI frames ``clip + lag ... clip + lag + n_frames - 1`` (the frames
  as channels), cut into triangular patches -> (n_frames, n_patches, n_patch_vertices), paired with the clip's
  video and audio features (SIM: the fMRI sample starting at frame t goes with clip max(0, t - lag)). Clips of
  rest, and clips whose fMRI would run past the end of the run, are never used.
- **Clips** (SIM's ``movie_sampling_strategy: half``): in every run, each movie segment's usable clips are cut in
  two; the second half is held out ("unseen clips"), the first half trains, minus its last ``gap_clips`` clips
  (they overlap the first held-out clip in time, and the haemodynamic response smears them further). The
  test-retest segment is cut the same way, at the same place in every run, so its held-out half is unseen in
  every run although its content repeats; candidates are drawn within one run, so a repeat never competes with
  itself, and in training its repeats share one content key (:func:`content_keys`), so a batch never holds the
  same content twice.
- **Subjects**: ``n_test_subjects`` drawn with a seed are unseen; the model trains on the others x training clips.
- **Settings**: (a) unseen subjects, training clips; (b) training subjects, unseen clips; (c) unseen subjects,
  unseen clips. The candidate pool of a setting is its own clip set (the other clips are marked -1, as rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from brainkit.errors import ConfigError, DataError

# name -> (description, subject group, clip group)
SETTINGS: dict[str, tuple[str, str, str]] = {
    "unseen_subjects": ("unseen subjects, training clips", "test", "train"),
    "unseen_clips": ("training subjects, unseen clips", "train", "held_out"),
    "unseen_both": ("unseen subjects, unseen clips", "test", "held_out"),
}


@dataclass(frozen=True)
class Samples:
    """Sample ``i`` = the fMRI of ``subject[i]`` in ``run[i]`` paired with clip ``clip[i]`` (int arrays (n,))."""

    subject: np.ndarray
    run: np.ndarray
    clip: np.ndarray

    def __len__(self) -> int:
        return len(self.clip)

    def take(self, rows: np.ndarray) -> Samples:
        return Samples(self.subject[rows], self.run[rows], self.clip[rows])


def usable_clips(segment_of: np.ndarray, n_frames_total: int, lag: int, n_frames: int) -> np.ndarray:
    """(n_runs, n_clips) bool: a movie clip (segment >= 0) whose fMRI frames lie inside the run."""
    clips = np.arange(segment_of.shape[1])
    return (segment_of >= 0) & (clips + lag + n_frames <= n_frames_total)[None]


def split_clips(segment_of: np.ndarray, usable: np.ndarray, gap_clips: int) -> dict[str, np.ndarray]:
    """``{"train", "held_out"}`` -> (n_runs, n_clips) bool: each segment's first / second half (module doc)."""
    if gap_clips < 0:
        raise ConfigError(f"gap_clips must be >= 0, found {gap_clips}.")
    train, held_out = np.zeros_like(usable), np.zeros_like(usable)
    for run in range(segment_of.shape[0]):
        for segment in np.unique(segment_of[run][usable[run]]):
            clips = np.flatnonzero((segment_of[run] == segment) & usable[run])
            half = len(clips) // 2
            train[run, clips[: max(0, half - gap_clips)]] = True
            held_out[run, clips[half:]] = True
    if not train.any() or not held_out.any():
        raise DataError("the movie segments are too short to split into training and unseen halves.")
    return {"train": train, "held_out": held_out}


def content_keys(retest: np.ndarray) -> np.ndarray:
    """(n_runs, n_clips) int: one key per clip's content; the test-retest clips of every run share their keys
    by position within the repeated segment."""
    n_runs, n_clips = retest.shape
    keys = np.arange(n_runs * n_clips).reshape(n_runs, n_clips)
    for run in range(n_runs):
        where = np.flatnonzero(retest[run])
        keys[run, where] = n_runs * n_clips + (where - where[0] if len(where) else where)
    return keys


def choose_subjects(n_subjects: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """``{"train", "test"}`` -> sorted subject indices; ``n_test`` drawn with ``seed``."""
    if not 1 <= n_test < n_subjects:
        raise ConfigError(
            f"n_test_subjects must be between 1 and n_subjects - 1 = {n_subjects - 1}, found {n_test}."
        )
    order = np.random.default_rng(seed).permutation(n_subjects)
    return {"train": np.sort(order[n_test:]), "test": np.sort(order[:n_test])}


def samples_of(subjects: np.ndarray, clip_mask: np.ndarray) -> Samples:
    """Every (subject, run, clip) with ``clip_mask[run, clip]``: subjects outer, then runs, then clips."""
    runs, clips = np.nonzero(clip_mask)
    n = len(clips)
    return Samples(
        np.repeat(np.asarray(subjects), n), np.tile(runs, len(subjects)), np.tile(clips, len(subjects))
    )


def setting_segments(segment_of: np.ndarray, clip_mask: np.ndarray) -> np.ndarray:
    """``segment_of`` with every clip outside ``clip_mask`` marked -1 (out of the candidate pool)."""
    return np.where(clip_mask, segment_of, -1)


def gather_clips(
    fmri: np.ndarray, patches: np.ndarray, samples: Samples, lag: int, n_frames: int
) -> torch.Tensor:
    """The samples' fMRI: (len(samples), n_frames, n_patches, n_patch_vertices) float32."""
    offsets = np.arange(n_frames)
    frames = (samples.clip + lag)[:, None] + offsets  # (n, n_frames)
    values = fmri[samples.subject[:, None], samples.run[:, None], frames]  # (n, n_frames, n_vertices)
    return torch.from_numpy(np.ascontiguousarray(values[:, :, patches], dtype=np.float32))


def standardise_features(features: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    """(n_runs, n_clips, d) z-scored per dimension with the training clips' mean and sd."""
    rows = features[train_mask]
    mean, sd = rows.mean(axis=0), rows.std(axis=0)
    return ((features - mean) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def check_dataset(data) -> None:
    """Raise :class:`DataError` unless the arrays of ``data`` agree with each other (the shapes above)."""
    n_subjects, n_runs, n_frames, n_vertices = data.fmri.shape
    n_clips = n_frames - 2
    expected = {
        "segment_of": (n_runs, n_clips),
        "retest": (n_runs, n_clips),
        "video": (n_runs, n_clips),
        "audio": (n_runs, n_clips),
        "thumbnails": (n_runs, n_clips),
        "cortex": (n_vertices,),
        "truth_map": (n_vertices,),
    }
    for name, shape in expected.items():
        found = np.shape(getattr(data, name))
        if found[: len(shape)] != shape:
            raise DataError(
                f"movie dataset: {name} has shape {found}, expected {shape} + ... for fmri {data.fmri.shape} "
                "(n_subjects, n_runs, n_frames, n_vertices) with n_clips = n_frames - 2."
            )
    if len(data.subjects) != n_subjects:
        raise DataError(f"movie dataset: {len(data.subjects)} subject names for {n_subjects} subjects.")


__all__ = [
    "SETTINGS",
    "Samples",
    "check_dataset",
    "choose_subjects",
    "content_keys",
    "gather_clips",
    "samples_of",
    "setting_segments",
    "split_clips",
    "standardise_features",
    "usable_clips",
]
