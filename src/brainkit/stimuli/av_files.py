"""Reading a movie file (``.mp4`` and anything else FFmpeg decodes) second by second with PyAV, for the
per-second video / audio encoders of :mod:`brainkit.stimuli.av_encoders`.

:func:`movie_seconds` yields batches of whole seconds, read lazily (memory: one batch):

- video uint8 (n_seconds, fps, size, size, 3): ``fps`` frames per second, frame k of second s the last decoded
  frame shown at time s + (k + 0.5) / fps, scaled to ``size`` x ``size`` (FFmpeg's scaler);
- audio float32 (n_seconds, 16000): the soundtrack down-mixed to mono and resampled to 16 kHz.

Only seconds present in both streams are yielded; :func:`movie_length` gives the file's duration in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, FileFormatError
from brainkit.stimuli.av_encoders import AUDIO_RATE


def _open(path: Path):
    import av

    if not path.is_file():
        raise FileFormatError(f"The movie file {path} does not exist.")
    try:
        container = av.open(str(path))
    except Exception as err:  # PyAV raises FFmpeg's many error types
        raise FileFormatError(
            f"{path} could not be opened as a movie ({type(err).__name__}: {err})."
        ) from None
    if not container.streams.video or not container.streams.audio:
        kinds = [s.type for s in container.streams]
        container.close()
        raise FileFormatError(
            f"{path} needs a video and an audio stream (SIM uses both); its streams: {kinds}."
        )
    return container


def movie_length(path: str | Path) -> float:
    """The duration of the movie at ``path`` in seconds (its container's, else its video stream's)."""
    path = Path(path)
    container = _open(path)
    try:
        if container.duration is not None:
            return container.duration / 1_000_000  # av.time_base
        stream = container.streams.video[0]
        if stream.duration is None or stream.time_base is None:
            raise FileFormatError(f"{path} records no duration.")
        return float(stream.duration * stream.time_base)
    finally:
        container.close()


def _video_seconds(path: Path, fps: int, size: int) -> Iterator[np.ndarray]:
    """(fps, size, size, 3) uint8 per whole second of the video stream."""
    container = _open(path)
    try:
        shown, k, second, frames = None, 0, [], 0
        for frame in container.decode(video=0):
            time = (
                float(frame.time)
                if frame.time is not None
                else frames / float(container.streams.video[0].average_rate)
            )
            frames += 1
            while shown is not None and (k + 0.5) / fps <= time:  # frame k's moment passed: it showed `shown`
                second.append(shown)
                k += 1
                if len(second) == fps:
                    yield np.stack(second)
                    second = []
            shown = frame.to_ndarray(width=size, height=size, format="rgb24")
        if shown is not None:  # the last frame stays on screen until the stream's end
            end = frames / float(container.streams.video[0].average_rate or 1)
            while (k + 0.5) / fps <= end:
                second.append(shown)
                k += 1
                if len(second) == fps:
                    yield np.stack(second)
                    second = []
    finally:
        container.close()


def _audio_seconds(path: Path) -> Iterator[np.ndarray]:
    """(16000,) float32 per whole second of the first audio stream, mono, 16 kHz."""
    import av

    container = _open(path)
    try:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        buffer = np.zeros(0, dtype=np.float32)
        for frame in [*container.decode(audio=0), None]:
            for out in resampler.resample(frame):
                buffer = np.concatenate([buffer, out.to_ndarray().reshape(-1).astype(np.float32)])
            while len(buffer) >= AUDIO_RATE:
                yield buffer[:AUDIO_RATE].copy()
                buffer = buffer[AUDIO_RATE:]
    finally:
        container.close()


def movie_seconds(
    path: str | Path, fps: int = 4, size: int = 128, batch_seconds: int = 16
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches (video (n, fps, size, size, 3) uint8, audio (n, 16000) float32) of consecutive whole seconds of
    the movie at ``path``, from second 0 on (module doc)."""
    if fps < 1 or size < 1 or batch_seconds < 1:
        raise ConfigError(
            f"movie_seconds needs fps, size, batch_seconds >= 1, found {fps}, {size}, {batch_seconds}."
        )
    path = Path(path)
    video, audio = [], []
    for picture, sound in zip(_video_seconds(path, fps, size), _audio_seconds(path)):
        video.append(picture)
        audio.append(sound)
        if len(video) == batch_seconds:
            yield np.stack(video), np.stack(audio)
            video, audio = [], []
    if video:
        yield np.stack(video), np.stack(audio)


def write_movie(
    path: str | Path, frames: np.ndarray, fps: int, sound: np.ndarray, rate: int = AUDIO_RATE
) -> Path:
    """Write uint8 frames (n, h, w, 3) at ``fps`` with a mono soundtrack ``sound`` (n_samples,) float in [-1, 1]
    at ``rate`` Hz as an H.264 / AAC ``.mp4`` (tests and examples: a movie in the layout users have)."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ConfigError(f"write_movie needs frames (n, h, w, 3) with even h and w, found {frames.shape}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.height, video.width, video.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        samples = np.asarray(sound, dtype=np.float32).reshape(1, -1)
        step = 1024
        for start in range(0, samples.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + step]), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


__all__ = ["movie_length", "movie_seconds", "write_movie"]
