"""The real HCP 7T movie-watching layout (SIM's data): finding the runs, reading them, their segment structure.

Layout (HCP "Movie Task fMRI 1.6mm/59k Functional Preprocessed", METHODS.md sec. 1.1)::

    {root}/{subject}/MNINonLinear/Results/tfMRI_MOVIE{m}_7T_{AP|PA}/
        tfMRI_MOVIE{m}_7T_{AP|PA}_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii

Each run (TR 1 s) alternates rest and movie clips and ends with the test-retest clip shown in every run.
``SEGMENTS`` holds each run's (first, last) frames of its clips, 0-based and inclusive, the last one the
test-retest clip:

- MOVIE1 is SIM's own (``tools/datasets.py``: rest 0-19, clips 20-263, 285-504, 526-713, 734-797, test-retest
  818-900; METHODS.md sec. 1.1).
- MOVIE2-4 are not in METHODS.md; they come from a public HCP 7T movie analysis script (MATLAB,
  ``clips_label1..4``: "the start and end time_point of the clips", 1-based TRs; it lists MOVIE1 as 21-274,
  285-516, 527-724, 735-808, 819-911), converted to 0-based. For MOVIE1 its starts agree with SIM's within 1 s
  but its ends run ~10 s later than SIM's: SIM's segments stop ~10 s before the clip ends. So for MOVIE2-4 the
  ends below are the clips' full ends, not SIM's; pass ``segments=`` to :func:`read_movie_run` for other bounds.
  ``CLIP_TIMES`` keeps that script's numbers for all four runs (one convention throughout).
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
# (first frame, last frame) of each movie segment, inclusive; the last one is the test-retest clip.
# Public MATLAB script (see the module docstring), 1-based (first, last) TRs of every clip of each run.
CLIP_TIMES = {
    1: ((21, 274), (285, 516), (527, 724), (735, 808), (819, 911)),
    2: ((21, 257), (268, 536), (547, 805), (816, 898)),
    3: ((21, 211), (222, 416), (427, 640), (651, 802), (813, 905)),
    4: ((21, 263), (274, 513), (524, 788), (799, 891)),
}
SEGMENTS = {
    1: ((20, 263), (285, 504), (526, 713), (734, 797), (818, 900)),  # SIM's tools/datasets.py
    **{m: tuple((a - 1, b - 1) for a, b in CLIP_TIMES[m]) for m in (2, 3, 4)},  # CLIP_TIMES, 0-based
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


def read_movie_run(run: MovieRun, segments: tuple[tuple[int, int], ...] | None = None):
    """The run's hemispheres (``read_cifti_hemispheres``) and ``segment_of`` (n_frames,) (see
    :func:`segment_of_frames`); the frame count must be the movie's (921 / 918 / 915 / 901)."""
    from brainkit.surface.readers import read_cifti_hemispheres

    if segments is None:
        if run.movie not in SEGMENTS:
            raise ConfigError(
                f"The segment structure of MOVIE{run.movie} is not known to brainkit; pass segments=((first, last), "
                "...) from SIM's tools/datasets.py."
            )
        segments = SEGMENTS[run.movie]
    hemis = read_cifti_hemispheres(run.path)
    n_frames = hemis["left"].frames.shape[0]
    if n_frames != N_FRAMES[run.movie]:
        raise DataError(
            f"{run.path}: {n_frames} frames, but MOVIE{run.movie} runs have {N_FRAMES[run.movie]}; is the file truncated?"
        )
    return hemis, segment_of_frames(n_frames, segments)


__all__ = [
    "MovieRun",
    "find_movie_runs",
    "read_movie_run",
    "segment_of_frames",
    "N_FRAMES",
    "SEGMENTS",
    "CLIP_TIMES",
]
