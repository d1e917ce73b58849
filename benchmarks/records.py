"""Benchmark records: one JSON file per run (the format: :mod:`mladlib.viz.scaling`).

The benchmark scripts build a record with :func:`make_record` and write it with
:func:`write_record`; ``benchmarks/render_tables.py`` renders the README's tables from
the files, and the book reads them with :func:`mladlib.viz.scaling.read_record`.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

import mladlib
from mladlib.utils import atomic_path
from mladlib.viz.scaling import check_record


REPO = Path(__file__).resolve().parents[1]


def library_state() -> dict[str, Any]:
    """The commit the process runs (``git rev-parse HEAD``) and whether the tree is
    clean, the record folder aside (records land there while the runs go on)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git(
            "status", "--porcelain", "--", ".", ":(exclude)benchmarks/results"
        )
    except (OSError, subprocess.CalledProcessError) as error:
        return {"commit": None, "clean": None, "git_error": str(error)}
    return {
        "commit": commit,
        "clean": not changes.strip(),
        "changes": changes.splitlines()[:20],
    }


def software(**more: Any) -> dict[str, Any]:
    """The versions a record names: mladlib, torch, Python (and ``more``)."""
    return {"mladlib": mladlib.__version__, "torch": torch.__version__,
            "python": platform.python_version(), **more}


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran, as a reader would type it (``python benchmarks/...``)."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    shown = f"benchmarks/{script.name}" if script.suffix == ".py" else argv[0]
    return " ".join(["python", shown, *map(shlex.quote, argv[1:])])


def make_record(benchmark: str, title: str, machine: Mapping[str, Any],
                columns: Sequence[Mapping[str, str]], rows: Sequence[Mapping[str, Any]],
                argv: Sequence[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A record of this run: today's date, this process's command line and software
    versions, ``machine`` (cpu, cores, gpu), the table (``columns``, ``rows``) and
    ``extra`` fields (settings, notes)."""
    record = {"benchmark": benchmark, "title": title, "date": time.strftime("%Y-%m-%d"),
              "machine": dict(machine), "software": software(),
              "command": command_line(argv),
              "source": f"written by benchmarks/{benchmark}.py", **extra,
              "columns": [dict(c) for c in columns], "rows": [dict(r) for r in rows]}
    check_record(record, benchmark)
    return record


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as JSON at ``path`` (all or nothing); returns the path."""
    check_record(record, str(path))
    with atomic_path(path, suffix=".json") as tmp:
        text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
