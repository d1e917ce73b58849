"""nbval: the cells that need the real annotation files are skipped when the files
cannot be had.

A chapter cell tagged ``needs-annotations`` uses the MultiTHUMOS/Charades labels. Before
the first such cell, the files are looked for once per test run, as the chapter itself
would (``$MLADLIB_ANNOTATIONS``, the cache, then a download; see
:func:`mladlib.data.fetch.require_annotations`). When that fails (no local copy, no
network, a refused file), every tagged cell is skipped with that one reason and the
other cells run. Untagged cells must therefore not use names that tagged cells define.
"""

from __future__ import annotations

import pytest

TAG = "needs-annotations"
_reason: list[str | None] = []  # filled on the first tagged cell


def _missing_reason() -> str | None:
    """None when both datasets' files are at hand, else why not (one line)."""
    if not _reason:
        from mladlib.data.fetch import AnnotationsUnavailable, require_annotations

        try:
            for name in ("multithumos", "charades"):
                require_annotations(name)
            _reason.append(None)
        except AnnotationsUnavailable as error:
            _reason.append(str(error))
    return _reason[0]


def pytest_runtest_setup(item: pytest.Item) -> None:
    cell = getattr(item, "cell", None)  # nbval's cell items carry their notebook cell
    if cell is None or TAG not in cell.get("metadata", {}).get("tags", ()):
        return
    reason = _missing_reason()
    if reason is not None:
        pytest.skip(f"{TAG}: {reason}")
