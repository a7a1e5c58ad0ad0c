"""The build settings of ``movie_surface_like``: :class:`MovieSurfaceConfig`, its presets and the clip timing.

Its own module so that the builder (``movie_surface_like``) and the stimulus side
(``movie_surface_like_stimuli``) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainkit.errors import ConfigError

CLIP_SECONDS = 3
SOUNDTRACKS = ("scenes", "independent")
LAG = 6  # SIM's temporal_lag: the fMRI sample at frame t pairs with clip max(0, t - 6)


@dataclass(frozen=True)
class MovieSurfaceConfig:
    """Sizes and parameters of a build; every field has a default (the ``cpu_small`` preset)."""

    n_subjects: int = 16
    n_runs: int = 2
    order: int = 5  # icosphere order of the data: 5 = fsaverage5 (10,242 vertices per hemisphere)
    n_segments: int = 3  # movie segments per run, before the test-retest segment
    segment_seconds: tuple[int, int] = (90, 120)  # length range; >= 90 so half a segment holds >= 38 clips
    first_rest_seconds: int = 20  # HCP runs start with 20 s of rest (METHODS.md 1.1: rest 0-19)
    rest_seconds: int = 15  # between segments (HCP: ~20 s)
    retest_seconds: int = 50  # HCP's test-retest clip is ~83 s; shorter here to keep the build small
    last_rest_seconds: int = 12  # after the retest segment, so its response (lag 6 + HRF) is recorded
    fps: int = 4
    frame_size: int = 128
    thumbnail_size: int = 64
    snr: tuple[float, float] = (0.3, 0.8)  # signal/noise amplitude ratio per subject, uniform in this range
    shared_tuning: float = 0.7  # fraction of the encoding-map variance shared by all subjects
    n_video_components: int = 16
    n_audio_components: int = 8
    map_smoothing_degrees: float = 8.0
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
    soundtrack: str = "scenes"
    n_voices: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "n_subjects",
            "n_runs",
            "n_segments",
            "fps",
            "frame_size",
            "thumbnail_size",
            "retest_seconds",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"MovieSurfaceConfig.{name} must be a positive integer, found {value!r}.")
        if self.soundtrack not in SOUNDTRACKS:
            raise ConfigError(
                f"MovieSurfaceConfig.soundtrack must be one of {SOUNDTRACKS}, found {self.soundtrack!r}."
            )
        if not isinstance(self.n_voices, int) or self.n_voices < 1:
            raise ConfigError(
                f"MovieSurfaceConfig.n_voices must be a positive integer, found {self.n_voices!r}."
            )
        if not isinstance(self.order, int) or not 1 <= self.order <= 5:
            raise ConfigError(
                f"MovieSurfaceConfig.order must be 1..5 (the real run is fsaverage5), found {self.order!r}."
            )
        low, high = self.segment_seconds
        if not 2 * CLIP_SECONDS <= low <= high:
            raise ConfigError(
                f"segment_seconds must be (low, high) with {2 * CLIP_SECONDS} <= low <= high, found {self.segment_seconds}."
            )
        if self.last_rest_seconds < LAG or self.first_rest_seconds < 1 or self.rest_seconds < 1:
            raise ConfigError(
                f"Rest periods must be >= 1 s and last_rest_seconds >= the lag ({LAG} s) so the last response is "
                f"recorded; found first {self.first_rest_seconds}, between {self.rest_seconds}, last {self.last_rest_seconds}."
            )
        if not 0 < self.snr[0] <= self.snr[1]:
            raise ConfigError(f"snr must be (low, high) with 0 < low <= high, found {self.snr}.")
        if not 0.0 <= self.shared_tuning <= 1.0:
            raise ConfigError(f"shared_tuning must be in [0, 1], found {self.shared_tuning}.")


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
