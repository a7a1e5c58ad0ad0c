"""Your recordings in: a BIDS dataset (raw, or fMRIPrep derivatives) -> single-trial betas -> a DecodingDataset.

``load_bids`` (registered as dataset ``"bids"``) finds the runs of one task with pybids
(:mod:`brainkit.data.readers.bids_runs`), estimates one beta per trial in each run with a first-level GLM
(:mod:`brainkit.data.glm`: LSA or LSS, nilearn's HRF and drift models, fMRIPrep confounds as nuisance
regressors), z-scores each voxel's betas within the run, and pairs them with the stimuli named in the events.

What it needs on disk (paths relative to ``root``):

- ``dataset_description.json``; ``sub-<label>/[ses-<label>/]func/*_task-<task>[_run-<i>]_bold.nii[.gz]``
  with a ``RepetitionTime`` in the JSON sidecar (or the NIfTI header);
- per run, ``*_events.tsv`` (BIDS inheritance allowed) with ``onset`` and ``duration`` in seconds and a
  stimulus column (``stim_file`` by default: the path of the image under ``stimuli/``). Rows whose stimulus is
  ``n/a`` (responses, fixation) are modelled as nuisance events (one regressor per ``trial_type``), not trials;
- ``stimuli/<stim_file>``: the images (any format PIL reads), loaded as RGB uint8, resized to ``image_size``;
- with ``space=``: the fMRIPrep folder ``derivatives=`` holding ``*_space-<space>_desc-preproc_bold.nii.gz``,
  ``*_space-<space>_desc-brain_mask.nii.gz`` (unless ``mask=``) and ``*_desc-confounds_timeseries.tsv`` (when
  ``confounds=`` names columns); raw runs need ``mask=`` (a brain or ROI mask on the runs' grid);
- with a surface ``space=`` (``fsaverage5``, ``fsnative``..., or ``fsLR``): fMRIPrep's
  ``*_hemi-{L,R}_space-<space>_bold.func.gii`` pairs (a ``RepetitionTime`` in their JSON sidecars) or its
  ``*_space-fsLR_den-91k_bold.dtseries.nii``; no mask: the vertices that vary in every run of a subject are
  kept (:mod:`brainkit.data.readers.surface_runs`), the others counted in ``info["excluded_vertices"]``.

The split: ``test_stimuli=[ids]`` or ``test_runs=[run indices]`` say which trials are test; by default the
stimuli shown more than once to some subject are the test stimuli (for every subject), the rest train.
Training trials of a test stimulus are dropped (logged, counted in ``info``). Test trials are averaged per
stimulus (:meth:`BrainSamples.average_repeats`) unless ``average_test=False``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainkit.data.glm import GLMConfig, fit_single_trials, read_masked_run
from brainkit.data.glm_inputs import check_confounds
from brainkit.data.readers.bids_runs import SURFACE_SPACES, BIDSRun, find_runs, subject_label
from brainkit.data.readers.surface_runs import read_surface_run, usable_vertices
from brainkit.data.readers.volumes import read_volume, voxel_coordinates
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS

logger = logging.getLogger(__name__)


def read_events(run: BIDSRun, stimulus_column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's events split into trials (rows with a stimulus) and other events; both keep the file's row
    numbers (0-based, header excluded) as their index and the file's order."""
    try:
        events = pd.read_csv(
            run.events, sep="\t", na_values=["n/a", ""], keep_default_na=False,
            dtype={stimulus_column: str, "stim_file": str},
        )  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise FileFormatError(
            f"Cannot read {run.events}: {error}. It must be a tab-separated table."
        ) from error
    if stimulus_column not in events.columns:
        raise DataError(
            f"{run.events}: no {stimulus_column!r} column (columns: {list(events.columns)}). Name the column "
            "that identifies each trial's stimulus with stimulus_column= (BIDS: stim_file)."
        )
    has_stimulus = events[stimulus_column].notna().to_numpy()
    if not has_stimulus.any():
        raise DataError(f"{run.events}: no row has a {stimulus_column!r}, so the run has no trials.")
    return events[has_stimulus], events[~has_stimulus]


def _mask_of(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    values, affine = read_volume(path)
    mask = values > 0
    if not mask.any():
        raise DataError(f"The mask {path} has no voxel > 0.")
    return mask, affine


def subject_mask(subject: str, runs: list[BIDSRun], mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (X, Y, Z) bool mask and (4, 4) affine used for every run of ``subject``.

    ``mask``: a file for every subject, ``{subject: file}`` ("sub-01" or "01" keys), or None for the runs'
    own brain masks (fMRIPrep's ``desc-brain_mask``), intersected: the voxels inside the brain in every run.
    """
    if mask is None:
        masks = [(run, *_mask_of(run.mask)) for run in runs]
        first_run, first, affine = masks[0]
        for run, other, other_affine in masks[1:]:
            if other.shape != first.shape or not np.allclose(other_affine, affine, atol=1e-3):
                raise DataError(
                    f"sub-{subject}: different voxel counts across runs: {first_run.name} has {int(first.sum())} "
                    f"brain voxels on a {first.shape} grid, {run.name} has {int(other.sum())} on {other.shape}"
                    f"{' (other affine)' if other.shape == first.shape else ''}. A subject's runs must share one "
                    "grid: use fMRIPrep outputs in one space (e.g. --output-spaces MNI152NLin2009cAsym:res-2)."
                )
            first = first & other
        if not first.any():
            raise DataError(f"sub-{subject}: the runs' brain masks have no voxel in common.")
        return first, affine
    if isinstance(mask, Mapping):
        labels = {subject_label(k): v for k, v in mask.items()}
        if subject not in labels:
            raise ConfigError(f"mask= has no entry for sub-{subject} (it has {sorted(mask)}).")
        mask = labels[subject]
    if not Path(mask).is_file():
        raise DataError(f"The mask file {mask} does not exist.")
    return _mask_of(mask)


def masked_volume_run(run: BIDSRun, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The (n_scans, n_voxels) series of a NIfTI run's ``mask`` voxels; the run must lie where the mask does."""
    timeseries, image = read_masked_run(run.bold, mask)
    if not np.allclose(np.asarray(image.affine), affine, atol=1e-3):
        raise DataError(
            f"{run.name}: the run and the mask share a shape but not a position (affines differ:\n"
            f"{np.round(image.affine, 3)}\nvs\n{np.round(affine, 3)}). Use a mask in the run's space."
        )
    return timeseries


def run_betas(
    run: BIDSRun, trials, others, timeseries: np.ndarray, glm: GLMConfig, confounds, zscore: bool
) -> np.ndarray:
    """The (n_trials, n_features) float32 betas of one run's (n_scans, n_features) ``timeseries``, z-scored per
    voxel / vertex within the run when ``zscore``."""
    table = None
    if confounds:
        full = pd.read_csv(run.confounds, sep="\t", na_values=["n/a"])
        missing = [c for c in confounds if c not in full.columns]
        if missing:
            raise DataError(
                f"{run.confounds}: no column(s) {missing}; it has {len(full.columns)} columns, e.g. "
                f"{list(full.columns)[:12]}."
            )
        table = check_confounds(full[list(confounds)], timeseries.shape[0], str(run.confounds))
    values = fit_single_trials(
        timeseries, trials, run.tr, glm, table, others if len(others) else None, source=str(run.events)
    )
    if zscore:
        std = values.std(axis=0)
        values = (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return values.astype(np.float32)


def record_stimulus_files(
    trials: pd.DataFrame, run: BIDSRun, stimulus_column: str, stimuli_dir: Path, file_of: dict[str, str]
) -> None:
    """Add each trial's ``stim_file`` (when the table has one) to ``file_of`` (stimulus id -> file), checking
    that the file exists under ``stimuli_dir`` and that an id always names the same file."""
    if "stim_file" not in trials.columns:
        return
    named = trials[trials["stim_file"].notna()]
    for row, sid, name in zip(
        named.index, named[stimulus_column].astype(str), named["stim_file"].astype(str)
    ):
        if not (stimuli_dir / name).is_file():
            raise DataError(
                f"{run.events}, row {row}: stim_file {name!r} does not exist as {stimuli_dir / name}. "
                "stim_file is a path relative to the dataset's stimuli/ folder (or pass stimuli_dir=)."
            )
        if file_of.setdefault(sid, name) != name:
            raise DataError(
                f"{run.events}, row {row}: stimulus {sid!r} is shown as {name!r} here and as {file_of[sid]!r} "
                f"elsewhere; one {stimulus_column} must name one stim_file."
            )


def load_images(paths: Sequence[Path], image_size: int) -> np.ndarray:
    """Images as RGB uint8 (n, image_size, image_size, 3), resized (bicubic, aspect not kept) with PIL."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                resized = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC)
        except (OSError, UnidentifiedImageError) as error:
            raise FileFormatError(
                f"Cannot read the stimulus {path} as an image: {error}. Pass image_size=None for non-image "
                "stimuli (the ids are kept, no images are loaded)."
            ) from error
        out[i] = np.asarray(resized)
    return out


def _session_numbers(labels: list[str | None]) -> dict[str | None, int]:
    """BIDS session labels -> ints: the number when every label is one, else 1-based rank; None -> 0."""
    named = sorted({label for label in labels if label is not None})
    numeric = all(label.isdigit() for label in named)
    numbers = {label: int(label) if numeric else rank for rank, label in enumerate(named, start=1)}
    return {None: 0, **numbers}


def held_out_rows(
    samples: dict[str, BrainSamples], test_runs=None, test_stimuli=None
) -> dict[str, np.ndarray]:
    """Which trials of each subject are test trials: those of ``test_runs``, of ``test_stimuli``, or (neither)
    of the stimuli shown more than once to some subject. Returns subject -> bool (n_trials,)."""
    if test_runs is not None:
        return {s: np.isin(b.run, [int(r) for r in test_runs]) for s, b in samples.items()}
    if test_stimuli is None:
        test_stimuli = set()
        for trials in samples.values():
            ids, counts = np.unique(trials.stimulus_ids, return_counts=True)
            test_stimuli |= set(ids[counts > 1].tolist())
    return {s: np.isin(b.stimulus_ids, [str(i) for i in test_stimuli]) for s, b in samples.items()}


def read_subject(
    subject: str,
    runs: list[BIDSRun],
    mask: Any,
    glm: GLMConfig,
    *,
    confounds: Sequence[str] | None,
    zscore: bool,
    stimulus_column: str,
    stimuli_dir: Path,
    file_of: dict[str, str],
    session_number: dict[str | None, int],
    space: str,
) -> tuple[BrainSamples, np.ndarray, np.ndarray]:
    """All trials of one subject's runs as :class:`BrainSamples` (runs in order), its mask and affine.

    Volume runs: the (X, Y, Z) mask and its (4, 4) affine. Surface runs: the (n_vertices,) mask of the vertices
    usable in every run (:func:`~brainkit.data.readers.surface_runs.usable_vertices`) and no affine.
    """
    if runs[0].kind == "volume":
        mask_array, affine = subject_mask(subject, runs, mask)
        series = (masked_volume_run(run, mask_array, affine) for run in runs)
    else:
        whole = [read_surface_run(run.bold, run.bold_right) for run in runs]
        mask_array, affine = usable_vertices(whole, f"sub-{subject}"), None
        if not mask_array.all():
            logger.warning(
                "sub-%s: %d of %d vertices are constant or not finite in some run (e.g. the medial wall); "
                "the other %d are kept (info['masks'] records which).",
                subject, int((~mask_array).sum()), mask_array.size, int(mask_array.sum()),
            )  # fmt: skip
        series = (values[:, mask_array] for values in whole)
    values, ids, sessions, run_index, trial = [], [], [], [], []
    for run, timeseries in zip(runs, series):
        trials, others = read_events(run, stimulus_column)
        record_stimulus_files(trials, run, stimulus_column, stimuli_dir, file_of)
        values.append(run_betas(run, trials, others, timeseries, glm, confounds, zscore))
        ids.append(trials[stimulus_column].astype(str).to_numpy())
        sessions.append(np.full(len(trials), session_number[run.session]))
        run_index.append(np.full(len(trials), run.run))
        trial.append(np.arange(len(trials)))
    samples = BrainSamples(
        subject=f"sub-{subject}", values=np.concatenate(values), stimulus_ids=np.concatenate(ids), space=space,
        session=np.concatenate(sessions), run=np.concatenate(run_index), trial=np.concatenate(trial),
        feature_coords=None if affine is None else voxel_coordinates(mask_array, affine),
    )  # fmt: skip
    return samples, mask_array, affine


@DATASETS.register(
    "bids",
    space="the runs' grid: raw runs under mask=, or fMRIPrep's space= (a volume such as MNI152NLin2009cAsym, or "
    "a surface: fsaverage5 GIFTI pairs, fsLR CIFTI)",
    needs="root=, task=: sub-*/[ses-*/]func/*_bold.nii[.gz] + .json (RepetitionTime) + _events.tsv "
    "(onset, duration, stim_file), stimuli/ images; mask= (raw) or derivatives= with space=",
    help="Your recordings: a BIDS folder (raw runs, or fMRIPrep derivatives) -> single-trial betas (nilearn GLM, "
    "least-squares-all or -separate).",
)
def load_bids(
    root: str | Path,
    task: str,
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    *,
    space: str | None = None,
    derivatives: str | Path | None = None,
    mask: str | Path | Mapping[str, str | Path] | None = None,
    confounds: Sequence[str] | None = None,
    estimator: str = "lsa",
    hrf: str = "glover",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    slice_time_ref: float = 0.0,
    zscore: bool = True,
    test_runs: Sequence[int] | None = None,
    test_stimuli: Sequence[str] | None = None,
    average_test: bool = True,
    stimulus_column: str = "stim_file",
    stimuli_dir: str | Path | None = None,
    image_size: int | None = 224,
    filters: Mapping[str, Any] | None = None,
) -> DecodingDataset:
    """Single-trial betas of one task's runs, split into train trials and (averaged) test stimuli.

    Parameters
    ----------
    root : the BIDS dataset folder
    task : the task label of the runs (``task-<label>``)
    subjects, sessions : labels ("01" or "sub-01"); None = every subject / session with runs of ``task``
    space : fMRIPrep output space (e.g. "MNI152NLin2009cAsym", "T1w"); None reads the raw runs
    derivatives : the fMRIPrep folder (e.g. ``root/derivatives/fmriprep``); required with ``space``
    mask : a mask file (values > 0 kept) on the runs' grid for every subject, or ``{subject: file}``; None uses
        each run's fMRIPrep brain mask (intersected over the subject's runs); raw runs need one
    confounds : columns of fMRIPrep's ``desc-confounds_timeseries.tsv`` regressed out in the GLM, e.g.
        ``["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf", "white_matter"]``
    estimator : "lsa" (one regressor per trial) or "lss" (each trial against all others), see
        :mod:`brainkit.data.glm`
    hrf, drift_model, high_pass, slice_time_ref : the GLM's HRF (nilearn name, "glover" by default), drift
        ("cosine", "polynomial", None), high-pass cut-off (Hz) and volume time reference (0 = start of the TR)
    zscore : z-score each voxel's betas within each run (as NSD users do per session)
    test_runs : run indices (the ``run-<i>`` of the file names) whose trials are test
    test_stimuli : stimulus ids whose trials are test; default (neither): stimuli shown more than once to a
        subject are test stimuli for every subject
    average_test : average the test trials per stimulus (``n_repeats`` says how many)
    stimulus_column : the events column that identifies the stimulus ("stim_file"; or "trial_type" or an id
        column). Its values are the stimulus ids; images come from the ``stim_file`` column when there is one
    stimuli_dir : the folder ``stim_file`` paths are relative to (default ``root/stimuli``)
    image_size : side of the square RGB images; None loads no images
    filters : more pybids filters for the BOLD files (``{"acquisition": "mb4"}``, ``{"res": "2"}``)

    Returns
    -------
    DecodingDataset
        ``stimuli.ids`` = the stimulus column's values (stim_file paths such as ``images/cat.png``), sorted;
        ``train["sub-01"]``: (n_train_trials, n_voxels) single trials with session, run (BIDS indices, 0 when
        absent; non-numeric session labels are numbered 1, 2, ... in sorted order, see ``info["sessions"]``)
        and trial (0-based among the run's trials); ``test["sub-01"]``: one row per test stimulus;
        ``space`` = ``space`` or "native"; ``feature_coords`` in mm. ``info["masks"][subject]`` is the
        (X, Y, Z) bool mask whose ``numpy.nonzero`` order the voxels follow, ``info["affines"]`` its (4, 4)
        affine (to write betas back as volumes); for surface runs the (n_vertices,) bool mask of the kept
        vertices (left hemisphere first) and no affine.
    """
    if test_runs is not None and test_stimuli is not None:
        raise ConfigError("Give test_runs or test_stimuli, not both.")
    glm = GLMConfig(
        estimator=estimator, hrf_model=hrf, drift_model=drift_model, high_pass=high_pass,
        slice_time_ref=slice_time_ref,
    )  # fmt: skip
    derivative = space is not None
    if space in SURFACE_SPACES and mask is not None:
        raise ConfigError(
            f"space={space!r} reads surface runs (GIFTI / CIFTI), which take no mask=: every vertex that varies "
            "in every run is kept. Leave mask= unset."
        )
    if not derivative and mask is None:
        raise ConfigError(
            "Raw runs need mask=<file> (a brain or ROI mask on the runs' grid, values > 0 kept); or read "
            "fMRIPrep outputs with space= and derivatives=, whose brain masks are used."
        )
    runs = find_runs(
        root, task, subjects, sessions, space=space, derivatives=derivatives,
        confounds=bool(confounds), masks=derivative and mask is None and space not in SURFACE_SPACES,
        filters=filters,
    )  # fmt: skip
    root = Path(root)
    stimuli_dir = Path(stimuli_dir) if stimuli_dir is not None else root / "stimuli"
    session_number = _session_numbers([run.session for run in runs])
    by_subject: dict[str, list[BIDSRun]] = {}
    for run in runs:
        by_subject.setdefault(run.subject, []).append(run)

    everything, masks, affines, run_files, file_of = {}, {}, {}, {}, {}
    top = Path(derivatives) if derivative else root
    for subject, subject_runs in by_subject.items():
        name = f"sub-{subject}"
        everything[name], masks[name], affines[name] = read_subject(
            subject, subject_runs, mask, glm, confounds=confounds, zscore=zscore, stimulus_column=stimulus_column,
            stimuli_dir=stimuli_dir, file_of=file_of, session_number=session_number, space=space or "native",
        )  # fmt: skip
        run_files[name] = [os.path.relpath(run.bold, top) for run in subject_runs]

    is_test = held_out_rows(everything, test_runs, test_stimuli)
    test_ids = sorted(
        {sid for name, samples in everything.items() for sid in samples.stimulus_ids[is_test[name]]}
    )
    train, test, n_dropped = {}, {}, {}
    for name, samples in everything.items():
        in_test = is_test[name]
        in_train = ~in_test & ~np.isin(samples.stimulus_ids, test_ids)
        if not in_test.any() or not in_train.any():
            raise DataError(
                f"{name}: {int(in_train.sum())} training and {int(in_test.sum())} test trials with this split "
                "(test_runs / test_stimuli, or by default the stimuli shown more than once). Both must be non-empty."
            )
        train[name] = samples.select(in_train)
        test[name] = samples.select(in_test).average_repeats() if average_test else samples.select(in_test)
        n_dropped[name] = int((~in_test & ~in_train).sum())
        if n_dropped[name]:
            logger.warning("%s: dropped %d training trial(s) of test stimuli.", name, n_dropped[name])
        logger.info("BIDS %s: %d voxels, %d train trials, %d test rows from %d runs.", name,
                    samples.n_features, len(train[name]), len(test[name]), len(run_files[name]))  # fmt: skip

    ids = np.array(sorted({sid for samples in everything.values() for sid in samples.stimulus_ids}))
    images = None
    if image_size is not None and file_of:
        unnamed = [sid for sid in ids if sid not in file_of]
        if unnamed:
            raise DataError(
                f"{len(unnamed)} stimulus id(s) have no stim_file in any events table, e.g. {unnamed[:3]}, so "
                "their images cannot be loaded. Fill in stim_file, or pass image_size=None."
            )
        images = load_images([stimuli_dir / file_of[sid] for sid in ids], image_size)
    elif image_size is not None:
        logger.info("The events name no stim_file: no images loaded.")
    info = {
        "source": "BIDS dataset read with pybids; single-trial betas from a first-level GLM (brainkit.data.glm)",
        "root": str(root),
        "task": task,
        "space": space or "native",
        "derivatives": None if derivatives is None else str(derivatives),
        "glm": asdict(glm),
        "confounds": list(confounds or []),
        "units": "betas z-scored per run and voxel" if zscore else "betas in percent signal change",
        "runs": run_files,
        "tr": {f"sub-{s}": [run.tr for run in rs] for s, rs in by_subject.items()},
        "sessions": {str(label): number for label, number in session_number.items() if label is not None},
        "split": (
            f"test: runs {list(test_runs)}" if test_runs is not None
            else "test: the given test_stimuli" if test_stimuli is not None
            else "test: stimuli shown more than once to a subject"
        ) + ("; averaged over repeats" if average_test else "; single trials"),
        "test_stimuli": test_ids,
        "dropped_train_trials": n_dropped,
        "stim_file": [file_of.get(sid) for sid in ids],
        "masks": masks,
        "affines": affines,
    }  # fmt: skip
    if space in SURFACE_SPACES:  # vertices left out: constant or not finite in some run (usable_vertices)
        info["excluded_vertices"] = {name: int((~kept).sum()) for name, kept in masks.items()}
    return DecodingDataset(
        name="bids", stimuli=Stimuli(ids=ids, images=images), train=train, test=test, info=info
    )


__all__ = [
    "load_bids",
    "load_images",
    "read_events",
    "read_subject",
    "record_stimulus_files",
    "run_betas",
    "subject_mask",
    "held_out_rows",
]
