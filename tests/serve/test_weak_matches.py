"""Weak matches are marked against the index's own null score distribution, in the library, the CLI and the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serve.word_index import add_videos, word_index
from vitr.cli.tables import hits_json, print_hits
from vitr.index.calibration import CALIBRATION_FILE, NULL_QUERIES, WeakMatches, calibrate
from vitr.serve.app import create_app

ABSENT = "a person playing a guitar on stage"
PRESENT = "a red square moving to the right"


@pytest.fixture
def index(tmp_path: Path):  # noqa: ANN201
    index = word_index(tmp_path)
    yield index
    index.close()


def test_an_absent_subject_is_weak_and_a_matching_caption_is_not(index) -> None:  # noqa: ANN001
    weak = WeakMatches(index)
    threshold = weak.threshold()
    assert threshold is not None
    absent, present = index.search_text(ABSENT, k=3), index.search_text(PRESENT, k=3)
    assert absent[0].score < threshold <= present[0].score
    assert present[0].path.endswith("red_square_moving_right.mp4")


def test_the_threshold_is_a_high_quantile_of_the_null_queries_best_scores(index) -> None:  # noqa: ANN001
    calibration = calibrate(index)
    assert len(calibration.null_scores) == len(NULL_QUERIES)
    best = [index.search_text(q, k=1)[0].score for q in NULL_QUERIES]
    assert sorted(best) == pytest.approx(list(calibration.null_scores), abs=1e-6)
    above = sum(s >= WeakMatches(index).threshold() for s in best)
    assert above <= 0.05 * len(best) + 1
    assert WeakMatches(index, quantile=0.5).threshold() < WeakMatches(index).threshold()


def test_calibration_is_kept_with_the_index_and_redone_when_it_changes(index, tmp_path: Path) -> None:  # noqa: ANN001
    WeakMatches(index).threshold()
    saved = json.loads((index.dir / CALIBRATION_FILE).read_text())
    assert saved["generation"] == index.meta.generation() and saved["queries"] == len(NULL_QUERIES)
    calls = []
    original = index.embed_texts
    index.embed_texts = lambda texts: calls.append(len(texts)) or original(texts)
    fresh = WeakMatches(index)
    fresh.threshold()
    assert calls == []  # read from calibration.json, not recomputed
    add_videos(index, tmp_path / "videos", ["orange star spinning around"])
    fresh.threshold()
    assert calls == [len(NULL_QUERIES)]
    assert json.loads((index.dir / CALIBRATION_FILE).read_text())["generation"] == index.meta.generation()


def test_an_index_that_cannot_keep_its_calibration_still_marks(index) -> None:  # noqa: ANN001
    (index.dir / CALIBRATION_FILE).mkdir()  # writing the file fails as on a read-only index
    weak = WeakMatches(index)
    assert weak.threshold() is not None and (index.dir / CALIBRATION_FILE).is_dir()
    assert not list(index.dir.glob(f".{CALIBRATION_FILE}*"))  # no temporary file left behind


def test_an_empty_index_marks_nothing(tmp_path: Path) -> None:
    index = word_index(tmp_path, descriptions=[])
    assert WeakMatches(index).threshold() is None
    assert json.loads(hits_json([], None)) == []
    index.close()


def test_the_api_says_when_the_best_hits_are_weak(index) -> None:  # noqa: ANN001
    client = TestClient(create_app(index, [index.meta.roots()[0]]))
    absent = client.get("/api/search", params={"q": ABSENT, "k": 3}).json()
    present = client.get("/api/search", params={"q": PRESENT, "k": 3}).json()
    assert absent["weak"] is True and all(hit["weak"] for hit in absent["results"])
    assert present["weak"] is False and present["results"][0]["weak"] is False
    assert absent["weak_below"] == present["weak_below"] == pytest.approx(WeakMatches(index).threshold())
    video_id = present["results"][0]["video_id"]
    similar = client.get("/api/search/similar", params={"video_id": video_id}).json()
    assert similar["weak"] is None and similar["weak_below"] is None  # video queries are not judged
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"weak", "weak_below"} <= set(schema["SearchResponse"]["properties"])


def test_the_cli_marks_weak_hits_in_the_table_and_the_json(index, capsys) -> None:  # noqa: ANN001
    threshold = WeakMatches(index).threshold()
    absent, present = index.search_text(ABSENT, k=3), index.search_text(PRESENT, k=3)
    print_hits(ABSENT, absent, threshold)
    out = capsys.readouterr().out
    assert "weak matches: even the best result scores below" in out and out.count("weak") >= 4
    print_hits(PRESENT, present, threshold)
    assert "weak matches:" not in capsys.readouterr().out
    rows = json.loads(hits_json(present, threshold))
    assert rows[0]["weak"] is False and rows[0]["path"] == present[0].path
    assert [row["weak"] for row in rows] == [hit.score < threshold for hit in present]
    assert all(row["weak"] for row in json.loads(hits_json(absent, threshold)))
    assert all(row["weak"] is None for row in json.loads(hits_json(present, None)))
