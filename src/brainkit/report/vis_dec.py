"""Vis-Dec's report: real test images beside their reconstructions, one loss panel per phase, and the page.

:func:`reconstruction_grid` and :func:`phase_curves` are ``matplotlib.figure.Figure``s (no pyplot), like the other
report figures; :func:`write_vis_dec_report` writes ``report.html`` from the tables the recipe scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainkit.errors import DataError
from brainkit.report.html import write_report


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


def guidance_rows(scale: float, scores: dict[str, float], layer: str) -> list[dict[str, Any]]:
    """One row per guidance candidate: its validation 2-way identification and whether it was chosen."""
    return [{"guidance scale": name, f"validation {layer} 2-way": value, "chosen": float(name) == scale}
            for name, value in scores.items()]  # fmt: skip


def guidance_note(scale: float, scores: dict[str, float], layer: str, n_val_images: int) -> str:
    if not scores:
        return f"Guidance scale {scale:g}, fixed by the configuration (no search)."
    return (
        f"Guidance scale {scale:g} chosen on {n_val_images} training images held out of every phase "
        f"(1 sample each, {layer} 2-way identification: "
        + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in scores.items())
        + "); the test images played no part in it."
    )


def write_vis_dec_report(
    path: str | Path,
    title: str,
    table: list[dict[str, Any]],
    notes: list[str],
    tables: dict[str, list[dict[str, Any]]],
    images: dict[str, np.ndarray],
    histories: dict[str, list[dict]],
    n_shown: int = 10,
) -> Path:
    """The page: the main ``table``, ``notes``, the grid of ``images`` (``"real"`` first, then columns as in
    :func:`reconstruction_grid`), the training curves of ``histories`` and the further ``tables``."""
    columns = {name: value for name, value in images.items() if name != "real"}
    grid = reconstruction_grid(images["real"], columns, n_shown=n_shown)
    figures = {"Real test images and their reconstructions": grid}
    curves = phase_curves(histories)
    if curves is not None:
        figures["Training curves, per phase"] = curves
    return write_report(path, title, table, {}, {}, notes, figures=figures, tables=tables)
