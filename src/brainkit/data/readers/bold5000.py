"""BOLD5000 (Chang et al. 2019) GLMsingle ROI betas in the layout Mind-Vis and Vis-Dec read (METHODS.md 4.1).

Layout::

    ROOT/BOLD5000_GLMsingle_ROI_betas/py/CSI{1-4}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{ROI}.npy
        one (n_trials, n_voxels) array per subject and ROI; ROI = {LH,RH}{EarlyVis,LOC,OPA,PPA,RSC}
    ROOT/BOLD5000_Stimuli/Stimuli_Presentation_Lists/CSI{k}/<session folder>/*.txt   (optional)
        the image name of each trial, one per line, in trial order (sessions and files in sorted order);
        a "rep_" prefix marks a repeated image
    ROOT/BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt                (optional)
        the 113 images shown several times: Mind-Vis's test set
    ROOT/BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<image name>   (for load_bold5000)
        the images as presented, named as in the trial lists (COCO_train2014_000000000036.jpg,
        n01440764_10110.JPEG, airplanecabin1.jpg)

What we know and from where: Mind-Vis's ``create_BOLD5000_dataset`` (copied by Vis-Dec) concatenates, for each
subject, the files whose names contain the subject and, in this order, 'EarlyVis', 'LOC', 'OPA', 'PPA', 'RSC'
(within one ROI the sorted file names: LH before RH), along the voxel axis; reads the presentation lists as
above; takes as test set the repeated images (their trials averaged) and the rest as training trials; and pads
and z-scores the whole subject matrix. Several READMEs show the file names with the LH/RH prefix
(``..._allses_LHEarlyVis.npy``). We do not read the images (``img_dict.npy`` is a pickled dict; we load no
pickles) and we match ROI files exactly by name, not by substring.

:func:`load_bold5000` (registered as dataset ``"bold5000"``) returns Mind-Vis's split as trials with images:
train = the single trials of the images outside the 113 repeated ones; test = the repeated images each subject
saw, their trials averaged (``info["raw_test_trials"]`` keeps the single test trials). The images are read from
``Presented_Stimuli`` by the trial names instead of the pickled ``img_dict.npy`` (centre-cropped to a square,
resized to ``image_size``); a trial name that names no presented image is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.data.readers.pretraining_voxels import PATCH_SIZE, global_zscore, pad_to_multiple
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS

ROI_ORDER = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")  # Mind-Vis create_BOLD5000_dataset's roi_list
HEMISPHERES = ("LH", "RH")
BETAS_FOLDER = "BOLD5000_GLMsingle_ROI_betas/py"
FILE_PATTERN = "{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{roi}.npy"
STIMULI_FOLDER = "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli"
IMAGE_SOURCES = ("COCO", "ImageNet", "Scene")  # the subfolders of Presented_Stimuli
REPEATED_LIST = "BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt"


@dataclass(frozen=True)
class Bold5000Subject:
    """One subject's ROI betas (n_trials, n_voxels), the ROI of each column, and the image name of each trial."""

    subject: str
    betas: np.ndarray
    voxel_rois: tuple[str, ...]
    stimuli: tuple[str, ...] | None


def _betas_dir(root: Path) -> Path:
    for candidate in (root / BETAS_FOLDER, root / "py", root):
        if any(candidate.glob("CSI*_GLMbetas-*.npy")):
            return candidate
    raise FileFormatError(
        f"No BOLD5000 GLMsingle ROI betas under {root}; expected {root / BETAS_FOLDER}/"
        f"{FILE_PATTERN.format(subject='CSI1', roi='LHEarlyVis')} and the other ROI files."
    )


def read_bold5000_subject(
    root: str | Path, subject: str | int, rois: tuple[str, ...] = ROI_ORDER
) -> Bold5000Subject:
    """The subject's ROI betas, ROIs concatenated in ``rois`` order (LH then RH each), and its trial stimuli."""
    root = Path(root)
    name = f"CSI{subject}" if str(subject).isdigit() else str(subject)
    folder = _betas_dir(root)
    parts, labels = [], []
    for roi in rois:
        for hemisphere in HEMISPHERES:
            path = folder / FILE_PATTERN.format(subject=name, roi=f"{hemisphere}{roi}")
            if not path.is_file():
                found = sorted(p.name for p in folder.glob(f"{name}_GLMbetas-*.npy"))[:10]
                raise FileFormatError(f"Missing BOLD5000 ROI file {path}; found for {name}: {found}.")
            try:
                values = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:
                raise FileFormatError(f"Cannot read {path}: {err}. Is the download complete?") from None
            if values.ndim != 2:
                raise FileFormatError(f"{path} has shape {values.shape}; expected (n_trials, n_voxels).")
            if parts and len(values) != len(parts[0]):
                raise FileFormatError(
                    f"{path} has {len(values)} trials but the subject's other ROI files have {len(parts[0])}."
                )
            parts.append(values.astype(np.float32))
            labels += [f"{hemisphere}{roi}"] * values.shape[1]
    betas = np.concatenate(parts, axis=1)
    stimuli = read_bold5000_stimulus_list(root, name)
    if stimuli is not None and len(stimuli) != len(betas):
        raise FileFormatError(
            f"{name}: the presentation lists name {len(stimuli)} trials but the betas have {len(betas)} rows."
        )
    return Bold5000Subject(name, betas, tuple(labels), stimuli)


def read_bold5000_stimulus_list(root: str | Path, subject: str) -> tuple[str, ...] | None:
    """The image name of every trial (sessions and list files in sorted order, "rep_" removed); None if absent."""
    folder = Path(root) / "BOLD5000_Stimuli" / "Stimuli_Presentation_Lists" / subject
    if not folder.is_dir():
        return None
    names: list[str] = []
    for session in sorted(p for p in folder.iterdir() if p.is_dir()):
        for listing in sorted(session.glob("*.txt")):
            for line in listing.read_text().split():
                names.append(line.removeprefix("rep_"))
    if not names:
        raise FileFormatError(f"{folder} holds no trial lists (session folders of .txt files).")
    return tuple(names)


def bold5000_split(root: str | Path, data: Bold5000Subject) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mind-Vis's split: (train trials (n, v), test (m, v) = the repeated images' trials averaged, test names).

    Needs the presentation lists and ``Scene_Stimuli/repeated_stimuli_113_list.txt``.
    """
    path = Path(root) / REPEATED_LIST
    if data.stimuli is None or not path.is_file():
        raise FileFormatError(
            f"The BOLD5000 train/test split needs the presentation lists and {path}; one of them is missing."
        )
    repeated = path.read_text().split()
    names = np.asarray(data.stimuli)
    test_names = [name for name in repeated if np.any(names == name)]  # CSI4 saw fewer sessions
    test = np.stack([data.betas[names == name].mean(axis=0) for name in test_names])
    train = data.betas[~np.isin(names, test_names)]
    return train, test, test_names


def bold5000_pretraining_voxels(
    root: str | Path, subjects: tuple[str | int, ...] = (1, 2, 3, 4), trials: str = "train"
) -> dict[str, np.ndarray]:
    """Each subject's trials, wrap-padded to a multiple of 16 and z-scored globally: {subject: (n_trials, v)}.

    ``trials="train"`` keeps the training trials of :func:`bold5000_split` (the test images stay unseen; needs
    the stimulus lists); ``"all"`` takes every trial (Mind-Vis z-scores the whole matrix before splitting).
    """
    if trials not in ("train", "all"):
        raise ConfigError(f"trials must be 'train' or 'all', found {trials!r}.")
    out = {}
    for subject in subjects:
        data = read_bold5000_subject(root, subject)
        values = bold5000_split(root, data)[0] if trials == "train" else data.betas
        out[data.subject] = global_zscore(pad_to_multiple(values, PATCH_SIZE))
    return out


def presented_images(root: str | Path) -> dict[str, Path]:
    """Every image of ``Presented_Stimuli/{COCO,ImageNet,Scene}/`` by file name; a name in two folders raises."""
    folder = Path(root) / STIMULI_FOLDER
    found: dict[str, Path] = {}
    for source in IMAGE_SOURCES:
        for path in sorted((folder / source).glob("*")) if (folder / source).is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                if path.name in found:
                    raise FileFormatError(
                        f"BOLD5000 image {path.name} is both in {found[path.name]} and {path}."
                    )
                found[path.name] = path
    if not found:
        raise FileFormatError(
            f"No presented BOLD5000 images under {folder}/{{{','.join(IMAGE_SOURCES)}}}/; download "
            "BOLD5000_Stimuli (it holds Scene_Stimuli/Presented_Stimuli) and unpack it under root."
        )
    return found


def read_presented_images(paths: list[Path], size: int) -> np.ndarray:
    """uint8 (n, size, size, 3): each image converted to RGB, centre-cropped to a square, resized (bicubic)."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                side = min(image.size)
                left, top = (image.width - side) // 2, (image.height - side) // 2
                square = image.crop((left, top, left + side, top + side))
                out[i] = np.asarray(square.resize((size, size), Image.BICUBIC))
        except (UnidentifiedImageError, OSError) as err:
            raise FileFormatError(f"Cannot read BOLD5000 image {path}: {err}.") from None
    return out


def bold5000_subjects(root: str | Path) -> list[str]:
    """The subjects (``CSI1`` ...) that have ROI betas under ``root``, sorted."""
    folder = _betas_dir(Path(root))
    return sorted({p.name.split("_", 1)[0] for p in folder.glob("CSI*_GLMbetas-*.npy")})


@DATASETS.register(
    "bold5000",
    help="BOLD5000 (Chang et al. 2019) GLMsingle ROI betas with the presented images (needs root=...).",
    space="the concatenated ROI voxels (rois=, default EarlyVis, LOC, OPA, PPA, RSC; LH then RH each)",
    needs="root=: BOLD5000_GLMsingle_ROI_betas/py/CSI*_GLMbetas-*_allses_<ROI>.npy, BOLD5000_Stimuli/"
    "(Stimuli_Presentation_Lists/CSI*/, Scene_Stimuli/repeated_stimuli_113_list.txt, Scene_Stimuli/Presented_Stimuli/)",
)
def load_bold5000(
    root: str | Path,
    subjects: tuple[str | int, ...] | None = None,
    rois: tuple[str, ...] = ROI_ORDER,
    image_size: int = 256,
) -> DecodingDataset:
    """BOLD5000 as trials with images: Mind-Vis's split (see the module docstring).

    Parameters
    ----------
    root : the folder holding ``BOLD5000_GLMsingle_ROI_betas/`` and ``BOLD5000_Stimuli/``
    subjects : ``"CSI1"`` ... ``"CSI4"`` (or 1-4); None = every subject with betas
    rois : the ROIs concatenated along the voxels, in this order (each LH then RH)
    image_size : side of the square images returned

    Returns
    -------
    DecodingDataset
        Stimulus ids are the image file names; train (n_train_trials, n_voxels) single trials, test (n_repeated,
        n_voxels) averaged over repeats (``n_repeats``); ``info["raw_test_trials"][subject]``: the test trials.
    """
    root = Path(root)
    if not 8 <= int(image_size) <= 4096:
        raise ConfigError(f"bold5000: image_size must be between 8 and 4096 pixels, found {image_size}.")
    names = bold5000_subjects(root) if subjects is None else list(subjects)
    if not names:
        raise DataError(
            "bold5000: subjects is empty; name at least one (CSI1-CSI4) or leave it unset for all."
        )
    repeated_path = root / REPEATED_LIST
    if not repeated_path.is_file():
        raise FileFormatError(f"Missing {repeated_path}: the list of the 113 repeated (test) images.")
    repeated = repeated_path.read_text().split()
    space = "+".join(rois)
    train, test, raw_test, voxel_rois = {}, {}, {}, {}
    for subject in names:
        data = read_bold5000_subject(root, subject, tuple(rois))
        if data.stimuli is None:
            raise FileFormatError(
                f"{data.subject}: no presentation lists under {root / 'BOLD5000_Stimuli/Stimuli_Presentation_Lists'}"
                f"/{data.subject}/; they name the image of every trial."
            )
        samples = BrainSamples(data.subject, data.betas, np.asarray(data.stimuli), space)
        is_test = np.isin(samples.stimulus_ids, repeated)
        train[data.subject] = samples.select(~is_test)
        raw_test[data.subject] = samples.select(is_test)
        test[data.subject] = raw_test[data.subject].average_repeats()
        voxel_rois[data.subject] = list(data.voxel_rois)
    shown = sorted({sid for part in (train, test) for s in part.values() for sid in s.stimulus_ids})
    files = presented_images(root)
    missing = [name for name in shown if name not in files]
    if missing:
        raise FileFormatError(
            f"{len(missing)} trial image name(s) match no file under {root / STIMULI_FOLDER}/"
            f"{{{','.join(IMAGE_SOURCES)}}}/, e.g. {missing[:3]}; use the presentation lists and the images of the "
            "same BOLD5000 release."
        )
    stimuli = Stimuli(
        ids=np.array(shown), images=read_presented_images([files[n] for n in shown], int(image_size))
    )
    info = {
        "source": "BOLD5000 (Chang et al. 2019), GLMsingle ROI betas (TYPED-FITHRF-GLMDENOISE-RR)",
        "root": str(root),
        "rois": list(rois),
        "voxel_rois": voxel_rois,
        "split": "train: single trials of the non-repeated images; test: the repeated images (of "
        "repeated_stimuli_113_list.txt) each subject saw, trials averaged",
        "raw_test_trials": raw_test,
        "units": "GLMsingle betas as stored (not z-scored here)",
    }
    return DecodingDataset(name="bold5000", stimuli=stimuli, train=train, test=test, info=info)
