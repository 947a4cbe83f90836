"""The download path against a local HTTP server on 127.0.0.1 (no other address is touched)."""

from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tutorial_lib import download
from tutorial_lib.download import ChecksumError, DownloadError, Resource, fetch

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
SHA = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /good, /truncated (always short), /flaky (short once, then honours Range),
    /corrupt (wrong bytes) and a 404 for anything else; records every request."""

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))  # type: ignore[attr-defined]
        if self.path == "/good":
            self._send(PAYLOAD)
        elif self.path == "/truncated":
            self._send(PAYLOAD, cut=len(PAYLOAD) // 3)
        elif self.path == "/flaky":
            first = sum(p == "/flaky" for p, _ in server.requests) == 1  # type: ignore[attr-defined]
            self._send(PAYLOAD, cut=len(PAYLOAD) // 2 if first else None)
        elif self.path == "/norange":
            first = sum(p == "/norange" for p, _ in server.requests) == 1  # type: ignore[attr-defined]
            self._send(PAYLOAD, cut=len(PAYLOAD) // 4 if first else None, ranges=False)
        elif self.path == "/corrupt":
            self._send(PAYLOAD[::-1])
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, cut: int | None = None, ranges: bool = True) -> None:
        start = 0
        ranged = self.headers.get("Range")
        if ranges and ranged and ranged.startswith("bytes="):
            start = int(ranged[len("bytes=") :].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start : start + cut] if cut is not None else body[start:])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture()
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _url(httpd: http.server.ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def _fetch(resource: Resource, cache: Path) -> Path:
    return fetch(resource, cache=cache, retries=2, timeout=5.0, backoff=0.0)


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def test_good_file_is_downloaded_verified_and_reused(server, tmp_path: Path) -> None:
    path = _fetch(Resource("a/good.bin", (_url(server, "/good"),), SHA), tmp_path)
    assert path == tmp_path / "a" / "good.bin"
    assert path.read_bytes() == PAYLOAD
    n_requests = len(server.requests)
    assert _fetch(Resource("a/good.bin", (_url(server, "/good"),), SHA), tmp_path) == path
    assert len(server.requests) == n_requests  # served from the cache


def test_md5_checksums_are_accepted(server, tmp_path: Path) -> None:
    md5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()
    path = _fetch(Resource("good.bin", (_url(server, "/good"),), md5), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_truncated_download_fails_clearly_and_leaves_nothing_usable(server, tmp_path) -> None:
    url = _url(server, "/truncated")
    with pytest.raises(DownloadError) as caught:
        _fetch(Resource("t.bin", (url,), SHA), tmp_path)
    message = str(caught.value)
    assert url in message and SHA in message and str(tmp_path / "t.bin") in message
    assert "connection closed after" in message and "the next call resumes" in message
    # Only the partial bytes remain, under a name that is never read as the file.
    assert _leftovers(tmp_path) == ["t.bin.part"]
    assert 0 < (tmp_path / "t.bin.part").stat().st_size < len(PAYLOAD)


def test_download_interrupted_in_one_call_resumes_in_the_next(server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError):
        fetch(Resource("r.bin", (_url(server, "/truncated"),), SHA), tmp_path, retries=1)
    kept = (tmp_path / "r.bin.part").stat().st_size
    assert kept == len(PAYLOAD) // 3
    path = _fetch(Resource("r.bin", (_url(server, "/good"),), SHA), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/good", f"bytes={kept}-")
    assert _leftovers(tmp_path) == ["r.bin"]


def test_partial_bytes_without_a_checksum_are_not_kept(server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError):
        _fetch(Resource("x.bin", (_url(server, "/truncated"),), None), tmp_path)
    assert _leftovers(tmp_path) == []


def test_interrupted_download_resumes_with_range(server, tmp_path: Path) -> None:
    path = _fetch(Resource("f.bin", (_url(server, "/flaky"),), SHA), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [("/flaky", None), ("/flaky", f"bytes={len(PAYLOAD) // 2}-")]
    assert _leftovers(tmp_path) == ["f.bin"]


def test_server_without_range_support_restarts_from_the_beginning(server, tmp_path) -> None:
    path = _fetch(Resource("n.bin", (_url(server, "/norange"),), SHA), tmp_path)
    assert path.read_bytes() == PAYLOAD  # the full 200 reply replaced the partial bytes
    assert [r for _, r in server.requests] == [None, f"bytes={len(PAYLOAD) // 4}-"]


def test_corrupt_download_is_rejected_and_deleted(server, tmp_path: Path) -> None:
    url = _url(server, "/corrupt")
    with pytest.raises(DownloadError) as caught:
        _fetch(Resource("c.bin", (url,), SHA), tmp_path)
    assert "does not match" in str(caught.value) and url in str(caught.value)
    assert _leftovers(tmp_path) == []


def test_404_is_not_retried_and_reported(server, tmp_path: Path) -> None:
    url = _url(server, "/missing")
    with pytest.raises(DownloadError, match="HTTP 404"):
        _fetch(Resource("m.bin", (url,), SHA), tmp_path)
    assert server.requests == [("/missing", None)]
    assert _leftovers(tmp_path) == []


def test_mirrors_are_tried_in_order(server, tmp_path: Path) -> None:
    urls = (_url(server, "/missing"), _url(server, "/corrupt"), _url(server, "/good"))
    path = _fetch(Resource("g.bin", urls, SHA), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/missing", "/corrupt", "/good"]


def test_unreachable_host_gives_manual_instructions(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port with nothing listening on the loopback address
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.bin"
    with pytest.raises(DownloadError) as caught:
        _fetch(Resource("file.bin", (url,), SHA), tmp_path)
    message = str(caught.value)
    assert "unreachable" in message and url in message and SHA in message
    assert f"put it at {tmp_path / 'file.bin'}" in message
    assert _leftovers(tmp_path) == []


def test_unpublished_checksum_is_recorded_then_enforced(server, tmp_path: Path, caplog) -> None:
    resource = Resource("u.bin", (_url(server, "/good"),), None)
    with caplog.at_level(logging.WARNING, logger="tutorial_lib.download"):
        path = _fetch(resource, tmp_path)
    assert "no published checksum" in caplog.text
    record = (tmp_path / "u.bin.sha256").read_text().split()[0]
    assert record == hashlib.sha256(PAYLOAD).hexdigest()

    path.write_bytes(PAYLOAD[:-1] + b"\x00")  # the cached copy changes afterwards
    with pytest.raises(ChecksumError, match=record):
        _fetch(resource, tmp_path)
    assert not path.exists() and (tmp_path / "u.bin.corrupt").exists()


def test_cache_folder_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path / "elsewhere"))
    assert download.cache_dir() == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere").is_dir()
    monkeypatch.delenv("TUTORIAL_DATA_DIR")
    assert download.cache_dir(create=False).parts[-2:] == ("data", "cache")
