"""The cortical surface: icospheres in fsaverage order, sphere-to-sphere resampling, triangular patches, patch
tables and template spheres from files (SIM's layout), and readers of surface data (CIFTI, GIFTI, FreeSurfer).
See docs/surface.md."""

from brainkit.surface.correspondence import Correspondence, find_correspondence
from brainkit.surface.icosphere import Mesh, icosphere, n_vertices, order_of
from brainkit.surface.patch_files import read_patch_table, read_sphere, write_patch_table
from brainkit.surface.patch_grid import PatchGrid, patch_grid
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
    "read_patch_table",
    "write_patch_table",
    "read_sphere",
    "PatchGrid",
    "patch_grid",
    "Correspondence",
    "find_correspondence",
]
