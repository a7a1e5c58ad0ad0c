"""BOLD5000 (Chang et al. 2019) GLMsingle ROI betas in the layout Mind-Vis and Vis-Dec read (METHODS.md 4.1).

Layout::

    ROOT/BOLD5000_GLMsingle_ROI_betas/py/CSI{1-4}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{ROI}.npy
        one (n_trials, n_voxels) array per subject and ROI; ROI = {LH,RH}{EarlyVis,LOC,OPA,PPA,RSC}
    ROOT/BOLD5000_Stimuli/Stimuli_Presentation_Lists/CSI{k}/<session folder>/*.txt   (optional)
        the image name of each trial, one per line, in trial order (sessions and files in sorted order);
        a "rep_" prefix marks a repeated image
    ROOT/BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt                (optional)
        the 113 images shown several times: Mind-Vis's test set

What we know and from where: Mind-Vis's ``create_BOLD5000_dataset`` (copied by Vis-Dec) concatenates, for each
subject, the files whose names contain the subject and, in this order, 'EarlyVis', 'LOC', 'OPA', 'PPA', 'RSC'
(within one ROI the sorted file names: LH before RH), along the voxel axis; reads the presentation lists as
above; takes as test set the repeated images (their trials averaged) and the rest as training trials; and pads
and z-scores the whole subject matrix. Several READMEs show the file names with the LH/RH prefix
(``..._allses_LHEarlyVis.npy``). We do not read the images (``img_dict.npy`` is a pickled dict; we load no
pickles) and we match ROI files exactly by name, not by substring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.data.readers.pretraining_voxels import PATCH_SIZE, global_zscore, pad_to_multiple
from brainkit.errors import ConfigError, FileFormatError

ROI_ORDER = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")  # Mind-Vis create_BOLD5000_dataset's roi_list
HEMISPHERES = ("LH", "RH")
BETAS_FOLDER = "BOLD5000_GLMsingle_ROI_betas/py"
FILE_PATTERN = "{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_{roi}.npy"


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
    path = Path(root) / "BOLD5000_Stimuli" / "Scene_Stimuli" / "repeated_stimuli_113_list.txt"
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
