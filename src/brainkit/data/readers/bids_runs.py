"""Finding a BIDS dataset's task runs with pybids: each BOLD run with its events, TR, brain mask and confounds.

A raw dataset (``space=None``): the runs are ``sub-<label>[/ses-<label>]/func/*_task-<task>[_run-<index>]_bold.nii[.gz]``.
fMRIPrep derivatives (``space="MNI152NLin2009cAsym"``, ``derivatives=<folder>``): the runs are the derivatives'
``*_task-<task>_..._space-<space>_desc-preproc_bold.nii.gz``; next to each, ``*_space-<space>_desc-brain_mask``
and ``*_desc-confounds_timeseries.tsv``. In both, events come from the raw dataset (``*_events.tsv``, found by
BIDS inheritance with :meth:`bids.BIDSLayout.get_nearest`) and the TR from the BOLD's JSON sidecar
(``RepetitionTime``; else the NIfTI header). Surface outputs (``space`` one of :data:`SURFACE_SPACES`): fMRIPrep's
``*_hemi-L_space-<space>_bold.func.gii`` with its ``hemi-R`` twin (fsaverage*, fsnative), or its CIFTI
``*_space-fsLR_den-91k_bold.dtseries.nii`` (fsLR); no brain mask. pybids does the parsing of names, entities and inheritance, which
BIDS defines in detail (sessions optional, runs optional, sidecars inherited from higher folders).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainkit.errors import ConfigError, DataError
from brainkit.nifti import load_nifti

logger = logging.getLogger(__name__)

NIFTI = [".nii", ".nii.gz"]
# fMRIPrep's surface output spaces: GIFTI hemisphere pairs, except fsLR (CIFTI grayordinates)
SURFACE_SPACES = ("fsaverage", "fsaverage3", "fsaverage4", "fsaverage5", "fsaverage6", "fsnative", "fsLR")
# entities a derivative BOLD has that its raw events / confounds / mask files may lack
_DERIVATIVE_ENTITIES = ["extension", "suffix", "desc", "space", "res", "den", "cohort", "hemi"]


@dataclass(frozen=True)
class BIDSRun:
    """One BOLD run and the files that go with it.

    ``subject`` and ``session`` are BIDS labels without their prefix ("01"; None without sessions); ``run`` is
    the run index (0 when the file name has no ``run-``); ``mask`` and ``confounds`` are None when not looked
    for (raw data) and are required when looked for.
    """

    subject: str
    session: str | None
    run: int
    bold: Path
    events: Path | None  # None only for runs found with events=False that have none
    tr: float
    mask: Path | None = None
    confounds: Path | None = None
    bold_right: Path | None = None  # a GIFTI run's right hemisphere (``bold`` is the left one)

    @property
    def kind(self) -> str:
        """``"volume"`` (NIfTI), ``"gifti"`` (a hemisphere pair) or ``"cifti"`` (grayordinates)."""
        name = self.bold.name
        return "gifti" if name.endswith(".gii") else "cifti" if name.endswith(".dtseries.nii") else "volume"

    @property
    def name(self) -> str:
        session = f" ses-{self.session}" if self.session else ""
        return f"sub-{self.subject}{session} run {self.run} ({self.bold.name})"


def subject_label(subject: str | int) -> str:
    """``"sub-01"``, ``"01"`` -> ``"01"``; an int ``1`` -> ``"1"`` (BIDS labels are strings: write ``"01"``)."""
    text = str(subject).strip()
    return text[4:] if text.startswith("sub-") else text


def open_layout(root: str | Path, derivatives: str | Path | None = None):
    """A :class:`bids.BIDSLayout` of ``root`` (plus the derivatives folder), not validated (names still parsed)."""
    try:
        import bids
        from bids.exceptions import PyBIDSError
    except ImportError as error:  # pragma: no cover - pybids is a dependency
        raise DataError("Reading BIDS folders needs pybids: pip install 'pybids>=0.16'.") from error
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"BIDS root {root} is not a folder.")
    if derivatives is not None and not (Path(derivatives) / "dataset_description.json").is_file():
        raise DataError(
            f"The derivatives folder {derivatives} has no dataset_description.json: point derivatives= at the "
            "pipeline's own folder (e.g. <root>/derivatives/fmriprep), which fMRIPrep writes with that file."
        )
    try:
        return bids.BIDSLayout(
            str(root), validate=False, derivatives=[str(derivatives)] if derivatives is not None else False
        )
    except (PyBIDSError, ValueError) as error:
        raise DataError(f"pybids cannot read {root} as a BIDS dataset: {error}") from error


def _repetition_time(layout, bold: Path) -> float:
    metadata = layout.get_metadata(str(bold))
    if "RepetitionTime" in metadata:
        return float(metadata["RepetitionTime"])
    if bold.name.endswith(".gii"):
        raise DataError(
            f"{bold}: no RepetitionTime in its JSON sidecar (a GIFTI series carries none). Add "
            f'"RepetitionTime": <seconds> to {bold.name.split(".")[0]}.json (fMRIPrep writes it there).'
        )
    if bold.name.endswith(".dtseries.nii"):
        from brainkit.data.readers.surface_runs import cifti_repetition_time

        return cifti_repetition_time(bold)
    header = load_nifti(bold).header
    zooms = header.get_zooms()
    spatial, temporal = header.get_xyzt_units()
    tr = float(zooms[3]) if len(zooms) > 3 else 0.0
    if tr <= 0:
        raise DataError(
            f"{bold}: no RepetitionTime in its JSON sidecar and none in the NIfTI header. Add "
            f'"RepetitionTime": <seconds> to {bold.name.split(".")[0]}.json.'
        )
    tr = tr / 1000.0 if temporal == "msec" else tr
    logger.info("%s: no RepetitionTime sidecar; TR %.3f s from the NIfTI header.", bold, tr)
    return tr


def _nearest(
    layout, bold: Path, entities: dict, ignore: list[str], full_search: bool = False, **filters: Any
) -> Path | None:
    """The file matching ``filters`` whose entities agree with the BOLD's (BIDS inheritance: an entity the
    file lacks is inherited), the one sharing the most entities when several do (a subject's own events.tsv
    before a task-wide one); derivative-only entities (space, desc, res...) are not compared."""
    found = layout.get_nearest(
        str(bold),
        return_type="object",
        strict=True,
        all_=True,
        full_search=full_search,
        ignore_strict_entities=ignore,
        **filters,
    )
    if not found:
        return None
    best = max(found, key=lambda f: (sum(f.entities.get(k) == v for k, v in entities.items()), f.path))
    return Path(best.path)


def _describe(layout, task: str, space: str | None) -> str:
    spaces = sorted(layout.get_spaces()) if layout.derivatives else []
    return (
        f"subjects in the folder: {layout.get_subjects() or 'none'}; tasks: {layout.get_tasks() or 'none'}; "
        + (f"spaces in the derivatives: {spaces or 'none'}" if space is not None else "raw data (space=None)")
    )


def find_runs(
    root: str | Path,
    task: str,
    subjects: Sequence[str | int] | None = None,
    sessions: Sequence[str | int] | None = None,
    *,
    space: str | None = None,
    derivatives: str | Path | None = None,
    confounds: bool = False,
    masks: bool = False,
    filters: Mapping[str, Any] | None = None,
    events: bool = True,
) -> list[BIDSRun]:
    """The runs of ``task``, sorted by subject, session and run, with their events, TR, masks and confounds.

    Parameters
    ----------
    root : the BIDS dataset (holds ``dataset_description.json``, ``sub-*/``, ``stimuli/``)
    task : the ``task-<label>`` of the runs
    subjects, sessions : labels ("01" or "sub-01"; "ses-" may be left out); None = all
    space : fMRIPrep output space (a volume space, or a surface one of SURFACE_SPACES); None = the raw runs
    derivatives : the fMRIPrep folder (needed with ``space``)
    confounds, masks : also find each run's ``desc-confounds_timeseries.tsv`` / ``desc-brain_mask``
        (derivatives only)
    filters : more pybids entity filters for the BOLD files, e.g. ``{"acquisition": "highres"}``, ``{"echo": 1}``
        or ``{"res": "2"}``, when a run has several BOLD files
    events : each run needs its events.tsv (task runs); False for runs read without (rest), whose ``events``
        is then the events file when there is one, else None

    Raises :class:`DataError` when no run matches (saying which subjects, tasks and spaces exist), a requested
    subject has none, a run has no events.tsv, mask or confounds file, or two BOLD files share one run.
    """
    if space is not None and derivatives is None:
        raise ConfigError(
            f"space={space!r} reads fMRIPrep outputs: also pass derivatives=<folder> (e.g. <root>/derivatives/"
            "fmriprep). For raw runs, leave space=None."
        )
    if space is None and derivatives is not None:
        raise ConfigError(
            "derivatives= needs space= (e.g. 'MNI152NLin2009cAsym' or 'T1w'): which outputs to read."
        )
    if (confounds or masks) and space is None:
        raise ConfigError(
            "Confounds and per-run brain masks come from fMRIPrep derivatives: pass space= and derivatives=, "
            "or, for raw runs, a mask= file and no confounds."
        )
    surface = space in SURFACE_SPACES
    if surface and masks:
        raise ConfigError(
            f"space={space!r} reads surface runs, which have no brain mask: vertices are kept unless their series "
            "is constant or not finite (see brainkit.data.readers.surface_runs). Leave mask= unset."
        )
    layout = open_layout(root, derivatives)
    derivative = space is not None
    extension = (".dtseries.nii" if space == "fsLR" else ".func.gii") if surface else NIFTI
    query: dict[str, Any] = {"task": task, "suffix": "bold", "extension": extension, "datatype": "func"}
    if surface:
        query.update({"scope": "derivatives", "space": space} | ({} if space == "fsLR" else {"hemi": "L"}))
    else:
        query.update(
            {"scope": "derivatives", "space": space, "desc": "preproc"} if derivative else {"scope": "raw"}
        )
    if subjects is not None:
        query["subject"] = [subject_label(s) for s in subjects]
    if sessions is not None:
        query["session"] = [str(s).removeprefix("ses-") for s in sessions]
    query.update(filters or {})
    files = layout.get(**query)
    if not files:
        wanted = f"task {task!r}" + (f", space {space!r}" if derivative else "")
        raise DataError(
            f"No BOLD runs found for {wanted} under {derivatives if derivative else root} "
            f"(subjects {query.get('subject', 'all')}, sessions {query.get('session', 'all')}); "
            f"{_describe(layout, task, space)}."
        )
    found_subjects = {f.get_entities()["subject"] for f in files}
    missing = [s for s in query.get("subject", []) if s not in found_subjects]
    if missing:
        raise DataError(
            f"No BOLD runs of task {task!r} for subject(s) {['sub-' + s for s in missing]}; "
            f"{_describe(layout, task, space)}."
        )
    runs, seen = [], {}
    for file in files:
        entities = file.get_entities()
        bold = Path(file.path)
        key = (entities["subject"], entities.get("session"), int(entities.get("run", 0)))
        if key in seen:
            raise DataError(
                f"Two BOLD files for one run: {seen[key].name} and {bold.name}. Choose one with filters=, "
                "e.g. {'acquisition': ...}, {'echo': 1} or {'res': ...}."
            )
        seen[key] = bold
        events_file = _nearest(
            layout,
            bold,
            entities,
            _DERIVATIVE_ENTITIES if derivative else ["extension", "suffix"],
            full_search=derivative,
            suffix="events",
            extension=".tsv",
            scope="raw",
        )
        if events_file is None and events:
            raise DataError(
                f"{bold}: no events.tsv for this run (expected e.g. "
                f"{bold.name.split('_space-')[0].split('_bold')[0]}_events.tsv next to the raw run, or one "
                "inherited from a higher folder). Every run needs its events (onset, duration, stim_file)."
            )
        mask = confound_file = right = None
        if surface and space != "fsLR":
            right = bold.with_name(bold.name.replace("_hemi-L_", "_hemi-R_"))
            if not right.is_file():
                raise DataError(
                    f"{bold}: no right hemisphere {right.name} beside it. A GIFTI run is read as both "
                    "hemispheres (left then right vertices), as fMRIPrep writes them."
                )
        if masks:
            mask = _nearest(
                layout,
                bold,
                entities,
                ["extension", "suffix", "desc"],
                suffix="mask",
                desc="brain",
                extension=NIFTI,
            )
            if mask is None:
                raise DataError(
                    f"{bold}: no desc-brain_mask next to it (fMRIPrep writes "
                    f"{bold.name.replace('desc-preproc_bold', 'desc-brain_mask')}). Pass mask=<file> instead."
                )
        if confounds:
            confound_file = _nearest(
                layout,
                bold,
                entities,
                _DERIVATIVE_ENTITIES,
                suffix="timeseries",
                desc="confounds",
                extension=".tsv",
                scope="derivatives",
            )
            if confound_file is None:
                raise DataError(
                    f"{bold}: no desc-confounds_timeseries.tsv for this run in {derivatives}; pass confounds=None "
                    "to fit without confounds."
                )
        runs.append(
            BIDSRun(
                subject=key[0],
                session=key[1],
                run=key[2],
                bold=bold,
                events=events_file,
                tr=_repetition_time(layout, bold),
                mask=mask,
                confounds=confound_file,
                bold_right=right,
            )  # fmt: skip
        )
    return sorted(runs, key=lambda r: (r.subject, r.session or "", r.run))


__all__ = ["BIDSRun", "SURFACE_SPACES", "find_runs", "open_layout", "subject_label"]
