"""Real stimulus images that install with packages (no download): views of photos, faces and digits.

Sources (read from the installed packages; see docs/datasets.md for their origin):

- 27 photos and scientific images from ``skimage/data`` (astronaut, cat, coffee, rocket, coins, moon, ...) and
  ``sklearn/datasets/images`` (china, flower): random square crops (35-100 % of the short side), mirrored half
  of the time. Labels: "a photo of a cat", "a close-up photo of a cat", "a grayscale photo of the moon"...
- ``skimage/data/lfw_subset.npy``: 100 faces and 100 non-face patches (25 x 25 grayscale), each cropped and
  mirrored a few ways ("a grayscale photo of a face", "a small grayscale patch of a scene").
- scikit-learn's 1,797 handwritten digits (8 x 8), dark ink on light paper ("handwritten digit 7").

``real_images(n, size, seed)`` returns n DISTINCT stimuli (checked by hashing), always the same for a seed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from typing import NamedTuple

import numpy as np

from brainkit.errors import ConfigError

# (file, how it is described, what it shows); files in skimage/data unless they start with "sklearn:".
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("astronaut.png", "photo", "an astronaut"),
    ("chelsea.png", "photo", "a cat"),
    ("coffee.png", "photo", "a cup of coffee"),
    ("rocket.jpg", "photo", "a rocket on a launch pad"),
    ("camera.png", "grayscale photo", "a man with a camera"),
    ("coins.png", "grayscale photo", "old coins"),
    ("horse.png", "drawing", "a horse silhouette"),
    ("hubble_deep_field.jpg", "telescope image", "distant galaxies"),
    ("ihc.png", "microscopy image", "stained tissue"),
    ("motorcycle_left.png", "photo", "a motorcycle"),
    ("motorcycle_right.png", "photo", "a red motorcycle"),
    ("retina.jpg", "medical image", "a human retina"),
    ("moon.png", "grayscale photo", "the moon surface"),
    ("page.png", "scan", "a printed page of text"),
    ("text.png", "grayscale photo", "handwritten text on a board"),
    ("brick.png", "grayscale photo", "a brick wall"),
    ("grass.png", "grayscale photo", "grass"),
    ("gravel.png", "grayscale photo", "gravel"),
    ("cell.png", "microscopy image", "a living cell"),
    ("clock_motion.png", "grayscale photo", "a clock, motion blurred"),
    ("color.png", "chart", "colour gradients"),
    ("logo.png", "drawing", "a snake logo"),
    ("microaneurysms.png", "medical image", "retinal microaneurysms"),
    ("phantom.png", "medical image", "a brain phantom"),
    ("chessboard_RGB.png", "drawing", "a chessboard pattern"),
    ("sklearn:china.jpg", "photo", "a chinese temple"),
    ("sklearn:flower.jpg", "photo", "a flower"),
)

SHARES = {"photo": 0.5, "face": 0.2, "digit": 0.3}  # fraction of the n stimuli from each family


class RealImages(NamedTuple):
    """What :func:`real_images` returns (it unpacks as a 4-tuple).

    ids : str array (n,); images : uint8 array (n, size, size, 3); labels : str array (n,);
    sources : list of n str, where each image comes from and how it was cut ("skimage:chelsea.png crop ...").
    """

    ids: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    sources: list[str]


@functools.cache
def _photo(file: str) -> np.ndarray:
    """A source photo as uint8 (height, width, 3); alpha is composited on white, gray is repeated."""
    from PIL import Image

    if file.startswith("sklearn:"):
        path = os.path.join(_package_dir("sklearn"), "datasets", "images", file.split(":", 1)[1])
    else:
        path = os.path.join(_package_dir("skimage"), "data", file)
    with Image.open(path) as handle:
        image = np.asarray(handle.convert("RGBA" if handle.mode in ("RGBA", "LA", "P") else "RGB"))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[-1] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        image = (image[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


@functools.cache
def _faces() -> np.ndarray:
    path = os.path.join(_package_dir("skimage"), "data", "lfw_subset.npy")
    return (np.load(path) * 255).round().astype(np.uint8)  # (200, 25, 25): 100 faces, then 100 non-faces


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 x 8 x 8 in 0..16, targets), read from its csv without importing sklearn."""
    path = os.path.join(_package_dir("sklearn"), "datasets", "data", "digits.csv.gz")
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"real_images needs the package {name}; pip install scikit-image scikit-learn.")
    return spec.submodule_search_locations[0]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def _photo_view(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str, str]:
    index = int(rng.integers(len(PHOTOS)))
    file, kind, what = PHOTOS[index]
    image = _photo(file)
    height, width = image.shape[:2]
    fraction = float(rng.uniform(0.35, 1.0))
    side = max(8, int(round(fraction * min(height, width))))
    top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    flip = bool(rng.random() < 0.5)
    crop = image[top : top + side, left : left + side]
    view = _resize(crop[:, ::-1] if flip else crop, size)
    label = f"a close-up {kind} of {what}" if fraction < 0.6 else f"a {kind} of {what}"
    source = f"{'sklearn' if ':' in file else 'skimage'}:{file.split(':')[-1]} crop(top={top}, left={left}, "
    source += f"side={side}){' mirrored' if flip else ''}"
    return view, label, source


def _face_view(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str, str]:
    faces = _faces()
    index = int(rng.integers(len(faces)))
    side = int(rng.integers(19, 26))
    top, left = int(rng.integers(26 - side)), int(rng.integers(26 - side))
    flip = bool(rng.random() < 0.5)
    crop = faces[index, top : top + side, left : left + side]
    view = _resize(np.ascontiguousarray(crop[:, ::-1] if flip else crop), size)
    label = "a grayscale photo of a face" if index < 100 else "a small grayscale patch of a scene"
    source = f"skimage:lfw_subset.npy[{index}] crop(top={top}, left={left}, side={side}){' mirrored' if flip else ''}"
    return view, label, source


def _digit_view(rng: np.random.Generator, size: int, order: list[int]) -> tuple[np.ndarray, str, str]:
    images, targets = _digits()
    index = order.pop()
    ink = (255 - images[index] * (255 / 16)).round().astype(np.uint8)  # dark ink on light paper
    padded = np.pad(ink, 1, constant_values=255)
    return _resize(padded, size), f"handwritten digit {int(targets[index])}", f"sklearn:digits[{index}]"


def real_images(n: int, size: int = 192, seed: int = 0) -> RealImages:
    """``n`` distinct real images as (ids, images, labels, sources), deterministic from ``seed``.

    Parameters
    ----------
    n : int
        How many stimuli (1 to 20,000).
    size : int
        Side of the square images in pixels (16 to 1024).
    seed : int
        Picks the crops, flips and digits; the same seed gives the same arrays.

    Returns
    -------
    RealImages
        ``ids`` (n,) like "chelsea_00012", ``images`` uint8 (n, size, size, 3), ``labels`` (n,), ``sources``.
    """
    if not isinstance(n, int) or not 1 <= n <= 20000:
        raise ConfigError(f"real_images: n must be an int between 1 and 20000, found {n!r}.")
    if not isinstance(size, int) or not 16 <= size <= 1024:
        raise ConfigError(f"real_images: size must be an int between 16 and 1024 pixels, found {size!r}.")
    rng = np.random.default_rng(seed)
    n_digits = min(int(round(n * SHARES["digit"])), len(_digits()[0]) if n * SHARES["digit"] >= 1 else 0)
    n_faces = int(round(n * SHARES["face"]))
    families = ["digit"] * n_digits + ["face"] * n_faces + ["photo"] * (n - n_digits - n_faces)
    families = [families[i] for i in rng.permutation(n)]
    digit_order = rng.permutation(len(_digits()[0]))[:n_digits].tolist() if n_digits else []

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    ids, labels, sources, seen = [], [], [], set()
    for i, family in enumerate(families):
        for _ in range(100):  # redraw the rare exact duplicate (a tiny face crop drawn twice)
            if family == "photo":
                view, label, source = _photo_view(rng, size)
            elif family == "face":
                view, label, source = _face_view(rng, size)
            else:
                view, label, source = _digit_view(rng, size, digit_order)
            digest = hashlib.sha1(view.tobytes()).hexdigest()
            if digest not in seen:
                break
        else:  # pragma: no cover - would need n far beyond the distinct views available
            raise ConfigError(f"real_images: could not draw {n} distinct images; ask for fewer.")
        seen.add(digest)
        images[i] = view
        stem = source.split(":", 1)[1].split(" ")[0].split("[")[0].split(".")[0]
        ids.append(f"{stem}_{i:05d}")
        labels.append(label)
        sources.append(source)
    return RealImages(np.array(ids), images, np.array(labels), sources)
