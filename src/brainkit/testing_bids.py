"""A small BIDS folder with a known answer, for tests and examples of the ``bids`` reader.

:func:`write_bids_folder` writes, under ``root``:

- ``dataset_description.json``, ``participants.tsv``, ``README``;
- ``stimuli/images/stimNNN.png``: real photo crops (:func:`brainkit.testing.photo_crops`), ``image_size`` px;
- per subject and run, ``sub-XX/func/sub-XX_task-<task>_run-R_bold.nii.gz`` (float32, 3 mm voxels) with its
  ``_bold.json`` (``RepetitionTime``, ``TaskName``) and ``_events.tsv`` (``onset``, ``duration``,
  ``trial_type``, ``stim_file``; a ``button_press`` row with ``stim_file`` n/a after every 4th image);
- ``brain_mask.nii.gz``: the brain mask (not a BIDS file, for reading the raw runs with ``mask=``);
- with ``derivatives=True``, an fMRIPrep-style ``derivatives/fmriprep/`` with ``dataset_description.json``
  (``DatasetType: derivative``, ``GeneratedBy: fMRIPrep``) and, per run, ``..._space-<space>_desc-preproc_bold``
  (+ json), ``..._space-<space>_desc-brain_mask`` and ``..._desc-confounds_timeseries.tsv`` (``trans_x`` ...
  ``rot_z``, ``trans_x_derivative1``, ``framewise_displacement`` with n/a in the first row, ``csf``,
  ``white_matter``);
- with ``surfaces=True`` (needs ``derivatives``), per run also fMRIPrep's surface outputs of the same signal:
  ``..._hemi-{L,R}_space-fsaverage5_bold.func.gii`` (+ json; the brain voxels split into a left and a right
  "hemisphere", each with ``n_medial_wall`` constant vertices appended, as a medial wall) and
  ``..._space-fsLR_den-91k_bold.dtseries.nii`` (CIFTI-2: the same vertices as two cortical surfaces, TR as
  the series step; no medial wall, as in real 91k files).

The signal (identical in the raw and the preprocessed runs, on one grid): stimulus features ``f(i)`` = PCA
components of the images' 8 x 8 grey thumbnails (``n_features``, unit variance); each subject's voxels respond
``x_v(i) = f(i) . w_v / sqrt(n_features)`` with ``w_v`` ~ N(0, I) (a random linear map); a trial's response is
``signal x_v(i)`` percent signal change times its Glover-HRF regressor (nilearn ``compute_regressor``, 1 s
events); plus a button-press response (0.5 x N(0, 1) per voxel), a motion artefact (the six standardised
motion confounds times N(0, 1) loadings, about ``motion_artefact`` percent standard deviation per voxel:
regressing the confounds removes it), a linear drift, white noise of ``noise`` percent, on a baseline of
800-1,200 in the brain and 20-40 outside. Every run shows the ``n_test_stimuli`` test images once (repeated
across runs: the reader's default test set) and its own share of the training images once.

Decodability with the defaults (seed 0, 62 voxels, 32 training trials, 8 test images averaged over 2 runs):
ridge from sub-01/sub-02's betas to the features, then 8-way identification of the test images by
correlation: top-1 1.00 (raw runs, LSA; 0.44 LSS), 0.94 (derivatives, LSA with the six motion confounds;
0.62 LSS); chance 0.125. LSS trails LSA here because single trials are strong and 6-7 s apart (LSS's bias
towards the run's mean costs more than its lower variance gains).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
FMRIPREP = "fmriprep"


@dataclass(frozen=True)
class BIDSExample:
    """What :func:`write_bids_folder` wrote and the truth behind it.

    ``stimulus_ids`` are the ``stim_file`` values (``images/stimNNN.png``), ``features`` (n_stimuli,
    n_features) float32 in the same order; ``test_ids`` are the repeated (test) stimuli; ``mask`` is the
    (X, Y, Z) brain mask, ``mask_path`` its file; ``derivatives`` is None without derivatives.
    """

    root: Path
    task: str
    subjects: list[str]
    runs: list[int]
    tr: float
    space: str
    derivatives: Path | None
    mask_path: Path
    mask: np.ndarray
    stimulus_ids: list[str]
    features: np.ndarray
    test_ids: list[str]
    session: str | None

    @property
    def n_voxels(self) -> int:
        return int(self.mask.sum())


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")


def _save_surfaces(stem: Path, bold: np.ndarray, tr: float, task: str, n_medial_wall: int) -> None:
    """fMRIPrep's surface outputs of a run's (n_scans, n_brain) series: a GIFTI pair and a 91k-style CIFTI."""
    import nibabel as nib
    from nibabel.cifti2 import cifti2_axes

    half = bold.shape[1] // 2
    hemispheres = {"L": bold[:, :half], "R": bold[:, half:]}
    for hemi, values in hemispheres.items():
        padded = np.concatenate([values, np.zeros((len(values), n_medial_wall), np.float32)], axis=1)
        image = nib.gifti.GiftiImage(
            darrays=[nib.gifti.GiftiDataArray(row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES")
                     for row in padded]
        )  # fmt: skip
        name = f"{stem.name}_hemi-{hemi}_space-fsaverage5_bold"
        nib.save(image, stem.parent / f"{name}.func.gii")
        _write_json(stem.parent / f"{name}.json", {"RepetitionTime": tr, "TaskName": task})
    brain = cifti2_axes.BrainModelAxis.from_surface(
        np.arange(half), half, "CortexLeft"
    ) + cifti2_axes.BrainModelAxis.from_surface(
        np.arange(bold.shape[1] - half), bold.shape[1] - half, "CortexRight"
    )
    series = cifti2_axes.SeriesAxis(start=0.0, step=tr, size=len(bold), unit="second")
    header = nib.cifti2.Cifti2Header.from_axes((series, brain))
    name = f"{stem.name}_space-fsLR_den-91k_bold"
    nib.save(nib.Cifti2Image(bold.astype(np.float32), header), stem.parent / f"{name}.dtseries.nii")
    _write_json(stem.parent / f"{name}.json", {"RepetitionTime": tr, "TaskName": task})


def write_rest_surface_folder(
    root: str | Path, n_subjects: int = 2, n_frames: int = 120, tr: float = 0.72, task: str = "rest"
) -> Path:
    """A BIDS dataset with fMRIPrep-style fsaverage5 rest runs made of the real brainspace rest run
    (sub-010188, 652 frames of 10,242 vertices per hemisphere): subject k gets frames ``[k * n_frames,
    (k + 1) * n_frames)`` of it, written as ``derivatives/fmriprep/sub-XX/func/sub-XX_task-rest_hemi-{L,R}_
    space-fsaverage5_bold.func.gii`` (+ JSON with ``RepetitionTime``), no events. Returns the fMRIPrep folder."""
    import nibabel as nib

    from brainkit.data.builtin.rest_surface import REST_RUN
    from brainkit.data.packaged import package_file
    from brainkit.surface.readers import read_surface_frames

    root = Path(root)
    if n_subjects * n_frames > 652:
        raise ValueError(f"the real run has 652 frames; {n_subjects} x {n_frames} do not fit.")
    frames = {
        hemi: read_surface_frames(
            package_file("brainspace", REST_RUN.format(hemi=short), "the real rest run")
        )
        for hemi, short in (("L", "lh"), ("R", "rh"))
    }
    _write_json(
        root / "dataset_description.json", {"Name": "real rest run, fsaverage5", "BIDSVersion": "1.8.0"}
    )
    derivatives = root / "derivatives" / FMRIPREP
    _write_json(derivatives / "dataset_description.json", {
        "Name": "fMRIPrep-style outputs", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}]})  # fmt: skip
    for k in range(n_subjects):
        subject = f"{k + 1:02d}"
        (root / f"sub-{subject}").mkdir(parents=True, exist_ok=True)
        func = derivatives / f"sub-{subject}" / "func"
        for hemi, values in frames.items():
            part = values[k * n_frames : (k + 1) * n_frames]
            image = nib.gifti.GiftiImage(
                darrays=[nib.gifti.GiftiDataArray(row, intent="NIFTI_INTENT_TIME_SERIES") for row in part]
            )
            name = f"sub-{subject}_task-{task}_hemi-{hemi}_space-fsaverage5_bold"
            func.mkdir(parents=True, exist_ok=True)
            nib.save(image, func / f"{name}.func.gii")
            _write_json(func / f"{name}.json", {"RepetitionTime": tr, "TaskName": task})
    return derivatives


def _ellipsoid(shape: tuple[int, int, int]) -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return sum(g**2 for g in grid) <= 1.05


def stimulus_features(images: np.ndarray, n_features: int) -> np.ndarray:
    """(n, h, w, 3) uint8 -> (n, n_features) float32: PCA of 8 x 8 grey thumbnails, unit variance."""
    from PIL import Image

    thumbs = np.stack(
        [
            np.asarray(Image.fromarray(im).convert("L").resize((8, 8), Image.Resampling.BILINEAR))
            for im in images
        ]
    ).reshape(len(images), -1)
    x = thumbs - thumbs.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    components = u[:, :n_features] * s[:n_features]
    return (components / components.std(axis=0)).astype(np.float32)


def _confounds(rng: np.random.Generator, n_scans: int) -> pd.DataFrame:
    """fMRIPrep-like confounds: motion = a slow random walk plus jitter (mm, rad), its derivative and framewise
    displacement (n/a in the first row), CSF and white-matter signals (lightly smoothed noise)."""
    table = {}
    for name in MOTION:
        scale = 0.002 if name.startswith("rot") else 0.05
        walk = np.cumsum(rng.standard_normal(n_scans)) * 0.3 + rng.standard_normal(n_scans)
        table[name] = scale * (walk - walk.mean())
    table["trans_x_derivative1"] = np.diff(table["trans_x"], prepend=np.nan)
    moves = np.abs(np.diff(np.stack([table[m] for m in MOTION], axis=1), axis=0))
    table["framewise_displacement"] = np.concatenate(
        [[np.nan], moves[:, :3].sum(1) + 50 * moves[:, 3:].sum(1)]
    )
    kernel = np.hanning(5) / np.hanning(5).sum()
    for name in ("csf", "white_matter"):
        table[name] = np.convolve(rng.standard_normal(n_scans), kernel, mode="same")
    return pd.DataFrame(table)


def _schedule(rng: np.random.Generator, stimuli: list[str], soa: float) -> pd.DataFrame:
    order = rng.permutation(len(stimuli))
    onsets = 4.0 + np.arange(len(stimuli)) * soa + rng.uniform(0.0, 1.0, len(stimuli))
    rows = []
    for k, (onset, index) in enumerate(zip(onsets, order)):
        rows.append({"onset": round(float(onset), 3), "duration": 1.0, "trial_type": "image",
                     "stim_file": stimuli[index]})  # fmt: skip
        if k % 4 == 3:
            rows.append({"onset": round(float(onset) + 1.5, 3), "duration": 0.0, "trial_type": "button_press",
                         "stim_file": "n/a"})  # fmt: skip
    return pd.DataFrame(rows)


def _regressors(events: pd.DataFrame, n_scans: int, tr: float) -> np.ndarray:
    from nilearn.glm.first_level import compute_regressor

    times = np.arange(n_scans) * tr
    columns = [
        compute_regressor(np.array([[row.onset], [max(row.duration, 0.1)], [1.0]]), "glover", times)[0][:, 0]
        for row in events.itertuples()
    ]
    return np.stack(columns, axis=1)


def write_bids_folder(
    root: str | Path,
    n_subjects: int = 2,
    n_runs: int = 2,
    n_trials_per_run: int = 24,
    n_test_stimuli: int = 8,
    shape: tuple[int, int, int] = (6, 7, 5),
    *,
    tr: float = 2.0,
    soa: float = 6.0,
    task: str = "images",
    space: str = "MNI152NLin2009cAsym",
    derivatives: bool = True,
    n_features: int = 8,
    signal: float = 4.0,
    noise: float = 1.0,
    motion_artefact: float = 3.0,
    image_size: int = 32,
    session: str | None = None,
    surfaces: bool = False,
    n_medial_wall: int = 3,
    seed: int = 0,
) -> BIDSExample:
    """Write the BIDS folder described in the module docstring; returns what it wrote (:class:`BIDSExample`).

    Each run shows ``n_trials_per_run`` images: the ``n_test_stimuli`` test images and
    ``n_trials_per_run - n_test_stimuli`` training images of its own, so there are
    ``n_test_stimuli + n_runs x (n_trials_per_run - n_test_stimuli)`` stimuli, shown ``soa`` s apart (plus up to
    1 s of jitter). Every subject sees the same images in its own order. ``session`` (a label such as "01")
    puts the runs in ``ses-<label>/``.
    """
    from PIL import Image

    from brainkit.testing import photo_crops

    root = Path(root)
    if surfaces and not derivatives:
        raise ValueError("surfaces=True writes fMRIPrep surface outputs: it needs derivatives=True.")
    rng = np.random.default_rng(seed)
    n_train_per_run = n_trials_per_run - n_test_stimuli
    if n_train_per_run < 1:
        raise ValueError("n_trials_per_run must exceed n_test_stimuli (each run needs training images).")
    n_stimuli = n_test_stimuli + n_runs * n_train_per_run
    images = photo_crops(n_per_source=-(-n_stimuli // 5), size=image_size)[:n_stimuli]
    ids = [f"images/stim{i:03d}.png" for i in range(n_stimuli)]
    for name, image in zip(ids, images):
        (root / "stimuli" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "stimuli" / name)
    features = stimulus_features(images, n_features)
    feature_of = dict(zip(ids, features))
    test_ids = ids[:n_test_stimuli]

    _write_json(root / "dataset_description.json",
                {"Name": "brainkit synthetic image task", "BIDSVersion": "1.8.0", "DatasetType": "raw"})  # fmt: skip
    (root / "README").write_text("Synthetic data written by brainkit.testing_bids.write_bids_folder.\n")
    subjects = [f"{k:02d}" for k in range(1, n_subjects + 1)]
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects]}).to_csv(
        root / "participants.tsv", sep="\t", index=False
    )
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -1.5 * np.array(shape)
    mask = _ellipsoid(shape)
    _save_nifti(root / "brain_mask.nii.gz", mask.astype(np.uint8), affine)
    derivatives_root = root / "derivatives" / FMRIPREP if derivatives else None
    if derivatives_root is not None:
        _write_json(derivatives_root / "dataset_description.json", {
            "Name": "fMRIPrep-style outputs (synthetic)", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}]})  # fmt: skip

    n_vox = int(np.prod(shape))
    for subject in subjects:
        weights = rng.standard_normal((n_features, n_vox))
        motor = rng.standard_normal(n_vox)
        baseline = np.where(mask.ravel(), rng.uniform(800, 1200, n_vox), rng.uniform(20, 40, n_vox))
        train_ids = [ids[i] for i in n_test_stimuli + rng.permutation(n_runs * n_train_per_run)]
        for run in range(1, n_runs + 1):
            shown = test_ids + train_ids[(run - 1) * n_train_per_run : run * n_train_per_run]
            events = _schedule(rng, shown, soa)
            n_scans = int(np.ceil((events["onset"].max() + 16.0) / tr))
            regressors = _regressors(events, n_scans, tr)  # (n_scans, n_events)
            is_image = (events["trial_type"] == "image").to_numpy()
            amplitude = np.zeros((len(events), n_vox))
            amplitude[is_image] = signal * np.stack(
                [feature_of[s] for s in events["stim_file"][is_image]]) @ weights / np.sqrt(n_features)  # fmt: skip
            amplitude[~is_image] = 0.5 * motor
            confounds = _confounds(rng, n_scans)
            motion = confounds[list(MOTION)].to_numpy() / confounds[list(MOTION)].to_numpy().std(axis=0)
            artefact = (
                motion @ rng.standard_normal((len(MOTION), n_vox)) * (motion_artefact / np.sqrt(len(MOTION)))
            )
            drift = np.linspace(-1, 1, n_scans)[:, None] * rng.standard_normal(n_vox)[None, :]
            percent = (
                regressors @ amplitude + artefact + drift + noise * rng.standard_normal((n_scans, n_vox))
            )
            bold = (baseline * (1.0 + percent / 100.0)).astype(np.float32)  # (n_scans, X*Y*Z)
            volume = bold.T.reshape(*shape, n_scans)

            func = Path(f"sub-{subject}") / (f"ses-{session}" if session else "") / "func"
            stem = f"sub-{subject}_" + (f"ses-{session}_" if session else "") + f"task-{task}_run-{run}"
            _save_nifti(root / func / f"{stem}_bold.nii.gz", volume, affine)
            _write_json(root / func / f"{stem}_bold.json", {"RepetitionTime": tr, "TaskName": task})
            events.to_csv(root / func / f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a")
            if derivatives_root is None:
                continue
            prefix = derivatives_root / func / f"{stem}_space-{space}"
            _save_nifti(Path(f"{prefix}_desc-preproc_bold.nii.gz"), volume, affine)
            _write_json(Path(f"{prefix}_desc-preproc_bold.json"), {"RepetitionTime": tr, "TaskName": task,
                                                                 "SkullStripped": False})  # fmt: skip
            _save_nifti(Path(f"{prefix}_desc-brain_mask.nii.gz"), mask.astype(np.uint8), affine)
            confounds.to_csv(derivatives_root / func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t",
                             index=False, na_rep="n/a")  # fmt: skip
            if surfaces:
                _save_surfaces(derivatives_root / func / stem, bold[:, mask.ravel()], tr, task, n_medial_wall)
    return BIDSExample(
        root=root, task=task, subjects=[f"sub-{s}" for s in subjects], runs=list(range(1, n_runs + 1)), tr=tr,
        space=space, derivatives=derivatives_root, mask_path=root / "brain_mask.nii.gz", mask=mask,
        stimulus_ids=ids, features=features, test_ids=test_ids, session=session,
    )  # fmt: skip


__all__ = ["BIDSExample", "MOTION", "stimulus_features", "write_bids_folder", "write_rest_surface_folder"]
