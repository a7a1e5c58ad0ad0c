"""Figures for the run report: training curves and retrieval grids, rendered to PNG bytes.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through ``pyplot``, so nothing
touches global GUI state and plotting works on headless machines and in threads.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from brainkit.errors import DataError
from brainkit.report.labels import column_label, is_share, value_label

CORRECT_COLOUR = "#1a9850"


@dataclass(frozen=True)
class RetrievalGrid:
    """Chosen test queries and what the brain data retrieved for them.

    Attributes
    ----------
    query_images : np.ndarray, shape (n_queries, height, width, 3), uint8
        The real test image behind each query's brain data.
    retrieved_images : np.ndarray, shape (n_queries, k, height, width, 3), uint8
        The k images retrieved from the brain data, best first.
    correct : np.ndarray, shape (n_queries, k), bool
        True where the retrieved image is the query's own image (framed green).
    """

    query_images: np.ndarray
    retrieved_images: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        query, retrieved, correct = self.query_images, self.retrieved_images, self.correct
        for name, value in (("query_images", query), ("retrieved_images", retrieved), ("correct", correct)):
            if not isinstance(value, np.ndarray):
                raise DataError(f"RetrievalGrid.{name} is a {type(value).__name__}; expected a numpy array.")
        if query.ndim != 4 or query.shape[-1] != 3 or query.shape[0] < 1:
            raise DataError(
                f"RetrievalGrid.query_images has shape {query.shape}; expected (n_queries, height, width, 3) "
                "RGB images with n_queries >= 1."
            )
        n_queries, height, width, _ = query.shape
        if retrieved.ndim != 5 or retrieved.shape[0] != n_queries or retrieved.shape[2:] != query.shape[1:]:
            raise DataError(
                f"RetrievalGrid.retrieved_images has shape {retrieved.shape}; expected ({n_queries}, k, "
                f"{height}, {width}, 3) to match query_images {query.shape}."
            )
        if correct.shape != retrieved.shape[:2] or correct.dtype != np.bool_:
            raise DataError(
                f"RetrievalGrid.correct has shape {correct.shape} and dtype {correct.dtype}; expected bool "
                f"{retrieved.shape[:2]} (n_queries, k)."
            )
        for name, value in (("query_images", query), ("retrieved_images", retrieved)):
            if value.dtype != np.uint8:
                raise DataError(
                    f"RetrievalGrid.{name} has dtype {value.dtype}; expected uint8 in [0, 255]. "
                    "Convert with (images * 255).round().clip(0, 255).astype(np.uint8)."
                )


def figure_png(figure: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _numeric_keys(curves: dict[str, list[dict]]) -> list[str]:
    keys: list[str] = []
    for method, records in curves.items():
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError(
                f"curves[{method!r}] is a {type(records).__name__}; expected a list of dicts per epoch."
            )
        for number, record in enumerate(records):
            if "epoch" not in record:
                raise DataError(
                    f"curves[{method!r}][{number}] has keys {sorted(record)}; expected an 'epoch' key in every "
                    "record, e.g. {'epoch': 1, 'train_loss': 0.7}."
                )
            for key, value in record.items():
                numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
                if key != "epoch" and numeric and key not in keys:
                    keys.append(key)
    return keys


def curves_figure(curves: dict[str, list[dict]]) -> Figure | None:
    """One panel per numeric key, value against epoch, methods overlaid; None when there is nothing to plot.

    Parameters
    ----------
    curves : dict[str, list[dict]]
        ``curves[method]`` = per-epoch records such as ``{"epoch": 1, "train_loss": 0.7, "val_top1": 0.1}``.
        A key missing from some records is plotted where present.
    """
    keys = _numeric_keys(curves)
    if not keys:
        return None
    n_columns = min(3, len(keys))
    n_rows = math.ceil(len(keys) / n_columns)
    figure = Figure(figsize=(4.2 * n_columns, 3.2 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    colours = {method: f"C{number % 10}" for number, method in enumerate(curves)}
    for axis, key in zip(axes, keys):
        for method, records in curves.items():
            points = [(r["epoch"], r[key]) for r in records if key in r and r[key] is not None]
            if points:
                epochs, values = zip(*sorted(points))
                axis.plot(epochs, values, marker="o", markersize=3, color=colours[method], label=method)
        axis.set_title(column_label(key))
        axis.set_xlabel("epoch")
        axis.set_ylabel(column_label(key))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        axis.grid(alpha=0.3)
    for axis in axes[len(keys) :]:
        axis.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1 : len(keys)]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
    return figure


def retrieval_figure(grids: dict[str, RetrievalGrid]) -> Figure | None:
    """One row per query: the real test image, a gap, then the k retrieved images; correct ones framed green.

    Methods are stacked top to bottom, each labelled on its first row. None when ``grids`` is empty.
    """
    if not grids:
        return None
    for method, grid in grids.items():
        if not isinstance(grid, RetrievalGrid):
            raise DataError(f"retrieval[{method!r}] is a {type(grid).__name__}; expected a RetrievalGrid.")
    k_max = max(grid.retrieved_images.shape[1] for grid in grids.values())
    n_rows = sum(grid.query_images.shape[0] for grid in grids.values())
    size = 1.3  # inches per image column
    aspect = max(grid.query_images.shape[1] / grid.query_images.shape[2] for grid in grids.values())
    figure = Figure(figsize=(size * (k_max + 1.25), size * aspect * n_rows * 1.1 + 0.5), layout="constrained")
    # columns: query, a narrow gap, then k retrieved images
    spec = figure.add_gridspec(n_rows, k_max + 2, width_ratios=[1, 0.25] + [1] * k_max)
    row = 0
    for method, grid in grids.items():
        for number in range(grid.query_images.shape[0]):
            axis = figure.add_subplot(spec[row, 0])
            axis.imshow(grid.query_images[number])
            axis.set_xticks([])
            axis.set_yticks([])
            if number == 0:
                axis.set_ylabel(method, fontsize=9, fontweight="bold")
            if row == 0:
                axis.set_title("test image", fontsize=8)
            for rank in range(grid.retrieved_images.shape[1]):
                axis = figure.add_subplot(spec[row, rank + 2])
                axis.imshow(grid.retrieved_images[number, rank])
                axis.set_axis_off()
                if row == 0:
                    axis.set_title(f"retrieved #{rank + 1}", fontsize=8)
                if grid.correct[number, rank]:
                    height, width = grid.retrieved_images.shape[2:4]
                    frame = Rectangle(
                        (-0.5, -0.5), width, height, fill=False, edgecolor=CORRECT_COLOUR, linewidth=4,
                        clip_on=False,
                    )  # fmt: skip
                    axis.add_patch(frame)
            row += 1
    figure.suptitle("Retrieval from brain data (green frame = the true image)", fontsize=9)
    return figure


NOT_SCORES = ("params", "n_parameters", "parameters", "train_s", "seconds", "steps")


def _score_keys(table: list[dict]) -> list[str]:
    """The table's score columns: a float in at least two rows, not a size or a time, not an ``_sd`` /
    ``_chance`` shown with another column; shares first."""
    keys = list(dict.fromkeys(k for row in table for k in row))
    scores = [
        k for k in keys
        if not k.endswith(("_sd", "_chance", " sd", " chance")) and k not in NOT_SCORES and not k.startswith("n_")
        and sum(isinstance(r.get(k), float) and math.isfinite(r[k]) for r in table) >= 2
    ]  # fmt: skip
    return sorted(scores, key=lambda k: not is_share(k))


def _chance(table: list[dict], key: str) -> float | None:
    base = key[: -len("_mean")] if key.endswith("_mean") else key
    for name in (f"{base}_chance", f"{key}_chance"):
        values = [r[name] for r in table if isinstance(r.get(name), float)]
        if values:
            return float(np.mean(values))
    return None


def methods_figure(table: list[dict], max_panels: int = 6) -> Figure | None:
    """Every method against chance: one panel per score column (at most ``max_panels``, shares first), a dot per
    method (the table's first column names it) with its sd as a bar, the column's chance level (``X_chance``) as a
    dashed line; shares in percent. None when fewer than two rows share a score."""
    keys = _score_keys(table)[:max_panels]
    if not keys or len(table) < 2:
        return None
    first = next(iter(table[0]))
    names = [str(value_label(r.get(first, ""))) for r in table]
    n_columns = min(3, len(keys))
    n_rows = math.ceil(len(keys) / n_columns)
    height = max(2.4, 0.28 * len(names) + 1.2)
    figure = Figure(figsize=(4.4 * n_columns, height * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for axis, key in zip(axes, keys):
        scale = 100.0 if is_share(key) else 1.0
        base = key[: -len("_mean")] if key.endswith("_mean") else key
        for y, row in enumerate(table):
            value = row.get(key)
            if not isinstance(value, float) or not math.isfinite(value):
                continue
            sd = row.get(f"{base}_sd")
            axis.errorbar(scale * value, y, xerr=scale * sd if isinstance(sd, float) else None, fmt="o",
                          color="C0", ecolor="C0", capsize=3)  # fmt: skip
        chance = _chance(table, key)
        if chance is not None:
            axis.axvline(scale * chance, color="0.4", linestyle="--", linewidth=1, label="chance")
            axis.legend(fontsize=7, loc="best")
        axis.set_yticks(range(len(names)), names, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel(column_label(key) + (" (%)" if scale == 100.0 else ""))
        axis.grid(axis="x", alpha=0.3)
    for axis in axes[len(keys) :]:
        axis.set_visible(False)
    return figure
