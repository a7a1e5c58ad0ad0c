"""Small GOD and BOLD5000 folders in their real layouts, with a known answer, for tests and examples.

:func:`write_god_folder` writes the Mind-Vis / Vis-Dec GOD layout (``data/Kamitani/npz``) under ``root``:

- ``images_256.npz``: ``train_images`` (n_train_images, S, S, 3) and ``test_images`` (n_test_images, S, S, 3)
  uint8, real photo crops (:func:`brainkit.testing.photo_crops`);
- ``sbj_{k}.npz`` per subject: ``arr_0`` (n_train_images * train_repeats, n_all) float64 training rows,
  ``arr_3`` (int, the row of ``train_images`` each shows, shuffled), ``arr_1`` (n_test_images * test_repeats,
  n_all) single test trials, image-major, ``arr_2`` (n_test_images, n_all) their means, and the boolean ROI
  masks ``VC`` (``n_vc`` columns) and ``V1`` (a subset of them) over the n_all columns.

:func:`write_bold5000_folder` writes the BOLD5000 release layout under ``root``:

- ``BOLD5000_GLMsingle_ROI_betas/py/CSI{k}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{LH,RH}{ROI}.npy``, one
  (n_trials, n_roi_voxels) float32 array per ROI and hemisphere;
- ``BOLD5000_Stimuli/Stimuli_Presentation_Lists/CSI{k}/CSI{k}_sess{NN}/CSI{k}_sess{NN}_run{RR}.txt``: one image
  name per line, ``rep_`` before the repeated ones;
- ``BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt`` (here ``n_repeated`` names, plus one never
  shown, as CSI4's lists lack some);
- ``BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/``: the images as JPEG / PNG files
  under BOLD5000's names (``COCO_train2014_000000xxxxxx.jpg``, ``n0xxxxxxx_yyyy.JPEG``, ``<scene>N.jpg``), of
  unequal sizes (some not square).

The signal in both: a voxel responds ``f(image) . w_v`` (``f``: the image's 4 x 4 grey thumbnail, z-scored,
``w_v`` ~ N(0, I) / 4) plus white noise of ``noise`` standard deviation, per trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROI_SIZES = {
    "EarlyVis": (6, 5),
    "LOC": (4, 3),
    "OPA": (2, 3),
    "PPA": (3, 2),
    "RSC": (2, 1),
}  # (LH, RH) voxels


def _thumbnail_features(images: np.ndarray) -> np.ndarray:
    """(n, S, S, 3) uint8 -> (n, 16) float: 4 x 4 grey block means, z-scored over the images."""
    grey = images.astype(np.float64).mean(-1)
    n, size = grey.shape[0], grey.shape[1] // 4 * 4
    blocks = grey[:, :size, :size].reshape(n, 4, size // 4, 4, size // 4).mean(axis=(2, 4)).reshape(n, 16)
    return (blocks - blocks.mean(0)) / (blocks.std(0) + 1e-6)


def _responses(features: np.ndarray, n_voxels: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    weights = rng.standard_normal((features.shape[1], n_voxels)) / 4
    return features @ weights + noise * rng.standard_normal((len(features), n_voxels))


@dataclass(frozen=True)
class GodExample:
    """What :func:`write_god_folder` wrote: the folder, subject numbers, VC voxel count, image counts."""

    root: Path
    subjects: list[int]
    n_vc: int
    n_train_images: int
    n_test_images: int
    test_repeats: int


def write_god_folder(
    root: str | Path,
    subjects: tuple[int, ...] = (1, 3),
    n_train_images: int = 36,
    n_test_images: int = 10,
    train_repeats: int = 1,
    test_repeats: int = 3,
    n_all: int = 57,
    n_vc: int = 41,
    image_size: int = 32,
    noise: float = 0.5,
    seed: int = 0,
) -> GodExample:
    """Write a GOD folder (see the module docstring); returns what it holds."""
    from brainkit.testing import photo_crops

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_images = n_train_images + n_test_images
    images = photo_crops(n_per_source=-(-n_images // 5), size=image_size)[rng.permutation(n_images)]
    np.savez(
        root / "images_256.npz", train_images=images[:n_train_images], test_images=images[n_train_images:]
    )
    features = _thumbnail_features(images)
    for subject in subjects:
        vc = np.zeros(n_all, bool)
        vc[rng.choice(n_all, n_vc, replace=False)] = True
        v1 = vc & (rng.random(n_all) < 0.5)
        index = rng.permutation(np.repeat(np.arange(n_train_images), train_repeats))
        shown_test = np.repeat(np.arange(n_test_images), test_repeats) + n_train_images
        values = _responses(features[np.concatenate([index, shown_test])], n_all, noise, rng)
        train, test_trials = values[: len(index)], values[len(index) :]
        averaged = test_trials.reshape(n_test_images, test_repeats, n_all).mean(1)
        np.savez(root / f"sbj_{subject}.npz", arr_0=train, arr_1=test_trials, arr_2=averaged, arr_3=index,
                 VC=vc, V1=v1)  # fmt: skip
    return GodExample(root, list(subjects), n_vc, n_train_images, n_test_images, test_repeats)


@dataclass(frozen=True)
class Bold5000Example:
    """What :func:`write_bold5000_folder` wrote: the trial names per subject (in trial order), the repeated
    (test) images, every image name with its file, and the voxel count (the sum of the ROI sizes)."""

    root: Path
    subjects: list[str]
    trials: dict[str, list[str]]
    repeated: list[str]
    files: dict[str, Path]
    n_voxels: int


def _bold5000_names(n: int, rng: np.random.Generator) -> list[str]:
    """n image names in BOLD5000's three naming schemes (COCO, ImageNet synset, SUN scene)."""
    scenes = ("airplanecabin", "bedroom", "footbridge", "kitchen", "lighthouse")
    names = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            names.append(f"COCO_train2014_{int(rng.integers(1, 581_000)):012d}.jpg")
        elif kind == 1:
            names.append(
                f"n{int(rng.integers(1_440_000, 15_000_000)):08d}_{int(rng.integers(1, 50_000))}.JPEG"
            )
        else:
            names.append(f"{scenes[i % len(scenes)]}{i}.jpg")
    return names


def write_bold5000_folder(
    root: str | Path,
    subjects: tuple[int, ...] = (1, 2),
    n_train_images: int = 30,
    n_repeated: int = 8,
    repeats: int = 3,
    n_sessions: int = 2,
    image_size: int = 40,
    noise: float = 0.5,
    seed: int = 0,
) -> Bold5000Example:
    """Write a BOLD5000 folder (see the module docstring); returns what it holds."""
    from PIL import Image

    from brainkit.testing import photo_crops

    root = Path(root)
    rng = np.random.default_rng(seed)
    n_images = n_train_images + n_repeated
    names = _bold5000_names(n_images, rng)
    if len(set(names)) != n_images:
        raise RuntimeError("write_bold5000_folder drew the same image name twice; use another seed.")
    crops = photo_crops(n_per_source=-(-n_images // 5), size=image_size)[rng.permutation(n_images)]
    stimuli = root / "BOLD5000_Stimuli" / "Scene_Stimuli"
    files = {}
    for i, name in enumerate(names):
        source = (
            "COCO"
            if name.startswith("COCO_")
            else "ImageNet"
            if name.startswith("n") and "_" in name
            else "Scene"
        )
        path = stimuli / "Presented_Stimuli" / source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(crops[i])
        if i % 4 == 1:  # not square, as many ImageNet and Scene images are
            image = image.resize((image_size + 12, image_size))
        image.save(path, format="JPEG", quality=95)
        files[name] = path
    repeated = names[n_train_images:]
    (stimuli / "repeated_stimuli_113_list.txt").write_text("\n".join([*repeated, "neverseen99.jpg"]) + "\n")
    features = _thumbnail_features(crops)
    position = {name: i for i, name in enumerate(names)}
    betas = root / "BOLD5000_GLMsingle_ROI_betas" / "py"
    betas.mkdir(parents=True, exist_ok=True)
    trials, n_voxels = {}, sum(sum(sizes) for sizes in ROI_SIZES.values())
    for number in subjects:
        subject = f"CSI{number}"
        order = list(rng.permutation(names[:n_train_images] + repeated * repeats))
        trials[subject] = order
        values = _responses(features[[position[n] for n in order]], n_voxels, noise, rng).astype(np.float32)
        column = 0
        for roi, sizes in ROI_SIZES.items():
            for hemisphere, size in zip(("LH", "RH"), sizes):
                file = betas / f"{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{hemisphere}{roi}.npy"
                np.save(file, values[:, column : column + size])
                column += size
        lists = root / "BOLD5000_Stimuli" / "Stimuli_Presentation_Lists" / subject
        for session, chunk in enumerate(np.array_split(np.array(order), n_sessions), start=1):
            folder = lists / f"{subject}_sess{session:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for run, part in enumerate(np.array_split(chunk, 2), start=1):
                lines = [f"rep_{n}" if n in repeated else str(n) for n in part]
                (folder / f"{subject}_sess{session:02d}_run{run:02d}.txt").write_text("\n".join(lines) + "\n")
    return Bold5000Example(root, list(trials), trials, repeated, files, n_voxels)


__all__ = ["write_god_folder", "write_bold5000_folder", "GodExample", "Bold5000Example"]
