"""CLIP-MUSED's report: the tables of methods (mean and per subject), plain statements of what beat what, the
token embeddings in 2-D by category and the token attention over the brain volume, in ``report.html``.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot), like the other report figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import ndimage

from brainkit.errors import DataError
from brainkit.report.html import write_report

MAIN_TABLE = "CLIP-MUSED vs baselines and ablations (test mAP / AUC / Hamming, mean over subjects)"


def token_embedding_figure(
    high: np.ndarray, low: np.ndarray, labels: np.ndarray, categories: list[str], n_shown: int = 8
) -> Figure:
    """High- and low-level tokens (n, dim) of the test samples projected on the top-2 principal components of
    both together (one shared plane), each sample coloured by its most frequent test category.

    ``labels`` (n, n_categories) 0/1; samples whose categories are all outside the ``n_shown`` most frequent
    ones are grey ("other").
    """
    if high.shape != low.shape or len(high) != len(labels):
        raise DataError(
            f"token_embedding_figure: high {high.shape}, low {low.shape}, labels {labels.shape} disagree."
        )
    both = np.concatenate([high, low]).astype(np.float64)
    both -= both.mean(0)
    _, _, vt = np.linalg.svd(both, full_matrices=False)
    plane = both @ vt[:2].T
    shown = np.argsort(-labels.sum(0), kind="stable")[:n_shown]
    rank = np.full(len(labels), -1)
    for position, category in reversed(list(enumerate(shown))):  # most frequent category wins
        rank[labels[:, category] > 0] = position
    figure = Figure(figsize=(11, 4.6))
    colours = [f"C{i}" for i in range(10)]
    for column, (name, points) in enumerate(
        (("high-level", plane[: len(high)]), ("low-level", plane[len(high) :]))
    ):
        axis = figure.add_subplot(1, 3, column + 1)
        axis.scatter(*points[rank < 0].T, s=8, c="lightgrey", label="other")
        for position, category in enumerate(shown):
            chosen = rank == position
            axis.scatter(*points[chosen].T, s=10, c=colours[position % 10], label=categories[category][:28])
        axis.set_title(f"{name} tokens (shared PCA plane)")
        axis.set_xlabel("PC 1")
        axis.set_ylabel("PC 2")
    axis = figure.add_subplot(1, 3, 3)
    axis.scatter(*plane[: len(high)].T, s=6, c="C3", label="high-level")
    axis.scatter(*plane[len(high) :].T, s=6, c="C0", label="low-level")
    axis.set_title("both token kinds")
    axis.legend(fontsize=7)
    handles, names = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=5, fontsize=7)
    figure.subplots_adjust(bottom=0.28, wspace=0.3)
    return figure


def attention_volume(attention: np.ndarray, token_shape: tuple[int, ...], mask: np.ndarray) -> np.ndarray:
    """Attention over the token grid (n_kinds, n_tokens) -> over the brain volume (n_kinds, X, Y, Z).

    Each token's weight is spread evenly over the voxels of its block (nearest-neighbour zoom), 0 outside
    the brain.
    """
    if attention.shape[1] != int(np.prod(token_shape)):
        raise DataError(f"attention_volume: {attention.shape[1]} tokens do not fill the grid {token_shape}.")
    grid = attention.reshape(len(attention), *token_shape)
    factors = [m / t for m, t in zip(mask.shape, token_shape)]
    volumes = np.stack([ndimage.zoom(g, factors, order=0, grid_mode=True, mode="nearest") for g in grid])
    return np.where(mask, volumes, 0.0)


def attention_figure(
    volumes: np.ndarray,
    mask: np.ndarray,
    affine: np.ndarray | None = None,
    names: tuple[str, ...] = ("high-level", "low-level"),
) -> Figure:
    """One row per token kind: the attention volume (X, Y, Z, in the grid of ``mask``) above the brain's least
    attended voxel, as a statistical map.

    With ``affine`` (the grid's voxel -> MNI mm, ``dataset.info["affine"]``), drawn by nilearn's
    ``plot_stat_map`` over the MNI152 template that installs with nilearn (offline), in neurological view (left on the left) with its L/R marks and MNI coordinates, cut at the attention-weighted centre. Without one,
    plain sagittal / coronal / axial slices of the grid, marked "grid space (no affine)"."""
    if affine is None:
        return _grid_slices(volumes, mask, names)
    import nibabel as nib
    from nilearn import datasets, plotting

    template = datasets.load_mni152_template(resolution=2)
    figure = Figure(figsize=(10, 3.3 * len(volumes)))
    for row, (volume, name) in enumerate(zip(volumes, names)):
        low = volume[mask].min()
        shown = np.where(mask, volume - low, 0.0).astype(np.float32)  # 0 = the brain's least-attended voxel
        centre = ndimage.center_of_mass(shown) if shown.sum() > 0 else np.array(mask.shape) / 2
        cut = (np.append(centre, 1.0) @ np.asarray(affine).T)[:3]  # grid index -> MNI mm
        axes = figure.add_subplot(len(volumes), 1, row + 1)
        plotting.plot_stat_map(
            nib.Nifti1Image(shown, np.asarray(affine, dtype=float)), bg_img=template, cut_coords=cut,
            display_mode="ortho", axes=axes, figure=figure, cmap="hot", colorbar=True, annotate=True,
            draw_cross=False, threshold=1e-12, symmetric_cbar=False, black_bg=False, transparency=0.8,
            title=f"{name} token (MNI {cut.round(0).astype(int).tolist()} mm)",
        )  # fmt: skip
    return figure


def _grid_slices(volumes: np.ndarray, mask: np.ndarray, names: tuple[str, ...]) -> Figure:
    """Sagittal, coronal and axial slices through the attention-weighted centre, in grid space."""
    figure = Figure(figsize=(10, 3.3 * len(volumes)))
    for row, (volume, name) in enumerate(zip(volumes, names)):
        low, high = volume[mask].min(), volume[mask].max()
        weight = np.where(mask, volume - low, 0.0)
        centre = ndimage.center_of_mass(weight) if weight.sum() > 0 else np.array(mask.shape) / 2
        peak = tuple(int(round(c)) for c in centre)  # the attention-weighted centre of the brain
        cuts = (
            ("sagittal", volume[peak[0]].T, mask[peak[0]].T),
            ("coronal", volume[:, peak[1]].T, mask[:, peak[1]].T),
            ("axial", volume[:, :, peak[2]].T, mask[:, :, peak[2]].T),
        )
        for column, (title, image, outline) in enumerate(cuts):
            axis = figure.add_subplot(len(volumes), 3, 3 * row + column + 1)
            image = np.where(outline, image, np.nan)  # outside the brain: blank
            shown = axis.imshow(image, origin="lower", cmap="hot", vmin=low, vmax=high)
            axis.contour(outline, levels=[0.5], colors="cyan", linewidths=0.6)
            axis.set_title(f"{name} token: {title} (grid space, no affine; slice {peak[column]})", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        figure.colorbar(shown, ax=figure.axes[-3:], shrink=0.8, label="attention of the voxel's token")
    return figure


def write(
    folder: Path,
    title: str,
    rows: list[dict[str, Any]],
    subjects: list[str],
    histories: dict[str, list[dict]],
    extras: dict[str, Any],
    test_labels: dict[str, np.ndarray],
    mask: np.ndarray | list[str],
    categories: list[str],
    affine: np.ndarray | None = None,
) -> tuple[dict[str, list[dict]], list[str]]:
    """Write ``folder/report.html``; returns its tables (title -> rows) and notes.

    ``rows``: one per method (``method``, ``what``, ``mAP``, ``AUC``, ``hamming``, ``mAP/<subject>`` ...);
    ``histories``: training records per method (the trainer's); ``extras``: CLIP-MUSED's test predictions per
    subject (``high``, ``low``, ``attention``) and its ``token_shape``; ``test_labels`` per subject; ``mask``: the
    volume mask (hcp variant), or the ROI names of the patches (nsd variant: the attention drawn per ROI).
    """
    per_subject = [{"method": r["method"], **{s: r[f"mAP/{s}"] for s in subjects}} for r in rows]
    table = [{k: v for k, v in r.items() if "/" not in k} for r in rows]
    n_classes = len(categories)
    rois = None if isinstance(mask, np.ndarray) else list(mask)
    brain = f"{int(mask.sum())} brain voxels" if rois is None else f"{len(rois)} ROI patches"
    notes = compare(table, per_subject, subjects, brain, n_classes)
    notes.append(token_similarity_note(extras, subjects))
    high = np.concatenate([extras[s]["high"] for s in subjects])
    low = np.concatenate([extras[s]["low"] for s in subjects])
    labels = np.concatenate([test_labels[s] for s in subjects])
    figures = {
        "CLIP-MUSED high- and low-level tokens of the test samples (PCA), coloured by category": (
            token_embedding_figure(high, low, labels, categories)
        )
    }
    if "attention" in extras[subjects[0]]:
        attention = np.mean([extras[s]["attention"] for s in subjects], axis=0)
        if rois is None:
            volumes = attention_volume(attention, extras["token_shape"], mask)
            caption = "Attention of the subject tokens over the brain (last block, mean over heads, test samples, subjects)"
            figures[caption] = attention_figure(volumes, mask, affine)
        else:
            caption = "Attention of the subject tokens over the ROI patches (last block, mean over heads, test samples, subjects)"
            figures[caption] = roi_attention_figure(attention, rois)
    curves = {
        method: [
            {"epoch": r["epoch"]} | {k: v for k, v in r.items() if k.startswith(("train_", "val_"))}
            for r in records
        ]
        for method, records in histories.items()
    }
    write_report(
        folder / "report.html",
        title,
        table,
        curves,
        {},
        notes,
        figures=figures,
        tables={"mAP per subject": per_subject},
    )
    return {MAIN_TABLE: table, "mAP per subject": per_subject}, notes


def roi_attention_figure(attention: np.ndarray, names: list[str]) -> Figure:
    """The high- and low-level tokens' attention (2, n_rois) over the ROI patches, one bar pair per ROI."""
    if attention.shape != (2, len(names)):
        raise DataError(f"roi_attention_figure: attention {attention.shape} for {len(names)} ROIs.")
    figure = Figure(figsize=(max(6.0, 0.35 * len(names)), 3.6))
    axis = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(names))
    axis.bar(positions - 0.2, attention[0], 0.4, label="high-level token", color="C3")
    axis.bar(positions + 0.2, attention[1], 0.4, label="low-level token", color="C0")
    axis.set_xticks(positions, names, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("attention")
    axis.legend(fontsize=7)
    figure.subplots_adjust(bottom=0.3)
    return figure


def compare(
    table: list[dict], per_subject: list[dict], subjects: list[str], brain: int | str, n_classes: int
) -> list[str]:
    """Plain statements, with the run's numbers, of what beat what (``brain``: what the models read, e.g. "512
    brain voxels"; an int is a voxel count)."""
    brain = f"{brain} brain voxels" if isinstance(brain, int) else brain
    by = {row["method"]: row for row in table}
    ours = by["clip_mused"]["mAP"]
    notes = [
        f"{len(subjects)} subjects, {brain}, {n_classes} categories; test mAP is the mean over "
        f"subjects of the per-class average precision; chance (label frequency) mAP "
        f"{by['label_frequency']['mAP']:.3f}. One seed."
    ]
    gains = {r["method"]: r for r in per_subject}
    for baseline in ("per_subject", "pooled", "srm", "no_subject_tokens"):
        if baseline not in by:
            continue
        theirs = by[baseline]["mAP"]
        verdict = "beats" if ours > theirs else "does NOT beat"
        better = [s for s in subjects if gains["clip_mused"][s] > gains[baseline][s]]
        notes.append(
            f"CLIP-MUSED (mAP {ours:.3f}) {verdict} {baseline} (mAP {theirs:.3f}, difference "
            f"{ours - theirs:+.3f}); better on {len(better)} of {len(subjects)} subjects "
            f"({', '.join(better) or 'none'})."
        )
    for ablation in ("no_rsm", "no_orthogonality"):
        if ablation in by:
            notes.append(f"Removing {ablation[3:]} changes mAP by {by[ablation]['mAP'] - ours:+.3f}.")
    return notes


def token_similarity_note(extras: dict, subjects: list[str]) -> str:
    """How different the high- and low-level tokens came out (the orthogonality loss pushes them apart)."""
    high = np.concatenate([extras[s]["high"] for s in subjects])
    low = np.concatenate([extras[s]["low"] for s in subjects])
    cosine = (high * low).sum(1) / np.maximum(
        np.linalg.norm(high, axis=1) * np.linalg.norm(low, axis=1), 1e-12
    )
    return (
        f"High- vs low-level token of CLIP-MUSED on the test samples: mean cosine {cosine.mean():.3f} "
        f"(1 = the same vector; the orthogonality loss, weight 1e-3, aims at 0)."
    )
