"""A small synthetic movie-on-the-surface dataset with the fields of the sim contract (MovieSurfaceData), for
the SIM recipe's tests: order-3 icosphere, each run = rest, two 92-s segments, the 30-s test-retest segment,
rest. A latent stimulus time course drives the video and audio features and, 6 s later and through smooth
subject-specific maps, the fMRI (plus noise), so retrieval can be learnt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainkit.surface import icosphere

LAYOUT = (("rest", 10), ("movie", 92), ("rest", 6), ("movie", 92), ("rest", 6), ("retest", 30), ("rest", 10))


@dataclass
class SyntheticMovieData:
    subjects: list[str]
    runs: list[str]
    order: int
    fmri: np.ndarray
    cortex: np.ndarray
    segment_of: np.ndarray
    retest: np.ndarray
    video: np.ndarray
    audio: np.ndarray
    thumbnails: np.ndarray
    truth_map: np.ndarray
    info: dict = field(default_factory=dict)
    tr: float = 1.0
    lag: int = 6


def synthetic_movie_data(
    n_subjects: int = 5, n_runs: int = 2, snr: float = 2.0, seed: int = 0, order: int = 3, layout=LAYOUT
):
    rng = np.random.default_rng(seed)
    n_latent = 6
    unit = icosphere(order).unit_vertices()
    n_vertices = len(unit)
    cortex = unit[:, 0] > -0.8  # a "medial wall" cap
    n_frames = sum(length for _, length in layout)
    n_clips = n_frames - 2
    segment_of = np.full((n_runs, n_clips), -1)
    retest = np.zeros((n_runs, n_clips), dtype=bool)
    latent = np.zeros((n_runs, n_frames, n_latent))
    retest_length = next(length for kind, length in layout if kind == "retest")
    retest_course = np.cumsum(rng.standard_normal((retest_length, n_latent)), axis=0) * 0.3
    next_id = 0
    for run in range(n_runs):
        start = 0
        for kind, length in layout:
            if kind != "rest":
                segment_of[run, start : start + length - 2] = next_id
                next_id += 1
                course = (
                    retest_course
                    if kind == "retest"
                    else np.cumsum(rng.standard_normal((length, n_latent)), 0) * 0.3
                )
                latent[run, start : start + length] = course - course.mean(axis=0)
                if kind == "retest":
                    retest[run, start : start + length - 2] = True
            start += length
    clip_latent = np.stack([latent[:, c : c + 3].mean(axis=1) for c in range(n_clips)], axis=1)
    video = clip_latent @ rng.standard_normal((n_latent, 12)) + 0.1 * rng.standard_normal(
        (n_runs, n_clips, 12)
    )
    audio = clip_latent @ rng.standard_normal((n_latent, 10)) + 0.1 * rng.standard_normal(
        (n_runs, n_clips, 10)
    )
    centres = rng.standard_normal((n_latent, 3))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    base = np.exp(-8 * (1 - unit @ centres.T))  # (n_vertices, n_latent) smooth blobs
    fmri = np.zeros((n_subjects, n_runs, n_frames, n_vertices), dtype=np.float32)
    weights = []
    for subject in range(n_subjects):
        w = base * rng.uniform(0.6, 1.4, size=n_latent)
        weights.append(np.linalg.norm(w, axis=1))
        for run in range(n_runs):
            lagged = np.zeros((n_frames, n_latent))
            lagged[6:] = latent[run, :-6]
            signal = lagged @ w.T
            noise = rng.standard_normal(signal.shape) * signal.std() / snr
            frames = (signal + noise) * cortex
            values = frames[:, cortex]
            frames[:, cortex] = (values - values.mean(1, keepdims=True)) / values.std(1, keepdims=True)
            fmri[subject, run] = frames
    colours = rng.integers(0, 255, size=(next_id, 3))
    thumbnails = np.zeros((n_runs, n_clips, 8, 8, 3), dtype=np.uint8)
    thumbnails[segment_of >= 0] = colours[segment_of[segment_of >= 0]][:, None, None]
    return SyntheticMovieData(
        subjects=[f"sub-{i + 1:02d}" for i in range(n_subjects)],
        runs=[f"MOVIE{i + 1}" for i in range(n_runs)],
        order=order,
        fmri=fmri,
        cortex=cortex,
        segment_of=segment_of,
        retest=retest,
        video=video.astype(np.float32),
        audio=audio.astype(np.float32),
        thumbnails=thumbnails,
        truth_map=(np.mean(weights, axis=0) * cortex).astype(np.float32),
        info={"snr": snr},
    )


def recording_resume(loop, flags: list):
    """``loop`` (a stand-in for the training loop, e.g. :func:`brainkit.testing.killing_train`'s) that first
    appends (phase name, whether it continues a saved state) to ``flags``: a resumed phase must continue."""

    def train(task, config, *args, name=None, resume=False, **kwargs):
        flags.append((name, resume))
        return loop(task, config, *args, name=name, resume=resume, **kwargs)

    return train
