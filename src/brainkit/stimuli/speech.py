"""Real speech recordings as movie soundtracks: utterances with pauses filling a segment, silence in rest.

Recordings (read, never copied into brainkit):

- Debian package ``asterisk-core-sounds-en-wav``: 568 prompts read by one speaker (Allison Smith), 8 kHz mono
  wav, CC-BY-SA-3.0, under ``/usr/share/asterisk/sounds/en_US_f_Allison/`` (``apt-get install
  asterisk-core-sounds-en-wav``);
- ``alsa-utils``' test voice (``/usr/share/sounds/alsa/*.wav``, another speaker) when present;
- or any folder of wav files (searched recursively) passed as ``folder`` or set in ``$BRAINKIT_SPEECH_DIR``.

Each recording is read with soundfile, mixed to mono, resampled to 16 kHz (``scipy.signal.resample_poly``, the
rate wav2vec2 and SIM's audio use) and scaled to unit peak. :func:`speech_track` strings randomly drawn
recordings together with 0.2-1.0 s pauses until a segment is full (the last one is cut at the segment's end).

:func:`scene_track` makes the soundtrack belong to the pictures, as a film's does: a segment has a few
:class:`Voice` s (its "cast" of speakers, each with its own background sound), every shot is spoken by the voice
tied to what it shows, so the same person or place sounds the same wherever it returns in the segment. A voice is
the real recordings played at another speed (``rate``: pitch and tempo change together, like a tape played faster
or slower, -5 to +5 semitones) over band-passed noise (the scene's room tone). Without it (:func:`speech_track`)
sound and pictures are independent.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DEFAULT_FOLDERS = ("/usr/share/asterisk/sounds/en_US_f_Allison", "/usr/share/sounds/alsa")
PAUSE_SECONDS = (0.2, 1.0)
INSTALL_HINT = (
    "Install the real recordings (Debian/Ubuntu: `sudo apt-get install asterisk-core-sounds-en-wav`, 568 "
    "prompts in /usr/share/asterisk/sounds/en_US_f_Allison), or pass speech_dir=<a folder of .wav files> "
    "(or set $BRAINKIT_SPEECH_DIR)."
)


def speech_folders(folder: str | Path | None = None) -> list[Path]:
    """The folders recordings are read from: ``folder``, else ``$BRAINKIT_SPEECH_DIR``, else the defaults."""
    chosen = folder if folder is not None else os.environ.get("BRAINKIT_SPEECH_DIR") or None
    if chosen is not None:
        path = Path(chosen)
        if not path.is_dir():
            raise ConfigError(f"Speech folder {path} does not exist. {INSTALL_HINT}")
        return [path]
    return [Path(p) for p in DEFAULT_FOLDERS if Path(p).is_dir()]


def recording_files(folder: str | Path | None = None) -> list[Path]:
    """Every ``*.wav`` under the speech folders, sorted; a clear error when there are none."""
    folders = speech_folders(folder)
    files = sorted(f for d in folders for f in d.rglob("*.wav") if f.is_file())
    if not files:
        where = ", ".join(str(d) for d in folders) or ", ".join(DEFAULT_FOLDERS)
        raise DataError(f"No speech recordings (*.wav) found in {where}. {INSTALL_HINT}")
    return files


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise ConfigError("Reading speech needs the package soundfile: pip install soundfile.") from None
    return soundfile


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One recording as float32 (n_samples,) mono at ``sample_rate``, scaled to unit peak (silence stays 0)."""
    from scipy.signal import resample_poly

    try:
        wave, rate = _soundfile().read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as err:  # soundfile.LibsndfileError derives from RuntimeError
        raise DataError(f"{path} could not be read as audio ({err}).") from None
    wave = wave.mean(axis=1)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, int(rate))
        wave = resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)
    peak = float(np.abs(wave).max()) if len(wave) else 0.0
    return (wave / peak if peak > 0 else wave).astype(np.float32)


@functools.cache
def _recordings(files: tuple[str, ...], sample_rate: int) -> tuple[np.ndarray, ...]:
    return tuple(read_wav(f, sample_rate) for f in files)


def load_recordings(
    folder: str | Path | None = None, sample_rate: int = SAMPLE_RATE, max_seconds: float = 8.0
) -> tuple[list[str], list[np.ndarray]]:
    """(names, waves): every recording under the speech folders that is 0.3 to ``max_seconds`` long."""
    files = recording_files(folder)
    waves = _recordings(tuple(str(f) for f in files), sample_rate)
    keep = [i for i, w in enumerate(waves) if 0.3 * sample_rate <= len(w) <= max_seconds * sample_rate]
    if not keep:
        raise DataError(f"None of the {len(files)} recordings is 0.3-{max_seconds} s long. {INSTALL_HINT}")
    return [files[i].name for i in keep], [waves[i] for i in keep]


def recordings_fingerprint(folder: str | Path | None = None) -> str:
    """A short hash of the recordings' names and sizes (part of a cache key)."""
    digest = hashlib.sha1()
    for path in recording_files(folder):
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return digest.hexdigest()[:16]


def speech_track(
    n_seconds: int,
    waves: list[np.ndarray],
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    pause_seconds: tuple[float, float] = PAUSE_SECONDS,
) -> tuple[np.ndarray, list[int]]:
    """float32 (n_seconds * sample_rate,) speech: random recordings separated by pauses, and which ones.

    Starts with a pause; recordings are drawn with replacement from ``waves`` by ``seed``.
    """
    if not waves:
        raise DataError(f"speech_track needs at least one recording. {INSTALL_HINT}")
    rng = np.random.default_rng(seed)
    n = n_seconds * sample_rate
    out, used = np.zeros(n, dtype=np.float32), []
    position = int(rng.uniform(*pause_seconds) * sample_rate)
    while position < n:
        index = int(rng.integers(len(waves)))
        wave = waves[index][: n - position]
        out[position : position + len(wave)] = wave * float(rng.uniform(0.6, 1.0))
        used.append(index)
        position += len(wave) + int(rng.uniform(*pause_seconds) * sample_rate)
    return out, used


VOICE_RATES = (0.75, 1.35)  # playback-speed range of a segment's voices (about -5 to +5 semitones)
AMBIENCE_HZ = (
    150.0,
    3000.0,
)  # centre-frequency range of a voice's background band (log-uniform, one octave wide)
AMBIENCE_LEVEL = (0.02, 0.08)  # its RMS (speech peaks at 0.6-1)


@dataclass(frozen=True)
class Voice:
    """How one speaker of a segment sounds: recordings played at ``rate`` x their speed (> 1: higher and
    faster), over noise band-passed to ``band`` (Hz) at RMS ``level``."""

    rate: float
    band: tuple[float, float]
    level: float


def draw_voices(n: int, rng: np.random.Generator) -> list[Voice]:
    """``n`` distinct voices: rates spread evenly over :data:`VOICE_RATES` (shuffled, +-2 % jitter), random
    background bands and levels."""
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"A soundtrack needs at least one voice, found n_voices={n!r}.")
    rates = np.linspace(*VOICE_RATES, n) if n > 1 else np.ones(1)
    rates = rng.permutation(rates) * rng.uniform(0.98, 1.02, n)
    centres = np.exp(rng.uniform(np.log(AMBIENCE_HZ[0]), np.log(AMBIENCE_HZ[1]), n))
    levels = rng.uniform(*AMBIENCE_LEVEL, n)
    return [Voice(float(r), (float(c / np.sqrt(2)), float(c * np.sqrt(2))), float(v))
            for r, c, v in zip(rates, centres, levels)]  # fmt: skip


def speak(wave: np.ndarray, voice: Voice) -> np.ndarray:
    """A recording in ``voice``: resampled to 1 / rate of its length (``scipy.signal.resample_poly``), so played
    at the same sample rate it is ``rate`` x higher and faster."""
    from scipy.signal import resample_poly

    ratio = Fraction(voice.rate).limit_denominator(50)
    return resample_poly(wave, ratio.denominator, ratio.numerator).astype(np.float32)


def ambience(
    n_samples: int, voice: Voice, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """float32 (n_samples,) white noise band-passed to ``voice.band`` (4th-order Butterworth), RMS ``voice.level``."""
    from scipy.signal import butter, sosfilt

    nyquist = sample_rate / 2
    low, high = voice.band[0] / nyquist, min(voice.band[1] / nyquist, 0.99)
    noise = sosfilt(butter(4, [low, high], btype="band", output="sos"), rng.standard_normal(n_samples + 2048))
    noise = noise[2048:]  # past the filter's start-up
    rms = float(np.sqrt(np.mean(noise**2))) if n_samples else 0.0
    return (noise * (voice.level / rms if rms > 0 else 0.0)).astype(np.float32)


def scene_track(
    n_seconds: int,
    spans: list[tuple[float, float, int]],
    voices: list[Voice],
    waves: list[np.ndarray],
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    pause_seconds: tuple[float, float] = PAUSE_SECONDS,
) -> tuple[np.ndarray, list[int]]:
    """float32 (n_seconds * sample_rate,) soundtrack of a segment whose shots are ``spans``: (first second,
    end second, voice index) each, in order, covering the segment. Each span holds its voice's background and
    random recordings (drawn with replacement by ``seed``) spoken in that voice with pauses, the last one cut at
    the span's end (speech switches at the cut, as in a film). Returns the track and the recordings used."""
    if not waves:
        raise DataError(f"scene_track needs at least one recording. {INSTALL_HINT}")
    bad = [v for _, _, v in spans if not 0 <= v < len(voices)]
    if bad or any(b < a for a, b, _ in spans):
        raise DataError(f"scene_track: spans must be (start, end >= start, voice in 0..{len(voices) - 1}), "
                        f"found {spans}.")  # fmt: skip
    rng = np.random.default_rng(seed)
    n = n_seconds * sample_rate
    out, used = np.zeros(n, dtype=np.float32), []
    for first, last, v in spans:
        begin, end = min(n, int(round(first * sample_rate))), min(n, int(round(last * sample_rate)))
        out[begin:end] += ambience(end - begin, voices[v], rng, sample_rate)
        position = begin + int(rng.uniform(*pause_seconds) * sample_rate)
        while position < end:
            index = int(rng.integers(len(waves)))
            wave = speak(waves[index], voices[v])[: end - position]
            out[position : position + len(wave)] += wave * float(rng.uniform(0.6, 1.0))
            used.append(index)
            position += len(wave) + int(rng.uniform(*pause_seconds) * sample_rate)
    return out, used


__all__ = [
    "AMBIENCE_HZ",
    "AMBIENCE_LEVEL",
    "VOICE_RATES",
    "Voice",
    "ambience",
    "draw_voices",
    "scene_track",
    "speak",
    "SAMPLE_RATE",
    "load_recordings",
    "read_wav",
    "recording_files",
    "recordings_fingerprint",
    "speech_folders",
    "speech_track",
]
