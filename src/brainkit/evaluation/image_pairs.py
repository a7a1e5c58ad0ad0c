"""Read real / reconstructed image pairs from a folder, for ``brainkit metrics FOLDER``.

Two layouts are accepted:

1. **real/ + recon/** (chosen when ``FOLDER/real`` exists)::

       FOLDER/real/NAME.png          one real (ground-truth) image per NAME
       FOLDER/recon/NAME.png         its reconstruction, or
       FOLDER/recon/NAME_0.png ...   k samples of it: NAME_<integer>, ordered by the integer

   Every real image needs a reconstruction and every reconstruction a real image (a missing partner is an error,
   nothing is dropped); every NAME must have the same number k of samples; one NAME cannot mix ``NAME.png`` and
   ``NAME_0.png``. A reconstruction named exactly like a real image belongs to it (so real ``a_1`` wins over
   sample 1 of real ``a``).
2. **side-by-side strips** (chosen when FOLDER holds image files and no ``real/``): each ``FOLDER/NAME.png`` is
   one row of 1 + k square tiles with no gaps, ``[real | sample 1 | ... | sample k]``; tile side = image height,
   so the width must be a multiple of the height. All strips must have the same k.

Extensions: .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp (read with Pillow). Grayscale, palette and RGBA images
are converted to RGB (alpha dropped). Images of one side must share one size unless ``image_size`` is given, in
which case every image is resized (bilinear, antialiased, aspect ratio not kept) to image_size x image_size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.errors import FileFormatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_SAMPLE = re.compile(r"^(?P<name>.+)_(?P<index>\d+)$")
_LAYOUT_HELP = (
    "Expected FOLDER/real/NAME.png with FOLDER/recon/NAME.png (or NAME_0.png, NAME_1.png, ... for several "
    "samples), or FOLDER/NAME.png strips of square tiles [real | sample 1 | ... | sample k]."
)


@dataclass(frozen=True)
class ImagePairs:
    """Pairs read from a folder: ``real`` uint8 (n, H, W, 3), ``recon`` uint8 (n, k, H', W', 3), sorted by name."""

    names: tuple[str, ...]
    real: np.ndarray
    recon: np.ndarray
    layout: str  # "real_recon" or "strips"


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_rgb(path: Path) -> np.ndarray:
    """One image file -> uint8 (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise FileFormatError(f"Cannot read image {path}: {err}. Is it a complete image file?") from None


def _by_stem(files: list[Path], side: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise FileFormatError(
                f"{side} has two images named {path.stem!r} ({stems[path.stem].name}, {path.name}); keep one."
            )
        stems[path.stem] = path
    return stems


def _stack(images: list[np.ndarray], paths: list[Path], image_size: int | None, what: str) -> np.ndarray:
    if image_size is not None:
        from brainkit.evaluation.pixels import resize_images

        return np.stack([resize_images(image[None], image_size)[0] for image in images])
    first = images[0].shape
    odd = next((i for i, image in enumerate(images) if image.shape != first), None)
    if odd is not None:
        found = images[odd].shape
        raise FileFormatError(
            f"The {what} images have different sizes ({paths[0]} is {first[1]}x{first[0]}, {paths[odd]} is "
            f"{found[1]}x{found[0]}); pass image_size (--image-size) to resize all of them to one square size."
        )
    return np.stack(images)


def _read_real_recon(folder: Path, image_size: int | None) -> ImagePairs:
    real_dir, recon_dir = folder / "real", folder / "recon"
    if not recon_dir.is_dir():
        raise FileFormatError(f"{folder} has real/ but no recon/ folder. {_LAYOUT_HELP}")
    real_files = _by_stem(_image_files(real_dir), real_dir)
    recon_files = _by_stem(_image_files(recon_dir), recon_dir)
    if not real_files:
        raise FileFormatError(
            f"{real_dir} holds no image files ({', '.join(IMAGE_EXTENSIONS)}). {_LAYOUT_HELP}"
        )
    samples: dict[str, dict[int | None, Path]] = {name: {} for name in real_files}
    orphans = []
    for stem, path in recon_files.items():
        if stem in samples:
            samples[stem][None] = path
            continue
        match = _SAMPLE.match(stem)
        if match and match["name"] in samples:
            samples[match["name"]][int(match["index"])] = path
        else:
            orphans.append(path.name)
    if orphans:
        raise FileFormatError(
            f"{recon_dir}: {len(orphans)} reconstruction(s) have no real image in {real_dir} "
            f"(e.g. {orphans[:3]}); name them NAME.png or NAME_<k>.png after a real NAME."
        )
    missing = [name for name, found in samples.items() if not found]
    if missing:
        raise FileFormatError(
            f"{len(missing)} real image(s) have no reconstruction in {recon_dir} (e.g. {missing[:3]}); "
            f"add recon/NAME.png or recon/NAME_0.png for each."
        )
    mixed = [name for name, found in samples.items() if None in found and len(found) > 1]
    if mixed:
        raise FileFormatError(
            f"{recon_dir}: {mixed[0]!r} has both {mixed[0]}.png and numbered samples; use one naming per image."
        )
    counts = {name: len(found) for name, found in samples.items()}
    if len(set(counts.values())) > 1:
        low = min(counts, key=counts.get)
        high = max(counts, key=counts.get)
        raise FileFormatError(
            f"{recon_dir}: images have different numbers of samples ({low!r}: {counts[low]}, {high!r}: "
            f"{counts[high]}); every real image needs the same number k of reconstructions."
        )
    names = sorted(real_files)
    real_paths = [real_files[name] for name in names]
    real = _stack([read_rgb(p) for p in real_paths], real_paths, image_size, "real")
    recon_paths = [
        samples[name][key] for name in names for key in sorted(samples[name], key=lambda i: i or 0)
    ]
    k = counts[names[0]]
    recon = _stack([read_rgb(p) for p in recon_paths], recon_paths, image_size, "reconstructed")
    return ImagePairs(tuple(names), real, recon.reshape(len(names), k, *recon.shape[1:]), "real_recon")


def _read_strips(folder: Path, files: list[Path], image_size: int | None) -> ImagePairs:
    reals, recons, ks = [], [], set()
    for path in files:
        strip = read_rgb(path)
        height, width = strip.shape[:2]
        if width % height or width // height < 2:
            raise FileFormatError(
                f"{path} is {width}x{height}: a strip of square tiles [real | sample 1 | ... ] needs a width that "
                f"is a multiple (>= 2) of its height. {_LAYOUT_HELP}"
            )
        tiles = [strip[:, j * height : (j + 1) * height] for j in range(width // height)]
        if image_size is not None:
            from brainkit.evaluation.pixels import resize_images

            tiles = list(resize_images(np.stack(tiles), image_size))
        reals.append(tiles[0])
        recons.append(np.stack(tiles[1:]))
        ks.add(len(tiles) - 1)
    if len(ks) > 1:
        raise FileFormatError(
            f"{folder}: strips hold different numbers of samples ({sorted(ks)}); use one k."
        )
    shapes = {tile.shape for tile in reals}
    if len(shapes) > 1:
        raise FileFormatError(
            f"{folder}: strips have different tile sizes {sorted(s[:2] for s in shapes)}; pass image_size "
            "(--image-size) to resize them to one size."
        )
    return ImagePairs(tuple(p.stem for p in files), np.stack(reals), np.stack(recons), "strips")


def read_image_pairs(folder: str | Path, image_size: int | None = None) -> ImagePairs:
    """Read a folder in one of the two layouts of the module docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileFormatError(f"{folder} is not a folder. {_LAYOUT_HELP}")
    if (folder / "real").is_dir():
        return _read_real_recon(folder, image_size)
    files = _image_files(folder)
    if not files:
        raise FileFormatError(f"{folder} has no real/ folder and no image files. {_LAYOUT_HELP}")
    return _read_strips(folder, files, image_size)
