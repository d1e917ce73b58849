"""Checks of what a user hands in, shared by the command line and the API.

Every check raises an error whose message names the file, video or option at fault:
``FileNotFoundError``/``ValueError`` for bad input (the command line's exit status 2) and
:class:`WriteError` for an output that could not be written (exit status 3). Outputs are
checked *before* the work (:func:`check_outputs`), so a bad ``--out`` costs no evaluation.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np


class WriteError(OSError):
    """An output file could not be written (disk full, file size limit, permissions)."""

    def __str__(self) -> str:  # OSError would prefix "[Errno n]"
        return str(self.args[0]) if self.args else "cannot write a file"


def input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a ``Path`` if it is an existing file; else ``FileNotFoundError`` ("does not
    exist") or ``ValueError`` ("is a directory") naming ``what`` (e.g. ``"checkpoint"``)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_outputs(outputs: Mapping[str, str | os.PathLike | None], inputs: Iterable[str | os.PathLike]) -> None:
    """``ValueError`` naming the option when an output path cannot be written or is an input.

    ``outputs``: option name (e.g. ``"--out"``) -> path or None (not given). Each must not
    be a directory, its folder must exist and be writable, it must not be one of
    ``inputs`` (the files the command reads, compared after resolving links) and no two
    outputs may be the same file. Nothing is written.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    for flag, path in given.items():
        if path.is_dir():
            raise ValueError(f"{flag} {path} is a directory; name a file")
        folder = path.parent
        if not folder.is_dir():
            raise ValueError(f"{flag} {path}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {path}: the folder {folder} is not writable")
        for source in inputs:
            if _same_file(path, source):
                raise ValueError(f"{flag} {path} is one of this command's inputs; it would be overwritten. "
                                 "Choose another file")
    flags = list(given)
    for i, a in enumerate(flags):
        for b in flags[i + 1:]:
            if _same_file(given[a], given[b]):
                raise ValueError(f"{a} and {b} name the same file {given[a]}")


def check_finite(array: np.ndarray, where: str) -> None:
    """``ValueError`` giving ``where`` and the first bad step when a ``(T, D)`` array holds NaN or inf."""
    finite = np.isfinite(array)
    if not finite.all():
        step = int(np.argwhere(~finite)[0][0])
        raise ValueError(f"{where} has NaN or infinite features (first at step {step})")


def check_real_dtype(dtype: np.dtype, where: str) -> None:
    """``ValueError`` unless ``dtype`` holds real numbers (float, int): complex values would
    lose their imaginary part, strings and compound types mean no features."""
    if np.dtype(dtype).kind not in "fiu":
        raise ValueError(f"{where} holds {np.dtype(dtype)} values; expected real numbers (float)")


# --- argparse types: the option's name is added by argparse ("argument --window: ...") ---


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_value(text: str) -> int:
    """A seed: an integer in [0, 2**63) (NumPy's seed sequences take no negative numbers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63), got {value}")
    return value


def open_fraction(text: str) -> float:
    """A float strictly between 0 and 1 (a score threshold)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return value
