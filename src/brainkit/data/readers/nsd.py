"""Readers for the Natural Scenes Dataset (NSD; Allen et al. 2022) in its released folder layout.

``root`` is the folder that holds ``nsddata/``, ``nsddata_betas/`` and ``nsddata_stimuli/`` as they are in the
bucket ``s3://natural-scenes-dataset``. The files used (paths relative to ``root``):

- ``nsddata/experiments/nsd/nsd_expdesign.mat``: ``masterordering`` (1, 30000), the 10k-image index shown on
  each trial; ``subjectim`` (8, 10000), 10k index -> 73k image (nsdId); ``sharedix`` (1, 1000), the
  shared images; ``stimpattern`` (40, 12, 75), which slots of each run held a stimulus trial. All 1-based.
- ``nsddata/experiments/nsd/nsd_stim_info_merged.csv``: one row per 73k image: ``nsdId`` (0-based),
  ``cocoId``, ``shared1000``, ``subjectK`` (seen by subject K) and ``subjectK_repN`` (1-based trial number
  of repeat N, 0 if never shown).
- ``nsddata/ppdata/subjXX/func1pt8mm/roi/nsdgeneral.nii.gz``: 1 inside the ROI, 0 or -1 outside.
- ``nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionNN.{hdf5,nii.gz}``:
  single-trial betas, int16 = percent signal change x 300; 750 trials per session.
- ``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5``: dataset ``imgBrick`` (73000, 425, 425, 3) uint8.

``load_nsd`` (registered as dataset ``"nsd"``) builds NSD's standard decoding split: train = single trials of
the images outside the shared 1000; test = the shared images, each averaged over its repeats. See docs/nsd.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainkit.data.readers.nsd_betas import (  # noqa: F401 (re-exported: the NSD reader's names)
    BETA_SCALE,
    DOWNLOAD_HINT,
    EXPDESIGN,
    N_COMPLETED_SESSIONS,
    N_HELD_OUT_SESSIONS,
    NSD_SUBJECTS,
    STIM_INFO,
    STIMULI,
    TRIALS_PER_SESSION,
    betas_path,
    check_subject,
    clean_session,
    embedding_rows,
    find_betas,
    present_subjects,
    read_roi_mask,
    read_session_betas,
    require,
    roi_path,
    subject_betas,
)
from brainkit.data.readers.nsd_labels import semantic_info
from brainkit.data.readers.nsd_stimuli import read_images, read_stim_info
from brainkit.data.readers.volumes import voxel_coordinates
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import DataError, FileFormatError
from brainkit.registry import DATASETS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NSDDesign:
    """NSD's experimental design, converted to 0-based indices.

    Attributes
    ----------
    masterordering : int array, shape (n_trials_total,)
        Column of ``subjectim`` shown on each trial (same order for every subject).
    subjectim : int array, shape (8, n_images_per_subject)
        nsdId (0-based row of ``imgBrick``) of each subject's images.
    sharedix : int array, shape (n_shared,)
        nsdId of the images every subject saw (the "shared 1000").
    trials_per_run : int array, shape (n_sessions, n_runs), or None
        Stimulus trials per run (from ``stimpattern``); None when the file has no ``stimpattern``.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray
    trials_per_run: np.ndarray | None
    path: Path

    @property
    def session_starts(self) -> np.ndarray:
        """First trial (0-based, in ``masterordering``) of each session, plus the end: (n_sessions + 1,)."""
        if self.trials_per_run is None:
            n_sessions = len(self.masterordering) // TRIALS_PER_SESSION
            return np.arange(n_sessions + 1) * TRIALS_PER_SESSION
        return np.concatenate([[0], np.cumsum(self.trials_per_run.sum(axis=1))])

    @property
    def n_sessions(self) -> int:
        return len(self.session_starts) - 1

    def trials(self, subject: str, sessions: Sequence[int]) -> pd.DataFrame:
        """One row per trial of ``subject`` in ``sessions`` (1-based), in presentation order.

        Columns: ``session`` (1-based), ``run`` (1-based, 0 if unknown), ``trial`` (0-based in the session),
        ``master_trial`` (0-based index into ``masterordering``, = NSD's 1-based trial number - 1),
        ``image10k`` (0-based column of ``subjectim``), ``nsd_id`` (0-based), ``shared`` (bool).
        """
        subject_row = NSD_SUBJECTS.index(check_subject(subject))
        starts = self.session_starts
        parts = []
        for session in sessions:
            if not 1 <= session <= self.n_sessions:
                raise DataError(
                    f"Session {session} is not in the design {self.path} (sessions 1-{self.n_sessions})."
                )
            start, stop = int(starts[session - 1]), int(starts[session])
            image10k = self.masterordering[start:stop]
            if self.trials_per_run is None:
                run = np.zeros(stop - start, dtype=np.int64)
            else:
                run = np.repeat(
                    np.arange(1, self.trials_per_run.shape[1] + 1), self.trials_per_run[session - 1]
                )
            nsd_id = self.subjectim[subject_row, image10k]
            parts.append(
                pd.DataFrame(
                    {
                        "session": session,
                        "run": run,
                        "trial": np.arange(stop - start),
                        "master_trial": np.arange(start, stop),
                        "image10k": image10k,
                        "nsd_id": nsd_id,
                        "shared": np.isin(nsd_id, self.sharedix),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)


def read_design(root: str | Path) -> NSDDesign:
    """Read ``nsd_expdesign.mat`` under ``root`` (see :class:`NSDDesign`)."""
    from scipy.io import loadmat

    path = require(Path(root), EXPDESIGN)
    try:
        mat = loadmat(str(path))
    except (ValueError, OSError, NotImplementedError, TypeError) as error:
        raise FileFormatError(
            f"Cannot read {path}: {error}. Expected NSD's MATLAB v5 file; download it again if truncated."
        ) from error
    missing = [key for key in ("masterordering", "subjectim", "sharedix") if key not in mat]
    if missing:
        raise FileFormatError(
            f"{path} lacks {missing}; found {sorted(k for k in mat if not k.startswith('__'))}."
        )
    masterordering = np.asarray(mat["masterordering"]).astype(np.int64).ravel() - 1
    subjectim = np.asarray(mat["subjectim"]).astype(np.int64) - 1
    sharedix = np.asarray(mat["sharedix"]).astype(np.int64).ravel() - 1
    if subjectim.ndim != 2 or subjectim.shape[0] != len(NSD_SUBJECTS):
        raise FileFormatError(f"{path}: subjectim has shape {subjectim.shape}, expected (8, 10000).")
    if masterordering.min() < 0 or masterordering.max() >= subjectim.shape[1]:
        raise FileFormatError(
            f"{path}: masterordering holds values outside 1-{subjectim.shape[1]} (columns of subjectim)."
        )
    trials_per_run = None
    if "stimpattern" in mat:
        pattern = np.asarray(mat["stimpattern"])
        if pattern.ndim != 3:
            raise FileFormatError(f"{path}: stimpattern has shape {pattern.shape}, expected (40, 12, 75).")
        trials_per_run = (pattern > 0).sum(axis=2).astype(np.int64)
        if trials_per_run.sum() != len(masterordering):
            raise FileFormatError(
                f"{path}: stimpattern marks {trials_per_run.sum()} stimulus trials but masterordering has "
                f"{len(masterordering)}."
            )
    else:
        logger.info(
            "%s has no stimpattern: assuming %d trials per session, runs unknown.", path, TRIALS_PER_SESSION
        )
    return NSDDesign(masterordering, subjectim, sharedix, trials_per_run, path)


def _check_stim_info(
    design_trials: pd.DataFrame, info: pd.DataFrame, subject: str, design: NSDDesign
) -> None:
    """The design and the csv must agree on which image each trial showed and on the shared set."""
    unknown = sorted(set(design_trials["nsd_id"]) - set(info.index))
    if unknown:
        raise DataError(
            f"{len(unknown)} nsdId(s) of the design are not rows of {STIM_INFO}, e.g. {unknown[:3]}."
        )
    csv_shared = set(info.index[info["shared1000"]].tolist())
    if csv_shared != set(design.sharedix.tolist()):
        raise DataError(
            f"The shared images differ: {len(csv_shared)} rows have shared1000 in {STIM_INFO}, the design's "
            f"sharedix lists {len(design.sharedix)} ({len(csv_shared ^ set(design.sharedix))} differ). "
            "Use the csv and the .mat of the same NSD release."
        )
    number = int(subject[-2:])
    columns = [c for c in info.columns if c.startswith(f"subject{number}_rep")]
    if not columns:
        logger.info("%s has no subject%d_repN columns: trial/image agreement not checked.", STIM_INFO, number)
        return
    reps = info[columns].to_numpy(dtype=np.int64)  # 1-based trial numbers, 0 = not shown
    shown = reps > 0
    row_ids = np.broadcast_to(info.index.to_numpy()[:, None], reps.shape)
    image_of_trial = dict(zip(reps[shown].tolist(), row_ids[shown].tolist()))
    expected = design_trials["master_trial"].to_numpy() + 1
    from_csv = np.array([image_of_trial.get(int(t), -1) for t in expected])
    wrong = np.nonzero(from_csv != design_trials["nsd_id"].to_numpy())[0]
    if len(wrong):
        first = design_trials.iloc[wrong[0]]
        raise DataError(
            f"{subject}: {len(wrong)} trial(s) show different images in {EXPDESIGN} and {STIM_INFO}; "
            f"e.g. session {first['session']} trial {first['trial']}: design nsdId {first['nsd_id']}, csv "
            f"{from_csv[wrong[0]]}. Use files of the same NSD release."
        )


def _default_sessions(subject: str, design: NSDDesign) -> list[int]:
    n_public = N_COMPLETED_SESSIONS[subject] - N_HELD_OUT_SESSIONS
    return list(range(1, min(n_public, design.n_sessions) + 1))


def _check_sessions(subject: str, sessions: Sequence[int], design: NSDDesign) -> list[int]:
    limit = min(N_COMPLETED_SESSIONS[subject], design.n_sessions)
    sessions = [int(s) for s in sessions]
    bad = [s for s in sessions if not 1 <= s <= limit]
    if bad or not sessions or len(set(sessions)) != len(sessions):
        raise DataError(
            f"{subject}: sessions {bad or sessions} out of range or repeated; {subject} has sessions "
            f"1-{limit} ({N_COMPLETED_SESSIONS[subject]} completed, {design.n_sessions} in the design file)."
        )
    late = [s for s in sessions if s > N_COMPLETED_SESSIONS[subject] - N_HELD_OUT_SESSIONS]
    if late:
        logger.info("%s sessions %s were held out of NSD's first public release.", subject, late)
    return sessions


@DATASETS.register(
    "nsd",
    help="The Natural Scenes Dataset read from its released files (needs root=...).",
    space="the ROI's voxels (roi=, default nsdgeneral) of func1pt8mm or func1mm native space",
    needs="root=: nsddata/ (experiments/nsd/nsd_expdesign.mat, ppdata/<subj>/<res>/roi/), "
    "nsddata_betas/ppdata/<subj>/<res>/<version>/betas_session*.{hdf5,nii.gz}, nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5; "
    "for CLIP-MUSED also coco_annotations= (COCO 2017 instances_*.json) and patch_rois= (roi/*.nii.gz label files)",
)
def load_nsd(
    root: str | Path,
    subjects: Sequence[str | int] = ("subj01",),
    sessions: Sequence[int] | None = None,
    image_size: int | None = 224,
    *,
    roi: str = "nsdgeneral",
    resolution: str = "func1pt8mm",
    version: str = "betas_fithrf_GLMdenoise_RR",
    beta_format: str = "auto",
    zscore: bool = True,
    invalid: str = "zero",
    check_stim_info: bool = True,
    coco_annotations: str | Path | None = None,
    patch_rois: Sequence[str] | None = None,
    coco_text: str = "categories",
    store: str | Path | None = None,
    embeddings: dict[str, str | Path] | None = None,
) -> DecodingDataset:
    """NSD, standard split: single-trial train on unique images, shared-1000 test averaged over repeats.

    Parameters
    ----------
    root : folder holding ``nsddata/``, ``nsddata_betas/``, ``nsddata_stimuli/``
    subjects : "subj01".."subj08" (or 1-8), or "present": every subject whose ROI file and betas folder are under
        ``root`` (:func:`present_subjects`)
    sessions : 1-based sessions for every subject; None = the first public release (37 sessions for
        subj01/02/05/07, 29 for subj03/06, 27 for subj04/08), capped by the design file
    image_size : side of the square images returned; None = no images (``nsd_stimuli.hdf5`` is not read)
    beta_format, zscore, invalid : see :func:`read_session_betas`
    check_stim_info : cross-check the design against ``nsd_stim_info_merged.csv``
    coco_annotations : folder of COCO's ``instances_train2017.json`` / ``instances_val2017.json``: fills
        ``info["labels"]`` (n_stimuli, 80) multi-hot and ``info["categories"]`` (:mod:`.nsd_labels`), and the
        stimuli's text labels: ``coco_text="categories"`` the names of their categories, ``"captions"`` each
        image's first COCO caption (``captions_{train,val}2017.json`` in the same folder)
    patch_rois : NSD ROI label volumes (``roi/<name>.nii.gz``, e.g. ``prf-visualrois``, ``floc-faces``) whose
        ROIs group the voxels: ``info["roi_names"]``, ``info["roi_members"]`` (:func:`.nsd_labels.roi_groups`),
        CLIP-MUSED's ROI patches
    store : a folder where each subject's masked betas are written once (float32 ``nsd-<subj>-<key>.npy`` with a
        ``.json`` of the files and options they come from; built again when those change) and then read on
        demand (:class:`~brainkit.data.disk_rows.DiskRows`): a full subject (30,000 trials x 15,724 voxels,
        1.9 GB) trains without being held in memory. None: in memory. The values are the same either way.
    embeddings : precomputed targets, ``{name: path}`` of ``.npy`` files with one row per 73k image in nsdId
        order (n >= 73000, *shape), e.g. CLIP embeddings computed elsewhere; they become the stimuli's
        embedding ``name`` (``data.target=name``), so no image needs to be read or embedded

    Returns
    -------
    DecodingDataset
        Stimulus ids ``"nsd-<nsdId>"`` (0-based nsdId); ``info["coco_id"]`` aligned with ``stimuli.ids``;
        features = ROI voxels (``space=roi``), ``feature_coords`` in mm; ``info["masks"]`` each subject's
        (X, Y, Z) bool mask of those voxels.
    """
    root = Path(root)
    names = (
        present_subjects(root, roi, resolution)
        if subjects == "present"
        else [check_subject(s) for s in subjects]
    )
    if not names or len(set(names)) != len(names):
        raise DataError(f"subjects must be non-empty and distinct, found {list(subjects)}.")
    design = read_design(root)
    stim_info = read_stim_info(root)
    train, test, raw_test, used_sessions, invalid_counts, n_voxels, masks = {}, {}, {}, {}, {}, {}, {}
    for subject in names:
        chosen = (
            _default_sessions(subject, design)
            if sessions is None
            else _check_sessions(subject, sessions, design)
        )
        trials = design.trials(subject, chosen)
        if check_stim_info:
            _check_stim_info(trials, stim_info, subject, design)
        mask, affine = read_roi_mask(root, subject, roi, resolution)
        read = dict(
            beta_format=beta_format, resolution=resolution, version=version, zscore=zscore, invalid=invalid
        )
        values, counts = subject_betas(root, subject, chosen, trials, mask, store, read)
        if counts:
            invalid_counts[subject] = counts
        samples = BrainSamples(
            subject=subject,
            values=values,
            stimulus_ids=np.char.add("nsd-", trials["nsd_id"].to_numpy().astype(str)),
            space=roi,
            session=trials["session"].to_numpy(),
            run=trials["run"].to_numpy(),
            trial=trials["trial"].to_numpy(),
            feature_coords=voxel_coordinates(mask, affine),
        )
        shared = trials["shared"].to_numpy()
        train[subject] = samples.select(~shared)
        raw_test[subject] = samples.select(shared)
        test[subject] = raw_test[subject].average_repeats()
        used_sessions[subject] = chosen
        n_voxels[subject], masks[subject] = int(mask.sum()), mask
        logger.info(
            "NSD %s: %d voxels, %d train trials, %d test images (%d trials) from %d sessions.",
            subject, n_voxels[subject], len(train[subject]), len(test[subject]),
            int(shared.sum()), len(chosen),
        )  # fmt: skip
    nsd_ids = np.unique(
        np.concatenate([design.trials(s, used_sessions[s])["nsd_id"].to_numpy() for s in names])
    )
    images = read_images(root, nsd_ids, image_size) if image_size else None
    semantic = semantic_info(
        root, names, nsd_ids, stim_info, masks, resolution, coco_annotations, patch_rois, coco_text
    )
    texts = semantic.pop("texts", None)
    stimuli = Stimuli(
        ids=np.char.add("nsd-", nsd_ids.astype(str)),
        images=images,
        labels=texts,
        embeddings={name: embedding_rows(path, nsd_ids, name) for name, path in (embeddings or {}).items()},
    )
    info = {
        "source": "Natural Scenes Dataset (Allen et al. 2022), read from its released files",
        "root": str(root),
        "sessions": used_sessions,
        "n_voxels": n_voxels,
        "roi": roi,
        "resolution": resolution,
        "betas": version,
        "units": "z-scored per session and voxel" if zscore else "percent signal change",
        "stored_scale": None if zscore else BETA_SCALE,  # stored int16 value = this x the value given
        # how one session's beta file becomes these values (a predictor's NIfTI input): / scale, then per voxel
        # over its trials (brainkit.data.readers.movie_volumes.normalise_run)
        "beta_files": {"scale": BETA_SCALE, "normalisation": "zscore" if zscore else "none"},
        "split": "train: single trials of non-shared images; test: shared1000 images averaged over repeats",
        "nsd_id": nsd_ids,
        "coco_id": stim_info.loc[nsd_ids, "cocoId"].to_numpy(),
        "shared1000": stim_info.loc[nsd_ids, "shared1000"].to_numpy(dtype=bool),
        "invalid_values": invalid_counts,
        "raw_test_trials": raw_test,  # the single trials of the test images, before averaging (noise ceilings)
        "masks": masks,
        **semantic,
    }
    return DecodingDataset(name="nsd", stimuli=stimuli, train=train, test=test, info=info)
