"""A tiny HCP 7T movie download in HCP's real layout, with a known answer: for tests and examples of ``hcp_movie``.

:func:`write_hcp_movie_folder` writes, under ``root``:

- per subject and movie, ``<subject>/MNINonLinear/Results/tfMRI_MOVIE{m}_7T_{AP,PA}/tfMRI_MOVIE{m}_7T_{AP,PA}.nii.gz``:
  float32 (X, Y, Z, n_seconds) on a coarse grid with HCP's MNI orientation and origin (x flipped, origin
  (90, -126, -72) mm, ``voxel_mm`` voxels), TR 1 s in the header;
- ``7T_movie_resources/WordNetFeatures.hdf5``: HCP's datasets ``MOVIE1_CC1`` ... ``MOVIE4_HO2`` (n_seconds,
  n_categories) 0/1 and ``synsets`` (WordNet names, bytes);
- ``Post_20140821_version/7T_MOVIE{1..4}_*_v2.mp4``: H.264 movies at 24 fps written with PyAV, one colour per
  second (its red, green and blue levels follow the second's first three categories) with a white bar down the
  middle that grows through the second (frame f of 24: 1 + f * height / 24 rows), ``frame_size`` pixels.

The signal: each category ``c`` has a smooth random map ``w_c`` over the brain (the same in every subject, times
a subject gain); the volume at TR ``t + delay`` is ``sum_c y_c(t) w_c + noise`` on a baseline of 1,000 (0 outside
the head-sized box), so the labels of second ``t`` are decodable from the volume ``delay`` TRs later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.data.readers.hcp_movie import LABEL_KEYS, MOVIE_RUNS
from brainkit.data.readers.hcp_movie_frames import MOVIE_FILES

SYNSETS = ("person.n.01", "car.n.01", "face.n.01", "tree.n.01", "building.n.01", "dog.n.01", "text.n.01")


@dataclass(frozen=True)
class HCPMovieExample:
    """What :func:`write_hcp_movie_folder` wrote: the subjects, the labels per movie (n_seconds, n_categories),
    the grid's shape and affine."""

    root: Path
    subjects: list[str]
    labels: dict[int, np.ndarray]
    shape: tuple[int, int, int]
    affine: np.ndarray


def hcp_affine(voxel_mm: float) -> np.ndarray:
    """HCP's MNINonLinear orientation and origin (as its 1.6 mm and 2 mm runs) at ``voxel_mm`` voxels."""
    return np.array(
        [[-voxel_mm, 0, 0, 90.0], [0, voxel_mm, 0, -126.0], [0, 0, voxel_mm, -72.0], [0, 0, 0, 1]], np.float64
    )


def _write_movie(path: Path, table: np.ndarray, frame_size: tuple[int, int], fps: int = 24) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = frame_size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for row in table:
            colour = (40 + 170 * row[:3]).astype(np.uint8)
            for frame in range(fps):
                image = np.empty((height, width, 3), np.uint8)
                image[:] = colour
                centre = width // 2
                image[: 1 + frame * height // fps, centre - 2 : centre + 2] = (
                    255  # a white bar growing in the second
                )
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_hcp_movie_folder(
    root: str | Path,
    subjects: tuple[str, ...] = ("100610", "102816", "104416"),
    n_seconds: int = 24,
    voxel_mm: float = 12.0,
    shape: tuple[int, int, int] = (15, 18, 15),
    delay: int = 4,
    snr: float = 2.0,
    frame_size: tuple[int, int] = (48, 32),
    seed: int = 0,
    compress: bool = True,
) -> HCPMovieExample:
    """Write the folder (module docstring): ``n_seconds`` per movie (labels, movie and run alike); the runs as
    ``.nii.gz`` (HCP's), or ``.nii`` with ``compress=False`` (read memory-mapped)."""
    import h5py
    import nibabel as nib
    from scipy.ndimage import gaussian_filter

    root = Path(root)
    rng = np.random.default_rng(seed)
    affine = hcp_affine(voxel_mm)
    maps = np.stack([gaussian_filter(rng.standard_normal(shape), 1.5) for _ in SYNSETS], -1)
    maps /= maps.std()
    labels = {m: (rng.random((n_seconds, len(SYNSETS))) < 0.35).astype(np.uint8) for m in MOVIE_RUNS}
    for index, subject in enumerate(subjects):
        gain = snr * (1.0 - 0.15 * index)
        for movie, name in MOVIE_RUNS.items():
            signal = np.zeros((n_seconds, len(SYNSETS)))
            signal[delay:] = labels[movie][: n_seconds - delay]  # the volume at TR t + delay shows second t
            volumes = (
                1000
                + gain * np.einsum("xyzc,tc->xyzt", maps, signal)
                + rng.standard_normal(shape + (n_seconds,))
            )
            image = nib.Nifti1Image(volumes.astype(np.float32), affine)
            image.header.set_xyzt_units("mm", "sec")
            image.header["pixdim"][4] = 1.0
            folder = root / subject / "MNINonLinear" / "Results" / name
            folder.mkdir(parents=True, exist_ok=True)
            nib.save(image, folder / f"{name}.nii{'.gz' if compress else ''}")
    resources = root / "7T_movie_resources"
    resources.mkdir(parents=True, exist_ok=True)
    with h5py.File(resources / "WordNetFeatures.hdf5", "w") as handle:
        for movie, table in labels.items():
            handle[LABEL_KEYS[movie]] = table
        handle["synsets"] = np.array([s.encode() for s in SYNSETS])
    for movie, table in labels.items():
        _write_movie(root / "Post_20140821_version" / MOVIE_FILES[movie], table, frame_size)
    return HCPMovieExample(root, list(subjects), labels, tuple(shape), affine)


__all__ = ["HCPMovieExample", "SYNSETS", "hcp_affine", "write_hcp_movie_folder"]
