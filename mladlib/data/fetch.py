"""The public MultiTHUMOS/Charades annotation files, downloaded once and verified.

``fetch_annotations("multithumos")`` returns a folder in the layout that ``--root`` and
:meth:`~mladlib.data.VideoDataset.from_folder` read, minus the features::

    <cache>/annotations/multithumos/annotations.json   the shared JSON layout
    <cache>/annotations/multithumos/train_list.txt     video ids of each split
    <cache>/annotations/multithumos/test_list.txt
    <cache>/annotations/multithumos/classes.txt        class names, one a line

Sources, each pinned to a commit, a size, a git blob id and a SHA-256:

* the annotation JSON and the split lists from ``ptirupat/MLAD``
  (``datasets/Multi-THUMOS/``, ``datasets/Charades/``), the files the public MLAD code
  reads. Charades' JSON is the same file in super-events, TGM, PDAN and MS-TCT; the
  super-events and TGM copies of ``multithumos.json`` lack its final newline (same
  JSON, another file);
* the class names from ``piergiaj/tgm-icml19``: ``charades/Charades_v1_classes.txt``
  (``cNNN name`` lines) as it is, and MultiTHUMOS's from column 2 of
  ``thumos/tgm-thumos/thumos_mapping.txt~`` (lines ``id name [count]``), converted to
  one name a line and checked against the 65 classes and the converted file's own hash.

``$MLADLIB_ANNOTATIONS`` (or ``root=``) names a local folder holding ``multithumos/``
and ``charades/`` with the files under their published names (``multithumos.json``,
``train_list.txt``, ``test_list.txt``, ``classes.txt``); those copies are verified
against the same size and hash. A file whose size or hash differs, or a transfer that
fails, is refused with an error naming the URL or file, and never left in the cache:
every file is written to a temporary name and renamed only after it checked out; the
temporaries of a run that was killed are removed by the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..utils import atomic_path
from ..validate import WriteError

#: Environment variable naming a local folder of annotation copies (``multithumos/``,
#: ``charades/``) to use instead of downloading.
ANNOTATIONS_ENV = "MLADLIB_ANNOTATIONS"

#: Where the pinned URLs point; ``mirror=`` replaces this prefix (tests: a local
#: server).
GITHUB_RAW = "https://raw.githubusercontent.com"

#: Exit status of ``fetch`` when a transfer fails (HTTP status, refused connection,
#: timeout, redirect loop, deadline) and when a file arrives but is refused (size or
#: hash).
EXIT_DOWNLOAD, EXIT_REFUSED = 4, 5

_MLAD = ("ptirupat/MLAD", "6337cb32d328cb290c549c401c07a22ec35752cd")
_TGM = ("piergiaj/tgm-icml19", "27d32422103a60e3d352c4da8c6cb33a45f6f509")


@dataclass(frozen=True)
class Pin:
    """What a file must be: its size in bytes, git blob id and SHA-256 (hex)."""

    size: int
    blob: str
    sha256: str


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public GitHub repository at a commit, and what it must be."""

    repo: str
    commit: str
    path: str
    pin: Pin

    @property
    def url_path(self) -> str:
        """``owner/repo/commit/path``: the part below :data:`GITHUB_RAW`."""
        return f"{self.repo}/{self.commit}/{self.path}"


@dataclass(frozen=True)
class AnnotationFile:
    """One file of a dataset folder: its name there, what it must be, its source.

    ``pin``: the file as stored in the folder. ``local``: its name in a local copy's
    dataset folder. ``remote``: where it is published; ``convert`` turns the published
    bytes into the stored ones (None: stored as published, and ``remote.pin == pin``).
    """

    name: str
    pin: Pin
    local: str
    remote: RemoteFile | None = None
    convert: Callable[[bytes], bytes] | None = None


def thumos_class_names(mapping: bytes) -> bytes:
    """TGM's ``thumos_mapping.txt~`` (lines ``id name [count]``, ids 1..65 in order) as
    MultiTHUMOS's ``classes.txt``: the names, one a line. ``ValueError`` on another
    layout."""
    names = []
    for k, line in enumerate(mapping.decode("utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) not in (2, 3) or fields[0] != str(k):
            raise ValueError(f"thumos_mapping.txt~ line {k}: expected "
                             f"'{k} name [count]', got {line!r}")
        names.append(fields[1])
    if len(names) != 65:
        raise ValueError(
            f"thumos_mapping.txt~ names {len(names)} classes, MultiTHUMOS has 65")
    return ("\n".join(names) + "\n").encode("utf-8")


def _published(name: str, local: str, source: tuple[str, str], path: str, size: int,
               blob: str, sha256: str) -> AnnotationFile:
    pin = Pin(size, blob, sha256)
    return AnnotationFile(name, pin, local, RemoteFile(*source, path, pin))


DATASET_FILES: dict[str, tuple[AnnotationFile, ...]] = {
    "multithumos": (
        _published(
            "annotations.json", "multithumos.json", _MLAD,
            "datasets/Multi-THUMOS/multithumos.json",
            811669, "6b90c25608877ce5c819b9fbc89cdd5f0e63f8f5",
            "17f2574c9d692b8b187476d22b2d11b5241440eba4bfd297059176057b740edf"),
        _published(
            "train_list.txt", "train_list.txt", _MLAD,
            "datasets/Multi-THUMOS/train_list.txt",
            5000, "a8e5ad1b1b50e6855d07488299ae6c7ed1ad4196",
            "6555809f8e1e733a6c8d8cb4a87cffd475e1630cab141028dd6d90c286a7d9f2"),
        _published(
            "test_list.txt", "test_list.txt", _MLAD,
            "datasets/Multi-THUMOS/test_list.txt",
            4047, "e3fafb0b0bd8fc6ea839a9f6c042f1e801cda79d",
            "d6f4e396838122a72c11e6af1147773520f4f456d9bc33f7ccdfe3891efa5cf7"),
        AnnotationFile(
            "classes.txt", Pin(
                785, "767a3e5babde3da3481ccd4dc3961ded2a8ea815",
                "502ca648847754fde3857b2e078c5db91a6199fb2534d971841190f121018d9d"),
            "classes.txt",
            RemoteFile(*_TGM, "thumos/tgm-thumos/thumos_mapping.txt~", Pin(
                1029, "f9ffeae873cb0842554ba7c959fc29be800a2b39",
                "351383e70dd1397b51ce8374096f70d33199f39082dd86c4a04e973078b2c335")),
            convert=thumos_class_names),
    ),
    "charades": (
        _published(
            "annotations.json", "charades.json", _MLAD,
            "datasets/Charades/charades.json",
            1803980, "b47e7463555899c1de2f658b02965048bfaf1ea0",
            "42de4feae0ae2705d847776393637edafce6d8d47cfbf9ed19b8cd182d370155"),
        _published(
            "train_list.txt", "train_list.txt", _MLAD,
            "datasets/Charades/train_list.txt",
            47910, "5e04c2986b3baf2720660c5df5a43c3c48c69e7a",
            "21a92ece8ac8dfaa99c4cfee025fb62af1036a114d5e05b22cbe6b747a52a1bf"),
        _published(
            "test_list.txt", "test_list.txt", _MLAD,
            "datasets/Charades/test_list.txt",
            11178, "7b849f26487f5b12de4363140e49d7ed958b3d6a",
            "41068c6f47a77d77d0d1c0c9c49c7d31658d67e577a48e5af7f072fa12ec2d3b"),
        _published(
            "classes.txt", "classes.txt", _TGM, "charades/Charades_v1_classes.txt",
            4672, "a67c4aff2b5e90df7f9058df93edc88cab66a102",
            "7b95127e60300d6a69849d161869eb3e9657fa320fc9e92b6f2c9403b49c1887"),
    ),
}


class ChecksumError(ValueError):
    """A file's size or SHA-256 is not the pinned one (a corrupt, partial or other
    file)."""


class DownloadError(OSError):
    """A transfer failed: HTTP status, refused connection, timeout, redirect loop."""

    def __str__(self) -> str:  # OSError would prefix "[Errno n]"
        return str(self.args[0]) if self.args else "download failed"


class AnnotationsUnavailable(RuntimeError):
    """The real annotation files cannot be had here (no copy, no network, refused)."""


def fetch_annotations(
    name: str, root: str | os.PathLike | None = None, *, mirror: str | None = None,
    timeout: float = 30.0, deadline: float = 600.0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The dataset folder of ``name`` (``"multithumos"`` or ``"charades"``), labels
    only.

    Looks in ``root``, else ``$MLADLIB_ANNOTATIONS``, for a local copy
    (``<root>/<name>/``); without either, downloads the published files from ``mirror``
    (default :data:`GITHUB_RAW`). Files already in the cache
    (``$MLADLIB_CACHE/annotations/<name>/``) are reused when their size and hash still
    match. ``timeout``: seconds one connection or read may wait; ``deadline``: seconds
    the whole call may take. ``progress`` receives one line per file and, during a
    download, lines of bytes received.

    Raises ``ValueError`` for an unknown name, :class:`ChecksumError` naming the file or
    URL with both sizes and hashes, ``FileNotFoundError`` for a missing root or local
    file, :class:`DownloadError` naming the URL and what happened to the transfer.
    """
    if name not in DATASET_FILES:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {sorted(DATASET_FILES)}")
    if not timeout > 0 or not deadline > 0:
        raise ValueError(
            f"timeout and deadline must be > 0 s, got {timeout}, {deadline}")
    where = "root="
    if root is None and os.environ.get(ANNOTATIONS_ENV):
        root, where = os.environ[ANNOTATIONS_ENV], f"${ANNOTATIONS_ENV}"
    if root is not None and not Path(root).is_dir():
        # even with a valid cache: a mistyped folder must not pass unnoticed
        raise FileNotFoundError(f"annotation folder {root} ({where}) does not exist")
    say = progress or (lambda line: None)
    folder = annotations_cache() / name
    end = time.monotonic() + deadline
    with _claimed(folder):
        for item in DATASET_FILES[name]:
            target = folder / item.name
            if target.is_file() and _matches(target, item.pin):
                continue  # verified earlier; a stale or tampered file is replaced below
            if root is not None:
                source = Path(root) / name / item.local
                if not source.is_file():
                    raise FileNotFoundError(
                        f"{source} does not exist ({where} must name a folder holding "
                        f"{name}/{item.local}; unset it to download the files)")
                say(f"copying {source}")
                _store(target, source.read_bytes(), item.pin, str(source))
            else:
                assert item.remote is not None
                url = f"{(mirror or GITHUB_RAW).rstrip('/')}/{item.remote.url_path}"
                say(f"downloading {url} ({item.remote.pin.size:,} bytes)")
                body = _download(url, item.remote.pin, timeout, end, say)
                _verify(body, item.remote.pin, url)
                if item.convert is not None:
                    body = item.convert(body)
                _store(target, body, item.pin, f"{url} (converted)")
    return folder


def require_annotations(name: str) -> Path:
    """:func:`fetch_annotations` for chapters: on failure, :class:`AnnotationsUnavailable`
    with one line saying why and what to do, instead of a chain of errors."""
    try:
        return fetch_annotations(name, timeout=20.0, deadline=120.0)
    except (OSError, ValueError) as error:
        raise AnnotationsUnavailable(
            f"the real annotation files cannot be had here: {error}. Set "
            f"{ANNOTATIONS_ENV} to a folder of local copies, or run "
            f"'python -m mladlib fetch {name}' with network access") from None


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


def git_blob_id(body: bytes) -> str:
    """What ``git hash-object`` prints for a file of these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


def pin_of(body: bytes) -> Pin:
    """The :class:`Pin` these bytes have."""
    return Pin(len(body), git_blob_id(body), hashlib.sha256(body).hexdigest())


def _matches(path: Path, pin: Pin) -> bool:
    return path.stat().st_size == pin.size and sha256_of(path) == pin.sha256


def _verify(body: bytes, pin: Pin, source: str) -> None:
    got = pin_of(body)
    if (got.size, got.sha256) != (pin.size, pin.sha256):
        raise ChecksumError(
            f"{source}: received {got.size:,} bytes with SHA-256 {got.sha256}, "
            f"expected {pin.size:,} bytes with SHA-256 {pin.sha256} (a corrupt, "
            "partial or different file); not cached")


def _store(target: Path, body: bytes, pin: Pin, source: str) -> None:
    _verify(body, pin, source)
    with atomic_path(target) as tmp:
        tmp.write_bytes(body)


# the temporaries atomic_path makes: ".<name>." + mkstemp's 8 characters + ".tmp"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def _claimed(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (another fetch into it is refused, not raced) and remove
    the temporaries that a killed fetch left there: while the lock is held, none is
    live."""
    lock = folder.parent / f".{folder.name}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:  # a cache that is a file, read-only, or a linked lock
        raise WriteError(f"cannot write {folder}: {error.strerror or error}") from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"another fetch into {folder} is running; try again "
                                "when it has finished") from None
        ours = {item.name for items in DATASET_FILES.values() for item in items}
        for path in folder.iterdir():
            match = _TEMPORARY.match(path.name)
            if (match and match["name"] in ours and path.is_file()
                    and not path.is_symlink()):
                path.unlink()
        yield
    finally:
        os.close(fd)  # releases the lock


def _describe(error: BaseException, url: str, timeout: float) -> str:
    """What happened to the transfer of ``url``, in words."""
    if isinstance(error, urllib.error.HTTPError):
        if 300 <= error.code < 400:
            return f"redirect loop at {url} (HTTP {error.code}: {error.reason})"
        return f"HTTP {error.code} {error.reason} from {url}"
    reason = getattr(error, "reason", error)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer from {url} within {timeout:g} s (timed out)"
    if isinstance(reason, ConnectionRefusedError):
        return f"connection to {url} refused (no server there, or no network)"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host of {url} ({reason.strerror}; no network?)"
    unreachable = (errno.ENETUNREACH, errno.EHOSTUNREACH)
    if isinstance(reason, OSError) and reason.errno in unreachable:
        return f"network unreachable for {url}"
    return f"cannot download {url}: {reason}"


def _download(url: str, pin: Pin, timeout: float, end: float,
              say: Callable[[str], None]) -> bytes:
    """The bytes at ``url``: at most ``pin.size + 1`` are read (a longer stream is cut
    and refused by the size check), each read waits at most ``timeout`` s and the
    transfer stops at the monotonic time ``end``."""
    left = end - time.monotonic()
    if left <= 0:
        raise DownloadError(f"deadline passed before downloading {url}")
    try:
        response = urllib.request.urlopen(url, timeout=min(timeout, left))
    except (urllib.error.URLError, TimeoutError, socket.timeout) as error:
        raise DownloadError(_describe(error, url, timeout)) from error
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"cannot download {url}: {error!r}") from error
    chunks: list[bytes] = []
    received, reported = 0, 0
    try:
        with contextlib.closing(response):
            announced = response.headers.get("Content-Length")
            while received <= pin.size:
                # read1: what one receive brought, so a slow trickle meets the deadline
                block = response.read1(min(1 << 16, pin.size + 1 - received))
                if not block:
                    break
                chunks.append(block)
                received += len(block)
                if time.monotonic() > end:
                    raise DownloadError(
                        f"deadline passed while downloading {url}: {received:,} of "
                        f"{pin.size:,} bytes when the whole fetch's time ran out")
                if received - reported >= 1 << 18:
                    reported = received
                    say(f"  {received:,} of {pin.size:,} bytes")
    except DownloadError:
        raise
    except (TimeoutError, socket.timeout) as error:
        raise DownloadError(
            f"transfer of {url} stalled: no data for {timeout:g} s after "
            f"{received:,} of {pin.size:,} bytes") from error
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(
            f"transfer of {url} was cut short after {received:,} of {pin.size:,} "
            f"bytes: {error!r}") from error
    # read1 returns what came before the server closed, without an error; a longer
    # stream than the pin was cut by us and is refused by the size check
    if (received <= pin.size and announced is not None and announced.isdigit()
            and received < int(announced)):
        raise DownloadError(f"transfer of {url} was cut short: {received:,} of "
                            f"{announced} announced bytes")
    return b"".join(chunks)


def cmd_fetch(args: argparse.Namespace) -> int:
    """``python -m mladlib fetch NAME``: fetch (or verify) the files, print the
    folder."""
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        folder = fetch_annotations(args.name, root=args.root, mirror=args.mirror,
                                   timeout=args.timeout, deadline=args.deadline,
                                   progress=say)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DOWNLOAD
    except ChecksumError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for item in DATASET_FILES[args.name]:
        print(f"{folder / item.name}  ok")
    print(folder)  # last: what a script reads (`... | tail -1`)
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds > 0, got {text!r}")
    return value


def add_fetch_parser(commands) -> None:
    """Add the ``fetch`` sub-command to the CLI's sub-parsers."""
    p = commands.add_parser(
        "fetch", help="download the public annotation files of a dataset",
        description=(
            "Download (or copy from $MLADLIB_ANNOTATIONS) the annotation JSON, split "
            "lists and class names of a dataset, verify each file's size and SHA-256 "
            "and print the folder. Exit status: 0 done; 2 a bad option or missing "
            f"local file; 3 the cache cannot be written; {EXIT_DOWNLOAD} a transfer "
            "failed (HTTP status, refused, timeout, deadline); "
            f"{EXIT_REFUSED} a file arrived but is not the pinned one."))
    p.add_argument("name", choices=sorted(DATASET_FILES), help="which dataset")
    p.add_argument("--root", metavar="DIR", help=f"local copies instead of a download "
                   f"(default: ${ANNOTATIONS_ENV}); must exist")
    p.add_argument("--mirror", metavar="URL",
                   help=f"download from URL instead of {GITHUB_RAW} (same paths below)")
    p.add_argument("--timeout", type=_positive_seconds, default=30.0, metavar="S",
                   help="seconds a connection or read may wait (default: %(default)s)")
    p.add_argument("--deadline", type=_positive_seconds, default=600.0, metavar="S",
                   help="seconds the whole fetch may take (default: %(default)s)")
    p.set_defaults(func=cmd_fetch)
