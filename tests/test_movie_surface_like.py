"""The movie_surface_like built-in dataset (testing preset: order 3, weight-free encoders, real images/speech)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from brainkit.data.builtin import movie_surface_like as msl
from brainkit.errors import ConfigError
from brainkit.stimuli.speech import DEFAULT_FOLDERS

HAVE_SPEECH = any(__import__("pathlib").Path(p).is_dir() for p in DEFAULT_FOLDERS)
needs_speech = pytest.mark.skipif(
    not HAVE_SPEECH,
    reason="asterisk-core-sounds-en-wav not installed (make installs it where you may: scripts/install-system-packages.sh)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return msl.load_movie_surface_like("testing", cache_dir=tmp_path_factory.mktemp("cache"))


def test_design_of_cpu_small_matches_the_contract() -> None:
    config = msl.PRESETS["cpu_small"]
    design = msl.run_design(config)
    segment_of = msl.clip_segments(design)
    assert config.n_subjects >= 16 and config.n_runs == 2 and config.order == 5
    for r in range(config.n_runs):
        ids = [s for s in np.unique(segment_of[r]) if s >= 0]
        assert len(ids) == config.n_segments + 1  # 3 movie segments + the test-retest one
        assert ids[-1] == design.retest_id
        for seg in ids[:-1]:
            assert 90 <= design.lengths[seg] <= 120
            assert (segment_of[r] == seg).sum() // 2 >= 38  # the second half holds >= 38 clips
        assert segment_of[r, 0] == -1  # runs start with rest
        last_movie = np.flatnonzero(design.second_segment[r] >= 0).max()
        assert design.second_segment[r, last_movie] == design.retest_id  # the retest segment comes last
        assert design.second_segment.shape[1] - 1 - last_movie >= msl.LAG
    movie_ids = [s for s in np.unique(segment_of) if 0 <= s < design.retest_id]
    assert len(movie_ids) == config.n_runs * config.n_segments  # unique across runs


def test_clip_segments_known_answer() -> None:
    design = msl.Design(
        second_segment=np.array([[-1, -1, 0, 0, 0, 0, -1, 1, 1, 1, -1]]),
        second_offset=np.zeros((1, 11), dtype=int),
        lengths={0: 4, 1: 3},
        retest_id=1,
    )
    expected = [-1, -1, 0, 0, -1, -1, -1, 1, -1]
    assert msl.clip_segments(design)[0].tolist() == expected


@needs_speech
def test_contract_shapes_and_types(built) -> None:
    config = msl.PRESETS["testing"]
    n_frames = built.fmri.shape[2]
    n_clips = n_frames - 2
    assert built.fmri.shape == (config.n_subjects, config.n_runs, n_frames, 642)
    assert (
        built.fmri.dtype == np.float32 and built.video.dtype == np.float32 and built.audio.dtype == np.float32
    )
    assert built.cortex.shape == (642,) and built.cortex.dtype == bool and 0 < built.cortex.sum() < 642
    assert built.segment_of.shape == built.retest.shape == (config.n_runs, n_clips)
    assert built.video.shape[:2] == built.audio.shape[:2] == (config.n_runs, n_clips)
    assert (
        built.thumbnails.shape == (config.n_runs, n_clips, 16, 16, 3) and built.thumbnails.dtype == np.uint8
    )
    assert built.truth_map.shape == (642,) and (built.truth_map[~built.cortex] == 0).all()
    assert built.subjects == ["sub-01", "sub-02", "sub-03"] and built.runs == ["MOVIE1", "MOVIE2"]
    assert built.tr == 1.0 and built.lag == 6 and built.order == 3
    assert (built.segment_of[built.retest] >= 0).all()


@needs_speech
def test_preprocessing_is_sims(built) -> None:
    cortex = built.fmri[..., built.cortex]
    np.testing.assert_allclose(cortex.mean(axis=-1), 0.0, atol=1e-4)  # per-frame z-score over the cortex
    np.testing.assert_allclose(cortex.std(axis=-1), 1.0, atol=1e-3)
    assert (built.fmri[..., ~built.cortex] == 0).all()  # medial wall 0


@needs_speech
def test_retest_content_is_identical_across_runs(built) -> None:
    first, second = built.retest[0], built.retest[1]
    assert first.sum() == second.sum() > 0
    np.testing.assert_array_equal(built.video[0, first], built.video[1, second])
    np.testing.assert_array_equal(built.audio[0, first], built.audio[1, second])
    np.testing.assert_array_equal(built.thumbnails[0, first], built.thumbnails[1, second])
    movie0 = built.segment_of[0][(built.segment_of[0] >= 0) & ~first]
    movie1 = built.segment_of[1][(built.segment_of[1] >= 0) & ~second]
    assert not set(movie0) & set(movie1)  # other segments differ between runs


@needs_speech
def test_signal_is_there_and_reliable(built) -> None:
    retest = built.info["test_retest"]
    assert 0.2 < retest["r_signal"] < 0.98  # stimulus-driven, but noisy
    assert retest["r_signal"] > retest["r_cortex"]
    per_subject = built.info["test_retest_r_signal_per_subject"]
    snr = list(built.info["snr"].values())
    assert len(per_subject) == 3 and np.mean(per_subject) == pytest.approx(retest["r_signal"], abs=1e-6)
    assert np.corrcoef(per_subject, snr)[0, 1] > 0  # higher SNR, more reliable
    # Clips wholly in rest show the rest screen in silence: identical features.
    seconds = msl.run_design(msl.PRESETS["testing"]).second_segment[0]
    rest = (seconds[:-2] == -1) & (seconds[1:-1] == -1) & (seconds[2:] == -1)
    assert rest.sum() >= 3
    assert (
        np.ptp(built.video[0, rest], axis=0).max() < 1e-5
        and np.ptp(built.audio[0, rest], axis=0).max() < 1e-5
    )
    assert np.ptp(built.video[0, built.segment_of[0] >= 0], axis=0).max() > 0.1


def test_streamed_build_equals_the_in_memory_statistics(built) -> None:
    """The build writes one subject at a time and reads them back for its reliability: the same numbers as
    the whole array in memory; the dataset comes back memory-mapped."""
    from brainkit.data.builtin.movie_surface_like_config import LAG
    from brainkit.data.builtin.movie_surface_like_simulation import retest_reliability

    assert isinstance(built.fmri, np.memmap) and built.fmri.dtype == np.float32
    design = msl.run_design(msl.PRESETS["testing"])
    frames = [np.flatnonzero(row == design.retest_id) + LAG for row in design.second_segment]
    truth, cortex = built.truth_map, built.cortex
    signal = cortex & (truth >= np.quantile(truth[cortex], 0.9))
    whole = np.array(built.fmri)  # in memory
    assert built.info["test_retest"] == retest_reliability(whole, frames, cortex, signal)
    assert built.info["test_retest_r_signal_per_subject"] == [
        retest_reliability(whole[s : s + 1], frames, cortex, signal)["r_signal"] for s in range(len(whole))
    ]


@needs_speech
def test_deterministic_and_cached(built, tmp_path) -> None:
    again = msl.load_movie_surface_like("testing", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.fmri, built.fmri)
    np.testing.assert_array_equal(again.video, built.video)
    reread = msl.load_movie_surface_like("testing", cache_dir=tmp_path)
    np.testing.assert_array_equal(reread.fmri, built.fmri)
    assert reread.info == again.info
    other = msl.load_movie_surface_like(
        dataclasses.replace(msl.PRESETS["testing"], seed=1, n_subjects=1), cache_dir=tmp_path
    )
    assert not np.array_equal(other.video, built.video)


@needs_speech
def test_independent_soundtrack_changes_only_the_sound(built, tmp_path) -> None:
    config = dataclasses.replace(msl.PRESETS["testing"], n_subjects=1, soundtrack="independent")
    plain = msl.load_movie_surface_like(config, cache_dir=tmp_path)
    np.testing.assert_array_equal(plain.video, built.video)
    movie = built.segment_of[0] >= 0
    assert not np.allclose(plain.audio[0, movie], built.audio[0, movie])
    assert plain.info["config"]["soundtrack"] == "independent" and built.info["config"]["n_voices"] == 4


def test_bad_config_raises() -> None:
    with pytest.raises(ConfigError, match="preset"):
        msl.load_movie_surface_like("cpu_huge")
    with pytest.raises(ConfigError, match="order=6 is out of range: allowed 1 <= x <= 5"):
        msl.MovieSurfaceConfig(order=6)
    with pytest.raises(ConfigError, match="last_rest_seconds"):
        msl.MovieSurfaceConfig(last_rest_seconds=2)
    with pytest.raises(ConfigError, match="snr"):
        msl.MovieSurfaceConfig(snr=(0.5, 0.1))
    with pytest.raises(ConfigError, match="set soundtrack to one of"):
        msl.MovieSurfaceConfig(soundtrack="music")
    with pytest.raises(ConfigError, match="n_voices"):
        msl.MovieSurfaceConfig(n_voices=0)


@needs_speech
def test_soundtrack_follows_the_shots_and_keeps_the_video_cache_key() -> None:
    from brainkit.data.builtin.movie_surface_like_stimuli import run_design, shot_voices, stimulus_key
    from brainkit.stimuli.movies import movie_segment

    _, shots = movie_segment(60, fps=2, size=32, seed=3)
    voices = shot_voices(shots, 3, np.random.default_rng(0))
    by_focus: dict[str, set[int]] = {}
    for shot, v in zip(shots, voices):
        by_focus.setdefault(shot.focus, set()).add(v)
    assert all(len(v) == 1 for v in by_focus.values())  # a returning face or photo keeps its voice
    assert len(set(voices)) == min(3, len(by_focus))  # the voices take turns
    scenes = msl.PRESETS["testing"]
    independent = dataclasses.replace(scenes, soundtrack="independent")
    design = run_design(scenes)
    assert stimulus_key(scenes, design, "video") == stimulus_key(independent, design, "video")
    assert stimulus_key(scenes, design, "audio") != stimulus_key(independent, design, "audio")


def test_missing_recordings_raise(tmp_path) -> None:
    from brainkit.errors import DataError

    empty = tmp_path / "no_wavs"
    empty.mkdir()
    config = dataclasses.replace(msl.PRESETS["testing"], speech_dir=str(empty))
    with pytest.raises(DataError, match="asterisk-core-sounds-en-wav"):
        msl.load_movie_surface_like(config, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        msl.load_movie_surface_like(
            dataclasses.replace(config, speech_dir=str(tmp_path / "nope")), cache_dir=tmp_path
        )


def test_retest_reliability_known_answers() -> None:
    from brainkit.data.builtin.movie_surface_like_simulation import retest_reliability

    rng = np.random.default_rng(0)
    cortex = np.ones(50, bool)
    cortex[:5] = False
    signal = np.zeros(50, bool)
    signal[10:20] = True
    same = rng.standard_normal((1, 1, 40, 50))
    fmri = np.concatenate([same, same], axis=1)  # run 2 repeats run 1 exactly
    frames = [np.arange(5, 35), np.arange(5, 35)]
    exact = retest_reliability(fmri, frames, cortex, signal)
    assert exact["r_cortex"] == pytest.approx(1.0) and exact["noise_ceiling_signal"] == pytest.approx(1.0)
    fmri[0, 1] = rng.standard_normal((40, 50))  # independent
    noise = retest_reliability(fmri, frames, cortex, signal)
    assert abs(noise["r_cortex"]) < 0.1


def test_smooth_fields_are_smooth_and_standardised() -> None:
    from brainkit.data.builtin.movie_surface_like_simulation import region_gains, smooth_fields
    from brainkit.surface import icosphere

    cortex = np.ones(2562, bool)
    cortex[:10] = False
    fields = smooth_fields(np.random.default_rng(0), 3, 4, 12.0, cortex)
    assert fields.shape == (3, 2562) and (fields[:, ~cortex] == 0).all()
    np.testing.assert_allclose(fields[:, cortex].std(axis=1), 1.0, atol=1e-6)
    edges = icosphere(4).faces[:, :2]
    neighbour_r = np.corrcoef(fields[0, edges[:, 0]], fields[0, edges[:, 1]])[0, 1]
    assert neighbour_r > 0.8  # white noise would give ~0
    video, audio = region_gains(4, cortex)
    points = icosphere(4).unit_vertices()
    assert video[np.argmin(points[:, 1])] > 0.9 and audio[np.argmin(points[:, 1])] < 0.5  # posterior pole
