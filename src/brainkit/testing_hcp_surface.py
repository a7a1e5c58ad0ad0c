"""A tiny HCP 7T movie download in the real layout, for tests and examples of ``hcp_movie_surface``.

:func:`write_hcp_surface_folder` writes, under ``root``:

- per subject and movie, ``{subject}/MNINonLinear/Results/tfMRI_MOVIE{m}_7T_{AP|PA}/
  tfMRI_MOVIE{m}_7T_{AP|PA}_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii``: CIFTI-2 with HCP's brain-model
  structure (CORTEX_LEFT, CORTEX_RIGHT surfaces without their medial wall, then subcortical voxels:
  ACCUMBENS_LEFT, THALAMUS_RIGHT), a series axis of TR 1 s; the surfaces have ``sphere_order``-icosphere vertex
  counts (642 at order 3), not fsLR's 32,492, so the files stay small;
- per subject, ``{subject}/MNINonLinear/fsaverage_LR59k/{subject}.{L|R}.sphere.59k_fs_LR.surf.gii``: the spheres
  of those vertices (a randomly rotated icosphere, the right one its mirror), where HCP keeps its 59k spheres;
- ``Post_20140821_version/7T_MOVIE{m}_{CC1|HO1|CC2|HO2}_v2.mp4``: H.264 + AAC movies (PyAV), 1 s per scene:
  each second's picture is a colour field of the scene's latent features, its sound a tone whose pitch follows them.

The signal: per movie second s a latent z_s (``n_latent``, N(0, 1), constant within a second); frame t of a run
on vertex v is ``z_{t - 6 - 1} . w_v`` (the 6 s lag, the clip's middle second) with w_v ~ N(0, I) smooth over the
sphere, plus N(0, ``noise``) per vertex and frame; rest seconds show grey and silence and carry noise only.
Runs are ``n_frames`` long (default 140, with ``segments``: not HCP's 921.. frames, so pass the same
``n_frames=`` / ``segments=`` to the dataset, :func:`dataset_options`); ``real_lengths=True`` writes HCP's
frame counts and segment table instead (slower: 15 min of movie per run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.readers import hcp_movie_surface as hcp
from brainkit.data.readers.hcp_movie_surface_stimuli import MOVIE_FILES, MOVIES_FOLDER
from brainkit.stimuli.av_encoders import AUDIO_RATE

PHASES = {1: "AP", 2: "PA", 3: "PA", 4: "AP"}  # HCP's phase encoding of each movie run
# a short run of each movie: rest 0-9, clips, rest, clips, rest, test-retest clip, rest to the end
SHORT_SEGMENTS = {1: ((10, 44), (52, 88), (96, 126)), 2: ((10, 48), (56, 90), (96, 126)),
                  3: ((10, 40), (48, 86), (96, 126)), 4: ((10, 46), (54, 88), (96, 126))}  # fmt: skip
SHORT_FRAMES = 140


def _latents(movie: int, n_seconds: int, segments, n_latent: int, seed: int) -> np.ndarray:
    """(n_seconds, n_latent): each second's scene features, 0 in rest; the test-retest clip the same in all."""
    z = np.zeros((n_seconds, n_latent))
    for j, (first, last) in enumerate(segments):
        retest = j == len(segments) - 1
        rng = np.random.default_rng([seed, 0 if retest else movie, j])
        z[first : last + 1] = rng.standard_normal((last - first + 1, n_latent))
    return z


def _movie(path: Path, z: np.ndarray, size: int = 16, fps: int = 2) -> None:
    from brainkit.stimuli.av_files import write_movie

    frames = np.full((len(z) * fps, size, size, 3), 128, dtype=np.uint8)
    sound = np.zeros(len(z) * AUDIO_RATE, dtype=np.float32)
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    ramp = np.linspace(0, 1, size)
    for s, latent in enumerate(z):
        if not latent.any():
            continue
        colour = np.clip(128 + 50 * latent[:3], 0, 255)
        field = colour[None, None] * (0.6 + 0.4 * ramp[None, :, None] * np.tanh(latent[3 % len(latent)]))
        frames[s * fps : (s + 1) * fps] = np.clip(field, 0, 255).astype(np.uint8)[None]
        pitch = 300 * 2 ** (np.tanh(latent[-1]))
        sound[s * AUDIO_RATE : (s + 1) * AUDIO_RATE] = 0.3 * np.sin(2 * np.pi * pitch * t)
    write_movie(path, frames, fps, sound)


def _cifti(path: Path, left: np.ndarray, right: np.ndarray, medial: dict[str, np.ndarray], rng) -> None:
    import nibabel as nib

    n_vertices = left.shape[1]
    keep = {h: np.flatnonzero(~medial[h]) for h in ("left", "right")}
    axes = [nib.cifti2.BrainModelAxis.from_surface(keep["left"], n_vertices, "CORTEX_LEFT"),
            nib.cifti2.BrainModelAxis.from_surface(keep["right"], n_vertices, "CORTEX_RIGHT")]  # fmt: skip
    affine = np.diag([1.6, 1.6, 1.6, 1.0])
    for name, voxels in (
        ("ACCUMBENS_LEFT", [[40, 60, 30], [41, 60, 30]]),
        ("THALAMUS_RIGHT", [[60, 50, 40]]),
    ):
        mask = np.zeros((113, 136, 113), dtype=bool)
        mask[tuple(np.array(voxels).T)] = True
        axes.append(nib.cifti2.BrainModelAxis.from_mask(mask, name, affine))
    models = axes[0] + axes[1] + axes[2] + axes[3]
    n_voxels = len(models) - len(keep["left"]) - len(keep["right"])
    data = np.concatenate([left[:, keep["left"]], right[:, keep["right"]],
                           rng.standard_normal((len(left), n_voxels))], axis=1).astype(np.float32)  # fmt: skip
    series = nib.cifti2.SeriesAxis(start=0, step=1.0, size=len(left), unit="SECOND")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Cifti2Image(data + 1000.0, header=(series, models)), path)


def write_hcp_surface_folder(root: str | Path, subjects: tuple[str, ...] = ("100610", "102311", "104416"),
                             movies: tuple[int, ...] = (1, 2), sphere_order: int = 3, n_latent: int = 4,
                             noise: float = 0.5, real_lengths: bool = False, seed: int = 0) -> Path:  # fmt: skip
    """Write the folder (module doc) and return ``root``."""
    from scipy.spatial.transform import Rotation

    from brainkit.surface.icosphere import Mesh, icosphere
    from brainkit.surface.workbench import write_sphere

    root = Path(root)
    rng = np.random.default_rng(seed)
    base = icosphere(sphere_order)
    rotation = Rotation.random(random_state=seed).as_matrix()
    left_sphere = Mesh(base.vertices @ rotation.T, base.faces)
    spheres = {"left": left_sphere, "right": left_sphere.mirrored()}
    unit = left_sphere.unit_vertices()
    medial = {h: unit[:, 2] < -0.9 for h in ("left", "right")}  # a cap of each sphere: the "medial wall"
    for m in movies:
        segments = hcp.SEGMENTS[m] if real_lengths else SHORT_SEGMENTS[m]
        n_frames = hcp.N_FRAMES[m] if real_lengths else SHORT_FRAMES
        _movie(root / MOVIES_FOLDER / MOVIE_FILES[m], _latents(m, n_frames, segments, n_latent, seed))
    for s, subject in enumerate(subjects):
        subject_rng = np.random.default_rng([seed, 1, s])
        smooth = np.exp(4 * unit @ unit.T)  # each hemisphere's weights smooth on the sphere
        weights = {h: (smooth / smooth.sum(1, keepdims=True)) @ subject_rng.standard_normal((len(unit), n_latent))
                   for h in ("left", "right")}  # fmt: skip
        for h, sphere in spheres.items():
            code = "L" if h == "left" else "R"
            folder = root / subject / "MNINonLinear" / "fsaverage_LR59k"
            folder.mkdir(parents=True, exist_ok=True)
            write_sphere(sphere, folder / f"{subject}.{code}.sphere.59k_fs_LR.surf.gii")
        for m in movies:
            segments = hcp.SEGMENTS[m] if real_lengths else SHORT_SEGMENTS[m]
            n_frames = hcp.N_FRAMES[m] if real_lengths else SHORT_FRAMES
            z = _latents(m, n_frames, segments, n_latent, seed)
            shown = np.zeros_like(z)
            shown[7:] = z[: n_frames - 7]  # frame t answers second t - 7: lag 6, the 3 s clip's middle second
            series = {h: shown @ (w / w.std()).T + noise * subject_rng.standard_normal((n_frames, len(unit)))
                      for h, w in weights.items()}  # fmt: skip
            session = f"tfMRI_MOVIE{m}_7T_{PHASES[m]}"
            path = root / hcp.PATTERN.format(subject=subject, session=session)
            _cifti(path, series["left"], series["right"], medial, rng)
    return root


def dataset_options(root: str | Path, movies: tuple[int, ...] = (1, 2), order: int = 3,
                    real_lengths: bool = False) -> dict[str, Any]:  # fmt: skip
    """The ``hcp_movie_surface`` options for a folder of :func:`write_hcp_surface_folder`: weight-free encoders
    (``video_pixels``, ``audio_bands``), icosphere ``order``, and the short runs' table unless ``real_lengths``."""
    options: dict[str, Any] = {"root": str(root), "movies": list(movies), "order": order, "fps": 2,
                               "frame_size": 16, "thumbnail_size": 8, "video_encoder": "video_pixels",
                               "video_options": {}, "audio_encoder": "audio_bands", "audio_options": {}}  # fmt: skip
    if not real_lengths:
        options["segments"] = {str(m): [list(p) for p in SHORT_SEGMENTS[m]] for m in movies}
        options["n_frames"] = {str(m): SHORT_FRAMES for m in movies}
    return options


__all__ = ["SHORT_FRAMES", "SHORT_SEGMENTS", "dataset_options", "write_hcp_surface_folder"]
