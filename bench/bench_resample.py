"""Resampling speed: brainkit's cached sparse matrix vs ``wb_command -metric-resample`` on a 900-frame run.

The run: the real brainspace fsaverage5 resting-state run (652 frames, left hemisphere), tiled to 900 frames,
resampled fsaverage5 -> ico6 (the SIM direction: 10,242 -> 40,962 vertices). Reports wb_command's time, ours
without and with the cached matrix, the ratio, and the agreement. Run: ``.venv/bin/python bench/bench_resample.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from brainkit.data.builtin.nsd_like_simulation import rest_frames
from brainkit.surface import Mesh, icosphere, resample, resample_matrix
from brainkit.surface.workbench import wb_command, wb_resample


def main() -> None:
    from nilearn.datasets import load_fsaverage

    left = load_fsaverage("fsaverage5")["sphere"].parts["left"]
    source = Mesh(np.asarray(left.coordinates, dtype=float), np.asarray(left.faces, dtype=np.int64))
    target = icosphere(6)
    run = rest_frames()[:, :10242]
    frames = np.concatenate([run, run])[:900]
    print(f"900 frames, fsaverage5 ({source.n_vertices}) -> ico6 ({target.n_vertices})")
    with tempfile.TemporaryDirectory() as folder:
        for method in ("barycentric", "adap_bary_area"):
            start = time.perf_counter()
            matrix = resample_matrix(source, target, method, cache_dir=folder)
            build = time.perf_counter() - start
            start = time.perf_counter()
            matrix = resample_matrix(source, target, method, cache_dir=folder)
            ours = resample(frames, matrix)
            cached = time.perf_counter() - start
            line = f"{method:15s} brainkit: {build + cached:6.2f} s (matrix {build:.2f} s), cached {cached:6.2f} s"
            if wb_command():
                reference, wb_seconds = wb_resample(frames, source, target, method, Path(folder) / method)
                corr = np.corrcoef(ours.ravel(), reference.ravel())[0, 1]
                line += (
                    f" | wb_command {wb_seconds:6.2f} s | speed-up {wb_seconds / (build + cached):5.1f}x "
                    f"(cached {wb_seconds / cached:5.1f}x) | r = {corr:.7f}, max |diff| {np.abs(ours - reference).max():.2g}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
