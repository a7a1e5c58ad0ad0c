"""The HCP 7T movie files as SIM's stimulus: the ``.mp4`` of each run read second by second (PyAV,
:mod:`brainkit.stimuli.av_files`), embedded by the configured video / audio encoders, cached per movie file.

HCP's "7T Movie Stimulus Files" unpack to ``Post_20140821_version/`` holding ``7T_MOVIE1_CC1_v2.mp4``,
``7T_MOVIE2_HO1_v2.mp4``, ``7T_MOVIE3_CC2_v2.mp4``, ``7T_MOVIE4_HO2_v2.mp4`` (one file per run: the clips, the
rest screens between them and the test-retest clip, as shown in the scanner).

Shapes: :func:`movie_stimulus` returns per-second video (n_seconds, d_video) and audio (n_seconds, d_audio)
float32 embeddings and thumbnails (n_seconds, t, t, 3) uint8 (second s's middle frame).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.builtin.build_cache import UNREADABLE
from brainkit.errors import ConfigError, FileFormatError

log = logging.getLogger(__name__)

MOVIE_FILES = {1: "7T_MOVIE1_CC1_v2.mp4", 2: "7T_MOVIE2_HO1_v2.mp4", 3: "7T_MOVIE3_CC2_v2.mp4",
               4: "7T_MOVIE4_HO2_v2.mp4"}  # fmt: skip
MOVIES_FOLDER = "Post_20140821_version"
STIMULUS_VERSION = 1  # bump when the reading or the embedding of a movie changes (cache key)


def movie_file(root: str | Path, movie: int, movies_dir: str | Path | None = None) -> Path:
    """The ``.mp4`` of run ``movie`` (1-4): in ``movies_dir`` if given, else ``{root}/Post_20140821_version``."""
    if movie not in MOVIE_FILES:
        raise ConfigError(f"HCP 7T has movies 1-4, found {movie!r}.")
    folder = Path(movies_dir) if movies_dir is not None else Path(root) / MOVIES_FOLDER
    path = folder / MOVIE_FILES[movie]
    if not path.is_file():
        raise FileFormatError(
            f"The movie of MOVIE{movie} is missing: expected {path} (HCP's '7T Movie Stimulus Files' unpack to "
            f"{MOVIES_FOLDER}/). Unpack them under the root, or pass movies_dir= the folder holding "
            f"{MOVIE_FILES[movie]}."
        )
    return path


def file_stamp(path: Path) -> dict[str, Any]:
    """What identifies a file's content cheaply in a cache key: its name, size and modification time."""
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def movie_stimulus(path: Path, encoders: dict[str, Any], fps: int, frame_size: int, thumbnail_size: int,
                   cache_dir: Path, batch_seconds: int = 16) -> dict[str, np.ndarray]:  # fmt: skip
    """``{"video", "audio", "thumbnails"}`` of the movie at ``path`` (module doc), from
    ``cache_dir/hcp_movie_surface/stimuli`` when cached there; ``encoders``: role -> encoder."""
    from PIL import Image

    from brainkit.data.builtin.movie_surface_like_stimuli import _atomic_save_npz
    from brainkit.stimuli.av_files import movie_seconds

    for role, encoder in encoders.items():
        if encoder.modality != role:
            raise ConfigError(
                f"hcp_movie_surface {role}_encoder is a {encoder.modality} encoder, not {role}."
            )
    key = {"version": STIMULUS_VERSION, "file": file_stamp(path), "fps": fps, "frame_size": frame_size,
           "thumbnail_size": thumbnail_size, **{role: e.fingerprint for role, e in encoders.items()}}  # fmt: skip
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache_dir / "hcp_movie_surface" / "stimuli" / f"{path.stem}-{digest}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as data:
                return {name: data[name] for name in ("video", "audio", "thumbnails")}
        except UNREADABLE as err:
            log.warning("Cached movie embeddings %s are unreadable (%s); recomputing them.", cached, err)
    start, parts = time.perf_counter(), {"video": [], "audio": [], "thumbnails": []}
    for video, audio in movie_seconds(path, fps, frame_size, batch_seconds):
        parts["video"].append(encoders["video"].encode(video))
        parts["audio"].append(encoders["audio"].encode(audio))
        middle = video[:, fps // 2]
        parts["thumbnails"].append(np.stack([np.asarray(Image.fromarray(f).resize(
            (thumbnail_size, thumbnail_size), Image.Resampling.BILINEAR), dtype=np.uint8) for f in middle]))  # fmt: skip
    if not parts["video"]:
        raise FileFormatError(f"{path} holds no whole second of both video and sound.")
    out = {name: np.concatenate(values) for name, values in parts.items()}
    log.info("Embedded the %d s of %s in %.1f s.", len(out["video"]), path.name, time.perf_counter() - start)
    _atomic_save_npz(cached, **out)
    return out


__all__ = ["MOVIES_FOLDER", "MOVIE_FILES", "file_stamp", "movie_file", "movie_stimulus"]
