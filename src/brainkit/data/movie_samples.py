"""Movie samples on the surface (SIM): samples, clip splits, generalisation settings, content keys, the batch draw
of distinct contents, and the arrays training reads, on a :class:`MovieSurfaceData`-like dataset.

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
- **Batches** (:class:`BatchDraw`): each holds DISTINCT clip contents, each with one of its runs and a training
  subject drawn at random, so a contrastive loss never treats a copy of the positive as a negative (drawing
  samples uniformly would put the same clip from two subjects in a batch about once per batch of 32 at 12
  subjects). An epoch is one pass over the training contents, in an order drawn from the epoch's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from brainkit.data.frame_file import ArrayFrames, FrameFile, frame_source
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

    def __getitem__(self, rows: slice | np.ndarray) -> Samples:
        """The samples at ``rows`` (a slice, an index array or a bool mask)."""
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


def sample_frames(fmri, samples: Samples, lag: int, n_frames: int) -> np.ndarray:
    """The samples' frames (len(samples), n_frames, n_vertices), read through :func:`frame_source` (from disk,
    window by window, when ``fmri`` is a memory map of a whole ``.npy`` file)."""
    return frame_source(fmri).windows(samples.subject, samples.run, samples.clip + lag, n_frames)


def gather_clips(fmri, patches: np.ndarray, samples: Samples, lag: int, n_frames: int) -> torch.Tensor:
    """The samples' fMRI: (len(samples), n_frames, n_patches, n_patch_vertices) float32. ``fmri``: the array
    (n_subjects, n_runs, n_frames_total, n_vertices) or its :func:`frame_source`."""
    values = sample_frames(fmri, samples, lag, n_frames)  # (n, n_frames, n_vertices)
    return torch.from_numpy(np.ascontiguousarray(values[:, :, patches], dtype=np.float32))


def standardise_features(features: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    """(n_runs, n_clips, d) z-scored per dimension with the training clips' mean and sd."""
    rows = features[train_mask]
    mean, sd = rows.mean(axis=0), rows.std(axis=0)
    return ((features - mean) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def monitoring_set(pool: Samples, keys: np.ndarray, n: int, seed: int) -> Samples:
    """Up to ``n`` samples of ``pool`` with distinct clip contents (``keys`` (n_runs, n_clips)), drawn once."""
    content = keys[pool.run, pool.clip]
    _, first = np.unique(content, return_index=True)
    rng = np.random.default_rng(seed)
    return pool[np.sort(rng.choice(first, min(n, len(first)), replace=False))]


@dataclass
class MovieArrays:
    """What training and embedding read: fmri (n_subjects, n_runs, n_frames, n_vertices), patches
    (n_patches, n_patch_vertices), video / audio (n_runs, n_clips, d) standardised, keys (n_runs, n_clips).

    ``fmri`` is read through :func:`frame_source`: a memory map of a whole ``.npy`` file (the datasets' cached
    builds) is read from disk batch by batch, never held, so memory stays flat however many subjects it has."""

    fmri: np.ndarray | ArrayFrames | FrameFile
    patches: np.ndarray
    video: np.ndarray
    audio: np.ndarray
    keys: np.ndarray
    lag: int
    n_frames: int

    def __post_init__(self) -> None:
        self.fmri = frame_source(self.fmri)

    def frames(self, samples: Samples) -> np.ndarray:
        """(len(samples), n_frames, n_vertices): the samples' frames, in the array's dtype."""
        return sample_frames(self.fmri, samples, self.lag, self.n_frames)

    def clips(self, samples: Samples) -> torch.Tensor:
        return gather_clips(self.fmri, self.patches, samples, self.lag, self.n_frames)

    def features(self, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(self.video[samples.run, samples.clip]),
                torch.from_numpy(self.audio[samples.run, samples.clip]))  # fmt: skip


class BatchDraw:
    """Batches of distinct clip contents from ``train_subjects`` x the clips in ``clip_mask`` (module doc).

    ``draw(epoch_generator, batch_size)`` is a pure function of the generator's state: the contents in a random
    order cut into ``n_contents // batch_size`` batches (``min(batch_size, n_contents)`` each), then for each
    sample one run holding its content and one training subject."""

    def __init__(self, keys: np.ndarray, train_subjects: np.ndarray, clip_mask: np.ndarray) -> None:
        runs, clips = np.nonzero(clip_mask)
        self.unique, inverse = np.unique(keys[runs, clips], return_inverse=True)
        self.instances = [np.flatnonzero(inverse == k) for k in range(len(self.unique))]
        self.runs, self.clips, self.subjects = runs, clips, np.asarray(train_subjects)

    def __len__(self) -> int:
        return len(self.unique)

    def __call__(self, generator: torch.Generator, batch_size: int) -> list[Samples]:
        batch = min(batch_size, len(self.unique))
        order = torch.randperm(len(self.unique), generator=generator).numpy()[
            : len(self.unique) // batch * batch
        ]
        pick = torch.rand(len(order), generator=generator).numpy()
        rows = np.array(
            [self.instances[k][int(u * len(self.instances[k]))] for k, u in zip(order, pick)], int
        )
        subjects = self.subjects[
            torch.randint(len(self.subjects), (len(order),), generator=generator).numpy()
        ]
        samples = Samples(subjects, self.runs[rows], self.clips[rows])
        return [samples[b * batch : (b + 1) * batch] for b in range(len(order) // batch)]


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
        if name == "truth_map" and data.truth_map is None:  # real data: no simulated truth
            continue
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
    "BatchDraw",
    "MovieArrays",
    "Samples",
    "check_dataset",
    "choose_subjects",
    "content_keys",
    "gather_clips",
    "monitoring_set",
    "sample_frames",
    "samples_of",
    "setting_segments",
    "split_clips",
    "standardise_features",
    "usable_clips",
]
