"""Ids, thumbnails, hosts, slow clients and server paths: no request gets a 500, grows the disk or learns a path."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.serve.conftest import Served
from vitr.serve.app import BodyLimits, ServeSettings, create_app, public_model
from vitr.serve.server import default_allowed_hosts, server_config
from vitr.serve.thumbnails import ThumbnailCache, thumbnail_time


@pytest.mark.parametrize("video_id", [2**63, 2**63 + 1, 2**64, 10**30, -1, 0, -(2**63) - 1])
def test_out_of_range_video_ids_are_4xx_never_500(served: Served, video_id: int) -> None:
    for url, params in (
        (f"/api/videos/{video_id}/file", None),
        (f"/api/videos/{video_id}/thumbnail", None),
        ("/api/search/similar", {"video_id": video_id}),
    ):
        response = served.client.get(url, params=params)
        assert response.status_code in (404, 422), (url, response.status_code)
        assert set(response.json()) == {"detail"}


def test_largest_possible_id_is_a_plain_404(served: Served) -> None:
    response = served.client.get(f"/api/videos/{2**63 - 1}/file")
    assert response.status_code == 404 and "no indexed video" in response.json()["detail"]


def test_thumbnail_times_are_clamped_to_the_video_and_quantised(served: Served) -> None:
    record = served.index.meta.video_by_path(str(served.root / "red.mp4"))  # 4 s long
    cache = served.index.dir / "thumbnails"
    before = set(cache.rglob("*.jpg"))
    images = {served.client.get(f"/api/videos/{record.id}/thumbnail", params={"t": t}).content for t in (
        3.5, 3.6, 3.99, 4.0, 17.0, 1e6, 9e6
    )}
    made = set(cache.rglob("*.jpg")) - before
    assert len(images) <= 2 and len(made) <= 2  # 3.5 and the clamped end, 4.0: nothing past the video's end
    assert thumbnail_time(1e6, 4.0) == 4.0 and thumbnail_time(1.26, 4.0) == 1.0 and thumbnail_time(-3, 4.0) == 0.0
    assert thumbnail_time(2.0, None) == 0.0  # unknown length: the first frame only


def test_thumbnail_cache_keeps_at_most_its_limit(tmp_path: Path, served: Served) -> None:
    video = served.root / "red.mp4"
    cache = ThumbnailCache(tmp_path / "thumbs", max_files=3)
    for t in (0.0, 0.5, 1.0, 1.5, 2.0):
        cache.get("abcd", video, t)
    assert len(cache) == 3 and len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 3
    reopened = ThumbnailCache(tmp_path / "thumbs", max_files=3)
    reopened.get("abcd", video, 2.5)
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 3


def test_a_read_only_thumbnail_folder_still_serves_thumbnails(tmp_path: Path, served: Served) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    cache = ThumbnailCache(blocker / "thumbs")
    assert cache.get("abcd", served.root / "red.mp4", 0.0)[:2] == b"\xff\xd8"  # a JPEG, just not kept


def test_stats_names_the_model_without_server_paths(served: Served) -> None:
    stats = served.client.get("/api/stats").json()
    assert "/" not in stats["model"]["backbone"] and str(served.root) not in str(stats)
    shown = public_model({"backbone": "/srv/models/lab/clip", "weights": "C:\\models\\b.pt", "head": "meanP"})
    assert shown == {"backbone": "clip", "weights": "b.pt", "head": "meanP"}


def test_thumbnail_errors_name_no_server_path(tmp_path: Path, served: Served) -> None:
    record = served.index.meta.video_by_path(str(served.root / "green.mp4"))
    original = (served.root / "green.mp4").read_bytes()
    (served.root / "green.mp4").write_bytes(b"\x00" * 100)
    try:
        response = served.client.get(f"/api/videos/{record.id}/thumbnail", params={"t": 0.5})
        assert response.status_code == 422
        assert str(served.root) not in response.text and "/tmp" not in response.text
    finally:
        (served.root / "green.mp4").write_bytes(original)


def test_unknown_hosts_are_refused_with_the_error_shape(served: Served) -> None:
    settings = ServeSettings(allowed_hosts=("127.0.0.1", "localhost"))
    client = TestClient(create_app(served.index, [served.root], settings))
    refused = client.get("/api/health", headers={"host": "attacker.example:8000"})
    assert refused.status_code == 400 and "Host" in refused.json()["detail"]
    assert client.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/api/health", headers={"host": "127.0.0.1"}).status_code == 200


def test_default_allowed_hosts_are_the_bound_address_and_localhost() -> None:
    assert default_allowed_hosts("127.0.0.1") == ("127.0.0.1", "[::1]", "localhost")
    assert "192.168.1.5" in default_allowed_hosts("192.168.1.5") and "[::1]" in default_allowed_hosts("::1")
    assert socket.gethostname().lower() in default_allowed_hosts("0.0.0.0")


def _asgi_post(app, chunks: list[bytes], pause_after_first: float) -> list[dict]:  # noqa: ANN001
    """Drive `app` with a POST whose body stops arriving after the first chunk; returns what it sent."""
    sent: list[dict] = []

    async def receive() -> dict:
        if chunks:
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": True}
        await asyncio.sleep(pause_after_first)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async def endpoint(scope, receive, send) -> None:  # noqa: ANN001
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(BodyLimits(endpoint, limit=10**6, idle_timeout_s=0.2, total_timeout_s=5)(scope, receive, send))
    return sent


def test_a_stalled_request_body_is_cut_off_with_408() -> None:
    start = time.monotonic()
    sent = _asgi_post(None, [b"x" * 100], pause_after_first=30)
    assert time.monotonic() - start < 5
    assert sent[0]["status"] == 408 and b"did not arrive in time" in sent[1]["body"]


@pytest.fixture(scope="module")
def slow_header_server(served: Served) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = server_config(create_app(served.index, [served.root]), "127.0.0.1", port, header_timeout_s=0.5,
                           log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False


def test_headers_that_trickle_in_are_cut_off(slow_header_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_header_server)) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends the headers
        assert _closed_within(sock, 5)


def test_prompt_requests_still_work_and_keep_alive(slow_header_server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", slow_header_server, timeout=5)
    try:
        for _ in range(2):
            connection.request("GET", "/api/health")
            response = connection.getresponse()
            assert response.status == 200 and b'"status":"ok"' in response.read()
            time.sleep(0.2)
        assert connection.sock is not None  # the same connection served both
    finally:
        connection.close()
