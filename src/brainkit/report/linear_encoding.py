"""The linear encoding recipe's report: voxel-r histograms, explained variance against the noise ceiling, curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from brainkit.report.html import write_report


def correlation_figure(
    correlations: dict[tuple[str, str], np.ndarray], ceilings: dict[str, np.ndarray]
) -> Figure:
    """Per subject: the histogram of test voxel r for each method (left), and each voxel's explained variance
    (100 sign(r) r^2, percent) against its noise ceiling (right), the diagonal being the ceiling."""
    subjects = list(ceilings)
    figure = Figure(figsize=(10, 3.2 * len(subjects)), layout="constrained")
    axes = figure.subplots(len(subjects), 2, squeeze=False)
    for row, subject in enumerate(subjects):
        left, right = axes[row]
        methods = [m for s, m in correlations if s == subject]
        for index, method in enumerate(methods):
            r = correlations[(subject, method)]
            left.hist(r, bins=40, range=(-0.3, 1.0), alpha=0.55, color=f"C{index}", label=method)
            right.scatter(
                ceilings[subject], 100 * np.sign(r) * r**2, s=4, alpha=0.4, color=f"C{index}", label=method
            )
        top = float(max(1.0, np.max(ceilings[subject])))
        right.plot([0, top], [0, top], color="0.3", linewidth=0.8, linestyle="--", label="noise ceiling")
        left.set(title=f"{subject}: test voxel correlation", xlabel="Pearson r", ylabel="voxels")
        right.set(title=f"{subject}: explained vs explainable", xlabel="noise ceiling (% variance)",
                  ylabel="explained (% variance)")  # fmt: skip
        left.legend(fontsize=8)
        right.legend(fontsize=8, markerscale=3)
    return figure


def write_encoding_report(
    path: Path,
    rows: list[dict],
    histories: dict[str, list[dict]],
    correlations: dict[tuple[str, str], np.ndarray],
    ceilings: dict[str, np.ndarray],
    notes: list[str],
    vertices: dict[str, np.ndarray] | None = None,
) -> Path:
    """``report.html``: the table, training curves per subject, :func:`correlation_figure` and, when the data
    place the voxels on fsaverage5 (``vertices``: subject -> (n_voxels,) vertex indices), each subject's test
    correlation of the trained model per vertex."""
    from brainkit.report.brain_maps import fsaverage5_maps_figure, on_fsaverage5

    figures = {"Test voxel correlations and explained variance against the noise ceiling":
               correlation_figure(correlations, ceilings)}  # fmt: skip
    maps = {
        f"linear encoding, {subject}": on_fsaverage5(r, np.asarray(vertices[subject]))
        for (subject, method), r in correlations.items()
        if method == "linear_encoding" and vertices and subject in vertices
    }
    if maps:
        figures[
            "Where the features predict the responses: test correlation per recorded vertex, on fsaverage5"
        ] = fsaverage5_maps_figure(
            maps, "Pearson r of predicted and measured test responses (grey: not recorded)"
        )
    return write_report(path, "Linear encoding model vs ridge", rows, histories, {}, notes, figures=figures)
