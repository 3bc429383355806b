"""The search server: a JSON API over a `VideoIndex` and the web page that uses it.

Files are only ever served by indexed video id, and only when the file (links resolved) lies inside one of
the served roots: no request parameter is ever turned into a path.
"""

from __future__ import annotations

import math
import mimetypes
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from vitr.errors import VideoDecodeError
from vitr.index.video_index import Hit, VideoIndex
from vitr.serve.schemas import ErrorResponse, HealthResponse, SearchHit, SearchResponse, StatsResponse
from vitr.serve.thumbnails import ThumbnailCache

STATIC_DIR = Path(__file__).parent / "static"
_UPLOAD_CHUNK = 1 << 20
_ERRORS = {code: {"model": ErrorResponse} for code in (404, 413, 415, 422)}


@dataclass(frozen=True)
class ServeSettings:
    """Limits that keep one request from hogging the server."""

    max_query_chars: int = 500
    max_k: int = 100
    max_offset: int = 10_000
    max_upload_bytes: int = 200 * 2**20


class ServedFiles:
    """Maps indexed video ids to files, refusing any whose real location is outside the served roots."""

    def __init__(self, index: VideoIndex, roots: Sequence[str | Path]) -> None:
        self.index = index
        self.roots = [Path(r).resolve() for r in roots]

    def name(self, path: str) -> str:
        """The path relative to the root it lies in (what users see; full server paths are not shown)."""
        for root in self.roots:
            if Path(path).is_relative_to(root):
                return Path(path).relative_to(root).as_posix()
        return Path(path).name

    def file(self, video_id: int) -> tuple[Path, str]:
        """(real path, content digest) of an indexed video that may be served; 404 otherwise."""
        record = self.index.meta.video(video_id)
        if record is None:
            raise HTTPException(404, f"no indexed video with id {video_id}")
        try:
            real = Path(record.path).resolve(strict=True)
        except OSError as e:
            raise HTTPException(404, f"video {video_id} is no longer on disk") from e
        if not real.is_file() or not any(real.is_relative_to(root) for root in self.roots):
            raise HTTPException(404, f"video {video_id} is not inside a served folder")
        return real, record.digest


def create_app(
    index: VideoIndex, roots: Sequence[str | Path] | None = None, settings: ServeSettings | None = None
) -> FastAPI:
    """The API and web page over `index`; `roots` default to the folders recorded as indexed."""
    settings = settings or ServeSettings()
    files = ServedFiles(index, roots if roots else index.meta.roots())
    thumbnails = ThumbnailCache(index.dir / "thumbnails")
    app = FastAPI(title="vitr search", version="1", description="Search a folder of videos by text or by video.")

    def to_response(query: str, hits: list[Hit], k: int, offset: int) -> SearchResponse:
        results = []
        for hit in hits[:k]:
            record = index.meta.video(hit.video_id)
            at = hit.start or 0.0
            results.append(
                SearchHit(
                    video_id=hit.video_id,
                    name=files.name(hit.path),
                    score=hit.score,
                    start=hit.start,
                    end=hit.end,
                    duration=record.duration if record else None,
                    file_url=f"/api/videos/{hit.video_id}/file",
                    thumbnail_url=f"/api/videos/{hit.video_id}/thumbnail?t={at:.1f}",
                )
            )
        return SearchResponse(query=query, k=k, offset=offset, has_more=len(hits) > k, results=results)

    def filters(path_prefix: str | None, min_score: float | None):  # noqa: ANN202
        if path_prefix is None and min_score is None:
            return None
        return lambda hit: (
            (path_prefix is None or files.name(hit.path).startswith(path_prefix))
            and (min_score is None or hit.score >= min_score)
        )

    k_param = Query(10, ge=1, le=settings.max_k, description="number of results")
    offset_param = Query(0, ge=0, le=settings.max_offset, description="results to skip (pagination)")
    prefix_param = Query(None, max_length=1000, description="only videos whose name starts with this")
    score_param = Query(None, ge=-1.0, le=1.0, description="only results scoring at least this")

    @app.get("/api/search", response_model=SearchResponse, responses=_ERRORS, summary="search videos by text")
    def search_text(
        q: str = Query(..., description="what to look for, in words"),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = score_param,
    ) -> SearchResponse:
        text = q.strip()
        if not text:
            raise HTTPException(422, "the query is empty; type what to look for")
        if len(text) > settings.max_query_chars:
            raise HTTPException(422, f"the query has {len(text)} characters; at most {settings.max_query_chars}")
        hits = index.search_text(text, k + 1, offset, filters(path_prefix, min_score))
        return to_response(text, hits, k, offset)

    @app.get(
        "/api/search/similar",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="videos similar to an indexed video",
    )
    def search_similar(
        video_id: int = Query(..., ge=1),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = score_param,
    ) -> SearchResponse:
        record = index.meta.video(video_id)
        if record is None:
            raise HTTPException(404, f"no indexed video with id {video_id}")
        accept = filters(path_prefix, min_score)
        not_self = (lambda h: h.video_id != video_id and accept(h)) if accept else (lambda h: h.video_id != video_id)
        hits = index.search_vectors(index.video_vector(video_id), k + 1, offset, not_self)[0]
        return to_response(f"similar to {files.name(record.path)}", hits, k, offset)

    @app.post(
        "/api/search/video",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="search by an uploaded video clip",
    )
    def search_video(
        file: UploadFile = File(..., description="a video clip"),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = score_param,
    ) -> SearchResponse:
        content_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
        if not (content_type.startswith("video/") or content_type == "application/octet-stream"):
            raise HTTPException(415, f"upload a video file, not {content_type}")
        with tempfile.NamedTemporaryFile(suffix=Path(file.filename or "").suffix[:16]) as tmp:
            copied = copy_limited(file.file, tmp, settings.max_upload_bytes)
            tmp.flush()
            if copied == 0:
                raise HTTPException(422, "the uploaded file is empty")
            try:
                query = index.embed_clip(tmp.name)
            except VideoDecodeError as e:
                raise HTTPException(422, f"the upload is not a readable video: {e.reason}") from e
        hits = index.search_vectors(query, k + 1, offset, filters(path_prefix, min_score))[0]
        return to_response(f"video {file.filename or 'upload'}", hits, k, offset)

    # multipart framing adds a little to the file itself
    app.add_middleware(BodySizeLimit, limit=settings.max_upload_bytes + 64 * 1024, shown=settings.max_upload_bytes)

    @app.get("/api/health", response_model=HealthResponse, summary="liveness and index generation")
    def health() -> HealthResponse:
        stats = index.stats()
        return HealthResponse(status="ok", videos=stats["videos"], generation=stats["generation"])

    @app.get("/api/stats", response_model=StatsResponse, summary="what the index holds")
    def stats() -> StatsResponse:
        s = index.stats()
        return StatsResponse(
            videos=s["videos"],
            segments=s["segments"],
            failures=s["failures"],
            generation=s["generation"],
            store=s["store"],
            model=s["model"],
            windows=s["windows"],
            roots=[root.name for root in files.roots],
        )

    @app.get(
        "/api/videos/{video_id}/file",
        responses=_ERRORS,
        response_class=FileResponse,
        summary="stream an indexed video (HTTP range requests supported)",
    )
    def video_file(video_id: int) -> FileResponse:
        path, _ = files.file(video_id)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @app.get(
        "/api/videos/{video_id}/thumbnail",
        responses=_ERRORS,
        response_class=Response,
        summary="a JPEG frame of an indexed video",
    )
    def video_thumbnail(video_id: int, t: float = Query(0.0, ge=0.0, le=1e7, description="seconds")) -> Response:
        if not math.isfinite(t):
            raise HTTPException(422, "t must be a finite number of seconds")
        path, digest = files.file(video_id)
        try:
            data = thumbnails.get(digest, path, t)
        except VideoDecodeError as e:
            raise HTTPException(422, f"cannot make a thumbnail of video {video_id}: {e.reason}") from e
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes, whether it declares its length or not.

    A declared Content-Length is refused before anything is read; a chunked body is counted as it streams and
    cut off at the limit, so an upload without a length cannot fill the disk through the multipart parser's
    spooled files before the endpoint sees it.
    """

    def __init__(self, app, limit: int, shown: int | None = None) -> None:  # noqa: ANN001
        self.app = app
        self.limit = limit
        self.detail = f"the upload is larger than {shown if shown is not None else limit} bytes"

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        too_large = refused = started = False  # started: the app's own response began before any overrun

        async def counted_receive():  # noqa: ANN202
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _BodyTooLarge  # stops the parser; whatever error it turns into is replaced below
            return message

        async def guarded_send(message) -> None:  # noqa: ANN001
            nonlocal refused, started
            if not too_large or started:
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif message["type"] == "http.response.start" and not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if too_large and not (refused or started):
            await self._refuse(send)

    async def _refuse(self, send) -> None:  # noqa: ANN001
        body = ErrorResponse(detail=self.detail).model_dump_json().encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def copy_limited(source: BinaryIO, target: BinaryIO, limit: int) -> int:
    """Copy a file object to another, stopping with 413 once more than `limit` bytes came."""
    copied = 0
    while chunk := source.read(_UPLOAD_CHUNK):
        copied += len(chunk)
        if copied > limit:
            raise HTTPException(413, f"the upload is larger than {limit} bytes")
        target.write(chunk)
    return copied
