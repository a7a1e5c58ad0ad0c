"""Lite-Mind's table, notes and report: one row per decoder (Lite-Mind and its baselines) on the same test set,
sentences comparing them, and an HTML page with training curves and retrieval grids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.report.html import RetrievalGrid, write_report

DEMO_TITLE = "brainkit demo: fMRI-to-image retrieval on the built-in NSD-like data"


def method_row(
    method: str, metrics: dict[str, float], n_parameters: int, train_seconds: float, n_way: int
) -> dict[str, Any]:
    """One table row: parameters, training time, top-k retrieval for each k scored (``evaluation.top_k``: top-1
    and top-5 by default) and N-way retrieval, each beside its chance."""
    way = f"fmri_to_image/{n_way}way_top1"
    back = f"image_to_fmri/{n_way}way_top1"
    row: dict[str, Any] = {"method": method, "params": n_parameters, "train_s": round(train_seconds, 1)}
    ks = sorted(int(key.rsplit("top", 1)[1]) for key in metrics if re.fullmatch(r"fmri_to_image/top\d+", key))
    for k in ks:
        row[f"fmri->image top{k}"] = metrics[f"fmri_to_image/top{k}"]
        row[f"top{k} chance"] = metrics[f"fmri_to_image/top{k}_chance"]
    if f"{way}_mean" in metrics:
        row[f"fmri->image {n_way}-way"] = metrics[f"{way}_mean"]
        row[f"{n_way}-way sd"] = metrics[f"{way}_sd"]
        row[f"image->fmri {n_way}-way"] = metrics[f"{back}_mean"]
        row[f"{n_way}-way chance"] = metrics[f"{way}_chance"]
    return row


def comparison_notes(rows: list[dict[str, Any]], n_way: int) -> list[str]:
    """Plain sentences on how Lite-Mind compares with the baselines (numbers from this run)."""
    key = f"fmri->image {n_way}-way"
    if not rows or key not in rows[0]:
        return []
    chance = rows[0][f"{n_way}-way chance"]
    by_name = {r["method"]: r for r in rows}
    lite = by_name.get("Lite-Mind")
    notes = []
    for r in rows:
        notes.append(
            f"{r['method']}: {n_way}-way fMRI->image top-1 {100 * r[key]:.1f}% +/- {100 * r[f'{n_way}-way sd']:.1f} "
            f"(chance {100 * chance:.2f}%, {r[key] / chance:.0f}x chance), {r['params']:,} parameters, "
            f"trained in {r['train_s']:.0f} s."
        )
    if lite and len(rows) > 1:
        text = f"Lite-Mind reaches {lite[key] / chance:.0f}x chance with {lite['params']:,} parameters."
        for r in rows:
            if r is lite:
                continue
            diff = 100 * (lite[key] - r[key])
            relation = "above" if diff > 0 else "below"
            text += f" It is {abs(diff):.1f} points {relation} {r['method']} ({r['params']:,} parameters)."
        text += (
            " The simulated responses are a linear function of PCA-reduced image features plus noise, which suits"
            " linear and MLP decoders; the paper's claim for Lite-Mind is parameter efficiency on real NSD with"
            " 257x768 CLIP targets and ~25,000 trials, which this small demo does not test."
        )
        notes.append(text)
    return notes


def retrieval_grids(
    images: np.ndarray | None, positions: np.ndarray, queries: np.ndarray, retrieved: dict[str, np.ndarray]
) -> dict[str, RetrievalGrid]:
    """Per method, the query test images and the images their brain data retrieved, best first.

    ``images``: the dataset's stimulus images (None: no grids); ``positions``: each test row's image index;
    ``queries``: chosen test rows; ``retrieved[method]``: (n_queries, k) retrieved test rows.
    """
    if images is None:
        return {}
    return {
        method: RetrievalGrid(
            query_images=images[positions[queries]],
            retrieved_images=images[positions[top]],
            correct=top == queries[:, None],
        )
        for method, top in retrieved.items()
    }


def write_lite_mind_report(
    path: Path,
    rows: list[dict[str, Any]],
    notes: list[str],
    curves: dict[str, list[dict]],
    grids: dict[str, RetrievalGrid],
    dataset: str = "nsd_like",
    subject: str = "subj01",
    maps: dict[str, np.ndarray] | None = None,
) -> Path:
    """The run's HTML page (and its PNGs beside it); ``maps``: decoder label -> (20484,) saliency on fsaverage5
    (NaN off the recorded vertices), drawn as brain maps."""
    from brainkit.report.brain_maps import fsaverage5_maps_figure

    title = (
        DEMO_TITLE if dataset == "nsd_like" else f"brainkit: fMRI-to-image retrieval on {dataset} {subject}"
    )
    figures = {}
    if maps:
        caption = (
            f"Where each decoder reads from: gradient x input saliency of every recorded vertex ({subject}, test "
            "set), on fsaverage5"
        )
        label = "mean |x * d cos(decoded, true embedding) / dx| over the test stimuli (grey: not recorded)"
        figures[caption] = fsaverage5_maps_figure(maps, label)
    return write_report(
        path, title=title, table=rows, curves=curves, retrieval=grids, notes=notes, figures=figures
    )


def gallery_figure(images: np.ndarray, ids: np.ndarray, scores: np.ndarray, max_rows: int = 12):
    """One row per decoded sample (at most ``max_rows``): its k nearest gallery images with id and cosine."""
    from matplotlib.figure import Figure

    n, k = ids.shape
    rows = min(n, max_rows)
    figure = Figure(figsize=(1.5 * k + 0.6, 1.6 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, k, squeeze=False)
    for row in range(rows):
        for rank in range(k):
            axis = axes[row, rank]
            axis.imshow(images[row, rank])
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{ids[row, rank]}\ncos {scores[row, rank]:.3f}", fontsize=7)
            if rank == 0:
                axis.set_ylabel(f"sample {row}", fontsize=8)
    return figure


def write_gallery_page(
    path: Path, images: np.ndarray, ids: np.ndarray, scores: np.ndarray, decoder: str
) -> Path:
    """An HTML page of what each sample's decoded embedding retrieved from the user's gallery.

    ``images``: (n, k, H, W, 3) uint8 retrieved images; ``ids`` / ``scores``: (n, k) gallery ids and cosines."""
    table = [
        {"sample": i, **{f"#{r + 1}": f"{ids[i, r]} ({scores[i, r]:.3f})" for r in range(ids.shape[1])}}
        for i in range(len(ids))
    ]
    notes = [
        f"Each row: the {ids.shape[1]} gallery images whose embeddings are nearest (cosine) to what {decoder} "
        "decoded from that sample's brain data, best first."
    ]
    return write_report(
        path,
        title=f"brainkit: gallery retrieval with {decoder}",
        table=table,
        curves={},
        retrieval={},
        notes=notes,
        figures={"Nearest gallery images": gallery_figure(images, ids, scores)},
    )
