"""The stimulus side of ``movie_surface_like``: the run design (which second shows what), the rendered
movie segments and soundtracks, their per-second embeddings (cached) and the per-run series built from them.

A run is a sequence of seconds; ``Design.second_segment[r, t]`` is the segment shown at second t of run r (-1 =
rest) and ``second_offset`` the second within it. Everything is deterministic from the config's seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import FILE_MODE
from brainkit.data.builtin.build_cache import UNREADABLE
from brainkit.data.builtin.movie_surface_like_config import MovieSurfaceConfig
from brainkit.errors import ConfigError
from brainkit.stimuli.av_encoders import AUDIO_RATE

logger = logging.getLogger(__name__)

STIMULUS_VERSION = 2  # bump when the rendering of movies or soundtracks changes (cache key)


# ---------------------------------------------------------------------------------------------------------------
# The run design: which second of each run shows what


@dataclass(frozen=True)
class Design:
    """``second_segment[r]`` (n_frames,): the segment shown at each second of run r (-1 rest);
    ``second_offset[r]``: the second within that segment; ``lengths``: segment id -> length in seconds."""

    second_segment: np.ndarray  # int (n_runs, n_frames)
    second_offset: np.ndarray  # int (n_runs, n_frames)
    lengths: dict[int, int]
    retest_id: int


def run_design(config: MovieSurfaceConfig) -> Design:
    """Segment lengths drawn from the seed; runs padded with rest at the end to one common length."""
    rng = np.random.default_rng([config.seed, 1])
    retest_id = config.n_runs * config.n_segments
    lengths = {
        r * config.n_segments + j: int(rng.integers(config.segment_seconds[0], config.segment_seconds[1] + 1))
        for r in range(config.n_runs)
        for j in range(config.n_segments)
    }
    lengths[retest_id] = config.retest_seconds
    layouts = []
    for r in range(config.n_runs):
        layout = [(-1, config.first_rest_seconds)]
        for j in range(config.n_segments):
            layout += [
                (r * config.n_segments + j, lengths[r * config.n_segments + j]),
                (-1, config.rest_seconds),
            ]
        layouts.append(layout + [(retest_id, config.retest_seconds)])
    n_frames = max(sum(n for _, n in layout) for layout in layouts) + config.last_rest_seconds
    segment = np.full((config.n_runs, n_frames), -1, dtype=np.int64)
    offset = np.zeros((config.n_runs, n_frames), dtype=np.int64)
    for r, layout in enumerate(layouts):
        t = 0
        for seg, n in layout:
            segment[r, t : t + n] = seg
            offset[r, t : t + n] = np.arange(n)
            t += n
    return Design(segment, offset, lengths, retest_id)


def clip_segments(design: Design) -> np.ndarray:
    """(n_runs, n_clips): the segment of clip c (seconds c..c+2) when all three seconds are in it, else -1."""
    s = design.second_segment
    same = (s[:, :-2] == s[:, 1:-1]) & (s[:, 1:-1] == s[:, 2:])
    return np.where(same, s[:, :-2], -1)


# ---------------------------------------------------------------------------------------------------------------
# Stimuli and their per-second embeddings (cached)


def stimulus_key(config: MovieSurfaceConfig, design: Design, role: str = "video") -> dict[str, Any]:
    """What the rendered stimuli depend on (a cache key); the audio's adds how the soundtrack is made, so a
    soundtrack change keeps the cached video embeddings."""
    from brainkit.stimuli.speech import recordings_fingerprint

    key: dict[str, Any] = {
        "version": STIMULUS_VERSION,
        "seed": config.seed,
        "fps": config.fps,
        "frame_size": config.frame_size,
        "lengths": sorted(design.lengths.items()),
        "speech": recordings_fingerprint(config.speech_dir),
    }
    if role == "audio" and config.soundtrack != "independent":
        key |= {"soundtrack": config.soundtrack, "n_voices": config.n_voices, "soundtrack_version": 1}
    return key


def shot_voices(shots: list, n_voices: int, rng: np.random.Generator) -> list[int]:
    """The voice of each shot: every distinct thing shown (:attr:`Shot.focus`) gets one of ``n_voices``, in
    turn by first appearance from a random start, so it sounds the same wherever it returns."""
    start, of = int(rng.integers(n_voices)), {}
    for shot in shots:
        of.setdefault(shot.focus, (start + len(of)) % n_voices)
    return [of[shot.focus] for shot in shots]


def render_segments(config: MovieSurfaceConfig, design: Design) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """segment id -> (frames uint8 (n_seconds, fps, size, size, 3), audio float32 (n_seconds, 16000))."""
    from brainkit.stimuli.movies import movie_segment
    from brainkit.stimuli.speech import SAMPLE_RATE, draw_voices, load_recordings, scene_track, speech_track

    _, waves = load_recordings(config.speech_dir)
    out = {}
    for seg, n in design.lengths.items():
        frames, shots = movie_segment(n, config.fps, config.frame_size, seed=config.seed * 1000 + seg)
        if config.soundtrack == "independent":
            audio, _ = speech_track(n, waves, seed=config.seed * 1000 + seg)
        else:  # "scenes": each shot spoken by the voice of what it shows
            rng = np.random.default_rng([config.seed, 4, seg])
            voices = draw_voices(config.n_voices, rng)
            spans = [(shot.start / config.fps, (shot.start + shot.n_frames) / config.fps, v)
                     for shot, v in zip(shots, shot_voices(shots, config.n_voices, rng))]  # fmt: skip
            audio, _ = scene_track(n, spans, voices, waves, seed=config.seed * 1000 + seg)
        out[seg] = (
            frames.reshape(n, config.fps, config.frame_size, config.frame_size, 3),
            audio.reshape(n, SAMPLE_RATE),
        )
    return out


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def per_second_embeddings(
    role: str,
    config: MovieSurfaceConfig,
    design: Design,
    segments: dict[int, tuple[np.ndarray, np.ndarray]] | None,
    root: Path,
    batch_seconds: int = 16,
) -> tuple[dict[int, np.ndarray], np.ndarray, str]:
    """({segment id: (n_seconds, d)}, rest second (d,), fingerprint) for ``role`` "video" or "audio", read from
    ``root/movie_surface_like/embeddings`` when cached there, else computed (``segments`` rendered on demand)."""
    from brainkit.stimuli.encoders import get_encoder
    from brainkit.stimuli.movies import rest_frames

    name = config.video_encoder if role == "video" else config.audio_encoder
    options = config.video_options if role == "video" else config.audio_options
    encoder = get_encoder(name, **options)
    if encoder.modality != role:
        raise ConfigError(
            f"MovieSurfaceConfig.{role}_encoder {name!r} is a {encoder.modality} encoder, not {role}."
        )
    key = json.dumps(
        {"stimuli": stimulus_key(config, design, role), "encoder": encoder.fingerprint}, sort_keys=True
    )
    path = (
        root
        / "movie_surface_like"
        / "embeddings"
        / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    )
    if path.is_file():
        try:
            with np.load(path) as data:
                return (
                    {seg: data[f"segment{seg}"] for seg in design.lengths},
                    data["rest"],
                    encoder.fingerprint,
                )
        except UNREADABLE as err:
            logger.warning("Cached embeddings %s are unreadable (%s); recomputing them.", path, err)
    segments = segments if segments is not None else render_segments(config, design)
    start, out = time.perf_counter(), {}
    for seg in sorted(design.lengths):
        stimulus = segments[seg][0 if role == "video" else 1]
        out[seg] = np.concatenate(
            [encoder.encode(stimulus[i : i + batch_seconds]) for i in range(0, len(stimulus), batch_seconds)]
        )
    if role == "video":
        blank = rest_frames(config.fps, config.frame_size)[None]
    else:
        blank = np.zeros((1, AUDIO_RATE), dtype=np.float32)
    rest = encoder.encode(blank)[0]
    logger.info(
        "Embedded %d s of %s with %s in %.1f s.",
        sum(design.lengths.values()),
        role,
        name,
        time.perf_counter() - start,
    )
    _atomic_save_npz(path, rest=rest, **{f"segment{seg}": v for seg, v in out.items()})
    return out, rest, encoder.fingerprint


def run_series(design: Design, per_segment: dict[int, np.ndarray], rest: np.ndarray | None) -> np.ndarray:
    """(n_runs, n_frames, ...) the per-second values of each run; rest seconds get ``rest`` (or 0 if None)."""
    example = next(iter(per_segment.values()))
    out = np.zeros((*design.second_segment.shape, *example.shape[1:]), dtype=example.dtype)
    for r in range(len(out)):
        for t, (seg, k) in enumerate(zip(design.second_segment[r], design.second_offset[r])):
            if seg >= 0:
                out[r, t] = per_segment[seg][k]
            elif rest is not None:
                out[r, t] = rest
    return out


def thumbnails(config: MovieSurfaceConfig, design: Design, segments: dict) -> np.ndarray:
    """(n_runs, n_clips, t, t, 3): the middle frame of each clip (second c + 1, frame fps // 2), downsized."""
    from PIL import Image

    from brainkit.stimuli.movies import rest_frames

    size = config.thumbnail_size

    def small(frame: np.ndarray) -> np.ndarray:
        return np.asarray(
            Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8
        )

    per_segment = {
        seg: np.stack([small(f) for f in frames[:, config.fps // 2]]) for seg, (frames, _) in segments.items()
    }
    seconds = run_series(design, per_segment, rest_frames(1, size)[0])
    return seconds[:, 1:-1]


def pca_series(
    per_segment: dict[int, np.ndarray], design: Design, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """(PCA scores (n_runs, n_frames, k) of the per-second embeddings, fitted on all movie seconds and 0 in rest;
    the explained variance ratio of each kept component (k,))."""
    from brainkit.data.builtin.nsd_like_simulation import pca_features

    order = sorted(per_segment)
    stacked = np.concatenate([per_segment[seg] for seg in order])
    k = min(n_components, len(stacked) - 1, stacked.shape[1])
    scores, explained = pca_features(stacked, np.arange(len(stacked)), k)
    bounds = np.cumsum([0] + [len(per_segment[seg]) for seg in order])
    reduced = {seg: scores[bounds[i] : bounds[i + 1]] for i, seg in enumerate(order)}
    return run_series(design, reduced, None).astype(np.float64), explained
