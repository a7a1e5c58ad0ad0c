"""The SIM recipe's notes (plain statements with the run's numbers) and its ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainkit.recipes.sim import INITS, LABELS, SIMRecipeConfig
from brainkit.recipes.sim_samples import SETTINGS

CHANCE = 1 / 32


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def notes_for(config: SIMRecipeConfig, main: list[dict], context: dict[str, Any]) -> list[str]:
    data, groups, clips = context["data"], context["groups"], context["clips"]
    encoder = context["encoder"]
    names = {k: ", ".join(data.subjects[i] for i in v) for k, v in groups.items()}
    notes = [
        f"Data: {len(data.subjects)} subjects x {data.fmri.shape[1]} runs of the built-in movie dataset "
        f"({config.data}), ico{data.order}; trained on {len(groups['train'])} subjects, unseen: {names['test']}. "
        f"Clips (3 s, every 1 s, fMRI {data.lag} s later, {encoder.n_frames} frames as channels): "
        f"{int(clips['train'].sum())} training and {int(clips['held_out'].sum())} unseen over all runs (each "
        f"segment's first half minus its last {config.gap_clips} clips / second half). SiT {encoder.dim} wide x "
        f"{encoder.depth} blocks on {encoder.n_patches} patches of {encoder.n_patch_vertices} vertices; "
        f"{context['n_parameters']:,} trainable parameters; {config.fit.steps} steps of {config.fit.batch_size}.",
        "The test-retest segment (same content at the end of every run) is split into halves at the same place in "
        "every run, like the other segments, so its unseen half is unseen in every run; candidates come from the "
        "target's own run, so a repeat never competes with itself, and training batches never hold two copies.",
    ]
    by = {(r["setting"], r["negatives"], r["retrieval"]): r for r in main}
    labels = [INITS[i] for i in config.inits]
    shown = labels + ([LABELS["ridge"]] if config.ridge_alpha is not None else [])
    for description, _, _ in SETTINGS.values():
        parts = []
        for kind in ("soft", "hard"):
            row = by[(description, kind, "fMRI->video")]
            values = ", ".join(f"{label} {_percent(row.get(f'top1 {label}_mean'))}" for label in shown)
            parts.append(f"{kind} negatives: {values}")
        notes.append(
            f"Top-1 fMRI->video, {description}: " + "; ".join(parts) + f" (chance {100 * CHANCE:.1f} %)."
        )
    best = by[(SETTINGS["unseen_both"][0], "soft", "fMRI->video")]
    top = max((best.get(f"top1 {label}_mean") or 0.0) for label in labels)
    if top < 2 * CHANCE:
        notes.append(
            f"Top-1 in the hardest setting (unseen subjects and clips, soft, video) is {_percent(top)}: NOT well "
            f"above the {100 * CHANCE:.1f} % chance. See the monitoring curves: if they still rise, train longer "
            "(fit.steps); if they are flat, the data's signal is too weak for this model."
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
            if sim < 2 * CHANCE <= ridge:
                notes.append(
                    f"fMRI->{direction} on unseen clips is near chance for SIM although the data carry the signal "
                    f"(the linear baseline finds it): SIM's shared fMRI embedding is trained mostly towards video, "
                    f"and its {direction} head can then only map the {int(clips['train'].sum())} training clips' "
                    f"{direction} to their embeddings by rote. This is what happens when sound and pictures are "
                    "unrelated (movie data soundtrack='independent'); docs/methods/sim.md measures it."
                )
    if set(config.inits) == set(INITS):
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
            f"SIM {INITS[init]}: correlation with the dataset's truth map r = {r['patches']:.2f} over patches, "
            f"{r['vertices']:.2f} over cortex vertices."
        )
    left = {key: v["n_left"] for key, v in context["scores"][config.inits[0]].items() if v["n_left"]}
    if left:
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
    from brainkit.report.sim_figures import surface_maps_figure

    # occlusion importance = the drop of the fMRI-video similarity of the true pair when a patch is zeroed
    caption = "Which patches matter (occlusion) beside the truth map, inflated left fsaverage5"
    figures = {caption: surface_maps_figure(maps, cortex)}
    tables = {"Top-1 / 5 / 10 per initialisation, setting and negatives (mean and sd over subjects)": full}
    if reconstruction:
        tables["vsMAE masked-patch reconstruction on held-out frames of the real rest run"] = reconstruction
    write_report(folder / "report.html", "brainkit: SIM tri-modal retrieval on surface movies", main, histories,
                 grids, notes, figures=figures, tables=tables)  # fmt: skip
