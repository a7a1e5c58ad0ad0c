"""Your surface runs in: fMRIPrep's fsaverage outputs of a BIDS dataset -> frames on the icosphere (vsMAE, SIM).

``load_bids_surface`` (registered as dataset ``"bids_surface"``) finds the runs of one task (rest or any other:
no events are needed) with pybids (:func:`brainkit.data.readers.bids_runs.find_runs`), reads each run's
``*_hemi-L_space-<space>_bold.func.gii`` and its ``hemi-R`` twin, and puts them on the icosphere of the space's
order (fsaverage5 -> 5, fsaverage6 -> 6, fsaverage -> 7): the left hemisphere as it is, the right one mirrored,
both masked and normalised as SIM does (:func:`brainkit.data.surface_frames.frames_on_icosphere`).

What it needs on disk: ``root`` (the BIDS dataset: ``dataset_description.json``, ``sub-*/``) and the fMRIPrep
folder ``derivatives`` (default ``root/derivatives/fmriprep``) holding per run the GIFTI pair and its JSON
sidecar with ``RepetitionTime``. fMRIPrep writes these with ``--output-spaces fsaverage5`` (or ``fsaverage6``).
fsnative and fsLR outputs need a registration to the icosphere first and are refused here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brainkit.data.readers.bids_runs import find_runs
from brainkit.data.readers.surface_runs import read_gifti_series
from brainkit.data.surface_frames import FSAVERAGE_ORDERS, SurfaceFrames, SurfaceRun, frames_on_icosphere
from brainkit.errors import ConfigError
from brainkit.registry import DATASETS

logger = logging.getLogger(__name__)


@DATASETS.register(
    "bids_surface",
    space="the icosphere of the fsaverage space read (fsaverage5 -> order 5, fsaverage6 -> 6), right hemisphere "
    "mirrored onto the left",
    needs="root= (a BIDS dataset), task=; derivatives= (default root/derivatives/fmriprep) with per run "
    "*_hemi-{L,R}_space-fsaverage5_bold.func.gii + .json (RepetitionTime); no events needed",
    help="Your surface runs: fMRIPrep's fsaverage GIFTI outputs of a BIDS dataset (rest or task) -> frames on "
    "the icosphere.",
)
def load_bids_surface(
    root: str | Path,
    task: str,
    space: str = "fsaverage5",
    derivatives: str | Path | None = None,
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
    cache_dir: str | None = None,
) -> SurfaceFrames:
    """Every run of ``task`` on the icosphere, one :class:`SurfaceRun` per run (sorted by subject, session, run).

    Parameters
    ----------
    root : the BIDS dataset folder
    task : the task label of the runs (``task-<label>``), e.g. "rest"
    space : "fsaverage5", "fsaverage6", "fsaverage" (or "fsaverage3"/"fsaverage4")
    derivatives : the fMRIPrep folder; default ``root/derivatives/fmriprep``
    subjects, sessions, filters : which runs (as for the ``bids`` dataset)
    cache_dir : where the right hemisphere's resampling matrix is cached

    Returns
    -------
    SurfaceFrames
        ``runs[i].hemispheres["left" | "right"]``: frames (n_frames, n_vertices(order)) float32, cortex mask;
        ``order`` the space's; ``info["tr"]`` per run, ``info["runs"]`` the files read.
    """
    if space not in FSAVERAGE_ORDERS:
        raise ConfigError(
            f"bids_surface reads fMRIPrep's fsaverage outputs (space one of {sorted(FSAVERAGE_ORDERS)}), found "
            f"{space!r}. fsnative and fsLR surfaces need a registration to the icosphere first; run fMRIPrep "
            "with --output-spaces fsaverage5 (or fsaverage6)."
        )
    root = Path(root)
    derivatives = Path(derivatives) if derivatives is not None else root / "derivatives" / "fmriprep"
    runs = find_runs(root, task, subjects, sessions, space=space, derivatives=derivatives, filters=filters,
                     events=False)  # fmt: skip
    order = FSAVERAGE_ORDERS[space]
    out, files, trs = [], {}, {}
    for run in runs:
        label = run.bold.name.split("_hemi-")[0]  # e.g. sub-01_ses-1_task-rest_run-1
        left, right = read_gifti_series(run.bold), read_gifti_series(run.bold_right)
        hemispheres = frames_on_icosphere(left, right, order, cache_dir, source=run.name)
        out.append(SurfaceRun(f"sub-{run.subject}", label, hemispheres))
        files.setdefault(f"sub-{run.subject}", []).append(str(run.bold.relative_to(derivatives)))
        trs.setdefault(f"sub-{run.subject}", []).append(run.tr)
        logger.info("bids_surface %s: %d frames on ico%d", run.name, len(left), order)
    subjects_found = list(dict.fromkeys(run.subject for run in out))
    info = {
        "source": "fMRIPrep fsaverage GIFTI runs of a BIDS dataset, read with pybids",
        "root": str(root),
        "derivatives": str(derivatives),
        "task": task,
        "space": space,
        "order": order,
        "runs": files,
        "tr": trs,
        "preprocessing": "right hemisphere mirrored onto the left; per-vertex demeaning, per-frame z-score over "
        "the cortex (vertices that vary); the rest 0",
    }
    return SurfaceFrames(out, subjects_found, order=order, info=info)


__all__ = ["load_bids_surface"]
