"""Render the tables of ``benchmarks/README.md`` from the JSON records.

Each table in the README sits between two markers::

    <!-- table: model_h200_2026-12-04 | model, B, T, dtype, ms/step, vs naive -->
    ... (written by this script) ...
    <!-- end table -->

naming a record of ``benchmarks/results/`` (the file's stem) and, optionally, the labels
of the columns to show (all by default). The script rewrites what lies between the
markers; ``--check`` only reports the tables that are out of date (exit status 1).

    python benchmarks/render_tables.py            # rewrite benchmarks/README.md
    python benchmarks/render_tables.py --check    # is it up to date?
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from mladlib.utils import atomic_path  # noqa: E402
from mladlib.viz.scaling import read_record  # noqa: E402

README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)"
                   r"(<!-- end table -->)", re.DOTALL)


def render(text: str, results: Path = RESULTS, source: str = "README") -> str:
    """``text`` with every marked table rewritten from its record in ``results``;
    ``ValueError`` naming ``source`` and the marker for a missing record or column."""

    def table(match: re.Match) -> str:
        name, _, columns = (part.strip() for part in match["spec"].partition("|"))
        labels = [c.strip() for c in columns.split(",")] if columns else None
        try:
            record = read_record(results / f"{name}.json")
            body = record.table(labels, markdown=True)
        except (FileNotFoundError, ValueError) as error:
            marker = match["spec"]
            raise ValueError(f"{source}: table marker {marker!r}: {error}") from error
        return f"{match[1]}{body}\n{match[4]}"

    return BLOCK.sub(table, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="report out-of-date tables, change nothing")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    rendered = render(text, args.results, str(args.readme))
    stale = [m["spec"] for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(rendered))
             if m["body"] != n["body"]]
    if args.check:
        for spec in stale:
            print(f"{args.readme}: table {spec!r} is out of date; "
                  "run python benchmarks/render_tables.py")
        return 1 if stale else 0
    if stale:
        with atomic_path(args.readme, suffix=".md") as tmp:
            tmp.write_text(rendered, encoding="utf-8")
    print(f"{args.readme}: {len(stale)} table(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
