"""The recorded benchmark tables, read and drawn (chapter 8).

``benchmarks/README.md`` records what ``benchmarks/bench_model.py`` and
``benchmarks/bench_metrics.py`` measured, one markdown table per run, under a ``###``
heading that names the date and the machine. The book does not re-run those benchmarks
(they need minutes, some of them a GPU); it reads the records:

* :func:`read_benchmark_tables` / :func:`parse_benchmark_tables`: every markdown table of
  the file as a :class:`BenchmarkTable` (its ``##`` section, ``###`` heading, the
  paragraph before it, the command that produced it, header and cells);
* :func:`find_table`: the one table of a section whose heading and header match;
* :func:`parse_number`, :func:`parse_numbers`, :func:`is_lower_bound`: numbers out of
  cells such as ``**3758**``, ``1,408``, ``2.64x``, ``44%``, ``>= 11,264``, ``0.73 / 0.73``;
* :func:`plot_speedups`: grouped bars of a ratio (speed-up over a baseline) per
  configuration, with optional floor lines; :func:`plot_largest_T`: the longest window
  each model fits, lower bounds marked; :func:`plot_flop_parts`: stacked bars of where a
  step's FLOPs go.

Plotting functions take plain numbers, refuse ill-shaped input with a ``ValueError``
naming the argument, and return the :class:`~matplotlib.figure.Figure` they drew on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colours of series that are not models (Okabe-Ito, as :mod:`mladlib.viz.training`).
SERIES_PALETTE = ("#D55E00", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#000000")

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_INLINE_COMMAND = re.compile(r"`(python[^`]*\bbenchmarks/[^`]+)`")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class BenchmarkTable:
    """One markdown table of a benchmark record.

    ``section``: the ``##`` heading above it (``"Model"``); ``subsection``: the ``###``
    heading (date and machine, ``""`` if none); ``caption``: the paragraph right before
    the table, on one line; ``command``: the command that produced it (see
    :func:`parse_benchmark_tables`), None if the record names none; ``header`` and
    ``rows``: cell texts with markdown emphasis removed; ``line``: the header's line
    number (1-based) in the file.
    """

    section: str
    subsection: str
    caption: str
    command: str | None
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int

    def column(self, name: str) -> list[str]:
        """The cells of column ``name``, top to bottom."""
        if name not in self.header:
            raise ValueError(f"table at line {self.line} has no column {name!r}; columns: {list(self.header)}")
        i = self.header.index(name)
        return [row[i] for row in self.rows]

    def records(self) -> list[dict[str, str]]:
        """One ``{column: cell}`` dict per row."""
        return [dict(zip(self.header, row)) for row in self.rows]

    def where(self, **cells: str) -> list[dict[str, str]]:
        """The records whose cells equal ``cells`` (keyword = column name; use
        ``**{"vs naive": "1.00x"}`` for names that are not identifiers)."""
        for name in cells:
            self.column(name)  # ValueError for an unknown column
        return [r for r in self.records() if all(r[k] == v for k, v in cells.items())]

    def format(self) -> str:
        """The table as fixed-width plain text: header, a rule, one line per row."""
        widths = [max(len(r[i]) for r in (self.header, *self.rows)) for i in range(len(self.header))]
        lines = [self.header, tuple("-" * w for w in widths), *self.rows]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in lines)


def strip_markup(cell: str) -> str:
    """A cell's text without markdown emphasis or code marks (``**42%**`` -> ``42%``)."""
    return re.sub(r"\*\*|__|`", "", cell).strip()


def parse_numbers(cell: str) -> list[float]:
    """Every number in ``cell`` in order, thousands separators removed:
    ``"0.73 / 0.73"`` -> ``[0.73, 0.73]``, ``"**1,082 MB** (472 before)"`` -> ``[1082.0, 472.0]``."""
    return [float(m.replace(",", "")) for m in _NUMBER.findall(strip_markup(cell))]


def parse_number(cell: str) -> float:
    """The one number of a cell (``"2.64x"``, ``"44%"``, ``"1,408"``, ``">= 11,264"``);
    NaN for an empty cell; ``ValueError`` naming the cell when it holds none or several."""
    if not strip_markup(cell):
        return math.nan
    numbers = parse_numbers(cell)
    if len(numbers) != 1:
        raise ValueError(f"cell {cell!r} holds {len(numbers)} numbers, expected one")
    return numbers[0]


def is_lower_bound(cell: str) -> bool:
    """True for cells that give a lower bound (``">= 11,264"``, ``"≥ 5"``)."""
    return strip_markup(cell).startswith((">=", "≥", ">"))


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [strip_markup(c) for c in body.split("|")]


def _is_rule(line: str) -> bool:
    cells = _cells(line)
    return bool(cells) and all(re.fullmatch(r":?-{3,}:?", c) for c in cells)


def _section_commands(lines: list[str]) -> list[tuple[str, str]]:
    """``(command, comment)`` of each ``python ... benchmarks/...`` line of the fenced code blocks in ``lines``."""
    found, fenced = [], False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
            continue
        text = line.strip()
        if fenced and text.startswith("python") and "benchmarks/" in text:
            command, _, comment = text.partition("#")
            found.append((" ".join(command.split()), comment.strip()))
    return found


def _command_for(before_in_subsection: list[str], subsection: str, section_lines: list[str]) -> str | None:
    """The closest inline ``python benchmarks/...`` command before the table in its
    subsection; else the section's fenced command whose comment names the subsection's
    device (GPU before CPU); else the section's first command; else None."""
    for line in reversed(before_in_subsection):
        commands = _INLINE_COMMAND.findall(line)
        if commands:
            return " ".join(commands[-1].split())
    candidates = _section_commands(section_lines)
    if not candidates:
        return None
    for device in ("GPU", "CPU"):
        if device in subsection:
            for command, comment in candidates:
                if device in comment:
                    return command
    return candidates[0][0]


def parse_benchmark_tables(text: str, source: str = "<text>") -> list[BenchmarkTable]:
    """Every markdown table of ``text`` (a benchmark record), in file order.

    A table is a header line of ``|``-separated cells, a rule line (``|---|---|``) and the
    rows after it, each with as many cells as the header (``ValueError`` naming ``source``
    and the line otherwise). Headings and tables inside fenced code blocks are ignored.
    The command of a table is the closest ``python ... benchmarks/...`` in inline code
    before it in its ``###`` subsection, or else the section's fenced command whose
    comment names the subsection's device.
    """
    lines = text.splitlines()
    fenced = [False] * len(lines)  # inside a fenced code block (the fence lines included)
    inside = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            inside = not inside
            fenced[i] = True
        else:
            fenced[i] = inside
    section_starts = [i for i, line in enumerate(lines) if line.startswith("## ") and not fenced[i]]

    def section_lines(start: int) -> list[str]:
        later = [s for s in section_starts if s > start]
        return lines[start:later[0] if later else len(lines)]

    tables: list[BenchmarkTable] = []
    section, subsection = "", ""
    section_start, subsection_start = 0, 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if fenced[i]:
            i += 1
            continue
        if line.startswith("## "):
            section, subsection = strip_markup(line[3:]), ""
            section_start = subsection_start = i
        elif line.startswith("### "):
            subsection = strip_markup(line[4:])
            subsection_start = i
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            header = tuple(_cells(line))
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                cells = _cells(lines[j])
                if len(cells) != len(header):
                    raise ValueError(f"{source}, line {j + 1}: a table row with {len(cells)} cells "
                                     f"under a header of {len(header)}")
                rows.append(tuple(cells))
                j += 1
            caption_lines = []
            k = i - 1
            while k > subsection_start and not lines[k].strip():
                k -= 1
            while k > subsection_start and lines[k].strip() and not lines[k].startswith("#"):
                caption_lines.insert(0, lines[k].strip())
                k -= 1
            command = _command_for(lines[subsection_start:i], subsection, section_lines(section_start))
            tables.append(BenchmarkTable(section, subsection, " ".join(caption_lines), command, header,
                                         tuple(rows), i + 1))
            i = j
            continue
        i += 1
    return tables


def read_benchmark_tables(path: str | Path) -> list[BenchmarkTable]:
    """:func:`parse_benchmark_tables` of the file at ``path`` (``FileNotFoundError`` naming it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark record not found: {path}")
    return parse_benchmark_tables(path.read_text(encoding="utf-8"), source=str(path))


def find_table(
    tables: Sequence[BenchmarkTable],
    section: str,
    subsection_contains: str = "",
    columns: Sequence[str] = (),
    command_contains: str = "",
) -> BenchmarkTable:
    """The one table of ``section`` whose ``###`` heading contains ``subsection_contains``,
    whose header has every name in ``columns`` and whose command contains
    ``command_contains``; ``ValueError`` saying how many matched otherwise."""
    found = [t for t in tables if t.section == section and subsection_contains in t.subsection
             and all(c in t.header for c in columns) and command_contains in (t.command or "")]
    if len(found) != 1:
        raise ValueError(
            f"{len(found)} tables match section {section!r}, heading containing {subsection_contains!r}, "
            f"columns {list(columns)} and command containing {command_contains!r}; expected exactly one")
    return found[0]


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
    Each bar is labelled with its value (``2.6x``). A grey line marks 1x; ``floors``
    (``{label: value}``) adds dashed lines, e.g. a target the speed-up must reach.
    ``log`` draws the value axis on a log scale. Returns the Figure.
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
        _, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) + 2), 3.8))
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
            ax.annotate(f"{value:.3g}x", (xpos, value), textcoords="offset points", xytext=(0, 2),
                        ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="#666666", linewidth=0.8)
    for k, (label, value) in enumerate((floors or {}).items()):
        ax.axhline(value, color="#333333", linestyle=("--", ":", "-.")[k % 3], linewidth=1.0, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x, list(groups), rotation=0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    top = max(v for values in groups.values() for v in values.values())
    top = max(top, *(floors or {}).values()) if floors else top
    if log:
        ax.set_ylim(min(0.8, *(v for values in groups.values() for v in values.values())) * 0.9, top * 2.0)
    else:
        ax.set_ylim(0, top * 1.18)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", fontsize=8)
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
        _, ax = plt.subplots(figsize=(7.5, 0.6 * len(parts) + 1.8))
    y = np.arange(len(parts))[::-1]
    totals = [sum(values.values()) for values in parts.values()]
    for k, name in enumerate(names):
        color = colors.get(name, SERIES_PALETTE[k % len(SERIES_PALETTE)])
        left = [sum(list(values.values())[:k]) for values in parts.values()]
        widths = [values[name] for values in parts.values()]
        ax.barh(y, widths, left=left, color=color, label=name, edgecolor="white", linewidth=0.5)
        for yi, l, w, total in zip(y, left, widths, totals):
            if total > 0 and w / max(totals) > 0.06:
                ax.annotate(f"{100 * w / total:.0f}%", (l + w / 2, yi), ha="center", va="center", fontsize=7,
                            color="white")
    for yi, total in zip(y, totals):
        ax.annotate(f"{total:,.1f}", (total, yi), textcoords="offset points", xytext=(3, 0), va="center",
                    fontsize=8)
    ax.set_yticks(y, list(parts))
    ax.set_xlim(0, max(totals) * 1.12)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(names), 4), fontsize=8, frameon=False)
    return ax.figure


__all__ = [
    "BenchmarkTable", "find_table", "is_lower_bound", "parse_benchmark_tables", "parse_number", "parse_numbers",
    "plot_flop_parts", "plot_largest_T", "plot_speedups", "read_benchmark_tables", "strip_markup",
]
