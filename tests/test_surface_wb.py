"""Resampling agrees with Connectome Workbench's ``wb_command -metric-resample`` on real fsaverage5 maps.

Skipped (with the reason) where wb_command is absent; make installs it where the user may (scripts/install-system-packages.sh: Debian connectome-workbench).
"""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.surface import icosphere, resample, resample_matrix
from brainkit.surface.workbench import wb_command, wb_resample

pytestmark = pytest.mark.skipif(
    wb_command() is None, reason="wb_command not installed (apt-get install connectome-workbench)"
)


@pytest.fixture(scope="module")
def real_maps() -> tuple:
    """Ten frames of the real resting-state run (left hemisphere) and fsaverage5's own sphere file."""
    from nilearn.datasets import load_fsaverage

    from brainkit.data.builtin.nsd_like_simulation import rest_frames
    from brainkit.surface import Mesh

    left = load_fsaverage("fsaverage5")["sphere"].parts["left"]
    sphere = Mesh(np.asarray(left.coordinates, dtype=float), np.asarray(left.faces, dtype=np.int64))
    return rest_frames()[100:110, :10242], sphere


@pytest.mark.parametrize("method", ["barycentric", "adap_bary_area"])
@pytest.mark.parametrize("direction", ["fsaverage5_to_ico6", "ico6_to_fsaverage4"])
def test_agrees_with_wb_command(real_maps, method, direction, tmp_path) -> None:
    frames, fsaverage5 = real_maps
    if direction == "fsaverage5_to_ico6":
        source, target = fsaverage5, icosphere(6)
    else:  # downsampling, where the adaptive method differs from plain barycentric
        source, target = icosphere(6), icosphere(4)
        frames = resample(frames, resample_matrix(fsaverage5, source, "barycentric", cache_dir=tmp_path))
    reference, _ = wb_resample(frames, source, target, method, tmp_path / "wb")
    ours = resample(frames, resample_matrix(source, target, method, cache_dir=tmp_path))
    assert ours.shape == reference.shape == (10, target.n_vertices)
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] >= 0.999
    tolerance = 1e-3 if method == "barycentric" else 0.15  # adaptive: area bookkeeping differs slightly
    assert np.abs(ours - reference).max() < tolerance
