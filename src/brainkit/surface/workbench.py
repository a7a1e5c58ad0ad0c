"""Connectome Workbench (``wb_command``) as the reference for resampling: write GIFTI, run, read back.

Used by the agreement test and ``bench/bench_resample.py``; brainkit itself never needs Workbench.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError
from brainkit.surface.icosphere import Mesh

WB_METHODS = {"barycentric": "BARYCENTRIC", "adap_bary_area": "ADAP_BARY_AREA"}


def wb_command() -> str | None:
    """The path of ``wb_command``, or None when Connectome Workbench is not installed."""
    return shutil.which("wb_command")


def write_sphere(mesh: Mesh, path: str | Path) -> Path:
    """Write ``mesh`` as a GIFTI surface (pointset + triangles)."""
    import nibabel as nib

    image = nib.gifti.GiftiImage()
    image.add_gifti_data_array(
        nib.gifti.GiftiDataArray(mesh.vertices.astype(np.float32), intent="NIFTI_INTENT_POINTSET")
    )
    image.add_gifti_data_array(
        nib.gifti.GiftiDataArray(mesh.faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE")
    )
    nib.save(image, path)
    return Path(path)


def write_metric(frames: np.ndarray, path: str | Path) -> Path:
    """Write (n_frames, n_vertices) as a GIFTI metric (one data array per frame)."""
    import nibabel as nib

    image = nib.gifti.GiftiImage()
    for frame in np.atleast_2d(frames):
        image.add_gifti_data_array(
            nib.gifti.GiftiDataArray(frame.astype(np.float32), intent="NIFTI_INTENT_NONE")
        )
    nib.save(image, path)
    return Path(path)


def wb_resample(
    frames: np.ndarray, source: Mesh, target: Mesh, method: str, folder: str | Path
) -> tuple[np.ndarray, float]:
    """Resample ``frames`` (n_frames, n_source) with ``wb_command -metric-resample``; the spheres are also the
    area surfaces. Returns the result (n_frames, n_target) and wb_command's wall time in seconds."""
    import time

    import nibabel as nib

    binary = wb_command()
    if binary is None:
        raise ConfigError("wb_command is not installed: apt-get install connectome-workbench.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src, tgt = (
        write_sphere(source, folder / "source.surf.gii"),
        write_sphere(target, folder / "target.surf.gii"),
    )
    metric, out = write_metric(frames, folder / "in.func.gii"), folder / "out.func.gii"
    command = [binary, "-metric-resample", str(metric), str(src), str(tgt), WB_METHODS[method], str(out)]
    if method == "adap_bary_area":
        command += ["-area-surfs", str(src), str(tgt)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return np.stack([array.data for array in nib.load(out).darrays]).astype(np.float32), seconds


__all__ = ["WB_METHODS", "wb_command", "wb_resample", "write_metric", "write_sphere"]
