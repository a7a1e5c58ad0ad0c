"""HCP's 7T movie files (``7T_MOVIE1_CC1_v2.mp4`` ...): one frame per stimulus second, read with PyAV.

HCP ships the four movies watched in the 7T movie runs as "7T Movie Stimulus Files"; the version shown from
21 Aug 2014 on (every released subject) is ``Post_20140821_version/7T_MOVIE{1..4}_{CC1,HO1,CC2,HO2}_v2.mp4``
(1024 x 720, 24 fps; each file is the whole run: rest, clips, rest, ..., the test-retest clip).
:func:`second_frames` decodes a file once, front to back, and keeps, for each asked second ``t``, the frame on
screen at ``t + offset`` seconds (CLIP-MUSED's released loader takes frame ``24 t``: offset 0), centre-cropped
to a square and resized to ``size`` x ``size``: uint8 (n_seconds, size, size, 3). Only the kept frames are
converted to RGB, so memory is the output plus one decoded frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainkit.errors import DataError, FileFormatError

MOVIE_FILES = {
    1: "7T_MOVIE1_CC1_v2.mp4",
    2: "7T_MOVIE2_HO1_v2.mp4",
    3: "7T_MOVIE3_CC2_v2.mp4",
    4: "7T_MOVIE4_HO2_v2.mp4",
}


def movie_file(folder: str | Path, movie: int) -> Path:
    """HCP's file of ``movie`` (1-4) in ``folder``; a missing file is a FileFormatError naming it."""
    path = Path(folder) / MOVIE_FILES[movie]
    if not path.is_file():
        raise FileFormatError(
            f"HCP 7T movie: the stimulus file {path} is missing. Unpack HCP's '7T Movie Stimulus Files' so that "
            f"{Path(folder).name}/ holds {', '.join(MOVIE_FILES.values())} (or set data.stimulus_dir)."
        )
    return path


def _square(frame, size: int) -> np.ndarray:
    """The frame's centred square, resized to (size, size, 3) uint8 (bilinear)."""
    from PIL import Image

    image = frame.to_ndarray(format="rgb24")
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def second_frames(path: str | Path, seconds: np.ndarray, size: int, offset: float = 0.0) -> np.ndarray:
    """uint8 (len(seconds), size, size, 3): the frame on screen at ``second + offset`` for each second.

    ``seconds`` may come in any order and repeat. Raises FileFormatError when the file cannot be decoded or
    has no video, DataError when the movie ends before the last asked second.
    """
    import av

    seconds = np.asarray(seconds, dtype=np.int64)
    out = np.zeros((len(seconds), size, size, 3), np.uint8)
    if not len(seconds):
        return out
    order = np.argsort(seconds, kind="stable")
    targets = seconds[order] + float(offset)
    eps, j, previous, last_time = 1e-6, 0, None, 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FileFormatError(f"{path} holds no video stream; it is not one of HCP's movie files.")
            stream = container.streams.video[0]
            step = 1.0 / float(stream.average_rate or 24)
            for frame in container.decode(stream):
                time = float(frame.time if frame.time is not None else last_time + step)
                while j < len(targets) and targets[j] < time - eps:  # on screen at targets[j]: the last frame
                    out[order[j]] = _square(previous if previous is not None else frame, size)
                    j += 1
                if j == len(targets):
                    break
                previous, last_time = frame, time
            while j < len(targets) and previous is not None and targets[j] < last_time + step - eps:
                out[order[j]] = _square(previous, size)
                j += 1
    except (av.error.FFmpegError, OSError) as err:
        raise FileFormatError(f"Cannot decode movie {path}: {err}. Download it again.") from err
    if j < len(targets):
        raise DataError(
            f"{path}: the movie ends at {last_time + step:.2f} s, but second {int(seconds[order[j]])} (+{offset} s) "
            "is asked for; the runs and labels are longer than this movie file (a different version?)."
        )
    return out


__all__ = ["MOVIE_FILES", "movie_file", "second_frames"]
