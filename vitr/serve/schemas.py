"""The HTTP API's response shapes; FastAPI publishes them in /openapi.json so clients can be generated."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vitr.index.timeline import MAX_POINTS


class Evidence(BaseModel):
    """Why a hit matched, and where: a visual segment, or a text span with its snippet and the matched words."""

    source: str = Field(description="`visual`, or the text source the span came from (`subtitles`, `ocr`: "
                        "on-screen text, `asr`: speech)")
    start: float | None = Field(description="start of the evidence in seconds (null: the whole video)")
    end: float | None = Field(description="end of the evidence in seconds (null: the whole video)")
    score: float = Field(description="visual: similarity of the segment; text: the span's BM25 score")
    snippet: str | None = Field(description="the text span (a subtitle cue); null for visual evidence")
    highlights: list[tuple[int, int]] = Field(
        description="character ranges [start, end) of the matched words in `snippet`, in order"
    )
    language: str | None = Field(description="language tag of the text (`en`, `pt-BR`), when known")


class TimelinePoint(BaseModel):
    """One stretch of a video and how well it matched the query (see `SearchHit.timeline`)."""

    start: float = Field(description="start in seconds")
    end: float = Field(description="end in seconds")
    score: float = Field(
        description="similarity of the query to this stretch's best segment (as `score` in mode visual)"
    )


class SearchHit(BaseModel):
    """One video, ranked by its best-matching moment."""

    video_id: int = Field(description="stable id of the indexed video; the only way to fetch its file")
    name: str = Field(description="path relative to the indexed folder it lies in")
    score: float = Field(
        description="mode visual: similarity of the query to the best moment (dot product of unit vectors); "
        "text: the best span's BM25 score; hybrid: the fused score (see docs/text-search.md)"
    )
    start: float | None = Field(
        description="start of the best moment in seconds (null: the whole video); where text matched, the best "
        "span's start"
    )
    end: float | None = Field(description="end of the best moment in seconds (null: the whole video)")
    duration: float | None = Field(description="length of the video in seconds, when known")
    file_url: str = Field(description="URL that streams the video (supports HTTP range requests)")
    thumbnail_url: str = Field(description="URL of a JPEG frame taken at the moment's start")
    weak: bool | None = Field(
        description="true when the score is below this index's weak-match threshold (`weak_below`); "
        "null when there is none (video queries, text and hybrid modes, an empty index)"
    )
    sources: list[str] = Field(description="what matched: `visual` and/or the text sources `subtitles`, `ocr`, "
                              "`asr`")
    evidence: list[Evidence] = Field(
        description="why it matched, best first: the matching text spans, then the visual segment"
    )
    timeline: list[TimelinePoint] | None = Field(
        description="where in the video the query matched: the similarity of each of its segments to the query, "
        f"by start time, consecutive segments pooled (their span, their best score) into at most {MAX_POINTS} points; "
        "empty "
        "for a video indexed whole; null where there is no visual query (mode text)"
    )


class SearchResponse(BaseModel):
    query: str = Field(description="the text query, or a description of the query video")
    mode: str = Field(description="how the results were ranked: `visual`, `text` or `hybrid`")
    k: int
    offset: int
    has_more: bool = Field(description="true when asking again with offset + k returns more hits")
    results: list[SearchHit]
    weak: bool | None = Field(
        description="true when even the best result is weak: the collection likely holds nothing like the query; "
        "null when not judged (video queries, text and hybrid modes, an empty index, pages after the first)"
    )
    weak_below: float | None = Field(
        description="this index's weak-match threshold: the given quantile of the best scores that generic, "
        "unrelated queries reach in it (see docs/deploy.md, 'Weak matches')"
    )


class HealthResponse(BaseModel):
    status: str
    videos: int
    generation: int = Field(description="bumped by every committed change to the index")


class StatsResponse(BaseModel):
    videos: int
    segments: int
    failures: int
    generation: int
    store: str
    model: dict
    windows: dict | None = Field(description="window and stride in seconds when videos are indexed as moments")
    roots: list[str] = Field(description="names of the folders this server serves videos from")


class ErrorResponse(BaseModel):
    """Every error the API returns (4xx) has this one shape."""

    detail: str = Field(description="what was wrong with the request, in one sentence")
