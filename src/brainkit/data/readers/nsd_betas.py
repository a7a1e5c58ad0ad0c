"""NSD's files and one subject's betas: the release's constants and paths, subject names, the ROI mask, one
session's single-trial betas (scaled, cleaned, z-scored) and a subject's sessions in memory or streamed from a
store on disk (:func:`subject_betas`), and precomputed per-image embeddings. :mod:`.nsd` builds the dataset."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from brainkit.data.disk_rows import DiskRows, stored_rows
from brainkit.data.readers.volumes import read_masked_betas, read_volume
from brainkit.errors import DataError, FileFormatError

logger = logging.getLogger("brainkit.data.readers.nsd")

NSD_SUBJECTS = tuple(f"subj{k:02d}" for k in range(1, 9))
N_COMPLETED_SESSIONS = {"subj01": 40, "subj02": 40, "subj03": 32, "subj04": 30,
                        "subj05": 40, "subj06": 32, "subj07": 40, "subj08": 30}  # fmt: skip
N_HELD_OUT_SESSIONS = 3  # the last 3 sessions of each subject were withheld from the first public release
TRIALS_PER_SESSION = 750  # 12 runs of 62 or 63 stimulus trials
BETA_SCALE = 300.0  # int16 betas / 300 = percent signal change

EXPDESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"
STIM_INFO = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
DOWNLOAD_HINT = (
    "NSD is downloaded from the AWS bucket s3://natural-scenes-dataset after filling in the data access "
    "agreement at https://naturalscenesdataset.org; copy it with its folder layout under root."
)


def roi_path(subject: str, roi: str = "nsdgeneral", resolution: str = "func1pt8mm") -> str:
    """Path of a subject's ROI volume, relative to the NSD root."""
    return f"nsddata/ppdata/{subject}/{resolution}/roi/{roi}.nii.gz"


def betas_path(
    subject: str,
    session: int,
    beta_format: str = "hdf5",
    resolution: str = "func1pt8mm",
    version: str = "betas_fithrf_GLMdenoise_RR",
) -> str:
    """Path of one session's betas relative to the NSD root; ``beta_format``: "hdf5" or "nifti"."""
    extension = {"hdf5": "hdf5", "nifti": "nii.gz"}[beta_format]
    return f"nsddata_betas/ppdata/{subject}/{resolution}/{version}/betas_session{session:02d}.{extension}"


def require(root: Path, relative: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise FileFormatError(f"Missing NSD file {relative} (looked for {path}). {DOWNLOAD_HINT}")
    return path


def present_subjects(root: Path, roi: str = "nsdgeneral", resolution: str = "func1pt8mm") -> list[str]:
    """The NSD subjects with an ROI file ``roi`` and a betas folder (``nsddata_betas/ppdata/<subj>/<res>``) under
    ``root``; none raises :class:`FileFormatError`."""
    found = [s for s in NSD_SUBJECTS if (root / roi_path(s, roi, resolution)).is_file()
             and (root / f"nsddata_betas/ppdata/{s}/{resolution}").is_dir()]  # fmt: skip
    if not found:
        raise FileFormatError(
            f"subjects='present': no NSD subject has {roi_path('subjXX', roi, resolution)} and "
            f"nsddata_betas/ppdata/subjXX/{resolution}/ under {root}. {DOWNLOAD_HINT}"
        )
    return found


def check_subject(subject: str | int) -> str:
    """``"subj01"``, ``"1"`` or ``1`` -> ``"subj01"``; anything else raises."""
    text = str(subject).strip().lower()
    name = f"subj{int(text):02d}" if text.isdigit() else text
    if name not in NSD_SUBJECTS:
        raise DataError(f"Unknown NSD subject {subject!r}; NSD has {', '.join(NSD_SUBJECTS)} (or 1-8).")
    return name


def read_roi_mask(
    root: str | Path, subject: str, roi: str = "nsdgeneral", resolution: str = "func1pt8mm"
) -> tuple[np.ndarray, np.ndarray]:
    """A subject's ROI as a boolean mask (X, Y, Z) (values > 0 are inside) and its (4, 4) affine."""
    path = require(Path(root), roi_path(check_subject(subject), roi, resolution))
    values, affine = read_volume(path)
    mask = values > 0
    if not mask.any():
        raise FileFormatError(f"{path}: no voxel has a value > 0, so the ROI {roi!r} is empty.")
    return mask, affine


def read_session_betas(
    root: str | Path,
    subject: str,
    session: int,
    mask: np.ndarray,
    *,
    beta_format: str = "auto",
    resolution: str = "func1pt8mm",
    version: str = "betas_fithrf_GLMdenoise_RR",
    scale: float = BETA_SCALE,
    zscore: bool = True,
    invalid: str = "zero",
) -> tuple[np.ndarray, dict[str, int]]:
    """One session's single-trial betas in ``mask``.

    Parameters
    ----------
    mask : bool array, shape (X, Y, Z)
    beta_format : "auto" (HDF5 if present, else NIfTI), "hdf5" or "nifti"
    scale : float
        Stored value / ``scale`` = percent signal change (NSD: 300).
    zscore : bool
        Z-score each voxel over the session's trials (as MindEye and Lite-Mind preprocess).
    invalid : "zero" or "raise"
        What to do with non-finite values and, when z-scoring, constant (e.g. all-zero) voxels: "zero" sets
        them to 0 (the session mean) and logs how many; "raise" raises :class:`DataError`.

    Returns
    -------
    values : float32 array, shape (n_trials, n_voxels)
    counts : dict with "non_finite" (entries) and "constant_voxels" (voxels) replaced
    """
    root = Path(root)
    subject = check_subject(subject)
    path = find_betas(root, subject, session, beta_format, resolution, version)
    values = read_masked_betas(path, mask) / np.float32(scale)
    return clean_session(values, zscore=zscore, invalid=invalid, source=path)


def find_betas(
    root: Path, subject: str, session: int, beta_format: str, resolution: str, version: str
) -> Path:
    if beta_format not in {"auto", "hdf5", "nifti"}:
        raise DataError(f"beta_format must be 'auto', 'hdf5' or 'nifti', found {beta_format!r}.")
    formats = ["hdf5", "nifti"] if beta_format == "auto" else [beta_format]
    candidates = [betas_path(subject, session, f, resolution, version) for f in formats]
    for relative in candidates:
        if (root / relative).is_file():
            return root / relative
    raise FileFormatError(
        f"Missing NSD betas for {subject} session {session}: looked for {' or '.join(candidates)} "
        f"under {root}. {DOWNLOAD_HINT}"
    )


def clean_session(
    values: np.ndarray, *, zscore: bool, invalid: str, source: Path
) -> tuple[np.ndarray, dict[str, int]]:
    if invalid not in {"zero", "raise"}:
        raise DataError(f"invalid must be 'zero' or 'raise', found {invalid!r}.")
    finite = np.isfinite(values)
    n_non_finite = int((~finite).sum())
    if n_non_finite:  # fill with the voxel's mean over its finite trials (0 when it has none)
        n_finite = np.maximum(finite.sum(axis=0), 1)
        mean = np.where(finite, values, 0.0).sum(axis=0) / n_finite
        values = np.where(finite, values, mean[None, :]).astype(np.float32)
    std = values.std(axis=0)
    constant = (std == 0) if zscore else np.zeros(values.shape[1], dtype=bool)
    counts = {"non_finite": n_non_finite, "constant_voxels": int(constant.sum())}
    if (n_non_finite or counts["constant_voxels"]) and invalid == "raise":
        raise DataError(
            f"{source}: {n_non_finite} non-finite beta(s) and {counts['constant_voxels']} constant voxel(s) "
            "(z-scoring them gives NaN). Pass invalid='zero' to set them to 0, or leave this session out."
        )
    if zscore:
        values = (values - values.mean(axis=0)) / np.where(constant, 1.0, std).astype(np.float32)
        values[:, constant] = 0.0
    if n_non_finite or counts["constant_voxels"]:
        logger.warning(
            "%s: set %d non-finite beta(s) to their voxel's session mean and %d constant voxel(s) to 0.",
            source,
            n_non_finite,
            counts["constant_voxels"],
        )
    return values.astype(np.float32, copy=False), counts


def embedding_rows(path: str | Path, nsd_ids: np.ndarray, name: str) -> np.ndarray:
    """The rows ``nsd_ids`` of a precomputed embedding file (one row per 73k image, nsdId order)."""
    path = Path(path)
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise FileFormatError(f"Cannot read embedding {name!r} from {path}: {error}.") from error
    if table.ndim < 2 or len(table) <= int(nsd_ids.max()):
        raise DataError(
            f"Embedding {name!r} ({path}) has shape {table.shape}: expected one row per NSD image in nsdId order "
            f"(73000, ...), at least {int(nsd_ids.max()) + 1} rows for the images used."
        )
    return np.asarray(table[nsd_ids], dtype=np.float32)


def subject_betas(
    root: Path,
    subject: str,
    sessions: list[int],
    trials: pd.DataFrame,
    mask: np.ndarray,
    store: Any,
    read: dict[str, Any],
) -> tuple[np.ndarray | DiskRows, dict[int, dict[str, int]]]:
    """A subject's betas (n_trials, n_voxels), in memory, or with ``store`` a folder, written there once
    (:func:`brainkit.data.disk_rows.stored_rows`) and read on demand; and the sessions whose invalid values were
    replaced, with their counts."""
    n_voxels = int(mask.sum())

    def fill(put: Callable[[int, np.ndarray], None]) -> dict[int, dict[str, int]]:
        replaced = {}
        for session in tqdm(sessions, desc=f"NSD {subject} sessions", disable=None, leave=False):
            session_values, counts = read_session_betas(root, subject, session, mask, **read)
            rows = np.nonzero((trials["session"] == session).to_numpy())[0]
            if session_values.shape[0] != len(rows):
                raise FileFormatError(
                    f"{subject} session {session}: the betas hold {session_values.shape[0]} trials, "
                    f"the design {len(rows)}. Use the betas and nsd_expdesign.mat of the same release."
                )
            if counts["non_finite"] or counts["constant_voxels"]:
                replaced[session] = counts
            put(int(rows[0]), session_values)  # a session's trials are consecutive rows (design.trials)
        return replaced

    if store is None:
        values = np.empty((len(trials), n_voxels), dtype=np.float32)
        return values, fill(lambda first, block: values.__setitem__(slice(first, first + len(block)), block))
    files = [
        find_betas(root, subject, s, read["beta_format"], read["resolution"], read["version"])
        for s in sessions
    ]
    key = {
        "reader": "nsd", "subject": subject, "sessions": sessions, "mask_voxels": n_voxels,
        "mask_sha256": hashlib.sha256(np.packbits(mask).tobytes()).hexdigest(), **read,
        "files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
    }  # fmt: skip
    name = f"nsd-{subject}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}"
    rows, kept = stored_rows(store, name, key, (len(trials), n_voxels), lambda writer: fill(writer.write))
    logger.info("NSD %s: betas on disk at %s (%d x %d), read on demand.", subject, rows.path, *rows.shape)
    return rows, {int(session): counts for session, counts in kept.items()}


__all__ = [
    "NSD_SUBJECTS",
    "N_COMPLETED_SESSIONS",
    "N_HELD_OUT_SESSIONS",
    "TRIALS_PER_SESSION",
    "BETA_SCALE",
    "EXPDESIGN",
    "STIM_INFO",
    "STIMULI",
    "DOWNLOAD_HINT",
    "betas_path",
    "check_subject",
    "clean_session",
    "embedding_rows",
    "find_betas",
    "present_subjects",
    "read_roi_mask",
    "read_session_betas",
    "require",
    "roi_path",
    "subject_betas",
]
