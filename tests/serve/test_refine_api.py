"""`refine`: the API parameter and `vitr search --refine` change moments, never the ranking or the scores."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import Served
from vitr.cli.main import main


def test_refine_keeps_the_ranking_and_returns_moments_inside_the_video(served: Served) -> None:
    params = {"q": "a shape", "k": 4, "mode": "visual"}
    plain = served.client.get("/api/search", params=params).json()["results"]
    sharp = served.client.get("/api/search", params={**params, "refine": "true"}).json()["results"]
    assert [(r["video_id"], r["score"]) for r in sharp] == [(r["video_id"], r["score"]) for r in plain]
    for hit in sharp:
        assert 0.0 <= hit["start"] < hit["end"] <= hit["duration"] + 1e-6, hit
        visual = [e for e in hit["evidence"] if e["source"] == "visual"]
        assert (visual[0]["start"], visual[0]["end"]) == (hit["start"], hit["end"])  # the evidence moved with it


def test_a_bad_refine_value_is_one_422(served: Served) -> None:
    response = served.client.get("/api/search", params={"q": "a shape", "refine": "maybe"})
    assert response.status_code == 422 and list(response.json()) == ["detail"]
    assert "refine" in response.json()["detail"]


def test_search_refine_on_the_command_line(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "a shape", "--index", str(served.index.dir), "-k", "2", "--json", "--refine"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and all(h["start"] < h["end"] for h in hits)


def test_similar_videos_refine_their_moments_too(served: Served) -> None:
    first = served.client.get("/api/search", params={"q": "a shape", "k": 1}).json()["results"][0]["video_id"]
    params = {"video_id": first, "k": 3}
    plain = served.client.get("/api/search/similar", params=params).json()["results"]
    sharp = served.client.get("/api/search/similar", params={**params, "refine": "true"}).json()["results"]
    assert [(r["video_id"], r["score"]) for r in sharp] == [(r["video_id"], r["score"]) for r in plain]
    assert all(0.0 <= r["start"] < r["end"] <= r["duration"] + 1e-6 for r in sharp)
