"""Each hit's timeline in the API: where in the video the query matched, for every kind of query."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.index.videos import TINY_MODEL
from tests.serve.conftest import Served
from tests.serve.test_text_search import subtitled_folder
from tests.serve.word_index import word_index
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex
from vitr.serve.app import create_app


def _check(hit: dict) -> None:
    points = hit["timeline"]
    assert points and len(points) <= 64
    assert [p["start"] for p in points] == sorted(p["start"] for p in points)
    assert all(0.0 <= p["start"] < p["end"] <= hit["duration"] + 1e-6 for p in points)
    best = max(points, key=lambda p: p["score"])
    assert abs(best["score"] - hit["score"]) < 1e-4  # the hit is its video's best segment
    assert best["start"] == hit["start"]


def test_text_hits_carry_the_scores_of_their_videos_segments(served: Served) -> None:
    body = served.client.get("/api/search", params={"q": "a red square"}).json()
    assert len(body["results"]) == 4
    for hit in body["results"]:
        _check(hit)
    long = next(h for h in body["results"] if h["name"] == "red.mp4")  # 4 s in 1 s windows every 0.5 s
    assert [p["start"] for p in long["timeline"]] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_the_timeline_shows_where_in_the_video_the_query_is(served: Served) -> None:
    # green.mp4 shows the blue square for 2 s, then the green one: a query like blue.mp4 matches its first half
    blue = served.index.meta.video_by_path(str(served.root / "blue.mp4"))
    body = served.client.get("/api/search/similar", params={"video_id": blue.id}).json()
    green = next(h for h in body["results"] if h["name"] == "green.mp4")
    _check(green)
    first = max(p["score"] for p in green["timeline"] if p["end"] <= 2.0)
    second = max(p["score"] for p in green["timeline"] if p["start"] >= 2.0)
    assert first > second
    assert green["start"] < 2.0


def test_uploaded_query_hits_have_timelines(served: Served) -> None:
    data = (served.root / "red.mp4").read_bytes()
    response = served.client.post("/api/search/video", files={"file": ("q.mp4", data, "video/mp4")})
    assert response.status_code == 200, response.text
    for hit in response.json()["results"]:
        _check(hit)


def test_timeline_false_skips_the_timelines_and_keeps_the_hits(served: Served) -> None:
    with_timelines = served.client.get("/api/search", params={"q": "a red square"}).json()["results"]
    without = served.client.get("/api/search", params={"q": "a red square", "timeline": "false"}).json()["results"]
    assert [h["video_id"] for h in without] == [h["video_id"] for h in with_timelines]
    assert all(h["timeline"] is None for h in without)
    blue = served.index.meta.video_by_path(str(served.root / "blue.mp4"))
    similar = served.client.get("/api/search/similar", params={"video_id": blue.id, "timeline": "false"}).json()
    assert similar["results"] and all(h["timeline"] is None for h in similar["results"])


def test_a_text_only_search_has_no_timeline_and_a_whole_video_an_empty_one(tmp_path: Path) -> None:
    root = subtitled_folder(tmp_path / "videos")
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)
    whole = word_index(tmp_path / "whole")
    try:
        with TestClient(create_app(index, [root])) as client:
            said = client.get("/api/search", params={"q": "lighthouse keeper", "mode": "text"}).json()["results"]
            both = client.get("/api/search", params={"q": "lighthouse keeper", "mode": "hybrid"}).json()["results"]
        assert said and all(h["timeline"] is None for h in said)  # what is said has no place on a visual timeline
        assert both and all(len(h["timeline"]) == 3 for h in both)  # 2 s videos: windows at 0, 0.5 and 1 s
        with TestClient(create_app(whole, whole.meta.roots())) as client:
            hits = client.get("/api/search", params={"q": "red square"}).json()["results"]
        assert hits and all(h["timeline"] == [] for h in hits)
    finally:
        index.close()
        whole.close()


def test_a_text_query_is_encoded_once_for_its_ranking_its_timelines_and_its_pages(
    served: Served, monkeypatch  # noqa: ANN001
) -> None:
    encoded: list[list[str]] = []
    model_embed = served.index.embed_texts

    def counting(texts: list[str]):  # noqa: ANN202
        encoded.append(texts)
        return model_embed(texts)

    monkeypatch.setattr(served.index, "embed_texts", counting)
    for offset in (0, 2):
        body = served.client.get("/api/search", params={"q": "a slowly drifting square", "k": 2, "offset": offset})
        assert all(hit["timeline"] for hit in body.json()["results"])
    assert encoded == [["a slowly drifting square"]]
