"""The API's text and hybrid search: a video found by what its subtitles say, at the cue, with the evidence
(sources, snippet, highlighted words, timestamps, language) the CLI gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.index.test_text_tracks import srt
from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.index.hybrid import search
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex
from vitr.serve.app import create_app


def subtitled_folder(root: Path) -> Path:
    """Three shape videos; green.mp4 says (in green.en.srt) what no frame shows."""
    for colour in ("red", "green", "blue"):
        write_shape_video(root / f"{colour}.mp4", [colour, colour], seconds_each=1.0)
    (root / "green.en.srt").write_text(srt((0.0, 0.8, "welcome aboard"), (1.2, 1.9, "the lighthouse keeper sings")))
    return root


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VideoIndex, TestClient]]:
    tmp = tmp_path_factory.mktemp("subtitled")
    root = subtitled_folder(tmp / "videos")
    index = VideoIndex.create(tmp / "index", TINY_MODEL)
    report = update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)
    assert report.added == 3 and report.text_read == 3
    with TestClient(create_app(index, [root])) as client:
        yield index, client
    index.close()


def _said(hit: dict) -> dict:
    return next(e for e in hit["evidence"] if e["source"] == "subtitles")


@pytest.mark.parametrize("mode", ["text", "hybrid", None])
def test_a_spoken_line_is_found_at_its_cue_with_its_evidence(subtitled, mode: str | None) -> None:  # noqa: ANN001
    _, client = subtitled
    params = {"q": "Lighthouse keeper", **({"mode": mode} if mode else {})}
    body = client.get("/api/search", params=params).json()
    assert body["mode"] == (mode or "hybrid")  # hybrid is the default where the index holds text
    first = body["results"][0]
    assert first["name"] == "green.mp4"
    assert (first["start"], first["end"]) == (1.2, 1.9)  # the cue, not the whole video or a visual window
    assert "subtitles" in first["sources"]
    said = _said(first)
    assert said["snippet"] == "the lighthouse keeper sings" and said["language"] == "en"
    assert (said["start"], said["end"]) == (1.2, 1.9)
    assert [said["snippet"][a:b] for a, b in said["highlights"]] == ["lighthouse", "keeper"]
    assert first["thumbnail_url"].endswith("t=1")  # the cue's start, rounded down to 0.5 s
    # weak-match marking is calibrated on visual scores: text and fused scores are not judged
    assert body["weak"] is None and body["weak_below"] is None and first["weak"] is None
    if mode == "text":
        assert [h["name"] for h in body["results"]] == ["green.mp4"]  # only videos that say it
    else:
        assert len(body["results"]) == 3 and "visual" in first["sources"]
        assert [e["source"] for e in first["evidence"]][-1] == "visual"


def test_the_api_ranks_as_the_cli_does(subtitled) -> None:  # noqa: ANN001
    index, client = subtitled
    for params in (
        {"mode": "hybrid", "fusion": "rrf"},
        {"mode": "hybrid", "fusion": "weighted", "text_weight": 0.9},
        {"mode": "hybrid", "fusion": "weighted", "text_weight": 0.0},
        {"mode": "visual"},
    ):
        body = client.get("/api/search", params={"q": "keeper of a green square", **params}).json()
        expected = search(index, "keeper of a green square", k=10, **params)
        assert [(h["video_id"], h["score"], h["start"]) for h in body["results"]] == [
            (h.video_id, h.score, h.start) for h in expected
        ]


def test_visual_mode_keeps_weak_marking_and_gives_the_segment_as_evidence(subtitled) -> None:  # noqa: ANN001
    _, client = subtitled
    body = client.get("/api/search", params={"q": "lighthouse keeper", "mode": "visual"}).json()
    assert body["mode"] == "visual" and body["weak_below"] is not None and body["weak"] is not None
    for hit in body["results"]:
        assert hit["sources"] == ["visual"] and hit["weak"] is not None
        (seen,) = hit["evidence"]
        assert seen["source"] == "visual" and seen["snippet"] is None and seen["highlights"] == []
        assert (seen["start"], seen["end"], seen["score"]) == (hit["start"], hit["end"], hit["score"])


def test_text_search_pages_and_filters(subtitled) -> None:  # noqa: ANN001
    _, client = subtitled
    ranked = client.get("/api/search", params={"q": "green lighthouse", "k": 3}).json()["results"]
    second = client.get("/api/search", params={"q": "green lighthouse", "k": 1, "offset": 1}).json()
    assert [h["video_id"] for h in second["results"]] == [ranked[1]["video_id"]] and second["has_more"]
    cut = ranked[0]["score"]
    kept = client.get("/api/search", params={"q": "green lighthouse", "min_score": cut}).json()["results"]
    assert kept and all(h["score"] >= cut for h in kept) and len(kept) < len(ranked)
    only = client.get("/api/search", params={"q": "lighthouse", "mode": "text", "path_prefix": "red"}).json()
    assert only["results"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "spoken"}, "mode"),
        ({"fusion": "max"}, "fusion"),
        ({"text_weight": 1.5}, "text_weight"),
    ],
)
def test_bad_modes_and_weights_are_refused_clearly(subtitled, params: dict, message: str) -> None:  # noqa: ANN001
    _, client = subtitled
    response = client.get("/api/search", params={"q": "keeper", **params})
    assert response.status_code == 422 and message in response.json()["detail"]


def test_an_index_without_text_searches_visually_by_default(served) -> None:  # noqa: ANN001
    body = served.client.get("/api/search", params={"q": "a red square"}).json()
    assert body["mode"] == "visual" and body["weak_below"] is not None
    assert all(h["sources"] == ["visual"] for h in body["results"])
    assert served.client.get("/api/search", params={"q": "red", "mode": "text"}).json()["results"] == []


def test_the_schema_documents_modes_and_evidence(subtitled) -> None:  # noqa: ANN001
    _, client = subtitled
    schema = client.get("/openapi.json").json()
    params = {p["name"]: p for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert {"mode", "fusion", "text_weight"} <= set(params)
    evidence = schema["components"]["schemas"]["Evidence"]["properties"]
    assert {"source", "start", "end", "snippet", "highlights", "language"} <= set(evidence)
    hit = schema["components"]["schemas"]["SearchHit"]["properties"]
    assert {"sources", "evidence"} <= set(hit)
