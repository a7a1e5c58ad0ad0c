"""Vis-Dec's report figures: real test images beside their reconstructions, and one loss panel per phase.

Built on ``matplotlib.figure.Figure`` (no pyplot), like the other report figures.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from brainkit.errors import DataError


def reconstruction_grid(real: np.ndarray, columns: dict[str, np.ndarray], n_shown: int = 8) -> Figure:
    """One row per test image: the real image, then every column's images for it.

    Parameters
    ----------
    real : uint8 (n, H, W, 3)
    columns : dict title -> uint8 (n, H', W', 3) or (n, k, H', W', 3)
        e.g. {"VAE (ceiling)": ..., "Vis-Dec": samples (n, k, ...)}; k samples become k sub-columns.
    n_shown : int
        Rows shown (the first ``n_shown`` images).
    """
    if real.ndim != 4:
        raise DataError(f"reconstruction_grid: real must be (n, H, W, 3), found {real.shape}.")
    panels: list[tuple[str, np.ndarray]] = [("real", real)]
    for title, images in columns.items():
        if images.ndim == 4:
            images = images[:, None]
        if images.ndim != 5 or len(images) != len(real):
            raise DataError(
                f"reconstruction_grid: {title!r} must be (n={len(real)}, [k,] H, W, 3), found {images.shape}."
            )
        for j in range(images.shape[1]):
            panels.append((title if images.shape[1] == 1 else f"{title} #{j + 1}", images[:, j]))
    n = min(n_shown, len(real))
    figure = Figure(figsize=(1.3 * len(panels), 1.3 * n + 0.6))
    for row in range(n):
        for col, (title, images) in enumerate(panels):
            axis = figure.add_subplot(n, len(panels), row * len(panels) + col + 1)
            axis.imshow(images[row], interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=7)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.05, hspace=0.05)
    return figure


def phase_curves(histories: dict[str, list[dict]]) -> Figure | None:
    """One panel per training stage: every numeric ``train_*`` / ``val_*`` key against epoch."""
    histories = {name: rows for name, rows in histories.items() if rows}
    if not histories:
        return None
    figure = Figure(figsize=(3.6 * len(histories), 3.0))
    for index, (name, rows) in enumerate(histories.items()):
        axis = figure.add_subplot(1, len(histories), index + 1)
        keys = [
            k for k in rows[0] if k.startswith(("train_", "val_")) and isinstance(rows[0][k], int | float)
        ]
        epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        for key in keys:
            axis.plot(epochs, [r.get(key, np.nan) for r in rows], marker=".", label=key)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=6)
    figure.tight_layout()
    return figure
