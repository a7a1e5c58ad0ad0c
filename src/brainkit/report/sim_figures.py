"""The SIM recipe's surface figure: per-vertex maps on nilearn's inflated fsaverage5 left hemisphere.

Maps on the order-``k`` icosphere (k <= 5) are drawn on fsaverage5: its first ``10 * 4**k + 2`` vertices are
the order-``k`` icosphere's (``brainkit.surface.icosphere``), and every other vertex takes the value of its
nearest order-``k`` vertex on the sphere. Medial-wall vertices (outside ``cortex``) show the sulcal background.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from brainkit.errors import DataError
from brainkit.surface import icosphere, order_of


def to_fsaverage5(values: np.ndarray) -> np.ndarray:
    """(n_vertices of an order-k icosphere, k <= 5) -> (10242,) by nearest order-k vertex."""
    from scipy.spatial import cKDTree

    order = order_of(len(values))
    if order > 5:
        raise DataError(f"maps finer than fsaverage5 (order {order}) cannot be drawn on fsaverage5.")
    if order == 5:
        return np.asarray(values, dtype=float)
    unit = icosphere(5).unit_vertices()
    nearest = cKDTree(unit[: len(values)]).query(unit)[1]
    return np.asarray(values, dtype=float)[nearest]


def surface_maps_figure(maps: dict[str, np.ndarray], cortex: np.ndarray) -> Figure:
    """One row per map (title -> (n_vertices,) values, with the same ``cortex`` mask): lateral and medial
    views of the inflated left fsaverage5 surface, over its sulcal depth."""
    from nilearn import datasets, plotting

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"].parts["left"]
    sulcal = datasets.load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated", data_type="sulcal")
    background = sulcal.data.parts["left"]
    inside = to_fsaverage5(cortex.astype(float)) > 0.5
    figure = Figure(figsize=(10, 3.1 * len(maps)))
    for row, (title, values) in enumerate(maps.items()):
        shown = np.where(inside, to_fsaverage5(values), np.nan)
        limit = float(np.nanpercentile(np.abs(shown), 99)) or 1.0
        signed = bool(np.nanmin(shown) < 0)
        for column, view in enumerate(("lateral", "medial")):
            axes = figure.add_subplot(len(maps), 2, 2 * row + column + 1, projection="3d")
            plotting.plot_surf_stat_map(
                surf_mesh=mesh, stat_map=shown, bg_map=background, hemi="left", view=view,
                engine="matplotlib", axes=axes, figure=figure, colorbar=column == 1,
                cmap="RdBu_r" if signed else "hot", symmetric_cbar=signed,
                vmin=-limit if signed else 0.0, vmax=limit,
            )  # fmt: skip
            axes.set_title(f"{title}, {view}", fontsize=9)
    return figure


__all__ = ["surface_maps_figure", "to_fsaverage5"]
