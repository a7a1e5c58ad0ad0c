"""SIM's and vsMAE's figures, tables, notes and HTML reports.

- Surface maps on nilearn's inflated fsaverage5 left hemisphere. Maps on the order-``k`` icosphere (k <= 5) are
  drawn on fsaverage5: its first ``10 * 4**k + 2`` vertices are the order-``k`` icosphere's
  (``brainkit.surface.icosphere``), and every other vertex takes the value of its nearest order-``k`` vertex on
  the sphere. Medial-wall vertices (outside ``cortex``) show the sulcal background.
- SIM (``brainkit run sim``): the notes (plain statements with the run's numbers), retrieval examples and
  ``report.html``; vsMAE (``brainkit run vsmae``): the reconstruction table, the pretraining curve and one
  held-out frame (truth, vsMAE, neighbour interpolation, with the hidden patches).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainkit.data.movie_samples import SETTINGS
from brainkit.errors import DataError
from brainkit.report.plots import RetrievalGrid
from brainkit.surface import icosphere, order_of

# the column labels of the methods in the tables
LABELS = {
    "scratch": "from scratch",
    "vsmae": "from vsMAE",
    "released": "released weights",
    "ridge": "ridge baseline",
}


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


def training_curves(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trainer's records without the step counter and the clock (curves against epoch)."""
    return [{k: v for k, v in r.items() if k not in ("step", "seconds")} for r in history]


def retrieval_grid(examples: tuple[int, np.ndarray, np.ndarray] | None, thumbnails: np.ndarray):
    """The :class:`RetrievalGrid` of ``(run, query clips, retrieved clips)`` from
    :func:`brainkit.evaluation.movie_retrieval.retrieval_examples` (None stays None)."""
    if examples is None:
        return None
    run, queries, retrieved = examples
    return RetrievalGrid(thumbnails[run, queries], thumbnails[run, retrieved], retrieved == queries[:, None])


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def table_title(evaluation) -> str:
    """The main table's title: the protocol, its candidate count and over what the mean and sd run."""
    over = "(subject, run) rows" if evaluation.protocol == "sim" else "subjects"
    return (f"SIM retrieval among {evaluation.n_candidates} candidates ({evaluation.protocol} protocol, chance "
            f"1/{evaluation.n_candidates}): top-1 (fraction), mean and sd over {over}")  # fmt: skip


def protocol_note(evaluation) -> str:
    """What the retrieval protocol of the tables is (docs/methods/sim.md, "Retrieval protocol")."""
    n = evaluation.n_candidates
    if evaluation.protocol == "sim":
        return (f"Retrieval: SIM's released protocol (evaluation.protocol=sim): per subject and run, "
                f"{evaluation.n_targets} targets (a movie segment drawn uniformly, then a clip of the setting's "
                f"half; the test-retest segment is never a target), each among {n} candidates: the target and 32 "
                "negatives from the held-out halves of the other segments (soft, test-retest included) or of its "
                "own (hard), video negatives never within 3 s of it, audio ones only not the target. Chance: "
                f"top-1 1/{n} = {100 / n:.1f} %, top-k k/{n}. Mean and sd over (subject, run) rows.")  # fmt: skip
    return (f"Retrieval: every clip of the setting is a target (evaluation.protocol=all_targets), among {n} "
            "candidates: the target and 31 negatives of the setting's clips in its run (soft: other segments, "
            f"hard: its own), never within 3 s. Chance: top-1 1/{n} = {100 / n:.1f} %. Mean and sd over subjects.")  # fmt: skip


def notes_for(config, main: list[dict], context: dict[str, Any]) -> list[str]:
    data, groups, clips = context["data"], context["groups"], context["clips"]
    encoder, chance = context["encoder"], 1 / config.evaluation.n_candidates
    names = {k: ", ".join(data.subjects[i] for i in v) for k, v in groups.items()}
    notes = [
        f"Data: {len(data.subjects)} subjects x {data.fmri.shape[1]} runs of {data.info.get('name', 'movie data')} "
        f"({config.data}), ico{data.order}; trained on {len(groups['train'])} subjects, unseen: {names['test']}. "
        f"Clips (3 s, every 1 s, fMRI {data.lag} s later, {encoder.n_frames} frames as channels): "
        f"{int(clips['train'].sum())} training and {int(clips['held_out'].sum())} unseen over all runs (each "
        f"segment's first half minus its last {config.gap_clips} clips / second half). SiT {encoder.dim} wide x "
        f"{encoder.depth} blocks on {encoder.n_patches} patches of {encoder.n_patch_vertices} vertices; "
        f"{context['n_parameters']:,} trainable parameters; {config.training.steps} steps of {config.training.batch_size}.",
        protocol_note(config.evaluation),
        "The test-retest segment (same content at the end of every run) is split into halves at the same place in "
        "every run, like the other segments, so its unseen half is unseen in every run; candidates come from the "
        "target's own run, so a repeat never competes with itself, and training batches never hold two copies.",
    ]
    by = {(r["setting"], r["negatives"], r["retrieval"]): r for r in main}
    labels = [LABELS[i] for i in config.inits]
    shown = labels + ([LABELS["ridge"]] if config.ridge_alpha is not None else [])
    for description, _, _ in SETTINGS.values():
        parts = []
        for kind in ("soft", "hard"):
            row = by[(description, kind, "fMRI->video")]
            values = ", ".join(f"{label} {_percent(row.get(f'top1 {label}_mean'))}" for label in shown)
            parts.append(f"{kind} negatives: {values}")
        notes.append(
            f"Top-1 fMRI->video, {description}: " + "; ".join(parts) + f" (chance {100 * chance:.1f} %)."
        )
    best = by[(SETTINGS["unseen_both"][0], "soft", "fMRI->video")]
    top = max((best.get(f"top1 {label}_mean") or 0.0) for label in labels)
    if top < 2 * chance:
        notes.append(
            f"Top-1 in the hardest setting (unseen subjects and clips, soft, video) is {_percent(top)}: NOT well "
            f"above the {100 * chance:.1f} % chance. See the monitoring curves: if they still rise, train longer "
            "(training.steps); if they are flat, the data's signal is too weak for this model."
        )
    if config.ridge_alpha is not None:
        for direction in ("video", "audio"):
            row = by[(SETTINGS["unseen_both"][0], "soft", f"fMRI->{direction}")]
            sim = max((row.get(f"top1 {label}_mean") or 0.0) for label in labels)
            ridge = row.get(f"top1 {LABELS['ridge']}_mean") or 0.0
            verdict = "beats" if sim > ridge else "does NOT beat"
            notes.append(
                f"fMRI->{direction}, unseen subjects and clips, soft negatives: SIM (best init) {_percent(sim)} "
                f"{verdict} the ridge baseline (fMRI frames' mean -> stimulus features, alpha {config.ridge_alpha:g}) "
                f"{_percent(ridge)}."
            )
            if sim < 2 * chance <= ridge:
                notes.append(
                    f"fMRI->{direction} on unseen clips is near chance for SIM although the data carry the signal "
                    f"(the linear baseline finds it): SIM's shared fMRI embedding is trained mostly towards video, "
                    f"and its {direction} head can then only map the {int(clips['train'].sum())} training clips' "
                    f"{direction} to their embeddings by rote. This is what happens when sound and pictures are "
                    "unrelated (movie data soundtrack='independent'); docs/methods/sim.md measures it."
                )
    if set(config.inits) == {"scratch", "vsmae"}:
        differences = [r["top1 vsMAE - scratch"] for r in main if r.get("top1 vsMAE - scratch") is not None]
        if differences:
            notes.append(
                "vsMAE initialisation changes top-1 by "
                + ", ".join(f"{100 * d:+.1f}" for d in differences)
                + " points over the table's rows (mean "
                + f"{100 * float(np.mean(differences)):+.1f}; same seed, batches and steps; encoder "
                + f"{context['origin']})."
            )
    for init, r in context["correlations"].items():
        notes.append(
            f"Patch importance (occlusion, {context['importance_samples']} unseen-subject unseen-clip samples), "
            f"SIM {LABELS[init]}: correlation with the dataset's truth map r = {r['patches']:.2f} over patches, "
            f"{r['vertices']:.2f} over cortex vertices."
        )
    left = {key: v["n_left"] for key, v in context["scores"][config.inits[0]].items() if v["n_left"]}
    if left and config.evaluation.protocol == "sim":
        notes.append(
            "Targets drawn but skipped, their pool holding fewer than 32 negatives (the released code stops "
            "there): " + ", ".join(f"{s} {k} {d}: {n}" for (s, k, d), n in left.items())
            + " (a hard pool is the target's own held-out half, minus its 7-clip window for video)."
        )  # fmt: skip
    elif left:
        notes.append(
            "Targets left out for lack of 31 negatives of the kind: "
            + ", ".join(f"{s} {k} {d}: {n}" for (s, k, d), n in left.items())
            + " (e.g. a segment's half shorter than 38 clips cannot give hard negatives)."
        )
    if context["reconstruction"]:
        rows = {r["method"]: r["masked_mse_mean"] for r in context["reconstruction"]}
        notes.append(
            f"vsMAE on held-out frames of the real rest run (see vsmae/report.html): masked MSE {rows['vsMAE']:.3f} "
            f"vs neighbour interpolation {rows['neighbour interpolation']:.3f}."
        )
    return notes


def write_sim_report(folder: Path, main, full, histories, grids, maps, cortex, notes, reconstruction) -> None:
    from brainkit.report.html import write_report

    # occlusion importance = the drop of the fMRI-video similarity of the true pair when a patch is zeroed
    caption = "Which patches matter (occlusion) beside the truth map, inflated left fsaverage5"
    figures = {caption: surface_maps_figure(maps, cortex)}
    tables = {"Top-1 / 5 / 10 per initialisation, setting and negatives (mean and sd over subjects)": full}
    if reconstruction:
        tables["vsMAE masked-patch reconstruction on held-out frames of the real rest run"] = reconstruction
    curves = {name: training_curves(history) for name, history in histories.items()}
    write_report(folder / "report.html", "brainkit: SIM tri-modal retrieval on surface movies", main, curves,
                 grids, notes, figures=figures, tables=tables)  # fmt: skip


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


def _scored(maps: dict[str, np.ndarray], data: dict[str, Any]) -> np.ndarray:
    """The cortex vertices every map scores (finite r), as the mask the surface maps draw."""
    scored = np.asarray(data["cortex"], dtype=bool).copy()
    for values in maps.values():
        scored &= np.isfinite(values[: len(scored)])
    return scored


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
        f"Data: {data['description']}, both hemispheres on ico"
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
    if example.get("vertex_r"):
        maps = {f"{name}: r per vertex": values for name, values in example["vertex_r"].items()}
        figures[
            "Where the hidden patches are recovered: per-vertex correlation of reconstruction and truth over the "
            "held-out clips (one mask draw; grey: not scored)"
        ] = surface_maps_figure({k: np.nan_to_num(v, nan=0.0) for k, v in maps.items()}, _scored(maps, data))
    write_report(
        folder / "report.html",
        title="brainkit: vsMAE pretraining on the real fsaverage5 resting-state run",
        table=rows,
        curves={"vsMAE": training_curves(history)},
        retrieval={},
        notes=notes,
        figures=figures,
    )
    return notes


__all__ = ["LABELS", "notes_for", "protocol_note", "table_title", "retrieval_grid", "surface_figure", "surface_maps_figure", "to_fsaverage5",
           "training_curves", "write_sim_report", "write_vsmae_report"]  # fmt: skip
