"""Movies made of real images: shots that pan and zoom over real photos, cross-fade between them, or run
through a sequence of real faces; deterministic from a seed.

Sources are the real images :mod:`brainkit.stimuli.images` loads (27 photos from scikit-image and scikit-learn,
the 100 faces of ``skimage/data/lfw_subset.npy``). A movie segment is a run of shots, each 3-8 s long, over the segment's own few photos and faces (its "scenes"
and "cast"):

=============  =================================================================================================
shot kind      what the camera does
=============  =================================================================================================
``pan``        a square window (40-80 % of the photo's short side) slides in a straight line across one photo
``zoom_in``    the window shrinks from the whole short side to 30-50 % of it, around a random point
``zoom_out``   the reverse
``crossfade``  two photo views, the first cross-fading into the second over the shot's middle 40 %
``faces``      a sequence of real faces, ~0.7-1.3 s each, each cross-fading into the next over 0.25 s
=============  =================================================================================================

Frames are uint8 (n_frames, size, size, 3) at ``fps`` frames per second; a segment of ``n_seconds`` has
``n_seconds * fps`` frames. Rest is a uniform mid-gray screen (:func:`rest_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainkit.errors import ConfigError
from brainkit.stimuli.images import PHOTOS, _faces, _photo

SHOT_KINDS = ("pan", "zoom_in", "zoom_out", "crossfade", "faces")
SHOT_SHARES = (0.3, 0.2, 0.15, 0.15, 0.2)  # how often each kind is drawn
SHOT_SECONDS = (3.0, 8.0)  # shot length range, uniform
REST_GRAY = 128


@dataclass(frozen=True)
class Shot:
    """One shot: its kind, first frame and number of frames within the segment, and what it shows."""

    kind: str
    start: int
    n_frames: int
    source: str

    @property
    def focus(self) -> str:
        """What the shot is of: its photo's file name (a crossfade's first photo) or ``"face N"`` (the first
        face of a face sequence); the soundtrack ties a voice to it (:func:`brainkit.stimuli.speech.scene_track`)."""
        if self.kind == "faces":
            return "face " + self.source.rsplit(" ", 1)[-1].split(",")[0]
        return self.source.split(" ", 1)[0]


def _crop_resize(image: np.ndarray, top: float, left: float, side: float, size: int) -> np.ndarray:
    """The square window (top, left, side) of ``image`` in pixels, resized to size x size (bilinear)."""
    from PIL import Image

    height, width = image.shape[:2]
    side = float(np.clip(side, 4.0, min(height, width)))
    top = float(np.clip(top, 0.0, height - side))
    left = float(np.clip(left, 0.0, width - side))
    box = (left, top, left + side, top + side)
    view = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(view, dtype=np.uint8)


def _random_photo(rng: np.random.Generator, photos: tuple[int, ...] | None = None) -> tuple[np.ndarray, str]:
    choices = photos if photos else range(len(PHOTOS))
    file = PHOTOS[int(choices[int(rng.integers(len(choices)))])][0]
    return _photo(file), file


def _pan(
    rng: np.random.Generator, n: int, size: int, photos: tuple[int, ...] | None
) -> tuple[np.ndarray, str]:
    image, file = _random_photo(rng, photos)
    height, width = image.shape[:2]
    side = float(rng.uniform(0.4, 0.8)) * min(height, width)
    start = rng.uniform(0, 1, 2) * [height - side, width - side]
    end = rng.uniform(0, 1, 2) * [height - side, width - side]
    steps = np.linspace(0.0, 1.0, n)
    frames = [_crop_resize(image, *(start + s * (end - start)), side, size) for s in steps]
    return np.stack(frames), f"{file} pan"


def _zoom(
    rng: np.random.Generator, n: int, size: int, inward: bool, photos: tuple[int, ...] | None
) -> tuple[np.ndarray, str]:
    image, file = _random_photo(rng, photos)
    height, width = image.shape[:2]
    short = min(height, width)
    wide, tight = short, float(rng.uniform(0.3, 0.5)) * short
    centre = rng.uniform(0.3, 0.7, 2) * [height, width]
    sides = np.geomspace(wide, tight, n) if inward else np.geomspace(tight, wide, n)
    frames = [_crop_resize(image, centre[0] - s / 2, centre[1] - s / 2, s, size) for s in sides]
    return np.stack(frames), f"{file} zoom {'in' if inward else 'out'}"


def _still(rng: np.random.Generator, size: int, photos: tuple[int, ...] | None) -> tuple[np.ndarray, str]:
    image, file = _random_photo(rng, photos)
    height, width = image.shape[:2]
    side = float(rng.uniform(0.5, 1.0)) * min(height, width)
    top, left = rng.uniform(0, 1) * (height - side), rng.uniform(0, 1) * (width - side)
    return _crop_resize(image, top, left, side, size), file


def _blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-frame mix (1 - w) a + w b of two uint8 frame stacks (or single frames, broadcast)."""
    w = weight.reshape(-1, 1, 1, 1)
    return np.round((1.0 - w) * a.astype(np.float32) + w * b.astype(np.float32)).astype(np.uint8)


def _crossfade(
    rng: np.random.Generator, n: int, size: int, photos: tuple[int, ...] | None
) -> tuple[np.ndarray, str]:
    (first, a), (second, b) = _still(rng, size, photos), _still(rng, size, photos)
    weight = np.clip((np.linspace(0.0, 1.0, n) - 0.3) / 0.4, 0.0, 1.0)
    return _blend(first[None], second[None], weight), f"{a} -> {b} crossfade"


def _face_sequence(
    rng: np.random.Generator, n: int, size: int, fps: int, cast: tuple[int, ...] | None
) -> tuple[np.ndarray, str]:
    from PIL import Image

    faces = _faces()[:100]  # the first 100 entries of lfw_subset are faces
    choices = cast if cast else range(len(faces))
    bounds, indices = [0], []
    while bounds[-1] < n:
        indices.append(int(choices[int(rng.integers(len(choices)))]))
        bounds.append(min(n, bounds[-1] + max(1, int(round(rng.uniform(0.7, 1.3) * fps)))))
    views = []
    for index in indices:
        view = Image.fromarray(faces[index]).resize((size, size), Image.Resampling.BICUBIC)
        views.append(np.repeat(np.asarray(view, dtype=np.uint8)[..., None], 3, axis=2))
    out, fade = np.empty((n, size, size, 3), dtype=np.uint8), max(1, int(round(0.25 * fps)))
    for k, view in enumerate(views):
        first, last = bounds[k], bounds[k + 1]
        out[first:last] = view
        if k > 0:  # fade in from the previous face over the first `fade` frames
            span = min(fade, last - first)
            weight = (np.arange(span) + 1.0) / (fade + 1.0)
            out[first : first + span] = _blend(views[k - 1][None], view[None], weight)
    return out, "lfw_subset faces " + ",".join(map(str, indices))


def render_shot(
    kind: str,
    n_frames: int,
    size: int,
    fps: int,
    rng: np.random.Generator,
    photos: tuple[int, ...] | None = None,
    cast: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, str]:
    """uint8 (n_frames, size, size, 3) frames of one shot of ``kind`` and a description of its source.

    ``photos`` (indices into :data:`~brainkit.stimuli.images.PHOTOS`) and ``cast`` (indices of lfw_subset faces)
    restrict what the shot may show; default: all of them."""
    if kind == "pan":
        return _pan(rng, n_frames, size, photos)
    if kind in ("zoom_in", "zoom_out"):
        return _zoom(rng, n_frames, size, kind == "zoom_in", photos)
    if kind == "crossfade":
        return _crossfade(rng, n_frames, size, photos)
    if kind == "faces":
        return _face_sequence(rng, n_frames, size, fps, cast)
    raise ConfigError(f"Unknown shot kind {kind!r}; expected one of {SHOT_KINDS}.")


def check_movie_options(n_seconds: int, fps: int, size: int) -> None:
    if not isinstance(fps, int) or not 1 <= fps <= 30:
        raise ConfigError(f"fps must be an integer in 1..30, found {fps!r}.")
    if not isinstance(size, int) or not 16 <= size <= 512:
        raise ConfigError(f"size must be an integer in 16..512 pixels, found {size!r}.")
    if not isinstance(n_seconds, int) or n_seconds < 1:
        raise ConfigError(f"n_seconds must be a positive integer, found {n_seconds!r}.")


def movie_segment(
    n_seconds: int, fps: int = 4, size: int = 128, seed: int = 0, n_photos: int = 6, n_faces: int = 12
) -> tuple[np.ndarray, list[Shot]]:
    """A movie segment of ``n_seconds``: uint8 frames (n_seconds * fps, size, size, 3) and its shots.

    Shots of 3-8 s (the last one cut to fit) of the kinds in :data:`SHOT_KINDS`, drawn from ``seed``. Like a
    film's scenes and characters, a segment keeps to its own ``n_photos`` photos and ``n_faces`` faces, drawn
    first, so its clips resemble each other more than clips of other segments (what makes SIM's "hard"
    negatives hard). The same arguments always give the same frames.
    """
    check_movie_options(n_seconds, fps, size)
    rng = np.random.default_rng(seed)
    photos = tuple(int(i) for i in rng.choice(len(PHOTOS), min(n_photos, len(PHOTOS)), replace=False))
    cast = tuple(int(i) for i in rng.choice(100, min(n_faces, 100), replace=False))
    n_frames, frames, shots = n_seconds * fps, [], []
    start = 0
    while start < n_frames:
        kind = SHOT_KINDS[int(rng.choice(len(SHOT_KINDS), p=SHOT_SHARES))]
        length = int(round(rng.uniform(*SHOT_SECONDS) * fps))
        length = min(max(length, fps), n_frames - start)
        shot, source = render_shot(kind, length, size, fps, rng, photos, cast)
        frames.append(shot)
        shots.append(Shot(kind, start, length, source))
        start += length
    return np.concatenate(frames), shots


def rest_frames(n_frames: int, size: int) -> np.ndarray:
    """The rest screen: uint8 (n_frames, size, size, 3), uniform mid-gray."""
    return np.full((n_frames, size, size, 3), REST_GRAY, dtype=np.uint8)


__all__ = ["SHOT_KINDS", "Shot", "movie_segment", "render_shot", "rest_frames"]
