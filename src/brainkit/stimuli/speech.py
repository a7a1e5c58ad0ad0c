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
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
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


__all__ = [
    "SAMPLE_RATE",
    "load_recordings",
    "read_wav",
    "recording_files",
    "recordings_fingerprint",
    "speech_folders",
    "speech_track",
]
