"""fetch_annotations: the download path against a local HTTP server on 127.0.0.1 (no
internet), checksums, an interrupted transfer, local copies through $MLADLIB_ANNOTATIONS."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from mladlib.cli import main
from mladlib.data import (
    MULTITHUMOS,
    ChecksumError,
    fetch_annotations,
    read_annotations,
    read_class_names,
    read_split,
)
from mladlib.data import fetch as fetch_module
from mladlib.data.fetch import ANNOTATIONS_ENV, DATASET_FILES, AnnotationFile

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason="the real annotation files (../shared/data) are absent: a fresh clone has no copy",
)

SMALL_JSON = b'{"v1": {"subset": "training", "duration": 10.0, "actions": [[1, 0.0, 5.0]]},' \
             b' "v2": {"subset": "testing", "duration": 8.0, "actions": []}}\n'
SMALL_FILES = {"annotations.json": SMALL_JSON, "train_list.txt": b"v1\n", "test_list.txt": b"v2\n"}


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[path]``; paths in ``server.cut`` stop after half the body
    while announcing the whole length (a connection dropped mid-transfer)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.server.cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1; ``server.url`` is its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.cut, httpd.requests = {}, set(), []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(ANNOTATIONS_ENV, raising=False)
    return tmp_path / "cache" / "annotations"


@pytest.fixture
def small_dataset(monkeypatch, server):
    """A dataset ``small`` of three small published files plus an unpublished classes.txt,
    pinned to their true hashes and served by ``server``."""
    items = tuple(
        AnnotationFile(name, hashlib.sha256(body).hexdigest(), name, f"owner/repo/abc/{name}")
        for name, body in SMALL_FILES.items()
    ) + (AnnotationFile("classes.txt", hashlib.sha256(b"Jump\n").hexdigest(), "classes.txt"),)
    monkeypatch.setitem(DATASET_FILES, "small", items)
    for name, body in SMALL_FILES.items():
        server.files[f"/owner/repo/abc/{name}"] = body
    return items


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_success_and_reuse(cache, server, small_dataset):
    folder = fetch_annotations("small", mirror=server.url)
    assert folder == cache / "small"
    for name, body in SMALL_FILES.items():
        assert (folder / name).read_bytes() == body
    assert not (folder / "classes.txt").exists()  # not published: left out, not invented
    assert _leftovers(folder) == sorted(SMALL_FILES)  # no temporary file behind
    assert read_split(folder / "train_list.txt") == ["v1"]
    # a second call verifies the cached files and downloads nothing
    count = len(server.requests)
    assert fetch_annotations("small", mirror=server.url) == folder
    assert len(server.requests) == count


def test_wrong_checksum_is_refused_and_not_cached(cache, server, small_dataset):
    server.files["/owner/repo/abc/annotations.json"] = SMALL_JSON.replace(b"10.0", b"11.0")
    with pytest.raises(ChecksumError) as error:
        fetch_annotations("small", mirror=server.url)
    message = str(error.value)
    expected = hashlib.sha256(SMALL_JSON).hexdigest()
    actual = hashlib.sha256(SMALL_JSON.replace(b"10.0", b"11.0")).hexdigest()
    assert f"{server.url}/owner/repo/abc/annotations.json" in message
    assert expected in message and actual in message
    assert "annotations.json" not in _leftovers(cache / "small")
    assert not any(name.startswith(".") for name in _leftovers(cache / "small"))


def test_interrupted_transfer_is_refused_and_not_cached(cache, server, small_dataset):
    server.cut.add("/owner/repo/abc/train_list.txt")
    with pytest.raises(OSError, match=r"train_list\.txt was cut short: \d+ of \d+ bytes"):
        fetch_annotations("small", mirror=server.url)
    # the file before it was kept (verified); the cut one is absent, no temporary left
    assert _leftovers(cache / "small") == ["annotations.json"]
    # once the server recovers, the fetch completes
    server.cut.clear()
    folder = fetch_annotations("small", mirror=server.url)
    assert _leftovers(folder) == sorted(SMALL_FILES)


def test_tampered_cache_is_replaced(cache, server, small_dataset):
    folder = fetch_annotations("small", mirror=server.url)
    (folder / "test_list.txt").write_bytes(b"v9\n")
    fetch_annotations("small", mirror=server.url)
    assert (folder / "test_list.txt").read_bytes() == b"v2\n"


def test_missing_server_file_names_the_url(cache, server, small_dataset):
    del server.files["/owner/repo/abc/test_list.txt"]
    with pytest.raises(OSError, match=r"test_list\.txt.*404|404.*test_list\.txt|cannot download"):
        fetch_annotations("small", mirror=server.url)
    assert "test_list.txt" not in _leftovers(cache / "small")


def test_local_copy_through_env_var(cache, tmp_path, monkeypatch, small_dataset):
    local = tmp_path / "local" / "small"
    local.mkdir(parents=True)
    for name, body in SMALL_FILES.items():
        (local / name).write_bytes(body)
    (local / "classes.txt").write_bytes(b"Jump\n")
    monkeypatch.setenv(ANNOTATIONS_ENV, str(tmp_path / "local"))
    folder = fetch_annotations("small")  # no mirror, no network: the local copy
    assert _leftovers(folder) == sorted([*SMALL_FILES, "classes.txt"])
    # a corrupt local copy is refused with both hashes, and replaces nothing
    (local / "classes.txt").write_bytes(b"Jumpp\n")
    (folder / "classes.txt").unlink()
    with pytest.raises(ChecksumError, match="classes.txt") as error:
        fetch_annotations("small")
    assert hashlib.sha256(b"Jumpp\n").hexdigest() in str(error.value)
    assert not (folder / "classes.txt").exists()
    # a missing published file in the local copy is an error naming it
    (local / "annotations.json").unlink()
    (folder / "annotations.json").unlink()
    with pytest.raises(FileNotFoundError, match="annotations.json"):
        fetch_annotations("small")


def test_unknown_dataset(cache):
    with pytest.raises(ValueError, match="unknown dataset 'thumos'"):
        fetch_annotations("thumos")


def test_pinned_urls_carry_a_commit():
    for items in DATASET_FILES.values():
        for item in items:
            if item.remote is not None:
                owner, repo, commit, *path = item.remote.split("/")
                assert len(commit) == 40 and int(commit, 16) >= 0, item.remote
                assert path


@needs_shared
@pytest.mark.parametrize("name", sorted(DATASET_FILES))
def test_real_files_through_local_server(cache, server, name):
    """The published paths and hashes, served from the real copies."""
    for item in DATASET_FILES[name]:
        if item.remote is not None:
            server.files[f"/{item.remote}"] = (SHARED / name / item.local).read_bytes()
    folder = fetch_annotations(name, mirror=server.url)
    assert {p.name for p in folder.iterdir()} == {"annotations.json", "train_list.txt", "test_list.txt"}


@needs_shared
def test_real_files_through_env_var_and_cli(cache, monkeypatch, capsys):
    monkeypatch.setenv(ANNOTATIONS_ENV, str(SHARED))
    assert main(["fetch", "multithumos"]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 4
    folder = cache / "multithumos"  # the layout --root reads, minus features
    assert len(read_annotations(folder / "annotations.json", MULTITHUMOS)) == 413
    assert len(read_split(folder / "train_list.txt")) == 200
    assert len(read_split(folder / "test_list.txt")) == 213
    assert len(read_class_names(folder / "classes.txt", MULTITHUMOS)) == 65


def test_cli_reports_a_failed_download(cache, server, small_dataset, capsys, monkeypatch):
    monkeypatch.setitem(DATASET_FILES, "multithumos", small_dataset)
    server.files["/owner/repo/abc/annotations.json"] = b"{}"
    assert main(["fetch", "multithumos", "--mirror", server.url]) == 2
    assert "does not match the pinned" in capsys.readouterr().err


def test_copy_is_atomic(cache, tmp_path, monkeypatch, small_dataset):
    """A copy that fails after writing (here: the hash check itself fails) leaves neither
    the file nor a temporary behind."""
    local = tmp_path / "local" / "small"
    local.mkdir(parents=True)
    for name, body in SMALL_FILES.items():
        (local / name).write_bytes(body)

    def failing_check(*args):
        raise OSError("disk error")

    monkeypatch.setattr(fetch_module, "_check", failing_check)
    with pytest.raises(OSError, match="disk error"):
        fetch_annotations("small", root=tmp_path / "local")
    assert _leftovers(cache / "small") == []
