"""The search server: a JSON API over a `VideoIndex` and the web page that uses it.

Files are only ever served by indexed video id, and only when the file (links resolved) lies inside one of
the served roots: no request parameter is ever turned into a path, and no response shows a server path.
Every error is an `ErrorResponse` (`{"detail": "..."}`) with a 4xx status, as /openapi.json says.
"""

from __future__ import annotations

import asyncio
import logging
import math
import mimetypes
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.middleware.trustedhost import TrustedHostMiddleware
from swagger_ui_bundle import swagger_ui_path

from vitr.errors import ConfigError, VideoDecodeError
from vitr.index import hybrid
from vitr.index.calibration import WEAK_QUANTILE, WeakMatches, is_weak
from vitr.index.refine import Refinement, refine_hits
from vitr.index.timeline import timeline
from vitr.index.video_index import Evidence as HitEvidence
from vitr.index.video_index import Hit, VideoIndex
from vitr.serve.schemas import (
    ErrorResponse,
    Evidence,
    HealthResponse,
    SearchHit,
    SearchResponse,
    StatsResponse,
    TimelinePoint,
)
from vitr.serve.thumbnails import MAX_THUMBNAILS, ThumbnailCache, thumbnail_time
from vitr.serve.uploads import SNIFF_BYTES, UploadRefused, check_container, public_reason, stored_upload
from vitr.video.clip import cut_clip

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
_UPLOAD_CHUNK = 1 << 20
MAX_VIDEO_ID = 2**63 - 1  # SQLite's largest integer: larger ids cannot exist and must not reach the database
DOCS_ASSETS = "/docs-assets"  # where Swagger UI's own files are served, for /docs
_CLIP_RETRY_S = 5  # what a 503 for a clip asks the client to wait
IMAGE_TYPES = {"image/png", "image/jpeg", "application/octet-stream"}  # besides video/*; the bytes decide
_ERROR_TEXT = {
    400: "the request's Host header is not one this server answers to",
    404: "no such video, or it may not be served",
    408: "the request body did not arrive in time",
    413: "the upload is too large",
    415: "the upload is not a supported video container or image",
    422: "a parameter or the upload is invalid",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _ERROR_TEXT.items()
}
VideoId = Annotated[int, PathParam(ge=1, le=MAX_VIDEO_ID, description="id of an indexed video")]


@dataclass(frozen=True)
class ServeSettings:
    """Limits that keep one request or client from hogging the server, and whom it answers.

    allowed_hosts: Host header values accepted (None: any, for in-process use; `vitr serve` always sets them),
    against DNS rebinding. body_idle_timeout_s / body_timeout_s: a request body must keep arriving and be
    complete within these. weak_quantile: see vitr.index.calibration. max_clip_s: the longest moment a client may
    export as a clip (each is re-encoded: seconds of CPU per second of video at most). max_clip_exports: clips cut
    at once; a request beyond them is answered 503 at once (Retry-After), rather than queueing CPU-bound work.
    """

    max_query_chars: int = 500
    max_k: int = 100
    max_offset: int = 10_000
    max_upload_bytes: int = 200 * 2**20
    allowed_hosts: tuple[str, ...] | None = None
    body_idle_timeout_s: float = 30.0
    body_timeout_s: float = 300.0
    max_thumbnails: int = MAX_THUMBNAILS
    weak_quantile: float = WEAK_QUANTILE
    max_clip_s: float = 600.0
    max_clip_exports: int = 2


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
    thumbnails = ThumbnailCache(index.dir / "thumbnails", max_files=settings.max_thumbnails)
    weak = WeakMatches(index, settings.weak_quantile)
    exports = threading.BoundedSemaphore(settings.max_clip_exports)  # clips being cut now
    # FastAPI's own /docs and /redoc load their scripts from a CDN: blank offline. /docs is served from the
    # Swagger UI that the swagger-ui-bundle-v2 package ships instead; ReDoc has no local copy, so it is off.
    app = FastAPI(
        title="vitr search",
        version="1",
        description="Search a folder of videos by text, by video or by image.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.weak_matches = weak

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(ErrorResponse(detail=describe_validation(exc.errors())).model_dump(), status_code=422)

    def to_response(
        query: str,
        hits: list[Hit],
        k: int,
        offset: int,
        weak_below: float | None,
        mode: str = "visual",
        query_vector: np.ndarray | None = None,
    ) -> SearchResponse:
        """`query_vector`: what the hits' segments are scored against for their timelines (None: no timeline)."""
        results = []
        for hit in hits[:k]:
            record = index.meta.video(hit.video_id)
            duration = record.duration if record else None
            at = thumbnail_time(hit.start or 0.0, duration)
            results.append(
                SearchHit(
                    video_id=hit.video_id,
                    name=files.name(hit.path),
                    score=hit.score,
                    start=hit.start,
                    end=hit.end,
                    duration=duration,
                    file_url=f"/api/videos/{hit.video_id}/file",
                    thumbnail_url=f"/api/videos/{hit.video_id}/thumbnail?t={at:g}",
                    weak=is_weak(hit, weak_below),
                    sources=list(hit.sources),
                    evidence=evidence_of(hit),
                    timeline=None if query_vector is None else timeline_of(index, hit.video_id, query_vector),
                )
            )
        best = None if weak_below is None or not results else results[0].weak if offset == 0 else None
        return SearchResponse(
            query=query,
            mode=mode,
            k=k,
            offset=offset,
            has_more=len(hits) > k,
            results=results,
            weak=best,
            weak_below=weak_below,
        )

    def filters(path_prefix: str | None, min_score: float | None):  # noqa: ANN202
        if path_prefix is None and min_score is None:
            return None
        return lambda hit: (
            (path_prefix is None or files.name(hit.path).startswith(path_prefix))
            and (min_score is None or hit.score >= min_score)
        )

    refine_param = Query(
        False,
        description="sharpen each hit's visual moment: re-score the frames around it and tighten its start and end "
        "to where the query matches (a decode and an encode per hit: see docs/deploy.md)",
    )
    timeline_param = Query(
        True,
        description="give each hit a timeline (how well each stretch of its video matches the query); false skips "
        "that scoring, which grows with each video's length (docs/deploy.md)",
    )
    k_param = Query(10, ge=1, le=settings.max_k, description="number of results")
    offset_param = Query(0, ge=0, le=settings.max_offset, description="results to skip (pagination)")
    prefix_param = Query(None, max_length=1000, description="only videos whose name starts with this")
    score_param = Query(None, ge=-1.0, le=1.0, description="only results scoring at least this")
    text_score_param = Query(
        None, ge=-1.0, le=1.0, description="only results whose `score` (its scale depends on `mode`) is at least this"
    )

    @app.get("/api/search", response_model=SearchResponse, responses=_ERRORS, summary="search videos by text")
    def search_text(
        q: str = Query(
            ...,
            min_length=1,
            max_length=settings.max_query_chars,
            json_schema_extra={"pattern": r"\S"},
            description="what to look for, in words (not only spaces)",
        ),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = text_score_param,
        mode: Literal["visual", "text", "hybrid"] | None = Query(
            None,
            description="visual (what videos show), text (what their subtitles, on-screen text or speech say) or "
            "hybrid (both, fused); default: hybrid when the index holds text spans, else visual",
        ),
        fusion: Literal["rrf", "weighted"] = Query(
            hybrid.DEFAULT_FUSION,
            description="how hybrid mode fuses the rankings: weighted (text_weight * text + (1 - text_weight) * "
            "visual, each as a fraction of its best score) or rrf (reciprocal rank fusion, k=60)",
        ),
        text_weight: float = Query(0.5, ge=0.0, le=1.0, description="weight of the text score in fusion=weighted"),
        refine: bool = refine_param,
        timeline: bool = timeline_param,
    ) -> SearchResponse:
        text = q.strip()
        if not text:
            raise HTTPException(422, "the query is empty; type what to look for")
        mode = mode or hybrid.default_mode(index)
        hits = hybrid.search(
            index, text, k + 1, mode, fusion, text_weight, offset, filters(path_prefix, None), min_score,
            Refinement() if refine else None,
        )
        # the timeline scores segments by what the video shows: there is none to show for a text-only search
        vector = None if mode == "text" or not hits else index.text_vector(text)
        # the weak-match threshold is calibrated on visual scores: it says nothing about text or fused ones
        return to_response(text, hits, k, offset, weak.threshold() if mode == "visual" else None, mode,
                           vector if timeline else None)

    @app.get(
        "/api/search/similar",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="videos similar to an indexed video",
    )
    def search_similar(
        video_id: int = Query(..., ge=1, le=MAX_VIDEO_ID, description="id of an indexed video"),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = score_param,
        refine: bool = refine_param,
        timeline: bool = timeline_param,
    ) -> SearchResponse:
        record = index.meta.video(video_id)
        if record is None:
            raise HTTPException(404, f"no indexed video with id {video_id}")
        accept = filters(path_prefix, min_score)
        not_self = (lambda h: h.video_id != video_id and accept(h)) if accept else (lambda h: h.video_id != video_id)
        query = index.video_vector(video_id)
        hits = index.search_vectors(query, k + 1, offset, not_self)[0]
        if refine:
            hits = refine_hits(index, hits[:k], query, Refinement()) + hits[k:]  # the extra hit only says more
        return to_response(f"similar to {files.name(record.path)}", hits, k, offset, None,
                           query_vector=query if timeline else None)

    @app.post(
        "/api/search/video",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="search by an uploaded video clip or still image",
        description="The upload must be a non-empty file in an allowlisted container (MP4/MOV, Matroska/WebM, AVI, "
        "MPEG-TS, MPEG-PS, Ogg) holding a video stream, or a PNG or JPEG image (searched as a clip of one frame); "
        "anything else is refused with 415 or 422.",
    )
    def search_video(
        file: UploadFile = File(
            ..., description="a video clip or a PNG/JPEG image (not empty)", json_schema_extra={"minLength": 1}
        ),
        k: int = k_param,
        offset: int = offset_param,
        path_prefix: str | None = prefix_param,
        min_score: float | None = score_param,
        refine: bool = refine_param,
        timeline: bool = timeline_param,
    ) -> SearchResponse:
        content_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
        if not (content_type.startswith("video/") or content_type in IMAGE_TYPES):
            raise HTTPException(415, f"upload a video file or a PNG/JPEG image, not {content_type[:100]}")
        head = file.file.read(SNIFF_BYTES)
        if not head:
            raise HTTPException(422, "the uploaded file is empty")
        try:
            with stored_upload(head) as (path, container):
                with path.open("wb") as out:
                    out.write(head)
                    copy_limited(file.file, out, settings.max_upload_bytes, already=len(head))
                check_container(path, container)
                try:
                    query = index.embed_clip(path)
                except VideoDecodeError as e:
                    reason = public_reason(e.reason, path, "the upload")
                    raise HTTPException(422, f"the upload is not a readable video or image: {reason}") from e
        except UploadRefused as e:
            raise HTTPException(e.status, e.reason) from e
        hits = index.search_vectors(query, k + 1, offset, filters(path_prefix, min_score))[0]
        if refine:
            hits = refine_hits(index, hits[:k], query, Refinement()) + hits[k:]  # the extra hit only says more
        return to_response(f"video {(file.filename or 'upload')[:200]}", hits, k, offset, None,
                           query_vector=query if timeline else None)

    app.add_middleware(
        BodyLimits,
        limit=settings.max_upload_bytes + 64 * 1024,  # multipart framing adds a little to the file itself
        shown=settings.max_upload_bytes,
        idle_timeout_s=settings.body_idle_timeout_s,
        total_timeout_s=settings.body_timeout_s,
    )
    if settings.allowed_hosts is not None:
        app.add_middleware(TrustedHosts, allowed_hosts=list(settings.allowed_hosts))

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
            model=public_model(s["model"]),
            windows=s["windows"],
            roots=[root.name for root in files.roots],
        )

    @app.get(
        "/api/videos/{video_id}/file",
        responses=_ERRORS,
        response_class=FileResponse,
        summary="stream an indexed video (HTTP range requests supported)",
    )
    def video_file(video_id: VideoId) -> FileResponse:
        path, _ = files.file(video_id)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @app.get(
        "/api/videos/{video_id}/thumbnail",
        responses={**_ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "a JPEG image"}},
        response_class=Response,
        summary="a JPEG frame of an indexed video",
    )
    def video_thumbnail(
        video_id: VideoId,
        t: float = Query(0.0, ge=0.0, le=1e7, description="seconds; clamped to the video and rounded down to 0.5 s"),
    ) -> Response:
        if not math.isfinite(t):
            raise HTTPException(422, "t must be a finite number of seconds")
        path, digest = files.file(video_id)
        record = index.meta.video(video_id)
        try:
            data = thumbnails.get(digest, path, thumbnail_time(t, record.duration if record else None))
        except VideoDecodeError as e:
            reason = public_reason(e.reason, path, files.name(str(path)))
            raise HTTPException(422, f"cannot make a thumbnail of video {video_id}: {reason}") from e
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get(
        "/api/videos/{video_id}/clip",
        responses={
            **_ERRORS,
            200: {
                "content": {"video/mp4": {}},
                "description": "an MP4 of the moment: H.264, with AAC sound",
                "headers": {
                    "X-Clip-Audio": {
                        "description": "`aac`: the clip has sound; `none`: it has none (the video is silent, or its "
                        "sound was left out: then X-Clip-Audio-Error says why)",
                        "required": True,
                        "schema": {"type": "string", "enum": ["aac", "none"]},
                    },
                    "X-Clip-Audio-Error": {
                        "description": "only when the video's sound was left out: why, in one line of printable "
                        "ASCII that names no server path",
                        "schema": {"type": "string"},
                    },
                },
            },
            503: {"model": ErrorResponse, "description": "as many clips as the server cuts at once are being cut"},
        },
        response_class=FileResponse,
        summary="a moment of an indexed video as an MP4 file to download",
        description="Re-encoded with H.264, exact to one frame, and the video's first audio stream as AAC over the "
        "same span (sound that does not decode is left out, the picture still sent, and the X-Clip-Audio and "
        "X-Clip-Audio-Error headers say so). `end` must be after `start` "
        f"and at most {settings.max_clip_s:g} s after it; `start` must lie inside the video; an `end` past the "
        f"video's end is cut at its end. At most {settings.max_clip_exports} clips are cut at once: a request beyond "
        "them is answered 503 with a Retry-After header.",
    )
    def video_clip(
        video_id: VideoId,
        start: float = Query(..., ge=0.0, le=1e7, description="where the clip starts, in seconds"),
        end: float = Query(..., gt=0.0, le=1e7, description="where the clip ends, in seconds"),
    ) -> FileResponse:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise HTTPException(422, "start and end must be finite numbers of seconds")
        if end <= start:
            raise HTTPException(422, f"end ({end:g}) must be after start ({start:g})")
        if end - start > settings.max_clip_s:
            raise HTTPException(422, f"a clip may last at most {settings.max_clip_s:g} s; ask for a shorter moment")
        path, _ = files.file(video_id)
        record = index.meta.video(video_id)
        duration = record.duration if record else None
        if duration is not None and start >= duration:
            raise HTTPException(422, f"start ({start:g}) is past the end of video {video_id} ({duration:.3f} s long)")
        if not exports.acquire(blocking=False):
            raise HTTPException(
                503,
                f"the server is already cutting {settings.max_clip_exports} clips; try again in a few seconds",
                headers={"Retry-After": str(_CLIP_RETRY_S)},
            )
        folder = Path(tempfile.mkdtemp(prefix="vitr-clip-"))
        try:
            clip = cut_clip(path, start, end if duration is None else min(end, duration), folder / "clip.mp4")
        except (VideoDecodeError, ConfigError) as e:
            shutil.rmtree(folder, ignore_errors=True)
            reason = public_reason(e.reason, path, files.name(str(path))) if isinstance(e, VideoDecodeError) else (
                str(e).replace("--", ""))
            raise HTTPException(422, f"cannot cut a clip of video {video_id}: {reason}") from e
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            exports.release()  # the cut is done: sending the file needs no slot
        sound = {"X-Clip-Audio": "aac" if clip.audio else "none"}
        if clip.audio_error is not None:
            log.warning("clip of video %d sent without sound: %s", video_id, clip.audio_error)
            reason = public_reason(clip.audio_error, path, files.name(str(path)))
            sound["X-Clip-Audio-Error"] = _header_text(reason)
        name = f"{Path(files.name(str(path))).stem}_{clip.start:.1f}-{clip.end:.1f}.mp4"
        return FileResponse(
            clip.path,
            media_type="video/mp4",
            filename=name,
            headers=sound,
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico whatever the page links; an SVG answers both, so no 404 in the log.
        return FileResponse(
            STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    return app


def evidence_of(hit: Hit) -> list[Evidence]:
    """The hit's evidence for the API; a visual hit without any is its own moment, as a visual segment."""
    found = hit.evidence or (HitEvidence("visual", hit.start, hit.end, hit.score),)
    return [
        Evidence(
            source=e.source,
            start=e.start,
            end=e.end,
            score=e.score,
            snippet=e.snippet,
            highlights=list(e.highlights),
            language=e.language,
        )
        for e in found
    ]


def timeline_of(index: VideoIndex, video_id: int, query: np.ndarray) -> list[TimelinePoint]:
    return [TimelinePoint(start=p.start, end=p.end, score=p.score) for p in timeline(index, video_id, query)]


def describe_validation(errors: Sequence[dict]) -> str:
    """FastAPI's list of validation errors as the one-sentence `detail` every error response has."""
    parts = []
    for error in errors:
        where = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def _header_text(text: str) -> str:
    """`text` as a header value: one line of printable ASCII (HTTP headers carry Latin-1 at most, and a file name
    in an FFmpeg message may hold any character), each other character as "?"."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


_PATH_FIELDS = ("backbone", "weights", "checkpoint")


def public_model(model: dict) -> dict:
    """The model settings with file and folder paths cut to their last part (the server's layout is private)."""
    shown = dict(model)
    for key in _PATH_FIELDS:
        value = shown.get(key)
        if isinstance(value, str) and ("/" in value or "\\" in value):
            shown[key] = Path(value.replace("\\", "/")).name
    return shown


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host check (against DNS rebinding), refusing with the API's one error shape."""

    def __init__(self, app, allowed_hosts: Sequence[str]) -> None:  # noqa: ANN001
        async def passed(scope, receive, send) -> None:  # noqa: ANN001
            scope["vitr.host_allowed"] = True
            await app(scope, receive, send)

        super().__init__(passed, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def reply(message) -> None:  # noqa: ANN001
            if scope.get("vitr.host_allowed"):
                await send(message)
            elif message["type"] == "http.response.start":
                await send_error(send, 400, "the Host header names a host this server does not answer to")

        await super().__call__(scope, receive, reply)


class _BodyRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BodyLimits:
    """ASGI middleware: 413 for a request body over `limit` bytes, 408 for one that stalls or drags on.

    A declared Content-Length over the limit is refused before anything is read; a chunked body is counted as
    it streams and cut off at the limit, so an upload without a length cannot fill the disk through the
    multipart parser's spooled files before the endpoint sees it. Each part of the body must come within
    `idle_timeout_s` of the previous one and all of it within `total_timeout_s`, so a slow client cannot hold a
    worker; once the body is complete, `receive` is passed through untouched (streaming responses wait on it
    for the client's disconnect).
    """

    def __init__(
        self,
        app,  # noqa: ANN001
        limit: int,
        shown: int | None = None,
        idle_timeout_s: float = 30.0,
        total_timeout_s: float = 300.0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.detail = f"the upload is larger than {shown if shown is not None else limit} bytes"
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send_error(send, 413, self.detail)
            return
        received = 0
        body_done = False
        deadline = time.monotonic() + self.total_timeout_s
        refusal: _BodyRefused | None = None
        replied = started = False  # started: the app's own response began before any refusal

        async def limited_receive():  # noqa: ANN202
            nonlocal received, body_done, refusal
            if body_done:
                return await receive()
            wait = min(self.idle_timeout_s, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
            except TimeoutError:
                refusal = _BodyRefused(408, "the request body did not arrive in time; send it faster or smaller")
                raise refusal from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.limit:
                    refusal = _BodyRefused(413, self.detail)
                    raise refusal  # stops the parser; whatever error it turns into is replaced below
            else:
                body_done = True
            return message

        async def guarded_send(message) -> None:  # noqa: ANN001
            nonlocal replied, started
            if refusal is None or started:
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif message["type"] == "http.response.start" and not replied:
                replied = True
                await send_error(send, refusal.status, refusal.detail)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyRefused:
            pass
        if refusal is not None and not (replied or started):
            await send_error(send, refusal.status, refusal.detail)


async def send_error(send, status: int, detail: str) -> None:  # noqa: ANN001
    """Send a complete `ErrorResponse` from ASGI middleware (outside FastAPI's own error handling)."""
    body = ErrorResponse(detail=detail).model_dump_json().encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def copy_limited(source: BinaryIO, target: BinaryIO, limit: int, already: int = 0) -> int:
    """Copy a file object to another, stopping with 413 once more than `limit` bytes (with `already`) came."""
    copied = already
    while chunk := source.read(_UPLOAD_CHUNK):
        copied += len(chunk)
        if copied > limit:
            raise HTTPException(413, f"the upload is larger than {limit} bytes")
        target.write(chunk)
    return copied
