"""The package's imports flow one way: data, models and metrics never import from the
layers that use them (train, the command line, the figures, the book's helpers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mladlib"
LOWER = ("data", "models", "metrics")
UPPER = ("train", "cli", "viz", "book", "interpret", "semireal", "__main__")


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``, at any depth
    (inside functions too); ``from .. import x`` counts as importing ``<package>.x``."""
    package = ["mladlib", *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def upward_imports(layer: str, root: Path = PACKAGE) -> list[str]:
    """``"<file>:<line> imports <module>"`` for each import of an upper layer."""
    forbidden = tuple(f"mladlib.{name}" for name in UPPER)
    below = tuple(f"{name}." for name in forbidden)
    return [f"{path.relative_to(root.parent)}:{line} imports {module}"
            for path in sorted((root / layer).rglob("*.py"))
            for line, module in imported_modules(path, root)
            if module in forbidden or module.startswith(below)]


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upward(layer):
    assert upward_imports(layer) == []


def test_the_check_sees_relative_and_deferred_imports(tmp_path):
    # the check itself: a function-level relative import of the layer above is caught
    fake = tmp_path / "mladlib"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "x.py").write_text(
        "from .spec import A\n\ndef f():\n    from ..train import inference\n"
        "    from .. import viz\n    import mladlib.cli\n")
    assert upward_imports("data", fake) == [
        "mladlib/data/x.py:4 imports mladlib.train",
        "mladlib/data/x.py:4 imports mladlib.train.inference",
        "mladlib/data/x.py:5 imports mladlib.viz",
        "mladlib/data/x.py:6 imports mladlib.cli",
    ]
