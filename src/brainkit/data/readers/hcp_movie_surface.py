"""The real HCP 7T movie-watching layout (SIM's data): finding the runs, reading them, their segment structure.

Layout (HCP "Movie Task fMRI 1.6mm/59k Functional Preprocessed", METHODS.md sec. 1.1)::

    {root}/{subject}/MNINonLinear/Results/tfMRI_MOVIE{m}_7T_{AP|PA}/
        tfMRI_MOVIE{m}_7T_{AP|PA}_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii

Each run (TR 1 s) alternates rest and movie clips and ends with the test-retest clip shown in every run.
``SEGMENTS`` holds each run's (first, last) frames of its clips, 0-based and inclusive, the last one the
test-retest clip:

- All four are SIM's own (metrics-lab/sim ``tools/datasets.py``, ``fmri_session_structure``, the table its
  training reads), in frames = seconds (TR 1 s). SIM's ``tools/retrieval.py`` holds a second copy that the
  released evaluation reads: the same bounds except that each run's first segment starts at 21, not 20 (and
  MOVIE1's fourth rest starts at 714). Pass ``segments=`` to :func:`read_movie_run` for that copy.
- ``CLIP_TIMES`` keeps another source's numbers for all four runs: a public HCP 7T movie analysis script
  (MATLAB, ``clips_label1..4``: "the start and end time_point of the clips", 1-based TRs). Its starts agree
  with SIM's within 1 s, but its ends run up to 11 s later: SIM's segments stop before each clip ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, DataError, FileFormatError

PATTERN = "{subject}/MNINonLinear/Results/{session}/{session}_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii"
SESSION = re.compile(r"^tfMRI_MOVIE([1-4])_7T_(AP|PA)$")
N_FRAMES = {1: 921, 2: 918, 3: 915, 4: 901}  # SIM's split CSV (nbr_frames)
# Public MATLAB script (see the module docstring), 1-based (first, last) TRs of every clip of each run.
CLIP_TIMES = {
    1: ((21, 274), (285, 516), (527, 724), (735, 808), (819, 911)),
    2: ((21, 257), (268, 536), (547, 805), (816, 898)),
    3: ((21, 211), (222, 416), (427, 640), (651, 802), (813, 905)),
    4: ((21, 263), (274, 513), (524, 788), (799, 891)),
}
# (first frame, last frame) of each movie segment, 0-based and inclusive; the last one is the test-retest clip.
# From metrics-lab/sim tools/datasets.py (fmri_session_structure: movie_sample_1, ..., test_retest).
SEGMENTS = {
    1: ((20, 263), (285, 504), (526, 713), (734, 797), (818, 900)),
    2: ((20, 246), (267, 525), (545, 794), (815, 897)),
    3: ((20, 199), (221, 404), (425, 628), (650, 791), (812, 894)),
    4: ((20, 252), (272, 501), (522, 777), (798, 880)),
}


@dataclass(frozen=True)
class MovieRun:
    """One subject's run of movie ``movie`` (1-4), phase encoding ``phase`` (AP or PA), at ``path``."""

    subject: str
    movie: int
    phase: str
    path: Path


def find_movie_runs(root: str | Path) -> list[MovieRun]:
    """Every movie run under ``root`` in the HCP layout, sorted by subject then movie."""
    root = Path(root)
    if not root.is_dir():
        raise FileFormatError(f"HCP 7T movie root {root} is not a folder.")
    runs = []
    for results in sorted(root.glob("*/MNINonLinear/Results")):
        subject = results.parent.parent.name
        for session in sorted(p for p in results.iterdir() if p.is_dir()):
            match = SESSION.match(session.name)
            if match is None:
                continue
            path = root / PATTERN.format(subject=subject, session=session.name)
            if not path.is_file():
                raise FileFormatError(
                    f"{session} has no {path.name} (expected the MSMAll hp2000 clean dtseries)."
                )
            runs.append(MovieRun(subject, int(match.group(1)), match.group(2), path))
    if not runs:
        raise FileFormatError(
            f"No movie runs under {root}: expected {PATTERN.format(subject='<subject>', session='tfMRI_MOVIE1_7T_AP')}."
        )
    return sorted(runs, key=lambda r: (r.subject, r.movie))


def segment_of_frames(n_frames: int, segments: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(n_frames,) int: the movie segment of each frame (0, 1, ...; the last = test-retest), -1 for rest."""
    out = np.full(n_frames, -1, dtype=np.int64)
    previous = -1
    for number, (first, last) in enumerate(segments):
        if not previous < first <= last < n_frames:
            raise ConfigError(
                f"segments must be increasing, disjoint (first, last) frames within 0..{n_frames - 1}, found {segments}."
            )
        out[first : last + 1] = number
        previous = last
    return out


def read_movie_run(
    run: MovieRun, segments: tuple[tuple[int, int], ...] | None = None, n_frames: int | None = None
):
    """The run's hemispheres (``read_cifti_hemispheres``) and ``segment_of`` (n_frames,) (see
    :func:`segment_of_frames`); the frame count must be ``n_frames`` (default the movie's: 921 / 918 / 915 / 901)."""
    from brainkit.surface.readers import read_cifti_hemispheres

    if segments is None:
        if run.movie not in SEGMENTS:
            raise ConfigError(
                f"The segment structure of MOVIE{run.movie} is not known to brainkit; pass segments=((first, last), "
                "...) from SIM's tools/datasets.py."
            )
        segments = SEGMENTS[run.movie]
    expected = N_FRAMES[run.movie] if n_frames is None else n_frames
    hemis = read_cifti_hemispheres(run.path)
    found = hemis["left"].frames.shape[0]
    if found != expected:
        raise DataError(
            f"{run.path}: {found} frames, but MOVIE{run.movie} runs have {expected}; is the file truncated?"
        )
    return hemis, segment_of_frames(found, segments)


__all__ = [
    "MovieRun",
    "find_movie_runs",
    "read_movie_run",
    "segment_of_frames",
    "N_FRAMES",
    "SEGMENTS",
    "CLIP_TIMES",
]
