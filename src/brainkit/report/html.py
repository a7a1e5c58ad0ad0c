"""One self-contained HTML page per run: the metrics table, notes, training curves and retrieval grids.

The PNG figures are embedded as base64 (the page needs nothing beside it) and also saved next to the HTML as
``{stem}_curves.png`` and ``{stem}_retrieval.png`` (``report_curves.png`` for ``report.html``) so a person can
open them directly. Every file is written through a temporary file and a rename.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from brainkit.checkpoint import atomic_write_text
from brainkit.errors import DataError
from brainkit.report import labels
from brainkit.report.plots import RetrievalGrid, curves_figure, figure_png, methods_figure, retrieval_figure

logger = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
.chance { color: #888; font-size: 0.85em; }
img { max-width: 100%; }
.meta { color: #666; font-size: 0.85em; }
"""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_value(value: object, key: str = "") -> str:
    """How a table cell shows a value (:func:`brainkit.report.labels.format_value`): shares of column ``key`` as
    percentages, ints with thousands separators, floats to 4 significant digits."""
    return labels.format_value(key, value)


def _columns(table: list[dict]) -> list[str]:
    """Keys in order of first appearance, minus the ``_sd`` and ``_chance`` keys shown inside another cell."""
    keys: list[str] = []
    for row in table:
        keys.extend(key for key in row if key not in keys)
    folded = set()
    for key in keys:
        base = key[: -len("_chance")]
        if key.endswith("_chance") and (base in keys or base + "_mean" in keys):
            folded.add(key)
        if key.endswith("_sd") and key[: -len("_sd")] + "_mean" in keys:
            folded.add(key)
    return [key for key in keys if key not in folded]


def _cell(row: dict, key: str) -> str:
    text = html.escape(format_value(row.get(key), key))
    base = key[: -len("_mean")] if key.endswith("_mean") else key
    if base != key and row.get(f"{base}_sd") is not None:
        text += f" &plusmn; {html.escape(_spread(row[f'{base}_sd'], key))}"
    chance = row.get(f"{base}_chance")
    if chance is not None:
        text += f' <span class="chance">(chance {html.escape(format_value(chance, f"{base}_chance"))})</span>'
    return text


def _spread(sd: object, key: str) -> str:
    """An sd beside its mean: in percentage points for a share."""
    if labels.is_share(key) and isinstance(sd, float):
        return f"{100 * sd:.1f}"
    return format_value(sd, "")


def table_html(table: list[dict]) -> str:
    """An HTML table, one row per method, with human column labels (:mod:`brainkit.report.labels`); ``X_chance``
    is shown beside ``X`` (or ``X_mean``), ``X_sd`` after ``X_mean``, shares as percentages."""
    columns = _columns(table)
    header = "".join(f"<th>{html.escape(labels.column_label(column))}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row, column)}</td>" for column in columns) + "</tr>\n" for row in table
    )
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def provenance(stamp: str, path: Path) -> str:
    """Who made the page: brainkit's version, the command, the machine, and where the run's config is."""
    import platform
    import shlex
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        __version__ = version("brainkit")  # not `from brainkit import`: the root package is above every layer
    except PackageNotFoundError:
        __version__ = "(not installed)"

    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "(python)"
    machine = (
        f"{platform.node() or 'unknown host'}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )
    config = " Config: config.json beside this page." if (Path(path).parent / "config.json").is_file() else ""
    return f"Generated {stamp} by brainkit {__version__}. Command: {command}. Machine: {machine}.{config}"


def _check_inputs(title, table, curves, retrieval, notes) -> None:
    if not isinstance(title, str):
        raise DataError(f"title is a {type(title).__name__}; expected a string.")
    if not isinstance(table, list) or not all(isinstance(row, dict) for row in table):
        raise DataError(
            "table must be a list of dicts, one per method, e.g. [{'method': 'ridge', 'top1': 0.4}]."
        )
    for number, row in enumerate(table):
        for key, value in row.items():
            if isinstance(value, list | tuple | dict | set | np.ndarray):
                raise DataError(
                    f"table[{number}][{key!r}] is a {type(value).__name__}; expected a number, string or None."
                )
    if not isinstance(curves, dict):
        raise DataError(
            f"curves is a {type(curves).__name__}; expected dict[method, list of per-epoch dicts]."
        )
    if not isinstance(retrieval, dict):
        raise DataError(f"retrieval is a {type(retrieval).__name__}; expected dict[method, RetrievalGrid].")
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise DataError("notes must be a list of strings, one paragraph each.")


def write_report(
    path: Path,
    title: str,
    table: list[dict],
    curves: dict[str, list[dict]],
    retrieval: dict[str, RetrievalGrid],
    notes: list[str],
    figures: dict[str, Figure] | None = None,
    tables: dict[str, list[dict]] | None = None,
) -> Path:
    """Write one self-contained HTML report (and its PNGs beside it), atomically.

    Parameters
    ----------
    path : Path
        The HTML file to write, e.g. ``run/report.html``; its folder is created.
    title : str
        Page title.
    table : list[dict]
        One row per method, e.g. ``{"method": "lite_mind", "params": 15_700_000, "train_time_s": 812.0,
        "fmri_to_image/top1": 0.41, "fmri_to_image/top1_chance": 0.001}``. ``X_chance`` is shown beside ``X``;
        ``X_sd`` after ``X_mean``. Missing keys show as "-".
    curves : dict[str, list[dict]]
        ``curves[method]`` = per-epoch records ``{"epoch": 1, "train_loss": ..., "val_top1": ...}``; every
        numeric key gets a panel against epoch, methods overlaid. May be empty.
    retrieval : dict[str, RetrievalGrid]
        Per method, chosen test images and what the brain data retrieved for them. May be empty.
    notes : list[str]
        Paragraphs shown under the table (plain text; escaped).
    figures : dict[str, Figure], optional
        More figures, caption -> matplotlib ``Figure``, shown after the curves and retrieval grids in order,
        each also saved as ``{stem}_{slug of caption}.png``.
    tables : dict[str, list[dict]], optional
        More tables, title -> rows (same rules as ``table``), shown after the main one.

    Returns
    -------
    Path
        ``path``. The figures are also saved as ``{stem}_curves.png`` and ``{stem}_retrieval.png``.
    """
    _check_inputs(title, table, curves, retrieval, notes)
    figures = figures or {}
    tables = tables or {}
    if not all(isinstance(f, Figure) for f in figures.values()):
        raise DataError("figures must map a caption to a matplotlib Figure.")
    for rows in tables.values():
        _check_inputs(title, rows, {}, {}, [])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    captions = {"methods": "Every method against chance (dashed)", "curves": "Training curves",
                "retrieval": "Retrieval examples"}  # fmt: skip
    built = {"methods": methods_figure(table), "curves": curves_figure(curves),
             "retrieval": retrieval_figure(retrieval)}  # fmt: skip
    for caption, figure in figures.items():
        slug = re.sub(r"[^a-z0-9]+", "_", caption.lower()).strip("_") or "figure"
        while slug in built:
            slug += "_"
        built[slug], captions[slug] = figure, caption
    images = {name: figure_png(figure) for name, figure in built.items() if figure is not None}

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(provenance(stamp, path))}</p>',
        "<h2>Results</h2>",
        table_html(table) if table else "<p>No results.</p>",
        *(f"<p>{html.escape(note)}</p>" for note in notes),
    ]
    for heading, rows in tables.items():
        parts += [f"<h2>{html.escape(heading)}</h2>", table_html(rows) if rows else "<p>No results.</p>"]
    for name, png in images.items():
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(captions[name])}</h2>")
        parts.append(f'<img alt="{html.escape(captions[name])}" src="data:image/png;base64,{encoded}">')
    parts += ["</body>", "</html>", ""]

    for name, png in images.items():
        _atomic_write_bytes(path.with_name(f"{path.stem}_{name}.png"), png)
    atomic_write_text(path, "\n".join(parts))
    path.chmod(0o644)  # mkstemp creates 0600; a report is meant to be read by others
    logger.info("Wrote report %s", path)
    return path
