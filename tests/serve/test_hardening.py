"""Bad input gets a clear 4xx, and nothing outside the indexed folders can be read through the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serve.conftest import Served, serve_folder
from vitr.serve.app import ServeSettings


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A server with a 4 KiB upload limit (our test videos are larger)."""
    result = serve_folder(tmp_path_factory.mktemp("strict"), ServeSettings(max_upload_bytes=4096))
    yield result
    result.client.close()
    result.index.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": ""}, "at least 1 character"),
        ({"q": "   "}, "empty"),
        ({"q": "x" * 501}, "at most 500"),
        ({"q": "red", "k": 0}, "greater than or equal to 1"),
        ({"q": "red", "k": 101}, "less than or equal to 100"),
        ({"q": "red", "k": "many"}, "integer"),
        ({"q": "red", "offset": -1}, "greater than or equal to 0"),
        ({"q": "red", "min_score": 2}, "less than or equal to 1"),
        ({}, "Field required"),
    ],
)
def test_bad_search_parameters_are_422_with_a_reason(strict: Served, params: dict, message: str) -> None:
    response = strict.client.get("/api/search", params=params)
    assert response.status_code == 422
    assert set(response.json()) == {"detail"} and message in response.json()["detail"]  # the one error shape


def test_oversized_upload_is_413(strict: Served) -> None:
    data = (strict.root / "red.mp4").read_bytes()
    assert len(data) > 4096
    response = strict.client.post("/api/search/video", files={"file": ("big.mp4", data, "video/mp4")})
    assert response.status_code == 413 and "4096 bytes" in response.json()["detail"]


def multipart_chunks(payload: bytes, content_type: str, chunk: int = 8192):  # noqa: ANN201
    """A multipart upload as a generator: the client then streams it chunked, with no Content-Length."""
    boundary = "vitr-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + payload + f"\r\n--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return headers, (body[i : i + chunk] for i in range(0, len(body), chunk))


def test_oversized_upload_without_content_length_is_cut_off_with_413(strict: Served) -> None:
    headers, chunks = multipart_chunks(b"\x00" * (1 << 20), "video/mp4")
    response = strict.client.post("/api/search/video", content=chunks, headers=headers)
    assert response.status_code == 413 and "4096 bytes" in response.json()["detail"]


def test_small_upload_without_content_length_reaches_the_endpoint(strict: Served) -> None:
    headers, chunks = multipart_chunks(b"hello", "text/plain")
    response = strict.client.post("/api/search/video", content=chunks, headers=headers)
    assert response.status_code == 415 and "text/plain" in response.json()["detail"]


def test_non_video_uploads_are_refused_with_a_message(strict: Served) -> None:
    text = strict.client.post("/api/search/video", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert text.status_code == 415 and "text/plain" in text.json()["detail"]
    junk = strict.client.post("/api/search/video", files={"file": ("clip.mp4", b"\x00" * 1000, "video/mp4")})
    assert junk.status_code == 415 and "not a supported video container" in junk.json()["detail"]
    empty = strict.client.post("/api/search/video", files={"file": ("clip.mp4", b"", "video/mp4")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


def test_links_out_of_the_folder_are_not_indexed(strict: Served) -> None:
    names = {Path(p).relative_to(strict.root).as_posix() for p in strict.index.meta.videos()}
    assert names == {"red.mp4", "green.mp4", "blue.mp4", "clips/yellow.mp4"}
    results = strict.client.get("/api/search", params={"q": "green", "k": 100}).json()["results"]
    assert all("secret" not in r["name"] and "linked" not in r["name"] for r in results)


@pytest.mark.parametrize(
    "url",
    [
        "/api/videos/../../secret/secret.mp4/file",
        "/api/videos/..%2F..%2Fsecret%2Fsecret.mp4/file",
        "/api/videos/%2e%2e/file",
        "/api/videos/%2e%2e%2f%2e%2e%2fsecret/thumbnail",
        "/api/videos/0/file",
        "/api/videos/-1/file",
        "/api/videos/99999/file",
        "/static/../../secret/secret.mp4",
        "/static/%2e%2e/%2e%2e/%2e%2e/secret/secret.mp4",
        "/static/..%2F..%2F..%2Fsecret%2Fsecret.mp4",
        "/api/videos/1/file/../../../secret/secret.mp4",
    ],
)
def test_traversal_attempts_never_serve_outside_files(strict: Served, url: str) -> None:
    secret = strict.outside.read_bytes()
    response = strict.client.get(url)
    assert response.status_code in (404, 405, 422) or response.content != secret
    assert secret not in response.content


def test_absolute_paths_are_not_accepted_anywhere(strict: Served) -> None:
    secret = strict.outside.read_bytes()
    for url in (f"/api/videos/{strict.outside}/file", f"/static/{strict.outside}", f"/{strict.outside}"):
        response = strict.client.get(url)
        assert response.status_code >= 400 and secret not in response.content


def test_an_indexed_file_later_replaced_by_an_outside_link_is_not_served(tmp_path: Path, strict: Served) -> None:
    record = strict.index.meta.video_by_path(str(strict.root / "blue.mp4"))
    assert strict.client.get(f"/api/videos/{record.id}/file").status_code == 200
    original = tmp_path / "blue.mp4"
    os.replace(strict.root / "blue.mp4", original)
    (strict.root / "blue.mp4").symlink_to(strict.outside)
    try:
        for url in (f"/api/videos/{record.id}/file", f"/api/videos/{record.id}/thumbnail?t=1"):
            response = strict.client.get(url)
            assert response.status_code == 404 and "not inside a served folder" in response.json()["detail"]
    finally:
        (strict.root / "blue.mp4").unlink()
        os.replace(original, strict.root / "blue.mp4")


def test_a_server_serves_only_its_roots(strict: Served) -> None:
    """A server started for another root refuses the index's videos rather than trusting stored paths."""
    from vitr.serve.app import create_app

    other = TestClient(create_app(strict.index, [strict.root / "clips"]))
    red = strict.index.meta.video_by_path(str(strict.root / "red.mp4"))
    yellow = strict.index.meta.video_by_path(str(strict.root / "clips" / "yellow.mp4"))
    assert other.get(f"/api/videos/{red.id}/file").status_code == 404
    assert other.get(f"/api/videos/{yellow.id}/file").status_code == 200
