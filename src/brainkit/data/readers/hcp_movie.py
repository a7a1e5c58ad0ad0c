"""Reader of the HCP 7T movie data in MNI volume space with per-second WordNet label tables (CLIP-MUSED's data).

Expected layout (docs/datasets.md, "HCP 7T movie")::

    <root>/<subject>/MNINonLinear/Results/tfMRI_MOVIE1_7T_AP/tfMRI_MOVIE1_7T_AP.nii.gz   (113, 136, 113, T), TR 1 s
    <root>/<subject>/MNINonLinear/Results/tfMRI_MOVIE2_7T_PA/...   MOVIE3_7T_PA, MOVIE4_7T_AP (HCP's names)
    <root>/7T_movie_resources/WordNetFeatures.hdf5   HCP's WordNet annotation (859 categories, Huth et al. 2012):
                     datasets "MOVIE1_CC1", "MOVIE2_HO1", "MOVIE3_CC2", "MOVIE4_HO2": (n_seconds, n_categories)
                     0/1, row t = second t of the movie; "synsets": (n_categories,) WordNet synset names

Both are HCP's own files (the released CLIP-MUSED code reads the same ``WordNetFeatures.hdf5`` by those movie
names). A table arranged as "MOVIE1".."MOVIE4" + "names" is read too. Samples: one per stimulus second, the fMRI
volume ``delay`` TRs later (4 in the paper), read lazily from each run. The registered dataset ``hcp_movie``
(:mod:`brainkit.data.readers.hcp_movie_dataset`) builds CLIP-MUSED's data from these files and the movies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainkit.data.readers.movie_volumes import MovieRun
from brainkit.errors import ConfigError, DataError, FileFormatError

MOVIE_RUNS = {
    1: "tfMRI_MOVIE1_7T_AP",
    2: "tfMRI_MOVIE2_7T_PA",
    3: "tfMRI_MOVIE3_7T_PA",
    4: "tfMRI_MOVIE4_7T_AP",
}
# HCP's dataset names in WordNetFeatures.hdf5 (the released CLIP-MUSED loader's movie_names)
LABEL_KEYS = {1: "MOVIE1_CC1", 2: "MOVIE2_HO1", 3: "MOVIE3_CC2", 4: "MOVIE4_HO2"}
RUN_VARIANTS = ("", "_hp2000_clean")  # HCP's MNI runs: minimally preprocessed, or ICA-FIX cleaned
FPS = 24  # the movie frame rate; the released clip_times_24.npy holds frame ranges at this rate


def run_path(root: str | Path, subject: str, movie: int, variant: str = "") -> Path:
    """Where HCP keeps ``subject``'s MNI-space run of ``movie`` (``.nii.gz``, else an unpacked ``.nii``);
    ``variant`` ``"_hp2000_clean"`` names the ICA-FIX cleaned run."""
    if movie not in MOVIE_RUNS:
        raise ConfigError(f"HCP 7T movie: movie must be one of {sorted(MOVIE_RUNS)}, found {movie!r}.")
    if variant not in RUN_VARIANTS:
        raise ConfigError(
            f"HCP 7T movie: run variant must be one of {list(RUN_VARIANTS)}, found {variant!r}."
        )
    name = MOVIE_RUNS[movie]
    folder = Path(root) / subject / "MNINonLinear" / "Results" / name
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{name}{variant}{suffix}").is_file():
            return folder / f"{name}{variant}{suffix}"
    raise FileFormatError(
        f"HCP 7T movie: no run {folder / name}{variant}.nii.gz for subject {subject}, movie {movie}. Expected "
        "HCP's layout <root>/<subject>/MNINonLinear/Results/<run>/<run>.nii.gz (docs/datasets.md); leave the "
        "subject out (data.subjects) if it lacks this run."
    )


def read_wordnet_labels(path: str | Path, movie: int) -> tuple[np.ndarray, list[str]]:
    """The per-second label table of ``movie``: (uint8 (n_seconds, n_categories), category names)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(
            f"WordNet label file {path} does not exist; see docs/datasets.md for its layout."
        )
    try:
        with h5py.File(path, "r") as handle:
            key = next((k for k in (LABEL_KEYS[movie], f"MOVIE{movie}") if k in handle), LABEL_KEYS[movie])
            names_key = next((k for k in ("synsets", "names") if k in handle), "synsets")
            if key not in handle or names_key not in handle:
                raise FileFormatError(
                    f"{path}: expected HCP's datasets {key!r} (n_seconds, n_categories) and 'synsets', found "
                    f"{sorted(handle.keys())}."
                )
            table = np.asarray(handle[key])
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.ravel(handle[names_key][()])]
    except OSError as err:
        raise FileFormatError(f"Cannot read WordNet label file {path}: {err}.") from err
    if table.ndim != 2 or table.shape[1] != len(names) or not np.isin(table, (0, 1)).all():
        raise FileFormatError(
            f"{path}: {key} must be a 0/1 table (n_seconds, {len(names)} categories), found shape {table.shape}"
            + (
                " (transposed? rows must be seconds)"
                if table.ndim == 2 and table.shape[0] == len(names)
                else ""
            )
            + "."
        )
    return table.astype(np.uint8), names


def clip_seconds(frame_ranges: np.ndarray, drop_last: bool = True) -> np.ndarray:
    """Stimulus seconds covered by clips given as (start_frame, end_frame) rows at 24 fps.

    ``drop_last`` drops the final clip, the repeated test-retest clip the paper leaves out of MOVIE4.
    """
    ranges = np.asarray(frame_ranges)
    if ranges.ndim != 2 or ranges.shape[1] != 2 or (ranges[:, 1] < ranges[:, 0]).any():
        raise DataError(
            f"clip_seconds: expected (n_clips, 2) frame ranges [start, end], found {ranges.shape}."
        )
    if drop_last:
        ranges = ranges[:-1]
    seconds = [np.arange(int(np.ceil(a / FPS)), int(b // FPS) + 1) for a, b in ranges]
    return np.unique(np.concatenate(seconds)) if seconds else np.zeros(0, int)


def frequent_classes(labels: np.ndarray, min_fraction: float) -> np.ndarray:
    """Indices of the categories present in at least ``min_fraction`` of the samples (the paper's -sel_label)."""
    return np.nonzero(np.asarray(labels).mean(axis=0) >= min_fraction)[0]


class HCPMovieSamples:
    """Samples (volume, subject index, labels) for subjects x movies x seconds, read lazily from each run.

    Parameters
    ----------
    root : str or Path
        The HCP folder holding one folder per subject.
    labels_file : str or Path
        The WordNet label table (layout above).
    subjects : sequence of str
        Subject ids; their order gives the subject indices the model's tokens use.
    movies : sequence of int
        Which movies (the paper trains on 1-3 and tests on 4).
    seconds : dict movie -> int array, optional
        Seconds to keep per movie (e.g. :func:`clip_seconds` of the clips); default every labelled second.
    mask, grid, delay, normalisation : see :class:`MovieRun` (grid default ``"hcp"``: 112 x 128 x 112).
    """

    def __init__(
        self,
        root: str | Path,
        labels_file: str | Path,
        subjects: list[str] | tuple[str, ...],
        movies: list[int] | tuple[int, ...] = (1, 2, 3),
        seconds: dict[int, np.ndarray] | None = None,
        mask: np.ndarray | None = None,
        grid: tuple[int, int, int] | str = "hcp",
        delay: int = 4,
        normalisation: str = "minmax",
    ) -> None:
        if not subjects or not movies:
            raise ConfigError("HCPMovieSamples: give at least one subject and one movie.")
        self.subjects = list(subjects)
        self.runs: dict[tuple[int, int], MovieRun] = {}
        self.run_options = {"mask": mask, "grid": grid, "delay": delay, "normalisation": normalisation}
        self.root = Path(root)
        self.labels, self.index = {}, []
        for movie in movies:
            table, self.names = read_wordnet_labels(labels_file, movie)
            self.labels[movie] = table
            chosen = (
                np.arange(len(table))
                if seconds is None or movie not in seconds
                else np.asarray(seconds[movie])
            )
            for s in range(len(self.subjects)):
                run = self._run(s, movie)
                usable = chosen[(chosen >= 0) & (chosen < min(len(table), run.n_seconds()))]
                self.index.extend((s, movie, int(t)) for t in usable)

    def _run(self, s: int, movie: int) -> MovieRun:
        if (s, movie) not in self.runs:
            self.runs[(s, movie)] = MovieRun(run_path(self.root, self.subjects[s], movie), **self.run_options)
        return self.runs[(s, movie)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, np.ndarray]:
        """(volume on the grid float32, subject index, labels uint8 (n_categories,))."""
        s, movie, second = self.index[i]
        return self._run(s, movie).sample(second), s, self.labels[movie][second]
