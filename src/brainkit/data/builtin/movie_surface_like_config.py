"""The build settings of ``movie_surface_like``: :class:`MovieSurfaceConfig`, its presets and the clip timing.

Its own module so that the builder (``movie_surface_like``) and the stimulus side
(``movie_surface_like_stimuli``) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError

CLIP_SECONDS = 3
SOUNDTRACKS = ("scenes", "independent")
LAG = 6  # SIM's temporal_lag: the fMRI sample at frame t pairs with clip max(0, t - 6)


@dataclass(frozen=True)
class MovieSurfaceConfig(Checked):
    """Sizes and parameters of a build; every field has a default (the ``cpu_small`` preset). Bounds (with upper
    limits, so a typo cannot ask for terabytes) are checked when the config is built."""

    n_subjects: int = bounded(16, ge=1, le=1000)
    n_runs: int = bounded(2, ge=1, le=100)
    # icosphere order of the data: 5 = fsaverage5 (10,242 vertices per hemisphere)
    order: int = bounded(5, ge=1, le=5, fix="the real run is fsaverage5")
    n_segments: int = bounded(3, ge=1, le=100)  # movie segments per run, before the test-retest segment
    # length range; >= 90 so half a segment holds >= 38 clips
    segment_seconds: tuple[int, int] = bounded((90, 120), ge=2 * CLIP_SECONDS, le=3600)
    first_rest_seconds: int = bounded(20, ge=1, le=3600)  # HCP runs start with 20 s of rest (METHODS.md 1.1)
    rest_seconds: int = bounded(15, ge=1, le=3600)  # between segments (HCP: ~20 s)
    # HCP's test-retest clip is ~83 s; shorter here to keep the build small
    retest_seconds: int = bounded(50, ge=1, le=3600)
    # after the retest segment, so its response (lag 6 + HRF) is recorded
    last_rest_seconds: int = bounded(
        12, ge=LAG, le=3600, fix="at least the lag, so the last response is recorded"
    )
    fps: int = bounded(4, ge=1, le=60)
    frame_size: int = bounded(128, ge=8, le=1024)
    thumbnail_size: int = bounded(64, ge=4, le=1024)
    # signal/noise amplitude ratio per subject, uniform in this range
    snr: tuple[float, float] = bounded((0.3, 0.8), gt=0, le=1000)
    # fraction of the encoding-map variance shared by all subjects
    shared_tuning: float = bounded(0.7, ge=0, le=1)
    n_video_components: int = bounded(16, ge=1, le=10_000)
    n_audio_components: int = bounded(8, ge=1, le=10_000)
    map_smoothing_degrees: float = bounded(8.0, gt=0, le=180)
    video_encoder: str = "video_efficientnet_lite0"
    video_options: dict[str, Any] = field(default_factory=lambda: {"image_size": 128})
    audio_encoder: str = "audio_torchcrepe"
    audio_options: dict[str, Any] = field(default_factory=lambda: {"hop_ms": 40})
    speech_dir: str | None = (
        None  # a folder of wav files; default: the Debian recordings (see stimuli.speech)
    )
    # "scenes": each shot is spoken by the voice tied to what it shows (a segment's n_voices speakers, each with
    # its own pitch and room tone), so sound and pictures share the scene as in a film; "independent": random
    # recordings in one voice, unrelated to the pictures (stimuli.speech; docs/methods/sim.md shows what it does to SIM)
    soundtrack: str = choice("scenes", SOUNDTRACKS)
    n_voices: int = bounded(4, ge=1, le=100)
    seed: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = self.segment_seconds
        if not 2 * CLIP_SECONDS <= low <= high:
            raise ConfigError(
                f"segment_seconds must be (low, high) with {2 * CLIP_SECONDS} <= low <= high, found {self.segment_seconds}."
            )
        if not self.snr[0] <= self.snr[1]:
            raise ConfigError(f"snr must be (low, high) with low <= high, found {self.snr}.")


PRESETS: dict[str, MovieSurfaceConfig] = {
    # ~16 subjects, 2 runs of 3 segments of 90-120 s + a 50 s test-retest segment, fsaverage5 (the contract).
    "cpu_small": MovieSurfaceConfig(),
    # seconds to build: order 3 (642 vertices), 3 subjects, short runs, weight-free encoders (real images/audio).
    "testing": MovieSurfaceConfig(
        n_subjects=3,
        order=3,
        n_segments=2,
        segment_seconds=(24, 30),
        first_rest_seconds=6,
        rest_seconds=6,
        retest_seconds=16,
        last_rest_seconds=8,
        fps=2,
        frame_size=64,
        thumbnail_size=16,
        snr=(0.8, 1.2),
        n_video_components=8,
        n_audio_components=4,
        map_smoothing_degrees=15.0,
        video_encoder="video_pixels",
        video_options={},
        audio_encoder="audio_bands",
        audio_options={},
    ),  # fmt: skip
}


__all__ = ["CLIP_SECONDS", "LAG", "PRESETS", "SOUNDTRACKS", "MovieSurfaceConfig"]
