"""The web page reads only fields the API publishes and returns: a renamed or dropped field fails here, not in a
user's browser. app.js names each API object the same way throughout (`body`, `hit`, `evidence`, `point`, `reply`),
so every field it reads can be listed from its source."""

from __future__ import annotations

import re

from pydantic import BaseModel

from tests.serve.conftest import Served
from vitr.serve.app import STATIC_DIR
from vitr.serve.schemas import ErrorResponse, Evidence, SearchHit, SearchResponse, TimelinePoint

READS = {"body": SearchResponse, "hit": SearchHit, "evidence": Evidence, "point": TimelinePoint, "reply": ErrorResponse}


def _fields_read() -> dict[str, set[str]]:
    script = (STATIC_DIR / "app.js").read_text()
    found: dict[str, set[str]] = {name: set() for name in READS}
    for name, field in re.findall(rf"\b({'|'.join(READS)})\??\.([A-Za-z_]+)\b", script):
        found[name].add(field)
    return found


def test_the_page_reads_only_published_fields() -> None:
    read = _fields_read()
    assert {"timeline", "evidence", "start", "video_id"} <= read["hit"]  # the listing sees what the page uses
    for name, model in READS.items():
        assert read[name], f"app.js no longer reads `{name}`: update READS"
        assert read[name] <= set(model.model_fields), f"{name}: {read[name] - set(model.model_fields)} not in the API"


def _keys(payload: dict, model: type[BaseModel]) -> None:
    assert set(model.model_fields) <= set(payload), model.__name__


def test_search_responses_carry_every_field_the_page_reads(served: Served) -> None:
    body = served.client.get("/api/search", params={"q": "a red square"}).json()
    _keys(body, SearchResponse)
    for hit in body["results"]:
        _keys(hit, SearchHit)
        for evidence in hit["evidence"]:
            _keys(evidence, Evidence)
        for point in hit["timeline"]:
            _keys(point, TimelinePoint)
    assert body["results"] and body["results"][0]["timeline"]
    _keys(served.client.get("/api/search", params={"q": " "}).json(), ErrorResponse)
