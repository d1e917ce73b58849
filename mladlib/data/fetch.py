"""The public MultiTHUMOS/Charades annotation files, downloaded once and checksum-verified.

``fetch_annotations("multithumos")`` returns a folder in the layout that ``--root`` and
:meth:`~mladlib.data.VideoDataset.from_folder` read, minus the features::

    <cache>/annotations/multithumos/annotations.json   the shared JSON layout
    <cache>/annotations/multithumos/train_list.txt     video ids of each split
    <cache>/annotations/multithumos/test_list.txt
    <cache>/annotations/multithumos/classes.txt        class names (local copies only)

Sources, each pinned to a commit and a SHA-256:

* the annotation JSON from ``piergiaj/super-events-cvpr18`` (``data/<name>.json``), the file
  the super-events, TGM, MLAD, PDAN and MS-TCT code all read;
* the split lists from ``ptirupat/MLAD`` (``datasets/Multi-THUMOS/``, ``datasets/Charades/``);
* ``classes.txt``: neither repository publishes the class names as a file (MultiTHUMOS's
  ``class_list.txt`` and Charades' ``Charades_v1_classes.txt`` ship inside the datasets'
  own archives), so it comes only from a local copy; a download leaves it out and the
  tables show class indices instead of names.

``$MLADLIB_ANNOTATIONS`` (or ``root=``) names a local folder holding ``multithumos/`` and
``charades/`` with the files under their published names (``multithumos.json``,
``train_list.txt``, ``test_list.txt``, ``classes.txt``); those copies are verified
against the same hashes. A file whose hash differs, or a transfer cut short, is refused
with an error naming the file, and never left in the cache: every file is written to a
temporary name and renamed only after its hash checked out.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..utils import atomic_path

#: Environment variable naming a local folder of annotation copies (``multithumos/``,
#: ``charades/``) to use instead of downloading.
ANNOTATIONS_ENV = "MLADLIB_ANNOTATIONS"

#: Where the pinned URLs point; ``mirror=`` replaces this prefix (tests: a local server).
GITHUB_RAW = "https://raw.githubusercontent.com"

_SUPER_EVENTS = "piergiaj/super-events-cvpr18/d4f940565d878ddf573a4a888c61d167683fae42"
_MLAD = "ptirupat/MLAD/6337cb32d328cb290c549c401c07a22ec35752cd"


@dataclass(frozen=True)
class AnnotationFile:
    """One file of a dataset folder: its name there, where it is published, its hash.

    ``remote``: path below :data:`GITHUB_RAW` (``owner/repo/commit/path``), None when the
    file is not published on GitHub. ``local``: its name in a local copy's dataset folder.
    """

    name: str
    sha256: str
    local: str
    remote: str | None = None


DATASET_FILES: dict[str, tuple[AnnotationFile, ...]] = {
    "multithumos": (
        AnnotationFile(
            "annotations.json",
            "17f2574c9d692b8b187476d22b2d11b5241440eba4bfd297059176057b740edf",
            "multithumos.json", f"{_SUPER_EVENTS}/data/multithumos.json"),
        AnnotationFile(
            "train_list.txt",
            "6555809f8e1e733a6c8d8cb4a87cffd475e1630cab141028dd6d90c286a7d9f2",
            "train_list.txt", f"{_MLAD}/datasets/Multi-THUMOS/train_list.txt"),
        AnnotationFile(
            "test_list.txt",
            "d6f4e396838122a72c11e6af1147773520f4f456d9bc33f7ccdfe3891efa5cf7",
            "test_list.txt", f"{_MLAD}/datasets/Multi-THUMOS/test_list.txt"),
        AnnotationFile(
            "classes.txt",
            "502ca648847754fde3857b2e078c5db91a6199fb2534d971841190f121018d9d",
            "classes.txt"),
    ),
    "charades": (
        AnnotationFile(
            "annotations.json",
            "42de4feae0ae2705d847776393637edafce6d8d47cfbf9ed19b8cd182d370155",
            "charades.json", f"{_SUPER_EVENTS}/data/charades.json"),
        AnnotationFile(
            "train_list.txt",
            "21a92ece8ac8dfaa99c4cfee025fb62af1036a114d5e05b22cbe6b747a52a1bf",
            "train_list.txt", f"{_MLAD}/datasets/Charades/train_list.txt"),
        AnnotationFile(
            "test_list.txt",
            "41068c6f47a77d77d0d1c0c9c49c7d31658d67e577a48e5af7f072fa12ec2d3b",
            "test_list.txt", f"{_MLAD}/datasets/Charades/test_list.txt"),
        AnnotationFile(
            "classes.txt",
            "7b95127e60300d6a69849d161869eb3e9657fa320fc9e92b6f2c9403b49c1887",
            "classes.txt"),
    ),
}


class ChecksumError(ValueError):
    """A file's SHA-256 is not the pinned one (a corrupt, partial or different file)."""


def fetch_annotations(
    name: str, root: str | os.PathLike | None = None, *, mirror: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """The dataset folder of ``name`` (``"multithumos"`` or ``"charades"``), labels only.

    Looks in ``root``, else ``$MLADLIB_ANNOTATIONS``, for a local copy (``<root>/<name>/``);
    without either, downloads the published files from ``mirror`` (default
    :data:`GITHUB_RAW`). Files already in the cache (``$MLADLIB_CACHE/annotations/<name>/``)
    are reused when their hash still matches. Raises ``ValueError`` for an unknown name,
    :class:`ChecksumError` naming the file and both hashes for a corrupt copy or download,
    ``FileNotFoundError`` for a missing local file and ``OSError`` naming the URL when a
    download fails.
    """
    if name not in DATASET_FILES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_FILES)}")
    if root is None and os.environ.get(ANNOTATIONS_ENV):
        root = os.environ[ANNOTATIONS_ENV]
    folder = annotations_cache() / name
    for item in DATASET_FILES[name]:
        target = folder / item.name
        if target.is_file() and sha256_of(target) == item.sha256:
            continue  # verified earlier; a stale or tampered file is replaced below
        if root is not None:
            source = Path(root) / name / item.local
            if not source.is_file():
                if item.remote is None:
                    target.unlink(missing_ok=True)  # a stale copy must not stay
                    continue  # optional: the names are not published as a file
                raise FileNotFoundError(
                    f"{source} does not exist ({ANNOTATIONS_ENV} or root= must name a folder "
                    f"holding {name}/{item.local})")
            _copy_verified(source, target, item.sha256)
        elif item.remote is not None:
            url = f"{(mirror or GITHUB_RAW).rstrip('/')}/{item.remote}"
            _download_verified(url, target, item.sha256, timeout)
        else:
            target.unlink(missing_ok=True)
    return folder


def annotations_cache() -> Path:
    """``$MLADLIB_CACHE/annotations`` (default ``~/.cache/mladlib/annotations``)."""
    base = os.environ.get("MLADLIB_CACHE") or Path.home() / ".cache" / "mladlib"
    return Path(base) / "annotations"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(tmp: Path, source: str, expected: str) -> None:
    actual = sha256_of(tmp)
    if actual != expected:
        raise ChecksumError(
            f"{source}: SHA-256 {actual} does not match the pinned {expected} "
            f"({tmp.stat().st_size} bytes; a corrupt, partial or different file); not cached")


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    with atomic_path(target) as tmp:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        _check(tmp, str(source), sha256)


def _download_verified(url: str, target: Path, sha256: str, timeout: float) -> None:
    with atomic_path(target) as tmp:
        try:
            with contextlib.closing(urllib.request.urlopen(url, timeout=timeout)) as response, \
                    open(tmp, "wb") as out:
                announced = response.headers.get("Content-Length")
                received = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    received += len(block)
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise OSError(
                f"cannot download {url}: {reason} (no network? set {ANNOTATIONS_ENV} to a folder "
                f"of local copies)") from error
        except Exception as error:  # http.client.IncompleteRead and other protocol errors
            raise OSError(f"download of {url} was cut short: {error!r}; not cached") from error
        # read(n) returns what came before the server closed, without an error
        if announced is not None and announced.isdigit() and received != int(announced):
            raise OSError(
                f"download of {url} was cut short: {received} of {announced} bytes; not cached")
        _check(tmp, url, sha256)


def cmd_fetch(args: argparse.Namespace) -> int:
    """``python -m mladlib fetch NAME``: fetch (or verify) the files, print the folder."""
    folder = fetch_annotations(args.name, root=args.root, mirror=args.mirror)
    for item in DATASET_FILES[args.name]:
        path = folder / item.name
        print(f"{path}  {'ok' if path.is_file() else 'absent (not published as a file)'}")
    return 0


def add_fetch_parser(commands) -> None:
    """Add the ``fetch`` sub-command to the CLI's sub-parsers."""
    p = commands.add_parser(
        "fetch", help="download the public annotation files of a dataset",
        description="Download (or copy from $MLADLIB_ANNOTATIONS) the annotation JSON, split lists "
                    "and class names of a dataset, verify their SHA-256 and print the folder.")
    p.add_argument("name", choices=sorted(DATASET_FILES), help="which dataset")
    p.add_argument("--root", metavar="DIR", help=f"local copies instead of a download "
                   f"(default: ${ANNOTATIONS_ENV})")
    p.add_argument("--mirror", metavar="URL",
                   help=f"download from URL instead of {GITHUB_RAW} (same paths below it)")
    p.set_defaults(func=cmd_fetch)
