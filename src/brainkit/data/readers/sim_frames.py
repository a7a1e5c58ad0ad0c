"""SIM's one-GIFTI-per-frame layout of HCP 7T movie runs on the icosphere: a reader, and a writer that prepares
a CIFTI run into it (METHODS.md sec. 1.1)::

    {root}/{subject}/tfMRI_MOVIE{m}_7T_{AP|PA}/frames_ico{order}_{L|R}/frame_{ttt}.{L|R}.shape.gii

Each file holds one frame (n_vertices,) of one hemisphere on the order-``order`` icosphere (6 in SIM: 40,962
vertices), TR 1 s; the right hemisphere is mirrored onto the left (SIM's "symmetrised" data). ``ttt`` is the
frame number, written zero-padded to 3 digits (any number of digits is read). The writer follows SIM's README:
split the CIFTI into hemispheres, demean each vertex, resample to the icosphere (brainkit's sparse
resampling; adaptive barycentric by default), mirror the right hemisphere, write one file per frame. The
per-frame z-scoring SIM applies when it loads (``normalise``) is :func:`brainkit.surface.readers.normalise_frames`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from brainkit.checkpoint import atomic_folder
from brainkit.errors import ConfigError, FileFormatError

HEMI_CODES = {"left": "L", "right": "R"}
FRAME = re.compile(r"^frame_(\d+)\.([LR])\.shape\.gii$")


def frames_folder(
    root: str | Path, subject: str, movie: int, phase: str, hemisphere: str, order: int = 6
) -> Path:
    """``{root}/{subject}/tfMRI_MOVIE{movie}_7T_{phase}/frames_ico{order}_{L|R}``."""
    if hemisphere not in HEMI_CODES:
        raise ConfigError(f"hemisphere must be 'left' or 'right', found {hemisphere!r}.")
    if movie not in (1, 2, 3, 4) or phase not in ("AP", "PA"):
        raise ConfigError(f"movie must be 1-4 and phase AP or PA, found {movie!r}, {phase!r}.")
    code = HEMI_CODES[hemisphere]
    return Path(root) / subject / f"tfMRI_MOVIE{movie}_7T_{phase}" / f"frames_ico{order}_{code}"


def write_frames(frames: np.ndarray, folder: str | Path, hemisphere: str) -> Path:
    """Write (n_frames, n_vertices) as ``folder/frame_{ttt}.{L|R}.shape.gii``, whole or not at all."""
    import nibabel as nib

    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or hemisphere not in HEMI_CODES:
        raise ConfigError(
            f"write_frames needs (n_frames, n_vertices) and hemisphere left/right; found {frames.shape}, {hemisphere!r}."
        )
    code = HEMI_CODES[hemisphere]
    width = max(3, len(str(len(frames) - 1)))
    with atomic_folder(folder) as tmp:
        for t, frame in enumerate(frames):
            image = nib.gifti.GiftiImage()
            image.add_gifti_data_array(nib.gifti.GiftiDataArray(frame, intent="NIFTI_INTENT_SHAPE"))
            nib.save(image, tmp / f"frame_{t:0{width}d}.{code}.shape.gii")
        tmp.chmod(0o755)
    return Path(folder)


def read_frames(folder: str | Path) -> np.ndarray:
    """All frames of a ``frames_ico{order}_{L|R}`` folder, in frame order: (n_frames, n_vertices) float32.

    The files must be numbered 0 .. n_frames - 1 without gaps, all of one hemisphere and one vertex count.
    """
    from brainkit.surface.readers import read_surface_frames

    folder = Path(folder)
    if not folder.is_dir():
        raise FileFormatError(f"{folder} is not a folder of frame_{{ttt}}.{{L|R}}.shape.gii files.")
    found = {}
    for path in folder.iterdir():
        match = FRAME.match(path.name)
        if match:
            found[int(match.group(1))] = (path, match.group(2))
    if not found:
        raise FileFormatError(f"{folder} holds no frame_{{ttt}}.{{L|R}}.shape.gii files.")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise FileFormatError(
            f"{folder}: frames {missing[:5]}{'...' if len(missing) > 5 else ''} are missing."
        )
    if len({code for _, code in found.values()}) != 1:
        raise FileFormatError(f"{folder} mixes L and R frames; one folder holds one hemisphere.")
    frames = []
    for t in range(len(found)):
        data = read_surface_frames(found[t][0])
        if data.shape[0] != 1:
            raise FileFormatError(
                f"{found[t][0]} holds {data.shape[0]} frames; SIM's layout has one per file."
            )
        if frames and data.shape[1] != frames[0].shape[0]:
            raise FileFormatError(
                f"{found[t][0]} has {data.shape[1]} vertices, frame 0 has {frames[0].shape[0]}."
            )
        frames.append(data[0])
    return np.stack(frames)


def prepare_run(
    run,
    root: str | Path,
    spheres: dict[str, str | Path],
    order: int = 6,
    method: str = "adap_bary_area",
    cache_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Prepare one CIFTI run (a :class:`~brainkit.data.readers.hcp_movie_surface.MovieRun`) into SIM's layout
    under ``root``; ``spheres`` maps "left"/"right" to the sphere (GIFTI/FreeSurfer) the CIFTI's vertices lie on
    (fs_LR 59k for the 1.6 mm data). Returns hemisphere -> the written folder."""
    from brainkit.surface.readers import normalise_frames, read_cifti_hemispheres, read_mesh
    from brainkit.surface.resample import hemisphere_to_icosphere

    if set(spheres) != {"left", "right"}:
        raise ConfigError(
            f"spheres must map 'left' and 'right' to sphere files, found keys {sorted(spheres)}."
        )
    hemis = read_cifti_hemispheres(run.path)
    out = {}
    for hemisphere, data in hemis.items():
        sphere = read_mesh(spheres[hemisphere])
        if sphere.n_vertices != data.frames.shape[1]:
            raise FileFormatError(
                f"{spheres[hemisphere]} has {sphere.n_vertices} vertices but {run.path}'s {hemisphere} hemisphere "
                f"has {data.frames.shape[1]}; pass the sphere the CIFTI was made on."
            )
        demeaned = normalise_frames(data.frames, data.mask, demean=True, per_frame=False)
        on_ico = hemisphere_to_icosphere(
            demeaned, sphere, hemisphere, order=order, method=method, cache_dir=cache_dir
        )
        folder = frames_folder(root, run.subject, run.movie, run.phase, hemisphere, order)
        out[hemisphere] = write_frames(on_ico, folder, hemisphere)
    return out


__all__ = ["frames_folder", "prepare_run", "read_frames", "write_frames"]
