"""The search API as a client uses it: search by text, by upload and by indexed video; files and thumbnails."""

from __future__ import annotations

import io
import re

from PIL import Image

from tests.serve.conftest import Served


def test_health_and_stats_describe_the_index(served: Served) -> None:
    health = served.client.get("/api/health").json()
    assert health["status"] == "ok" and health["videos"] == 4
    stats = served.client.get("/api/stats").json()
    assert stats["videos"] == 4 and stats["segments"] > 4  # 2 s and 4 s videos cut into 1 s windows
    assert stats["windows"] == {"window": 1.0, "stride": 0.5}
    assert stats["roots"] == ["videos"]


def test_text_search_returns_ranked_moments_with_links(served: Served) -> None:
    body = served.client.get("/api/search", params={"q": "a red square", "k": 10}).json()
    results = body["results"]
    assert sorted(r["name"] for r in results) == ["blue.mp4", "clips/yellow.mp4", "green.mp4", "red.mp4"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert r["start"] is not None and r["end"] > r["start"]
        assert r["file_url"] == f"/api/videos/{r['video_id']}/file"
        assert r["thumbnail_url"].startswith(f"/api/videos/{r['video_id']}/thumbnail")
    assert body["has_more"] is False


def test_pages_continue_where_the_previous_page_ended(served: Served) -> None:
    everything = served.client.get("/api/search", params={"q": "shapes", "k": 4}).json()["results"]
    first = served.client.get("/api/search", params={"q": "shapes", "k": 2}).json()
    second = served.client.get("/api/search", params={"q": "shapes", "k": 2, "offset": 2}).json()
    assert first["has_more"] is True and second["has_more"] is False
    assert [r["video_id"] for r in first["results"] + second["results"]] == [r["video_id"] for r in everything]


def test_filters_by_path_prefix_and_min_score(served: Served) -> None:
    clips = served.client.get("/api/search", params={"q": "yellow", "path_prefix": "clips/"}).json()["results"]
    assert [r["name"] for r in clips] == ["clips/yellow.mp4"]
    all_hits = served.client.get("/api/search", params={"q": "yellow"}).json()["results"]
    cut = all_hits[1]["score"]
    kept = served.client.get("/api/search", params={"q": "yellow", "min_score": cut}).json()["results"]
    assert [r["video_id"] for r in kept] == [r["video_id"] for r in all_hits if r["score"] >= cut]


def test_uploaded_clip_finds_the_same_video_first(served: Served) -> None:
    data = (served.root / "clips" / "yellow.mp4").read_bytes()
    response = served.client.post("/api/search/video", files={"file": ("query.mp4", data, "video/mp4")})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["name"] == "clips/yellow.mp4"


def test_similar_videos_exclude_the_query_video(served: Served) -> None:
    red = served.index.meta.video_by_path(str(served.root / "red.mp4"))
    results = served.client.get("/api/search/similar", params={"video_id": red.id}).json()["results"]
    assert len(results) == 3 and red.id not in [r["video_id"] for r in results]
    assert served.client.get("/api/search/similar", params={"video_id": 9999}).status_code == 404


def test_video_file_streams_with_range_requests(served: Served) -> None:
    record = served.index.meta.video_by_path(str(served.root / "red.mp4"))
    data = (served.root / "red.mp4").read_bytes()
    full = served.client.get(f"/api/videos/{record.id}/file")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "video/mp4" and full.headers["accept-ranges"] == "bytes"
    part = served.client.get(f"/api/videos/{record.id}/file", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"


def test_thumbnail_is_a_cached_jpeg_of_the_moment(served: Served) -> None:
    record = served.index.meta.video_by_path(str(served.root / "green.mp4"))
    url = f"/api/videos/{record.id}/thumbnail"
    blue_part, green_part = served.client.get(url, params={"t": 0.5}), served.client.get(url, params={"t": 3.0})
    assert blue_part.headers["content-type"] == "image/jpeg"
    blue_rgb = Image.open(io.BytesIO(blue_part.content)).convert("RGB").getpixel((160, 160))
    green_rgb = Image.open(io.BytesIO(green_part.content)).convert("RGB").getpixel((160, 160))
    assert blue_rgb[2] > blue_rgb[1] and green_rgb[1] > green_rgb[2]  # the frame at the asked time
    assert len(list((served.index.dir / "thumbnails").rglob("*.jpg"))) >= 2
    assert served.client.get(url, params={"t": 0.5}).content == blue_part.content


def test_openapi_schema_names_the_response_models(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    assert {
        "/api/search",
        "/api/search/video",
        "/api/search/similar",
        "/api/health",
        "/api/stats",
        "/api/videos/{video_id}/file",
        "/api/videos/{video_id}/thumbnail",
    } <= set(schema["paths"])
    assert {"SearchResponse", "SearchHit", "StatsResponse"} <= set(schema["components"]["schemas"])


def test_page_and_its_script_are_served(served: Served) -> None:
    page = served.client.get("/")
    assert page.status_code == 200 and 'id="query"' in page.text and "/static/app.js" in page.text
    assert "fetch(" in served.client.get("/static/app.js").text


def test_docs_load_swagger_ui_from_this_server_only(served: Served) -> None:
    """/docs was blank offline: FastAPI's page loads Swagger UI from a CDN. Every URL it names must be served here."""
    page = served.client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    for url in urls:
        assert url.startswith("/"), url
        asset = served.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert served.client.get("/openapi.json").json()["openapi"].startswith("3.1")  # Swagger UI 5 renders 3.1
    assert served.client.get("/redoc").status_code == 404  # ReDoc has no local copy; it would be blank offline
