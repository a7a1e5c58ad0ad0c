"""Brain maps for the reports: per-vertex values on nilearn's fsaverage5 (both hemispheres, the inflated mesh
and its sulcal depth, which install with nilearn: nothing is downloaded).

``values`` are (20484,) in fsaverage5's order, left hemisphere first (10242 each), NaN where there is nothing to
show (those vertices show the sulcal background). Each map gets one row: left and right hemisphere, each seen
from behind (``posterior``) and from the midline (``medial``), where the visual cortex lies.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from brainkit.errors import DataError

N_VERTICES_HEMI = 10242
VIEWS = (("left", "posterior"), ("left", "medial"), ("right", "medial"), ("right", "posterior"))


def on_fsaverage5(values: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(20484,) with ``values`` (n,) at fsaverage5 ``vertices`` (n,) and NaN elsewhere."""
    values, vertices = np.asarray(values, dtype=float), np.asarray(vertices)
    if values.shape != vertices.shape or vertices.min() < 0 or vertices.max() >= 2 * N_VERTICES_HEMI:
        raise DataError(
            f"on_fsaverage5: {values.shape} values for vertices {vertices.shape} in 0..{2 * N_VERTICES_HEMI - 1}."
        )
    out = np.full(2 * N_VERTICES_HEMI, np.nan)
    out[vertices] = values
    return out


def fsaverage5_maps_figure(maps: dict[str, np.ndarray], label: str) -> Figure:
    """One row per map (title -> (20484,) values, NaN = not shown); one colour scale per row from 0 (or the
    most negative value) to the 99th percentile of |values|; ``label`` names the colour bar."""
    from nilearn import datasets, plotting

    meshes = datasets.load_fsaverage("fsaverage5")["inflated"]
    sulcal = datasets.load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated", data_type="sulcal")
    figure = Figure(figsize=(12, 3.2 * len(maps)))
    for row, (title, values) in enumerate(maps.items()):
        values = np.asarray(values, dtype=float)
        if values.shape != (2 * N_VERTICES_HEMI,) or not np.isfinite(values).any():
            raise DataError(
                f"map {title!r}: expected (20484,) values with some finite, found {values.shape}."
            )
        limit = float(np.nanpercentile(np.abs(values), 99)) or 1.0
        signed = bool(np.nanmin(values) < 0)
        for column, (hemi, view) in enumerate(VIEWS):
            axes = figure.add_subplot(len(maps), len(VIEWS), row * len(VIEWS) + column + 1, projection="3d")
            part = values[:N_VERTICES_HEMI] if hemi == "left" else values[N_VERTICES_HEMI:]
            empty = not np.isfinite(part).any()  # nothing recorded here: the background alone
            part = np.zeros(N_VERTICES_HEMI) if empty else part
            plotting.plot_surf_stat_map(
                surf_mesh=meshes.parts[hemi], stat_map=part, bg_map=sulcal.data.parts[hemi], hemi=hemi,
                view=view, axes=axes, figure=figure, colorbar=column == len(VIEWS) - 1, vmax=limit,
                vmin=-limit if signed else 0, cmap="RdBu_r" if signed else "hot", symmetric_cbar=signed,
                threshold=1e-12 if empty else None, title=f"{title}: {hemi} {view}" if column == 0 else f"{hemi} {view}",
            )  # fmt: skip
    figure.text(0.5, 0.005, label, ha="center", fontsize=9)
    return figure


__all__ = ["fsaverage5_maps_figure", "on_fsaverage5"]
