"""Write a tiny Natural Scenes Dataset in NSD's exact folder layout and file formats (copy it for your tests).

The design is consistent across files, like the real release, only smaller:

- 8 images per subject (``subjectim`` (8, 8)); the first 3 columns are the shared images (``sharedix``).
- Each session: 2 runs with 2 and 3 stimulus trials (``stimpattern`` (n_sessions, 2, 4)), 5 trials in all.
- ``nsd_stim_info_merged.csv`` rows for every image, with ``subjectK_repN`` = 1-based trial numbers.
- Betas: int16 = percent signal change x 300, HDF5 (trials, Z, Y, X) and/or NIfTI (X, Y, Z, trials).
- ``imgBrick`` (n_images, 12, 10, 3): image ``i`` is filled with the colour ``image_colour(i)``.

- ROI label volumes ``roi/prf-visualrois.nii.gz`` (values 1-7, with FreeSurfer's colour table
  ``nsddata/freesurfer/<subj>/label/prf-visualrois.mgz.ctab``) and ``roi/floc-faces.nii.gz`` (values 1, 2 and 5,
  no colour table): hV4 (7) lies inside subj01's nsdgeneral only, floc-faces 5 inside no subject's.
- ``write_coco_annotations``: COCO 2017 ``instances_{train,val}2017.json`` and ``captions_{train,val}2017.json``
  (three captions per image, see ``caption_of``) for the images' cocoIds (the csv's
  ``cocoSplit``: every fourth image is val2017), 5 categories with ids 1..9 with gaps, one image without
  annotations, and a COCO image NSD does not use.

All values are 1-based where NSD's are (the .mat file and the csv's trial numbers).
"""

from __future__ import annotations

import json
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
            "cocoSplit": np.where(np.arange(N_IMAGES) % 4 == 0, "val2017", "train2017"),
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
        write_roi_files(root, subject, masks[subject], seed + k)
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


PRF_NAMES = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
COCO_CATEGORIES = ((1, "person"), (2, "bicycle"), (4, "motorcycle"), (7, "train"), (9, "boat"))


def write_roi_files(root: Path, subject: str, mask: np.ndarray, seed: int) -> None:
    """prf-visualrois (1-6 anywhere in the box, 7 = hV4 inside the mask of subj01 only, outside it otherwise) and
    floc-faces (1, 2 sparse; 5 outside the mask), in the layout of NSD's ``roi/`` folder."""
    rng = np.random.default_rng([seed, 7])
    prf = rng.integers(0, 7, SHAPE).astype(np.int16)  # 0 = no ROI
    prf[0] = -1  # NSD marks voxels outside the brain -1
    inside, outside = np.argwhere(mask), np.argwhere(~mask & (prf >= 0))
    for voxel in inside[:2] if subject == "subj01" else outside[:2]:
        prf[tuple(voxel)] = 7
    floc = np.where(rng.random(SHAPE) < 0.3, rng.integers(1, 3, SHAPE), 0).astype(np.int16)
    floc[tuple(outside[-1])] = 5
    folder = root / f"nsddata/ppdata/{subject}/func1pt8mm/roi"
    write_nifti(folder / "prf-visualrois.nii.gz", prf)
    write_nifti(folder / "floc-faces.nii.gz", floc)
    ctab = root / f"nsddata/freesurfer/{subject}/label/prf-visualrois.mgz.ctab"
    ctab.parent.mkdir(parents=True, exist_ok=True)
    ctab.write_text("0 Unknown\n" + "".join(f"{i} {name}\n" for i, name in enumerate(PRF_NAMES, 1)))


def roi_truth(root: Path, subject: str, mask: np.ndarray) -> dict[str, np.ndarray]:
    """ROI name -> bool over the mask's voxels (numpy.nonzero order), from the written files."""
    folder = root / f"nsddata/ppdata/{subject}/func1pt8mm/roi"
    prf = np.asarray(nib.load(folder / "prf-visualrois.nii.gz").dataobj)[mask]
    floc = np.asarray(nib.load(folder / "floc-faces.nii.gz").dataobj)[mask]
    out = {name: prf == i for i, name in enumerate(PRF_NAMES, 1)}
    return out | {f"floc-faces-{i}": floc == i for i in (1, 2, 5)}


def caption_of(nsd_id: int, k: int) -> str:
    """Caption number ``k`` (1 = the first, lowest annotation id) of image ``nsd_id`` in the fixture."""
    return f"caption {k} of image {nsd_id}"


def write_coco_annotations(root: str | Path, seed: int = 0) -> tuple[np.ndarray, list[str], Path]:
    """COCO instance files under ``root/coco/annotations`` for every image of the fixture's csv (its cocoId and
    cocoSplit); returns (labels uint8 (N_IMAGES, 5) by nsdId, category names, the folder)."""
    root = Path(root)
    table = pd.read_csv(root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    rng = np.random.default_rng([seed, 80])
    labels = (rng.random((N_IMAGES, len(COCO_CATEGORIES))) < 0.4).astype(np.uint8)
    labels[:, 0] |= (np.arange(N_IMAGES) % 2).astype(np.uint8)  # "person" on every other image
    labels[nsd_ids(seed)[0, 0]] = 0  # a shared image without any annotation
    folder = root / "coco/annotations"
    folder.mkdir(parents=True, exist_ok=True)
    categories = [{"supercategory": "thing", "id": i, "name": n} for i, n in COCO_CATEGORIES]
    next_id = 1
    for split in ("train2017", "val2017"):
        rows = np.flatnonzero(table["cocoSplit"].to_numpy() == split)
        images = [{"id": int(table["cocoId"].iloc[r]), "file_name": f"{table['cocoId'].iloc[r]:012d}.jpg"}
                  for r in rows]  # fmt: skip
        images.append({"id": 7 + (split == "val2017"), "file_name": "not_in_nsd.jpg"})
        annotations = []
        for r in rows:
            for c in np.flatnonzero(labels[r]):
                for _ in range(1 + (r + c) % 2):  # some categories twice in one image: still one 1
                    annotations.append({"id": next_id, "image_id": int(table["cocoId"].iloc[r]),
                                        "category_id": COCO_CATEGORIES[c][0], "iscrowd": 0})  # fmt: skip
                    next_id += 1
        content = {"info": {}, "licenses": [], "images": images, "annotations": annotations,
                   "categories": categories}  # fmt: skip
        (folder / f"instances_{split}.json").write_text(json.dumps(content))
        captions = [{"id": 1000 * int(r) + k, "image_id": int(table["cocoId"].iloc[r]), "caption": caption_of(r, k)}
                    for r in rows for k in (2, 1, 3)]  # fmt: skip
        (folder / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": captions})
        )
    return labels, [n for _, n in COCO_CATEGORIES], folder
