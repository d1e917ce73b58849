"""Print every line over 88 characters that a book chapter shows with literalinclude.

Reads each ``{literalinclude}`` in ``book/*.ipynb``, applies its ``:pyobject:``,
``:lines:``, ``:start-at:``/``:start-after:`` and ``:end-at:``/``:end-before:``
options as Sphinx does, and prints ``chapter: file:line (width)`` for each shown line
wider than the limit, or a line naming an include whose file or object is missing.
Prints nothing when every shown line fits. Run from the repository root:
``python tools/long_included_lines.py``.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

LIMIT = 88
INCLUDE = re.compile(r"```+\{literalinclude\}\s+(\S+)\n((?::[\w-]+:.*\n)*)")
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def object_lines(source: str, dotted: str) -> list[int] | None:
    """1-based line numbers of ``dotted`` (``Class.method``) with its decorators."""
    body, node = ast.parse(source).body, None
    for part in dotted.split("."):
        node = next((n for n in body if isinstance(n, DEFS) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return list(range(start, node.end_lineno + 1))


def pick(numbers: list[int], spec: str) -> list[int]:
    """Sphinx's ``:lines:`` selection (``1,3-5,7-``) applied to ``numbers``."""
    chosen = []
    for piece in spec.split(","):
        first, _, last = piece.strip().partition("-")
        if not _:
            last = first
        stop = int(last) if last else len(numbers)
        chosen.extend(range(int(first or 1), stop + 1))
    return [numbers[i - 1] for i in chosen if i <= len(numbers)]


def first_match(texts: list[str], needle: str, start: int = 0) -> int | None:
    return next((k for k in range(start, len(texts)) if needle in texts[k]), None)


def shown_lines(lines: list[str], opts: dict[str, str]) -> list[int] | str:
    """Line numbers an include shows, or why it shows nothing."""
    numbers = list(range(1, len(lines) + 1))
    if "pyobject" in opts:
        found = object_lines("\n".join(lines), opts["pyobject"])
        if found is None:
            return "MISSING OBJECT"
        numbers = found
    if "lines" in opts:
        numbers = pick(numbers, opts["lines"])
    texts = [lines[i - 1] for i in numbers]
    begin, end = 0, len(texts)
    if "start-at" in opts or "start-after" in opts:
        k = first_match(texts, opts.get("start-at") or opts["start-after"])
        if k is None:
            return "START NOT FOUND"
        begin = k if "start-at" in opts else k + 1
    if "end-at" in opts or "end-before" in opts:
        k = first_match(texts, opts.get("end-at") or opts["end-before"], begin)
        if k is None:
            return "END NOT FOUND"
        end = k + 1 if "end-at" in opts else k
    return numbers[begin:end]


def main(root: Path) -> None:
    for chapter in sorted((root / "book").glob("*.ipynb")):
        for cell in json.loads(chapter.read_text())["cells"]:
            for match in INCLUDE.finditer("".join(cell["source"])):
                target = match.group(1)
                found = re.findall(r":([\w-]+):(.*)", match.group(2))
                opts = {key: value.strip() for key, value in found}
                where = f"{chapter.name}: {target} {opts.get('pyobject', '')}".rstrip()
                path = (chapter.parent / target).resolve()
                if not path.exists():
                    print(f"{where}: MISSING FILE")
                    continue
                lines = path.read_text().splitlines()
                shown = shown_lines(lines, opts)
                if isinstance(shown, str):
                    print(f"{where}: {shown}")
                    continue
                for i in shown:
                    if len(lines[i - 1]) > LIMIT:
                        name = path.relative_to(root)
                        print(f"{where}: {name}:{i} ({len(lines[i - 1])})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
