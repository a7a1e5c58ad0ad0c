"""CLIP-MUSED's report figures: token embeddings in 2-D by category, and token attention over the brain volume.

Built on ``matplotlib.figure.Figure`` (no pyplot), like the other report figures.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import ndimage

from brainkit.errors import DataError


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
    volumes: np.ndarray, mask: np.ndarray, names: tuple[str, ...] = ("high-level", "low-level")
) -> Figure:
    """Sagittal, coronal and axial slices through the attention-weighted centre, colours from the brain's min to max."""
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
            axis.set_title(f"{name} token: {title} (slice {peak[(0, 1, 2)[column]]})", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        figure.colorbar(shown, ax=figure.axes[-3:], shrink=0.8, label="attention of the voxel's token")
    return figure
