"""The cortical surface: icospheres in fsaverage order, sphere-to-sphere resampling, triangular patches, and
readers of surface data (CIFTI, GIFTI, FreeSurfer). See docs/surface.md."""

from brainkit.surface.icosphere import Mesh, icosphere, n_vertices, order_of
from brainkit.surface.patches import n_patch_vertices, triangle_patches
from brainkit.surface.resample import resample, resample_matrix

__all__ = [
    "Mesh",
    "icosphere",
    "n_vertices",
    "order_of",
    "n_patch_vertices",
    "triangle_patches",
    "resample",
    "resample_matrix",
]
