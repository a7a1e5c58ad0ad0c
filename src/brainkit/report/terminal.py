"""Run results as plain-text tables for the terminal (what ``brainkit run`` / ``eval`` / ``import-weights``
print), labelled and formatted as the HTML reports are.

``metrics_tables(metrics)``: a run's ``metrics.json`` mapping -> {title: rows}; ``format_table(rows)``: rows (flat
dicts) -> a string no wider than ``width``; ``print_closing``: a run's notes, folder and time.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from brainkit.report.labels import column_label, format_value

TERMINAL_WIDTH = 120


def format_table(rows: list[dict], width: int = TERMINAL_WIDTH) -> str:
    """A plain-text table with one row per method, no wider than ``width``, labelled and formatted as the HTML
    reports are (:mod:`brainkit.report.labels`): when the columns do not fit, the table is split into blocks of
    columns, each repeating the first (the method) column."""
    if not rows:
        return "(no results)"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[format_value(k, r.get(k, "")) for k in keys] for r in rows]
    keys = [column_label(k) for k in keys]  # the same labels and formats as report.html
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    blocks, current, used = [], [], widths[0]
    for i in range(1, len(keys)):
        if current and used + 2 + widths[i] > width:
            blocks.append(current)
            current, used = [], widths[0]
        current.append(i)
        used += 2 + widths[i]
    blocks.append(current)
    out = []
    for block in blocks:
        columns = [0, *block]
        line = "  ".join(keys[i].ljust(widths[i]) for i in columns)
        rule = "  ".join("-" * widths[i] for i in columns)
        body = ["  ".join(row[i].ljust(widths[i]) for i in columns) for row in cells]
        out.append("\n".join([line.rstrip(), rule, *(b.rstrip() for b in body)]))
    return "\n\n".join(out)


def metrics_tables(metrics: dict) -> dict[str, list[dict]]:
    """A run's metrics as titled tables: a list of flat rows stays a table, a mapping of method -> flat scores
    becomes one row per method, the remaining numbers one "summary" row (what `brainkit eval` prints)."""

    def flat(value) -> bool:
        return isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values())

    tables: dict[str, list[dict]] = {}
    summary = {}
    for key, value in metrics.items():
        if isinstance(value, list) and value and all(flat(v) for v in value):
            tables[key] = value
        elif flat(value):
            tables.setdefault("metrics", []).append({"method": key, **value})
        elif isinstance(value, dict) and all(flat(v) for v in value.values()):
            tables[key] = [{"method": name, **row} for name, row in value.items()]
        elif isinstance(value, int | float | str):
            summary[key] = value
    if summary:
        tables["summary"] = [summary]
    return tables


def print_closing(notes: list[str], folder: Path, seconds: float) -> None:
    """The notes as bullets, then where the run folder and its report are, and how long it took."""
    for note in notes:  # wrapped to the terminal tables' width
        print(textwrap.fill(note, TERMINAL_WIDTH, initial_indent="- ", subsequent_indent="  "))
    print(f"\nRun folder: {folder}\nReport:     {folder / 'report.html'}")
    print(f"Total time: {seconds:.0f} s")
