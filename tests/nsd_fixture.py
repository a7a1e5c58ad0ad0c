"""Write a tiny Natural Scenes Dataset in NSD's exact folder layout and file formats (copy it for your tests).

The design is consistent across files, like the real release, only smaller:

- 8 images per subject (``subjectim`` (8, 8)); the first 3 columns are the shared images (``sharedix``).
- Each session: 2 runs with 2 and 3 stimulus trials (``stimpattern`` (n_sessions, 2, 4)), 5 trials in all.
- ``nsd_stim_info_merged.csv`` rows for every image, with ``subjectK_repN`` = 1-based trial numbers.
- Betas: int16 = percent signal change x 300, HDF5 (trials, Z, Y, X) and/or NIfTI (X, Y, Z, trials).
- ``imgBrick`` (n_images, 12, 10, 3): image ``i`` is filled with the colour ``image_colour(i)``.

All values are 1-based where NSD's are (the .mat file and the csv's trial numbers).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
from scipy.io import savemat

SHAPE = (7, 8, 9)  # X, Y, Z: unequal so a swapped axis cannot pass
RUN_PATTERN = np.array([[0, 1, 1, 0], [1, 1, 0, 1]], dtype=np.uint8)  # 2 runs: 2 and 3 stimulus trials
TRIALS_PER_SESSION = int(RUN_PATTERN.sum())
N_SHARED = 3
N_UNIQUE = 5  # per subject
# 1-based columns of subjectim shown in sessions 1, 2, 3 (columns 1-3 are the shared images)
MASTER_ORDER = [[1, 4, 2, 5, 6], [3, 1, 7, 4, 2], [8, 3, 1, 5, 2]]
N_IMAGES = N_SHARED + 8 * N_UNIQUE
IMAGE_SHAPE = (12, 10)
AFFINE = np.diag([1.8, 1.8, 1.8, 1.0])


def image_colour(nsd_id: int) -> np.ndarray:
    """The RGB colour that fills image ``nsd_id`` (0-based)."""
    return np.array([(5 * nsd_id) % 256, (5 * nsd_id + 1) % 256, (5 * nsd_id + 2) % 256], dtype=np.uint8)


def nsd_ids(seed: int = 0) -> np.ndarray:
    """subjectim as 0-based nsdIds, shape (8, N_SHARED + N_UNIQUE): a shuffled assignment of the images."""
    order = np.random.default_rng(seed).permutation(N_IMAGES)
    shared = order[:N_SHARED]
    rows = [
        np.concatenate([shared, order[N_SHARED + k * N_UNIQUE : N_SHARED + (k + 1) * N_UNIQUE]])
        for k in range(8)
    ]
    return np.stack(rows)


def write_nsd_fixture(
    root: str | Path,
    *,
    subjects: tuple[int, ...] = (1,),
    n_sessions: int = 3,
    beta_format: str = "hdf5",
    seed: int = 0,
) -> dict:
    """Write the files under ``root``; return the ground truth.

    Parameters
    ----------
    subjects : subject numbers (1-8) that get a mask and betas
    n_sessions : sessions in the design (at most 3)
    beta_format : "hdf5", "nifti" or "both"

    Returns
    -------
    dict with "subjectim" (8, 8) 0-based nsdIds, "master" (n_sessions, 5) 0-based subjectim columns,
    "mask" {subject: bool (X, Y, Z)}, "betas" {subject: {session: int16 (X, Y, Z, 5)}}, "coco_id" (N_IMAGES,)
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    subjectim = nsd_ids(seed)
    master = np.array(MASTER_ORDER[:n_sessions]) - 1

    design_dir = root / "nsddata/experiments/nsd"
    design_dir.mkdir(parents=True, exist_ok=True)
    savemat(
        design_dir / "nsd_expdesign.mat",
        {
            "masterordering": (master.reshape(1, -1) + 1).astype(np.float64),
            "subjectim": (subjectim + 1).astype(np.float64),
            "sharedix": (subjectim[0, :N_SHARED].reshape(1, -1) + 1).astype(np.float64),
            "stimpattern": np.repeat(RUN_PATTERN[None], n_sessions, axis=0).astype(np.float64),
        },
    )

    coco_id = rng.choice(np.arange(100_000, 600_000), size=N_IMAGES, replace=False)
    table = pd.DataFrame(
        {
            "cocoId": coco_id,
            "cocoSplit": "train2017",
            "cropBox": "(0, 0, 0.1, 0.1)",
            "loss": 0.0,
            "nsdId": np.arange(N_IMAGES),
            "flagged": False,
            "BOLD5000": False,
            "shared1000": np.isin(np.arange(N_IMAGES), subjectim[0, :N_SHARED]),
        }
    )
    flat_master = master.ravel()
    for k in range(1, 9):
        table[f"subject{k}"] = np.isin(np.arange(N_IMAGES), subjectim[k - 1]).astype(int)
    for k in range(1, 9):
        shown = subjectim[k - 1, flat_master]  # nsdId of each trial
        for rep in range(3):
            column = np.zeros(N_IMAGES, dtype=np.int64)
            for image in range(N_IMAGES):
                trials = np.nonzero(shown == image)[0] + 1
                if len(trials) > rep:
                    column[image] = trials[rep]
            table[f"subject{k}_rep{rep}"] = column
    table.to_csv(design_dir / "nsd_stim_info_merged.csv")  # with the unnamed index column, like NSD's

    stimuli_dir = root / "nsddata_stimuli/stimuli/nsd"
    stimuli_dir.mkdir(parents=True, exist_ok=True)
    brick = np.empty((N_IMAGES, *IMAGE_SHAPE, 3), dtype=np.uint8)
    brick[:] = np.stack([image_colour(i) for i in range(N_IMAGES)])[:, None, None, :]
    with h5py.File(stimuli_dir / "nsd_stimuli.hdf5", "w") as handle:
        handle.create_dataset("imgBrick", data=brick)

    masks, betas = {}, {}
    for k in subjects:
        subject = f"subj{k:02d}"
        labels = np.full(SHAPE, -1, dtype=np.int16)
        labels[1:-1, 1:-1, 1:-1] = 0
        inside = rng.random(SHAPE) < 0.15
        labels[inside & (labels == 0)] = 1
        masks[subject] = labels > 0
        write_nifti(root / f"nsddata/ppdata/{subject}/func1pt8mm/roi/nsdgeneral.nii.gz", labels)
        betas[subject] = {}
        beta_dir = root / f"nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
        beta_dir.mkdir(parents=True, exist_ok=True)
        for session in range(1, n_sessions + 1):
            offset = rng.normal(0, 1, SHAPE)[..., None]
            psc = offset + rng.normal(0, 2, (*SHAPE, TRIALS_PER_SESSION))
            values = np.round(psc * 300).astype(np.int16)  # (X, Y, Z, trials)
            betas[subject][session] = values
            if beta_format in {"hdf5", "both"}:
                write_hdf5_betas(beta_dir / f"betas_session{session:02d}.hdf5", values)
            if beta_format in {"nifti", "both"}:
                write_nifti(beta_dir / f"betas_session{session:02d}.nii.gz", values)
    return {"subjectim": subjectim, "master": master, "mask": masks, "betas": betas, "coco_id": coco_id}


def write_hdf5_betas(path: Path, values: np.ndarray) -> None:
    """Betas (X, Y, Z, trials) written as NSD's HDF5 does: dataset "betas", shape (trials, Z, Y, X)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("betas", data=np.ascontiguousarray(values.transpose(3, 2, 1, 0)))


def write_nifti(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(values, AFFINE)
    image.header.set_data_dtype(values.dtype)
    nib.save(image, str(path))
