"""The real resting-state run (brainspace, fsaverage5) on the order-5 icosphere, both hemispheres on the left one.

fsaverage5's sphere *is* the order-5 icosphere, so the left hemisphere needs no resampling; the right one is
mirrored onto the left (SIM's symmetrisation), then each hemisphere is demeaned and z-scored per frame over its
cortex, the medial wall (vertices without signal) 0: :func:`brainkit.data.surface_frames.frames_on_icosphere`.
"""

from __future__ import annotations

import functools

import numpy as np

from brainkit.data.surface_frames import SurfaceFrames, SurfaceRun, frames_on_icosphere
from brainkit.registry import DATASETS
from brainkit.surface.readers import HemisphereFrames, read_surface_frames

REST_RUN = "datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
SUBJECT = "sub-010188"


@functools.cache
def rest_on_icosphere(cache_dir: str | None = None) -> dict[str, HemisphereFrames]:
    """``{"left", "right"}`` -> frames (652, 10242) float32 on ico5 (right mirrored) and the cortex mask."""
    from brainkit.data.packaged import package_file

    frames = {}
    for hemi, short in (("left", "lh"), ("right", "rh")):
        path = package_file("brainspace", REST_RUN.format(hemi=short), "the real resting-state run (vsMAE)")
        frames[hemi] = read_surface_frames(path)
    return frames_on_icosphere(frames["left"], frames["right"], 5, cache_dir, source="brainspace rest run")


@DATASETS.register(
    "rest_surface",
    space="order-5 icosphere (fsaverage5 resampled), both hemispheres",
    needs="nothing: brainspace's packaged rest run",
    help="A real rest run (brainspace, fsaverage5) on ico5, both hemispheres.",
)
def load_rest_surface(cache_dir: str | None = None) -> SurfaceFrames:
    """The rest run of :func:`rest_on_icosphere` as a contract container (the frames are read once per process)."""
    info = {"source": "brainspace " + REST_RUN.format(hemi="{lh,rh}"), "order": 5, "preprocessing": __doc__}
    run = SurfaceRun(SUBJECT, "ses-02 task-rest run-01", rest_on_icosphere(cache_dir))
    return SurfaceFrames([run], [SUBJECT], order=5, info=info)


def clips(frames: np.ndarray, patches: np.ndarray, n_frames: int, step: int) -> np.ndarray:
    """Clips of ``n_frames`` consecutive frames every ``step`` frames, cut into patches:
    (n_clips, n_frames, n_patches, n_patch_vertices) float32."""
    starts = np.arange(0, len(frames) - n_frames + 1, step)
    return np.stack([frames[s : s + n_frames][:, patches] for s in starts]).astype(np.float32)


__all__ = ["load_rest_surface", "rest_on_icosphere", "clips"]
