"""Generic Object Decoding (GOD, Horikawa & Kamitani 2017) in the Mind-Vis / Vis-Dec npz layout.

Layout (``data/Kamitani/npz/`` of Mind-Vis and Vis-Dec, METHODS.md 4.1)::

    FOLDER/sbj_{1..5}.npz     arr_0  training fMRI, (1200, n_all_voxels): one row per training image shown
                              arr_1  test fMRI, single trials (not averaged), (n_test_trials, n_all_voxels)
                              arr_2  test fMRI averaged per test image, (50, n_all_voxels)
                              arr_3  int (1200,): row i of arr_0 shows images_256.npz['train_images'][arr_3[i]]
                              VC, ... boolean ROI masks over the n_all_voxels columns
    FOLDER/images_256.npz     train_images (1200, 256, 256, 3) uint8, test_images (50, 256, 256, 3) uint8

What we know and from where: Mind-Vis's ``code/dataset.py`` (``create_Kamitani_dataset``; Vis-Dec copies it)
selects ``npz[roi]`` as a mask on the last axis of arr_0 / arr_2 / arr_1 (default roi ``'VC'``), takes the images
of arr_0 as ``train_images[arr_3]``, pairs arr_2 row j with ``test_images[j]``, and appends arr_1 to the test
fMRI only with ``include_nonavg_test``; a comment in a copy of that file says images_256.npz holds 1200
'train_images' and 50 'test_images'. What we do not know: the ROI key names besides 'VC' (we list what a file
holds), the row order of arr_1 relative to the test images (so we return arr_1 unpaired), and the label files
(``imagenet_*_label.csv``), which are not read here.

Preprocessing (:func:`god_pretraining_voxels`) follows Mind-Vis: ROI mask, wrap-pad to a multiple of 16, global
z-score with the training statistics (test data gets the training mean and std).

:func:`load_god` (registered as dataset ``"god"``) returns the decoding split Mind-Vis and Vis-Dec use, as trials
with their images: train = the rows of arr_0, each paired with ``train_images[arr_3[i]]`` (stimulus id
``god-train-NNNN``, the row of ``train_images``); test = the 50 averaged rows of arr_2, row j paired with
``test_images[j]`` (``god-test-NN``). The ROI voxels are given as stored (no padding, no z-scoring: a recipe does
its own). arr_1 is not paired (its row order is unknown), so the single test trials are not in the dataset.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.data.readers.pretraining_voxels import PATCH_SIZE, global_zscore, pad_to_multiple
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import DataError, FileFormatError
from brainkit.registry import DATASETS

FMRI_KEYS = ("arr_0", "arr_1", "arr_2", "arr_3")


@dataclass(frozen=True)
class GodSubject:
    """One subject's ROI voxels: ``train`` (n_train, v), ``test`` (n_test_images, v), ``test_trials`` (m, v)."""

    subject: str
    roi: str
    train: np.ndarray
    test: np.ndarray
    test_trials: np.ndarray
    train_image_index: np.ndarray  # (n_train,) rows of images_256.npz['train_images']


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileFormatError(
            f"{path} does not exist. Expected the Mind-Vis GOD layout (sbj_1.npz ... sbj_5.npz)."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise FileFormatError(f"Cannot read {path}: {err}. Is the download complete?") from None


def read_god_subject(folder: str | Path, subject: str | int, roi: str = "VC") -> GodSubject:
    """Read ``FOLDER/sbj_{k}.npz`` and keep the voxels of ``roi`` (a boolean mask key of the file)."""
    name = f"sbj_{subject}" if isinstance(subject, int) or str(subject).isdigit() else str(subject)
    path = Path(folder) / f"{name}.npz"
    arrays = _load_npz(path)
    missing = [key for key in FMRI_KEYS if key not in arrays]
    if missing:
        raise FileFormatError(
            f"{path} lacks {missing}; the Mind-Vis GOD layout has arr_0 (train fMRI), arr_1 / arr_2 (test, single "
            f"trials / averaged), arr_3 (train image indices) and ROI masks. Found keys {sorted(arrays)}."
        )
    rois = sorted(k for k, v in arrays.items() if k not in FMRI_KEYS and v.dtype == bool and v.ndim == 1)
    if roi not in arrays:
        raise FileFormatError(f"{path} has no ROI mask {roi!r}; its boolean masks are {rois}.")
    mask = arrays[roi]
    n_all = arrays["arr_0"].shape[-1] if arrays["arr_0"].ndim == 2 else -1
    if mask.dtype != bool or mask.ndim != 1 or mask.shape[0] != n_all:
        raise FileFormatError(
            f"{path}: ROI {roi!r} must be a boolean mask over the {n_all} voxel columns of arr_0; found "
            f"{mask.dtype} {mask.shape}."
        )
    for key in ("arr_1", "arr_2"):
        if arrays[key].ndim != 2 or arrays[key].shape[1] != n_all:
            raise FileFormatError(f"{path}: {key} has shape {arrays[key].shape}; expected (n, {n_all}).")
    index = arrays["arr_3"].reshape(-1)
    if len(index) != len(arrays["arr_0"]) or not np.issubdtype(index.dtype, np.integer):
        raise FileFormatError(
            f"{path}: arr_3 must hold one integer image index per row of arr_0 ({len(arrays['arr_0'])}); "
            f"found {arrays['arr_3'].dtype} {arrays['arr_3'].shape}."
        )
    return GodSubject(
        subject=name,
        roi=roi,
        train=arrays["arr_0"][:, mask].astype(np.float32),
        test=arrays["arr_2"][:, mask].astype(np.float32),
        test_trials=arrays["arr_1"][:, mask].astype(np.float32),
        train_image_index=index.astype(np.int64),
    )


def read_god_images(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``FOLDER/images_256.npz`` -> (train_images (n, H, W, 3), test_images (m, H, W, 3)), uint8."""
    path = Path(folder) / "images_256.npz"
    arrays = _load_npz(path)
    for key in ("train_images", "test_images"):
        if key not in arrays:
            raise FileFormatError(f"{path} has no {key!r}; found keys {sorted(arrays)}.")
        image = arrays[key]
        if image.ndim != 4 or image.shape[-1] != 3:
            raise FileFormatError(f"{path}: {key} has shape {image.shape}; expected (n, H, W, 3).")
    return arrays["train_images"].astype(np.uint8), arrays["test_images"].astype(np.uint8)


def god_training_images(subject: GodSubject, train_images: np.ndarray) -> np.ndarray:
    """The image shown on each training row: ``train_images[arr_3]``, (n_train, H, W, 3)."""
    if subject.train_image_index.max() >= len(train_images) or subject.train_image_index.min() < 0:
        raise FileFormatError(
            f"{subject.subject}: arr_3 indexes up to {subject.train_image_index.max()} but images_256.npz has "
            f"{len(train_images)} train_images; are the files from the same release?"
        )
    return train_images[subject.train_image_index]


def god_pretraining_voxels(
    folder: str | Path, subjects: tuple[str | int, ...] = (1, 2, 3, 4, 5), roi: str = "VC"
) -> dict[str, np.ndarray]:
    """Each subject's training fMRI, wrap-padded to a multiple of 16 and z-scored globally: {subject: (n, v)}.

    Vis-Dec's ``Kamitani_pretrain_dataset`` pretrains on the training rows (arr_0) this way; the test rows stay out.
    """
    out = {}
    for subject in subjects:
        data = read_god_subject(folder, subject, roi)
        out[data.subject] = global_zscore(pad_to_multiple(data.train, PATCH_SIZE))
    return out


def god_subjects(folder: str | Path) -> list[int]:
    """The subject numbers k of the ``sbj_k.npz`` files in ``folder``, sorted; raises when there are none."""
    folder = Path(folder)
    numbers = sorted(int(p.stem[4:]) for p in folder.glob("sbj_*.npz") if p.stem[4:].isdigit())
    if not numbers:
        found = sorted(p.name for p in folder.iterdir())[:10] if folder.is_dir() else "no such folder"
        raise FileFormatError(
            f"No GOD subject files sbj_1.npz ... sbj_5.npz in {folder} (found: {found}). Point root at the "
            "Mind-Vis / Vis-Dec folder data/Kamitani/npz, which holds them and images_256.npz."
        )
    return numbers


@DATASETS.register(
    "god",
    help="Generic Object Decoding (Horikawa & Kamitani 2017), Mind-Vis npz layout, with its images (needs root=...).",
    space="the voxel columns of the ROI mask roi= (default VC) in each subject's npz",
    needs="root=: sbj_{1..5}.npz (arr_0..arr_3 + ROI masks) and images_256.npz (train_images, test_images)",
)
def load_god(
    root: str | Path, subjects: tuple[int | str, ...] | None = None, roi: str = "VC"
) -> DecodingDataset:
    """GOD as trials with images: Mind-Vis's split (see the module docstring).

    Parameters
    ----------
    root : the folder of ``sbj_{k}.npz`` and ``images_256.npz`` (Mind-Vis's ``data/Kamitani/npz``)
    subjects : subject numbers 1-5 (or ``"sbj_3"``); None = every ``sbj_k.npz`` in ``root``
    roi : the ROI mask key of the npz files (``"VC"``, the visual cortex, as Mind-Vis and Vis-Dec)

    Returns
    -------
    DecodingDataset
        Subjects ``"sbj_k"``; train (1200, n_roi_voxels) single presentations, test (50, n_roi_voxels) averaged
        (``n_repeats``: arr_1's trials per test image when they divide evenly, else 1); stimuli: the 1200 + 50
        images of ``images_256.npz``.
    """
    root = Path(root)
    numbers = god_subjects(root) if subjects is None else list(subjects)
    if not numbers:
        raise DataError("god: subjects is empty; name at least one (1-5) or leave it unset for all.")
    train_images, test_images = read_god_images(root)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise FileFormatError(
            f"{root / 'images_256.npz'}: train_images are {train_images.shape[1:]} but test_images "
            f"{test_images.shape[1:]}; both should be (256, 256, 3)."
        )
    train_ids = np.array([f"god-train-{i:04d}" for i in range(len(train_images))])
    test_ids = np.array([f"god-test-{j:02d}" for j in range(len(test_images))])
    train, test, n_voxels, trials_per_image = {}, {}, {}, {}
    for number in numbers:
        data = read_god_subject(root, number, roi)
        god_training_images(data, train_images)  # checks arr_3 against the images
        if len(data.test) != len(test_images):
            raise FileFormatError(
                f"{root / (data.subject + '.npz')}: arr_2 has {len(data.test)} averaged test rows but images_256.npz "
                f"has {len(test_images)} test_images; row j of arr_2 must show test_images[j]."
            )
        per_image = (
            len(data.test_trials) // len(data.test) if len(data.test_trials) % len(data.test) == 0 else 1
        )
        space = f"god_{roi}"
        train[data.subject] = BrainSamples(data.subject, data.train, train_ids[data.train_image_index], space)
        test[data.subject] = BrainSamples(
            data.subject, data.test, test_ids, space, n_repeats=np.full(len(test_ids), per_image)
        )
        n_voxels[data.subject] = int(data.train.shape[1])
        trials_per_image[data.subject] = per_image
    stimuli = Stimuli(
        ids=np.concatenate([train_ids, test_ids]), images=np.concatenate([train_images, test_images])
    )
    info = {
        "source": "Generic Object Decoding (Horikawa & Kamitani 2017), Mind-Vis / Vis-Dec npz release",
        "root": str(root),
        "roi": roi,
        "n_voxels": n_voxels,
        "split": "train: arr_0 rows with train_images[arr_3]; test: arr_2 (averaged per image) with test_images",
        "test_trials_per_image": trials_per_image,
        "units": "as stored in the npz files (not z-scored here)",
    }
    return DecodingDataset(name="god", stimuli=stimuli, train=train, test=test, info=info)
