"""fetch_annotations: pins checked against the published files' table (offline), the
download path against a local HTTP server on 127.0.0.1 (no internet): checksums, failed
transfers of every kind, deadline, size cap, killed runs' temporaries, local copies."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import socket
import threading
import time
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
from mladlib.data.fetch import (
    ANNOTATIONS_ENV,
    DATASET_FILES,
    EXIT_DOWNLOAD,
    EXIT_REFUSED,
    AnnotationFile,
    AnnotationsUnavailable,
    DownloadError,
    RemoteFile,
    pin_of,
    require_annotations,
    thumos_class_names,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason="the real annotation files (../shared/data) are absent: a fresh clone has "
           "no copy",
)

_MLAD = "ptirupat/MLAD@6337cb32d328cb290c549c401c07a22ec35752cd"
_TGM = "piergiaj/tgm-icml19@27d32422103a60e3d352c4da8c6cb33a45f6f509"
#: Size, git blob id and SHA-256 of each published file, read from the repositories
#: themselves (git ls-tree -l, git cat-file -p | sha256sum), not from our copies.
PUBLISHED = {
    f"{_MLAD}:datasets/Multi-THUMOS/multithumos.json": (
        811669, "6b90c25608877ce5c819b9fbc89cdd5f0e63f8f5",
        "17f2574c9d692b8b187476d22b2d11b5241440eba4bfd297059176057b740edf"),
    f"{_MLAD}:datasets/Multi-THUMOS/train_list.txt": (
        5000, "a8e5ad1b1b50e6855d07488299ae6c7ed1ad4196",
        "6555809f8e1e733a6c8d8cb4a87cffd475e1630cab141028dd6d90c286a7d9f2"),
    f"{_MLAD}:datasets/Multi-THUMOS/test_list.txt": (
        4047, "e3fafb0b0bd8fc6ea839a9f6c042f1e801cda79d",
        "d6f4e396838122a72c11e6af1147773520f4f456d9bc33f7ccdfe3891efa5cf7"),
    f"{_MLAD}:datasets/Charades/charades.json": (
        1803980, "b47e7463555899c1de2f658b02965048bfaf1ea0",
        "42de4feae0ae2705d847776393637edafce6d8d47cfbf9ed19b8cd182d370155"),
    f"{_MLAD}:datasets/Charades/train_list.txt": (
        47910, "5e04c2986b3baf2720660c5df5a43c3c48c69e7a",
        "21a92ece8ac8dfaa99c4cfee025fb62af1036a114d5e05b22cbe6b747a52a1bf"),
    f"{_MLAD}:datasets/Charades/test_list.txt": (
        11178, "7b849f26487f5b12de4363140e49d7ed958b3d6a",
        "41068c6f47a77d77d0d1c0c9c49c7d31658d67e577a48e5af7f072fa12ec2d3b"),
    f"{_TGM}:charades/Charades_v1_classes.txt": (
        4672, "a67c4aff2b5e90df7f9058df93edc88cab66a102",
        "7b95127e60300d6a69849d161869eb3e9657fa320fc9e92b6f2c9403b49c1887"),
    f"{_TGM}:thumos/tgm-thumos/thumos_mapping.txt~": (
        1029, "f9ffeae873cb0842554ba7c959fc29be800a2b39",
        "351383e70dd1397b51ce8374096f70d33199f39082dd86c4a04e973078b2c335"),
    # not used: the copy the old URL pointed at (same JSON, no final newline)
    "piergiaj/super-events-cvpr18@d4f940565d878ddf573a4a888c61d167683fae42:"
    "data/multithumos.json": (
        811668, "7c75e7ad3aef0b43a62c457f1488bfaefd506ade",
        "ecbe8f1ee20fb35781e2000e88620ac20af213c120985c0a593382ff6b7d6b98"),
}


def check_against_published(remote: RemoteFile) -> None:
    """The pin of ``remote`` is the published file's size, blob id and SHA-256."""
    key = f"{remote.repo}@{remote.commit}:{remote.path}"
    assert key in PUBLISHED, f"{key} is not in the table of published files"
    assert (remote.pin.size, remote.pin.blob, remote.pin.sha256) == PUBLISHED[key], key


@pytest.mark.parametrize("name", sorted(DATASET_FILES))
def test_pins_are_the_published_files(name):
    items = DATASET_FILES[name]
    assert [i.name for i in items] == [
        "annotations.json", "train_list.txt", "test_list.txt", "classes.txt"]
    for item in items:
        assert item.remote is not None
        check_against_published(item.remote)
        if item.convert is None:
            assert item.pin == item.remote.pin
    used = {f"{i.remote.repo}@{i.remote.commit}:{i.remote.path}"
            for items in DATASET_FILES.values() for i in items}
    assert len(used) == 8  # all six MLAD files and both TGM class files


def test_the_old_url_and_hash_pairing_is_caught():
    """Before: the JSON's URL pointed at super-events, its hash at MLAD's file."""
    old = RemoteFile("piergiaj/super-events-cvpr18",
                     "d4f940565d878ddf573a4a888c61d167683fae42",
                     "data/multithumos.json", DATASET_FILES["multithumos"][0].pin)
    with pytest.raises(AssertionError, match="super-events"):
        check_against_published(old)


@needs_shared
@pytest.mark.parametrize("name", sorted(DATASET_FILES))
def test_shared_copies_match_the_pins(name):
    for item in DATASET_FILES[name]:
        path = SHARED / name / item.local
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        assert pin_of(path.read_bytes()) == item.pin, path


def test_thumos_mapping_conversion():
    mapping = "".join(f"{k} Class{k}{' 7' if k % 2 else ''}\n" for k in range(1, 66))
    names = thumos_class_names(mapping.encode()).decode().splitlines()
    assert names == [f"Class{k}" for k in range(1, 66)]
    with pytest.raises(ValueError, match="64 classes"):
        thumos_class_names(mapping.split("\n65 ")[0].encode())
    with pytest.raises(ValueError, match="line 2"):
        thumos_class_names(mapping.replace("2 Class2", "3 Class2").encode())


@needs_shared
def test_multithumos_classes_are_the_converted_mapping():
    """The shared classes.txt is what the conversion makes of names in mapping order."""
    names = (SHARED / "multithumos" / "classes.txt").read_text().split()
    mapping = "".join(f"{k} {n} {k * 3}\n" for k, n in enumerate(names, start=1))
    item = DATASET_FILES["multithumos"][3]
    assert pin_of(thumos_class_names(mapping.encode())) == item.pin


# --- a local server
# ------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[path]``; ``server.behaviour[path]`` changes how: "cut"
    (half the body, the whole length announced), "trickle" (a byte every 0.3 s), "slow"
    (no answer for 2 s), "loop" (redirect to itself), an int (that HTTP status)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        how = self.server.behaviour.get(self.path)
        body = self.server.files.get(self.path)
        if isinstance(how, int):
            self.send_error(how)
            return
        if how == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
            return
        if how == "slow":
            time.sleep(2)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if how == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
            elif how == "trickle":
                for k in range(len(body)):
                    self.wfile.write(body[k:k + 1])
                    self.wfile.flush()
                    if self.server.stop.wait(0.3):
                        return
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the test wants

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(autouse=True)
def _local_without_proxy(monkeypatch):
    """The local server is reached directly even where proxies are set (CI's offline
    stage points them at a closed port)."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1; ``server.url`` is its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.behaviour, httpd.requests = {}, {}, []
    httpd.stop = threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(ANNOTATIONS_ENV, raising=False)
    return tmp_path / "cache" / "annotations"


SMALL_JSON = (b'{"v1": {"subset": "training", "duration": 10.0, '
              b'"actions": [[1, 0.0, 5.0]]},'
              b' "v2": {"subset": "testing", "duration": 8.0, "actions": []}}\n')
SMALL_FILES = {"annotations.json": SMALL_JSON, "train_list.txt": b"v1\n",
               "test_list.txt": b"v2\n", "classes.txt": b"Jump\n"}


def _url(name: str) -> str:
    return f"/owner/repo/{'a' * 40}/{name}"


@pytest.fixture
def small_dataset(monkeypatch, server):
    """A dataset ``small`` of four small published files, pinned and served by
    ``server``."""
    items = tuple(
        AnnotationFile(name, pin_of(body), name,
                       RemoteFile("owner/repo", "a" * 40, name, pin_of(body)))
        for name, body in SMALL_FILES.items())
    monkeypatch.setitem(DATASET_FILES, "small", items)
    for name, body in SMALL_FILES.items():
        server.files[_url(name)] = body
    return items


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_success_and_reuse(cache, server, small_dataset):
    lines = []
    folder = fetch_annotations("small", mirror=server.url, progress=lines.append)
    assert folder == cache / "small"
    for name, body in SMALL_FILES.items():
        assert (folder / name).read_bytes() == body
    assert _leftovers(folder) == sorted(SMALL_FILES)  # no temporary file behind
    url = f"{server.url}{_url('annotations.json')}"
    assert lines[0] == f"downloading {url} ({len(SMALL_JSON)} bytes)"
    assert read_split(folder / "train_list.txt") == ["v1"]
    count = len(server.requests)  # a second call verifies the cache, downloads nothing
    assert fetch_annotations("small", mirror=server.url) == folder
    assert len(server.requests) == count


def test_a_trailing_newline_is_refused_naming_url_sizes_hashes(cache, server,
                                                                small_dataset):
    served = SMALL_JSON.rstrip(b"\n")
    server.files[_url("annotations.json")] = served
    with pytest.raises(ChecksumError) as error:
        fetch_annotations("small", mirror=server.url)
    message = str(error.value)
    assert f"{server.url}{_url('annotations.json')}" in message
    assert hashlib.sha256(SMALL_JSON).hexdigest() in message
    assert hashlib.sha256(served).hexdigest() in message
    assert f"received {len(served)} bytes" in message
    assert f"expected {len(SMALL_JSON)} bytes" in message
    assert _leftovers(cache / "small") == []  # nothing cached, no temporary


@needs_shared
def test_the_super_events_copy_is_refused(cache, server):
    """The real MultiTHUMOS JSON without its final newline (the super-events copy)."""
    item = DATASET_FILES["multithumos"][0]
    body = (SHARED / "multithumos" / "multithumos.json").read_bytes()
    server.files[f"/{item.remote.url_path}"] = body.rstrip(b"\n")
    with pytest.raises(ChecksumError, match=r"received 811,668 bytes with SHA-256 "
                       r"ecbe8f1e.* expected 811,669 bytes with SHA-256 17f2574c"):
        fetch_annotations("multithumos", mirror=server.url)


@needs_shared
@pytest.mark.parametrize("name", sorted(DATASET_FILES))
def test_real_files_through_local_server(cache, server, monkeypatch, name):
    """The published paths and pins, served from the real copies (MultiTHUMOS's class
    names as a mapping file in TGM's layout, made from the copy and pinned here)."""
    items = []
    for item in DATASET_FILES[name]:
        body = (SHARED / name / item.local).read_bytes()
        if item.convert is not None:
            lines = enumerate(body.decode().split(), start=1)
            body = "".join(f"{k} {n}\n" for k, n in lines).encode()
            item = dataclasses.replace(
                item, remote=dataclasses.replace(item.remote, pin=pin_of(body)))
        server.files[f"/{item.remote.url_path}"] = body
        items.append(item)
    monkeypatch.setitem(DATASET_FILES, name, tuple(items))
    folder = fetch_annotations(name, mirror=server.url)
    assert _leftovers(folder) == sorted(SMALL_FILES)
    for item in items:
        local = SHARED / name / item.local
        assert (folder / item.name).read_bytes() == local.read_bytes()


def test_interrupted_transfer_is_refused_and_not_cached(cache, server, small_dataset):
    server.behaviour[_url("train_list.txt")] = "cut"
    with pytest.raises(DownloadError, match=r"train_list\.txt was cut short"):
        fetch_annotations("small", mirror=server.url)
    assert _leftovers(cache / "small") == ["annotations.json"]  # the verified one stays
    server.behaviour.clear()  # once the server recovers, the fetch completes
    folder = fetch_annotations("small", mirror=server.url)
    assert _leftovers(folder) == sorted(SMALL_FILES)


@pytest.mark.parametrize("status, words", [
    (404, "HTTP 404 Not Found from"), (500, "HTTP 500 Internal Server Error from")])
def test_http_status_is_reported(cache, server, small_dataset, status, words):
    server.behaviour[_url("test_list.txt")] = status
    with pytest.raises(DownloadError) as error:
        fetch_annotations("small", mirror=server.url)
    assert str(error.value) == f"{words} {server.url}{_url('test_list.txt')}"
    assert "test_list.txt" not in _leftovers(cache / "small")


def test_redirect_loop_is_reported(cache, server, small_dataset):
    server.behaviour[_url("annotations.json")] = "loop"
    with pytest.raises(DownloadError,
                       match=r"redirect loop at http://127\.0\.0\.1.*302"):
        fetch_annotations("small", mirror=server.url)


def test_refused_connection_is_reported(cache, small_dataset):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError,
                       match=rf"connection to http://127\.0\.0\.1:{port}/.* refused"):
        fetch_annotations("small", mirror=f"http://127.0.0.1:{port}")


def test_timeout_is_reported(cache, server, small_dataset):
    server.behaviour[_url("annotations.json")] = "slow"
    with pytest.raises(DownloadError,
                       match=r"no answer from .*annotations\.json within 0\.5 s"):
        fetch_annotations("small", mirror=server.url, timeout=0.5)


def test_a_trickle_meets_the_deadline(cache, server, small_dataset):
    server.behaviour[_url("annotations.json")] = "trickle"  # 138 bytes would take 41 s
    started = time.monotonic()
    with pytest.raises(DownloadError,
                       match=r"deadline passed while downloading .* of 138 bytes"):
        fetch_annotations("small", mirror=server.url, timeout=5, deadline=1.5)
    assert time.monotonic() - started < 5
    assert _leftovers(cache / "small") == []


def test_reading_stops_at_the_pinned_size(cache, server, small_dataset):
    server.files[_url("annotations.json")] = SMALL_JSON + b" " * (8 << 20)
    with pytest.raises(ChecksumError, match=f"received {len(SMALL_JSON) + 1} bytes"):
        fetch_annotations("small", mirror=server.url)


def test_temporaries_of_a_killed_run_are_removed(cache, server, small_dataset):
    folder = cache / "small"
    folder.mkdir(parents=True)
    stale = [folder / ".annotations.json.k3j_x9q2.tmp",
             folder / ".classes.txt.abcdefgh.tmp"]
    # not names the writer makes: left alone
    kept = [folder / ".annotations.json.bak", folder / "notes.txt"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    fetch_annotations("small", mirror=server.url)
    assert _leftovers(folder) == sorted([*SMALL_FILES, *(p.name for p in kept)])


def test_a_second_fetch_into_the_same_folder_is_refused(cache, server, small_dataset):
    with fetch_module._claimed(cache / "small"):
        with pytest.raises(DownloadError, match="another fetch into .* is running"):
            fetch_annotations("small", mirror=server.url)


def test_tampered_cache_is_replaced(cache, server, small_dataset):
    folder = fetch_annotations("small", mirror=server.url)
    (folder / "test_list.txt").write_bytes(b"v9\n")
    fetch_annotations("small", mirror=server.url)
    assert (folder / "test_list.txt").read_bytes() == b"v2\n"


def test_missing_root_is_an_error_even_with_a_valid_cache(cache, server, small_dataset,
                                                           tmp_path, monkeypatch):
    fetch_annotations("small", mirror=server.url)
    with pytest.raises(FileNotFoundError,
                       match=r"annotation folder .*nowhere \(root=\)"):
        fetch_annotations("small", root=tmp_path / "nowhere")
    monkeypatch.setenv(ANNOTATIONS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError,
                       match=rf"nowhere \(\${ANNOTATIONS_ENV}\) does not"):
        fetch_annotations("small")


def test_local_copy_through_env_var(cache, tmp_path, monkeypatch, small_dataset):
    local = tmp_path / "local" / "small"
    local.mkdir(parents=True)
    for name, body in SMALL_FILES.items():
        (local / name).write_bytes(body)
    monkeypatch.setenv(ANNOTATIONS_ENV, str(tmp_path / "local"))
    folder = fetch_annotations("small")  # no mirror, no network: the local copy
    assert _leftovers(folder) == sorted(SMALL_FILES)
    # a corrupt local copy is refused with both hashes, and replaces nothing
    (local / "classes.txt").write_bytes(b"Jumpp\n")
    (folder / "classes.txt").unlink()
    with pytest.raises(ChecksumError, match="classes.txt") as error:
        fetch_annotations("small")
    assert hashlib.sha256(b"Jumpp\n").hexdigest() in str(error.value)
    assert not (folder / "classes.txt").exists()
    # a missing file in the local copy is an error naming it
    (local / "annotations.json").unlink()
    (folder / "annotations.json").unlink()
    with pytest.raises(FileNotFoundError, match="annotations.json"):
        fetch_annotations("small")


def test_unknown_dataset(cache):
    with pytest.raises(ValueError, match="unknown dataset 'thumos'"):
        fetch_annotations("thumos")


def test_require_annotations_says_why_in_one_line(cache, monkeypatch, tmp_path):
    monkeypatch.setenv(ANNOTATIONS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(AnnotationsUnavailable,
                       match="cannot be had here: annotation folder") as error:
        require_annotations("multithumos")
    assert error.value.__cause__ is None and error.value.__suppress_context__


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


def test_cli_exit_status_per_failure(cache, server, small_dataset, capsys, monkeypatch,
                                     tmp_path):
    monkeypatch.setitem(DATASET_FILES, "multithumos", small_dataset)
    server.files[_url("annotations.json")] = b"{}"
    assert main(["fetch", "multithumos", "--mirror", server.url]) == EXIT_REFUSED
    assert f"expected {len(SMALL_JSON)} bytes" in capsys.readouterr().err
    server.behaviour[_url("annotations.json")] = 404
    assert main(["fetch", "multithumos", "--mirror", server.url]) == EXIT_DOWNLOAD
    err = capsys.readouterr().err
    assert f"error: HTTP 404 Not Found from {server.url}" in err
    assert "cannot write" not in err
    assert main(["fetch", "multithumos", "--root", str(tmp_path / "nowhere")]) == 2
    assert "nowhere (root=) does not exist" in capsys.readouterr().err
    server.behaviour.clear()
    server.files[_url("annotations.json")] = SMALL_JSON
    argv = ["fetch", "multithumos", "--mirror", server.url, "--deadline", "30"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.count(" ok") == 4 and captured.err.count("downloading") == 4


def test_copy_is_atomic(cache, tmp_path, monkeypatch, small_dataset):
    """A write that fails leaves neither the file nor a temporary behind."""
    local = tmp_path / "local" / "small"
    local.mkdir(parents=True)
    for name, body in SMALL_FILES.items():
        (local / name).write_bytes(body)

    def failing_write(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OSError, match="No space left"):
        fetch_annotations("small", root=tmp_path / "local")
    monkeypatch.undo()
    assert _leftovers(cache / "small") == []


def test_a_cache_that_is_a_file_is_a_write_error(tmp_path, monkeypatch, capsys,
                                                 small_dataset, server):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(ANNOTATIONS_ENV, raising=False)
    monkeypatch.setitem(DATASET_FILES, "multithumos", small_dataset)
    assert main(["fetch", "multithumos", "--mirror", server.url]) == 3
    assert "error: cannot write" in capsys.readouterr().err
