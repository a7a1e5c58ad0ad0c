"""The real resting-state run (brainspace, fsaverage5) on the order-5 icosphere, both hemispheres on the left one.

fsaverage5's sphere *is* the order-5 icosphere (``brainkit.surface.icosphere``), so the left hemisphere needs no
resampling; the right one is mirrored onto the left (SIM's symmetrisation) by barycentric resampling. Each
hemisphere is then demeaned per vertex and z-scored per frame over its cortex (SIM's preprocessing); the medial
wall (vertices without signal) stays 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from brainkit.data.contract import Dataset
from brainkit.registry import DATASETS
from brainkit.surface import icosphere
from brainkit.surface.readers import HemisphereFrames, normalise_frames, read_surface_frames
from brainkit.surface.resample import hemisphere_to_icosphere

REST_RUN = "datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
SUBJECT = "sub-010188"


@dataclass
class RestSurface(Dataset):
    """One real rest run on the order-5 icosphere (design ``"continuous"`` of :mod:`brainkit.data.contract`):
    ``hemispheres["left" | "right"]`` holds frames (652, 10242) float32 (right mirrored) and the cortex mask."""

    design: ClassVar[str] = "continuous"
    hemispheres: dict[str, HemisphereFrames]
    subjects: list[str]
    order: int = 5
    info: dict[str, Any] = field(default_factory=dict)


@functools.cache
def rest_on_icosphere(cache_dir: str | None = None) -> dict[str, HemisphereFrames]:
    """``{"left", "right"}`` -> frames (652, 10242) float32 on ico5 (right mirrored) and the cortex mask."""
    from brainkit.data.packaged import package_file

    out = {}
    for hemi, short in (("left", "lh"), ("right", "rh")):
        path = package_file("brainspace", REST_RUN.format(hemi=short), "the real resting-state run (vsMAE)")
        frames = read_surface_frames(path)
        if hemi == "right":
            frames = hemisphere_to_icosphere(frames, icosphere(5), "right", order=5, method="barycentric",
                                             cache_dir=cache_dir)  # fmt: skip
        mask = frames.std(axis=0) > 1e-3 * frames.std()
        out[hemi] = HemisphereFrames(normalise_frames(frames, mask), mask, tr=None)
    return out


@DATASETS.register(
    "rest_surface",
    space="order-5 icosphere (fsaverage5 resampled), both hemispheres",
    needs="nothing: brainspace's packaged rest run",
    help="A real rest run (brainspace, fsaverage5) on ico5, both hemispheres.",
)
def load_rest_surface(cache_dir: str | None = None) -> RestSurface:
    """The rest run of :func:`rest_on_icosphere` as a contract container (the frames are read once per process)."""
    info = {"source": "brainspace " + REST_RUN.format(hemi="{lh,rh}"), "order": 5, "preprocessing": __doc__}
    return RestSurface(rest_on_icosphere(cache_dir), [SUBJECT], info=info)


def clips(frames: np.ndarray, patches: np.ndarray, n_frames: int, step: int) -> np.ndarray:
    """Clips of ``n_frames`` consecutive frames every ``step`` frames, cut into patches:
    (n_clips, n_frames, n_patches, n_patch_vertices) float32."""
    starts = np.arange(0, len(frames) - n_frames + 1, step)
    return np.stack([frames[s : s + n_frames][:, patches] for s in starts]).astype(np.float32)


__all__ = ["RestSurface", "load_rest_surface", "rest_on_icosphere", "clips"]
