"""The vsMAE recipe's report: the reconstruction table, the pretraining curve, and one held-out frame drawn on
the inflated fsaverage5 surface (truth, vsMAE, neighbour interpolation, with the hidden patches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def surface_figure(example: dict[str, Any], data: dict[str, Any]) -> Figure | None:
    """Frame 0 of the first held-out clip on the inflated left fsaverage5 surface (lateral view): the truth, and
    each method's fill of the hidden patches (visible ones show the truth); None below ico5."""
    from nilearn.datasets import load_fsaverage

    patches = data["patches"]
    if len(data["unit"]) != 10242:
        return None
    inflated = load_fsaverage("fsaverage5")["inflated"].parts["left"]
    xyz, faces = np.asarray(inflated.coordinates), np.asarray(inflated.faces)
    panels = {"truth (held-out frame)": example["truth"], "vsMAE": example["vsMAE"],
              "neighbour interpolation": example["neighbour interpolation"]}  # fmt: skip
    hidden = np.zeros(len(xyz), dtype=bool)
    hidden[patches[example["mask"]].ravel()] = True
    figure = Figure(figsize=(13, 3.6))
    limit = float(np.percentile(np.abs(example["truth"][0]), 98))
    for i, (title, clip) in enumerate(panels.items()):
        values = np.zeros(len(xyz))
        values[patches] = np.where(example["mask"][:, None], clip[0], example["truth"][0])  # shown: truth
        values[~data["cortex"]] = np.nan
        ax = figure.add_subplot(1, 4, i + 1, projection="3d")
        _draw(ax, xyz, faces, values, limit)
        ax.set_title(title, fontsize=9)
    ax = figure.add_subplot(1, 4, 4, projection="3d")
    _draw(ax, xyz, faces, np.where(hidden, 1.0, 0.0), 1.0, cmap="Greys")
    ax.set_title("hidden patches (black)", fontsize=9)
    return figure


def _draw(ax, xyz, faces, values, limit, cmap="RdBu_r") -> None:
    corners = values[faces]  # (n_faces, 3); NaN on the medial wall
    count = np.isfinite(corners).sum(axis=1)
    colours = np.nansum(corners, axis=1) / np.maximum(count, 1)  # mean of the finite corners, 0 when none
    collection = ax.plot_trisurf(
        xyz[:, 0], xyz[:, 1], xyz[:, 2], triangles=faces, linewidth=0, antialiased=False
    )
    collection.set_array(colours)
    collection.set_cmap(cmap)
    collection.set_clim(-limit if cmap != "Greys" else 0.0, limit)
    ax.view_init(elev=0, azim=180)  # lateral view of the left hemisphere
    ax.set_box_aspect(np.ptp(xyz, axis=0))
    ax.set_axis_off()


def write_vsmae_report(config, folder: Path, rows, history, example, data, n_parameters: int) -> list[str]:
    from brainkit.report.html import write_report

    by_name = {row["method"]: row for row in rows}
    ours, interpolation = by_name["vsMAE"], by_name["neighbour interpolation"]
    verdict = "beats" if ours["masked_mse_mean"] < interpolation["masked_mse_mean"] else "does NOT beat"
    notes = [
        f"vsMAE ({n_parameters:,} parameters, preset {config.model_preset}) {verdict} neighbour interpolation on "
        f"held-out real frames: masked MSE {ours['masked_mse_mean']:.3f} vs {interpolation['masked_mse_mean']:.3f} "
        f"(visible-patch mean {by_name['visible-patch mean']['masked_mse_mean']:.3f}; mean +- sd over "
        f"{config.n_eval_masks} masks).",
        f"Data: the real brainspace resting-state run ({data['n_frames_total']} frames), both hemispheres on ico"
        f"{config.fine_order} (right mirrored onto left), demeaned and z-scored per frame; the first "
        f"{round(100 * config.train_fraction)}% of frames pretrain ({len(data['train'])} clips), the held-out "
        f"part gives {len(data['held_out'])} non-overlapping clips of {config.n_frames} frames.",
    ]
    figures = {}
    figure = surface_figure(example, data)
    if figure is not None:
        figures[
            "A held-out frame on the inflated left hemisphere: truth and reconstructions of the hidden patches"
        ] = figure
    write_report(
        folder / "report.html",
        title="brainkit: vsMAE pretraining on the real fsaverage5 resting-state run",
        table=rows,
        curves={"vsMAE": history},
        retrieval={},
        notes=notes,
        figures=figures,
    )
    return notes
