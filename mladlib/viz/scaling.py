"""Benchmark records, read and drawn (chapter 8).

Every benchmark run is kept as one JSON file under ``benchmarks/results/`` (a *record*):
what was measured, where and when, with which software and command, and its rows of
numbers. ``benchmarks/render_tables.py`` writes the tables of ``benchmarks/README.md``
from these files; the book reads them directly:

* :func:`read_record` / :func:`read_records`: records as :class:`BenchmarkRecord`;
* :meth:`BenchmarkRecord.where` / :meth:`BenchmarkRecord.row`: rows by their fields;
* :meth:`BenchmarkRecord.table`: the record's table as Markdown or as aligned plain
  text, with a chosen subset of its columns (narrow enough for a page);
* :func:`plot_speedups`: grouped bars of a ratio (speed-up over a baseline) per
  configuration, with optional floor lines; :func:`plot_largest_T`: the longest window
  each model fits, lower bounds marked; :func:`plot_flop_parts`: stacked bars of where a
  step's FLOPs go.

A record is a JSON object with ``benchmark``, ``title``, ``date``, ``machine``,
``software`` (``mladlib`` and ``torch`` at least), ``command``, ``source``, ``columns``
and ``rows``. Each column is ``{"label": ..., "cell": template}``, the template a
:meth:`str.format` string over the row's fields (``"{ms_per_step:.0f}"``); a cell whose
fields a row lacks is blank, and a column may name a boolean field whose truth prefixes
the cell (``"bound": "lower_bound"`` writes ``>= 11,264``).

Plotting functions take plain numbers, refuse ill-shaped input with a ``ValueError``
naming the argument, and return the :class:`~matplotlib.figure.Figure` they drew on.
"""

from __future__ import annotations

import json
import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colours of series that are not models (Okabe-Ito, as :mod:`mladlib.viz.training`).
SERIES_PALETTE = ("#D55E00", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#000000")

_NUMERIC = re.compile(r"(>= )?[-+\d,.e]+ ?[x%]?( / [-+\d,.e]+[x%]?)?( [a-zA-Z/]+)?")

#: Fields every record must have.
RECORD_FIELDS = ("benchmark", "title", "date", "machine", "software", "command",
                 "source", "columns", "rows")


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True)
class BenchmarkRecord:
    """One benchmark run: its metadata (``meta``: every key of the JSON file but the
    rows), its ``columns`` and its ``rows`` (dicts of numbers, strings and booleans);
    ``name`` is the file's stem."""

    name: str
    meta: Mapping[str, Any]
    columns: tuple[Mapping[str, str], ...]
    rows: tuple[Mapping[str, Any], ...]

    def __getitem__(self, key: str) -> Any:
        return self.meta[key]

    def where(self, **fields: Any) -> list[Mapping[str, Any]]:
        """The rows whose fields equal ``fields`` (a row lacking one never matches)."""
        return [r for r in self.rows
                if all(k in r and r[k] == v for k, v in fields.items())]

    def row(self, **fields: Any) -> Mapping[str, Any]:
        """The one row whose fields equal ``fields``; ``ValueError`` naming the record
        and saying how many matched otherwise."""
        found = self.where(**fields)
        if len(found) != 1:
            raise ValueError(
                f"record {self.name}: {len(found)} rows have {fields}, expected one")
        return found[0]

    def cell(self, row: Mapping[str, Any], column: Mapping[str, str]) -> str:
        """The text of ``row`` under ``column`` (blank where the row lacks a field)."""
        template = column["cell"]
        if any(row.get(name) is None for name in _fields(template)):
            return ""
        text = template.format(**row)
        bound = column.get("bound")
        return (">= " + text) if bound and row.get(bound) else text

    def table(self, columns: Sequence[str] | None = None,
              rows: Sequence[Mapping[str, Any]] | None = None, markdown: bool = False,
              headers: Mapping[str, str] | None = None) -> str:
        """The record's table: the columns whose labels are in ``columns`` (all by
        default, in the order given), the ``rows`` given (all by default); Markdown, or
        plain text with aligned columns (numbers right-aligned). ``headers`` renames
        columns for a narrower table (``{"CPU ms/step": "ms"}``). ``ValueError``
        naming an unknown column."""
        labels = [c["label"] for c in self.columns]
        chosen = list(columns) if columns is not None else labels
        for label in chosen:
            if label not in labels:
                raise ValueError(
                    f"record {self.name} has no column {label!r}; columns: {labels}")
        spec = [self.columns[labels.index(label)] for label in chosen]
        rows = self.rows if rows is None else rows
        body = [[self.cell(r, c) for c in spec] for r in rows]
        chosen = [(headers or {}).get(label, label) for label in chosen]
        if markdown:
            lines = [chosen, ["---"] * len(chosen), *body]
            return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
        widths = [max(len(x[i]) for x in (chosen, *body)) for i in range(len(chosen))]
        numeric = [all(not cells[i] or _NUMERIC.fullmatch(cells[i]) for cells in body)
                   for i in range(len(chosen))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if right else c.ljust(w)
                             for c, w, right in zip(cells, widths, numeric)).rstrip()

        rule = ["-" * w for w in widths]
        return "\n".join([line(chosen), line(rule), *map(line, body)])


def check_record(data: Mapping[str, Any], source: str = "<record>") -> None:
    """``ValueError`` naming ``source`` unless ``data`` is a well-formed record: every
    field of :data:`RECORD_FIELDS`, ``software`` naming ``mladlib`` and ``torch``, every
    column a label and a cell template, every row an object."""
    missing = [f for f in RECORD_FIELDS if f not in data]
    if missing:
        raise ValueError(f"{source}: a benchmark record needs {missing}")
    for name in ("mladlib", "torch"):
        if name not in data["software"]:
            raise ValueError(f"{source}: software must name the {name} version")
    for k, column in enumerate(data["columns"]):
        if not isinstance(column, dict) or not {"label", "cell"} <= column.keys():
            raise ValueError(f"{source}: column {k} needs a label and a cell template")
    for k, row in enumerate(data["rows"]):
        if not isinstance(row, dict):
            raise ValueError(f"{source}: row {k} is not an object")


def read_record(path: str | Path) -> BenchmarkRecord:
    """The record in the JSON file at ``path``; ``FileNotFoundError`` or ``ValueError``
    naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark record not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    check_record(data, str(path))
    meta = {k: v for k, v in data.items() if k != "rows"}
    return BenchmarkRecord(path.stem, meta, tuple(data["columns"]), tuple(data["rows"]))


def read_records(directory: str | Path,
                 benchmark: str | None = None) -> dict[str, BenchmarkRecord]:
    """Every record (``*.json`` with a ``columns`` field) in ``directory`` by name, in
    name order; only those of ``benchmark`` (``"bench_model"``) if given. Other JSON
    files there (results that are not tables) are skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"benchmark records folder not found: {directory}")
    records = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "columns" in data and "rows" in data:
            record = read_record(path)
            if benchmark is None or record["benchmark"] == benchmark:
                records[record.name] = record
    return records


# ----------------------------------------------------------------------------- figures

def plot_speedups(
    groups: Mapping[str, Mapping[str, float]],
    title: str,
    ylabel: str = "speed-up over the naive layout (x)",
    floors: Mapping[str, float] | None = None,
    colors: Mapping[str, str] | None = None,
    log: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: one group per key of ``groups`` (a configuration), one bar per
    series inside it (``{series: value}``; a series missing from a group leaves a gap).
    Each bar is labelled with its value (``2.6x``; upright when a group holds more than
    two bars, so that neighbours' labels never overlap). Group names of two lines whose
    first line repeats (``"MultiTHUMOS\\nB = 1"``, ``"MultiTHUMOS\\nB = 8"``) make a
    two-level axis: the second lines as ticks, each first line once below its run of
    groups. The legend sits below the axes. A grey line marks 1x;
    ``floors`` (``{label: value}``) adds dashed lines, e.g. a target the speed-up must
    reach. ``log`` draws the value axis on a log scale. The figure is at most the book's
    7 inches wide, so that no text falls below about 11 px at a 1400 px window.
    Returns the Figure.
    """
    if not groups:
        raise ValueError("groups is empty: nothing to plot")
    series: list[str] = []
    for name, values in groups.items():
        if not values:
            raise ValueError(f"group {name!r} has no values")
        for label, value in values.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"groups[{name!r}][{label!r}] must be a positive number, got {value!r}")
            if label not in series:
                series.append(label)
    colors = dict(colors or {})
    if ax is None:
        _, ax = plt.subplots(figsize=(min(7.0, max(5.0, 1.0 * len(groups) + 2)), 3.8))
    upright = len(series) > 2
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for k, label in enumerate(series):
        color = colors.get(label, SERIES_PALETTE[k % len(SERIES_PALETTE)])
        labelled = False
        for g, values in enumerate(groups.values()):
            if label not in values:
                continue
            value = float(values[label])
            xpos = x[g] - 0.4 + (k + 0.5) * width  # the series keeps its slot in every group
            ax.bar(xpos, value, width * 0.92, color=color, label=None if labelled else label)
            labelled = True
            ax.annotate(f"{value:.3g}x", (xpos, value), textcoords="offset points",
                        xytext=(0, 2), ha="center", va="bottom", fontsize=9,
                        rotation=90 if upright else 0)
    ax.axhline(1.0, color="#666666", linewidth=0.8)
    for k, (label, value) in enumerate((floors or {}).items()):
        ax.axhline(value, color="#333333", linestyle=("--", ":", "-.")[k % 3], linewidth=1.0, label=label)
    if log:
        ax.set_yscale("log")
    heads = [name.partition("\n")[0] for name in groups]
    shared = any(a == b for a, b in zip(heads, heads[1:]))
    if shared:  # two-level axis: the shared first line once below its run of groups
        ax.set_xticks(x, [name.partition("\n")[2] for name in groups])
        start = 0
        for k in range(1, len(heads) + 1):
            if k == len(heads) or heads[k] != heads[start]:
                ax.text((x[start] + x[k - 1]) / 2, -0.12, heads[start], ha="center",
                        va="top", fontsize=10, transform=ax.get_xaxis_transform())
                start = k
    else:
        ax.set_xticks(x, list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    top = max(v for values in groups.values() for v in values.values())
    top = max(top, *(floors or {}).values()) if floors else top
    if log:
        lowest = min(v for values in groups.values() for v in values.values())
        ax.set_ylim(min(0.8, lowest) * 0.9, top * 2.5)
    else:
        ax.set_ylim(0, top * (1.32 if upright else 1.18))
    ax.grid(axis="x", visible=False)
    entries = len(series) + len(floors or {})  # below the axes, it hides no bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22 if shared else -0.18),
              ncol=min(entries, 3), fontsize=9, frameon=False)
    return ax.figure


def plot_largest_T(
    entries: Sequence[tuple[str, float, bool]],
    title: str,
    reference: tuple[str, float] | None = None,
    notes: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Horizontal bars of the longest window (in steps of 1/3 s) each entry fits, on a
    log axis. ``entries``: ``(label, T, lower_bound)``; a lower bound ("at least T": the
    search stopped for time, not memory) is drawn hatched with an arrow. ``reference``
    (``(label, T)``) draws a vertical line, e.g. the training window. ``notes``: a text
    per entry written after its bar (e.g. the peak memory). Returns the Figure.
    """
    if not entries:
        raise ValueError("entries is empty: nothing to plot")
    for label, T, _ in entries:
        if not (math.isfinite(T) and T > 0):
            raise ValueError(f"entry {label!r}: T must be a positive number, got {T!r}")
    if notes is not None and len(notes) != len(entries):
        raise ValueError(f"notes has {len(notes)} texts for {len(entries)} entries")
    if colors is not None and len(colors) != len(entries):
        raise ValueError(f"colors has {len(colors)} colours for {len(entries)} entries")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.55 * len(entries) + 1.4))
    y = np.arange(len(entries))[::-1]
    for k, (label, T, lower) in enumerate(entries):
        color = colors[k] if colors is not None else SERIES_PALETTE[k % len(SERIES_PALETTE)]
        ax.barh(y[k], T, color=color, hatch="//" if lower else None, edgecolor="white" if lower else color)
        text = f"{'>= ' if lower else ''}{T:,.0f}"
        if notes is not None and notes[k]:
            text += f"  ({notes[k]})"
        if lower:
            ax.annotate("", xy=(T * 1.35, y[k]), xytext=(T, y[k]),
                        arrowprops=dict(arrowstyle="->", color=color, linewidth=1.5))
        ax.annotate(text, (T * (1.45 if lower else 1.05), y[k]), va="center", fontsize=8)
    if reference is not None:
        ref_label, ref_T = reference
        ax.axvline(ref_T, color="#333333", linestyle="--", linewidth=1.0, label=ref_label)
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xscale("log")
    largest = max(T for _, T, _ in entries)
    smallest = min([T for _, T, _ in entries] + ([reference[1]] if reference else []))
    ax.set_xlim(smallest / 2, largest * 12)
    ax.set_yticks(y, [label for label, _, _ in entries])
    ax.set_xlabel("largest window T that fits (time steps of 1/3 s, log scale)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return ax.figure


def plot_flop_parts(
    parts: Mapping[str, Mapping[str, float]],
    title: str,
    xlabel: str = "GFLOP per training step and window",
    colors: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Stacked horizontal bars: one bar per key of ``parts`` (a model at a size), split
    into its parts (``{part: value}``, the same part names in every bar, in the same
    order), each segment labelled with its share when it is wide enough. Returns the Figure.
    """
    if not parts:
        raise ValueError("parts is empty: nothing to plot")
    names = list(next(iter(parts.values())))
    for bar, values in parts.items():
        if list(values) != names:
            raise ValueError(f"parts[{bar!r}] has parts {list(values)}, expected {names}")
        for name, value in values.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"parts[{bar!r}][{name!r}] must be a number >= 0, got {value!r}")
    colors = dict(colors or {})
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.6 * len(parts) + 1.8))
    y = np.arange(len(parts))[::-1]
    totals = [sum(values.values()) for values in parts.values()]
    for k, name in enumerate(names):
        color = colors.get(name, SERIES_PALETTE[k % len(SERIES_PALETTE)])
        left = [sum(list(values.values())[:k]) for values in parts.values()]
        widths = [values[name] for values in parts.values()]
        ax.barh(y, widths, left=left, color=color, label=name, edgecolor="white", linewidth=0.5)
        for yi, l, w, total in zip(y, left, widths, totals):
            if total > 0 and w / max(totals) > 0.06:
                ax.annotate(f"{100 * w / total:.0f}%", (l + w / 2, yi), ha="center",
                            va="center", fontsize=8, color="white")
    for yi, total in zip(y, totals):
        ax.annotate(f"{total:,.1f}", (total, yi), textcoords="offset points", xytext=(3, 0), va="center",
                    fontsize=8)
    ax.set_yticks(y, list(parts))
    ax.set_xlim(0, max(totals) * 1.12)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(names), 3),
              fontsize=9, frameon=False)
    return ax.figure


__all__ = [
    "BenchmarkRecord", "RECORD_FIELDS", "check_record", "plot_flop_parts",
    "plot_largest_T", "plot_speedups", "read_record", "read_records",
]
