"""The index's source of truth: a SQLite file of videos, their segments and vectors, and failures.

Every batch of newly indexed videos is committed in one transaction, so a killed run keeps all it committed
and a re-run neither redoes nor duplicates it. WAL mode lets searches read while an indexer writes; each
thread gets its own connection, and `snapshot()` pins one committed state for a whole search, so a reader
never mixes the vectors of one generation with the rows of the next.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitr.errors import IndexStoreError
from vitr.index.text_tracks import SidecarState, TextSpan, TextTrack

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    duration REAL
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    start REAL,
    end REAL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_video ON segments(video_id);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deleted_segments (seq INTEGER PRIMARY KEY AUTOINCREMENT, segment_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vector_sync (
    target TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL,
    last_deleted INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS log_deleted_segment AFTER DELETE ON segments
BEGIN
    INSERT INTO deleted_segments (segment_id) VALUES (OLD.id);
END;
CREATE TABLE IF NOT EXISTS text_files (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (video_id, path)
);
CREATE TABLE IF NOT EXISTS text_spans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    language TEXT,
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS text_spans_video ON text_spans(video_id);
CREATE TABLE IF NOT EXISTS text_runs (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (video_id, source)
);
CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(
    text, content='text_spans', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS text_spans_indexed AFTER INSERT ON text_spans
BEGIN
    INSERT INTO text_fts (rowid, text) VALUES (NEW.id, NEW.text);
END;
CREATE TRIGGER IF NOT EXISTS text_spans_unindexed AFTER DELETE ON text_spans
BEGIN
    INSERT INTO text_fts (text_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
END;
"""

# `text_runs` records which text source was read for which video, and why it failed (NULL: read), so a rerun
# reads a newly enabled source and retries a failed one for that video alone.
# `text_fts` is an FTS5 index over `text_spans`, kept in step by triggers, so spans, their lexical index and the
# video rows commit in one transaction. A span match: (span id, video id, source, language, start, end, bm25
# (lower is better), the span's text with matched words between \x02 and \x03).
SpanMatch = tuple[int, int, str, str | None, float, float, float, str]
HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "\x02", "\x03"


SegmentRows = list[tuple[float | None, float | None, np.ndarray]]  # (start, end, vector (E,))
IndexedVideo = tuple[str, int, int, str, float | None, SegmentRows]  # path, size, mtime_ns, digest, duration, rows


@dataclass(frozen=True)
class VideoRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    digest: str
    duration: float | None


@dataclass(frozen=True)
class Segment:
    """One indexed window of a video (start/end None for the whole video)."""

    video_id: int
    start: float | None
    end: float | None
    vector: np.ndarray  # (E,) float32


_VIDEO_COLUMNS = "id, path, size, mtime_ns, digest, duration"


class Metadata:
    """read_only opens the file with SQLite's `mode=ro` (nothing is written, an indexer may still be writing),
    or `immutable=1` when its directory is not writable either (a read-only mount or copy: nobody can be
    writing, and WAL mode could not create its shared-memory file there)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if read_only:
            if not self.path.is_file():
                raise IndexStoreError(f"{self.path} is missing: a read-only index cannot be created")
            self.db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # fails here, clearly, if unreadable
            return
        with self._writing():
            db = self.db
            db.executescript(_SCHEMA)
            db.commit()

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.read_only:
                db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                return db
            mode = "mode=ro" if os.access(self.path.parent, os.W_OK) else "immutable=1"
            uri = f"{self.path.absolute().as_uri()}?{mode}"
            return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
        except sqlite3.Error as exc:
            raise IndexStoreError(f"cannot open {self.path}{' read-only' if self.read_only else ''}: {exc}") from exc

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write: refused on a read-only index; a full disk or read-only file system becomes a clear error
        (the transaction rolls back, so everything committed before stays)."""
        if self.read_only:
            raise IndexStoreError(f"cannot write {self.path}: the index is open read-only (not writable here)")
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise IndexStoreError(f"cannot write {self.path}: {exc}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (SQLite transactions are per connection, so threads must not share one)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees the same committed state (a WAL read transaction), whatever writers do."""
        db = self.db
        if db.in_transaction:  # nested: the outer snapshot already pins the state
            yield
            return
        db.execute("BEGIN")
        try:
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # the snapshot starts at the first read
            yield
        finally:
            db.rollback()

    # -- meta ------------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._writing(), self.db:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """Bumped by every committed change, so readers know when their vector index is stale."""
        return int(self.get_meta("generation") or 0)

    def _bump(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1"
        )

    def roots(self) -> list[str]:
        """The folders indexed into this index (what a server may serve files from)."""
        return json.loads(self.get_meta("roots") or "[]")

    def add_root(self, root: str) -> None:
        with self._writing(), self.db:
            roots = self.roots()
            if root not in roots:
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('roots', ?)",
                    (json.dumps(sorted([*roots, root])),),
                )

    # -- videos ----------------------------------------------------------------------------------------------
    def videos(self) -> dict[str, VideoRecord]:
        rows = self.db.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos")
        return {r[1]: VideoRecord(*r) for r in rows}

    def video(self, video_id: int) -> VideoRecord | None:
        row = self.db.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE id = ?", (video_id,)).fetchone()
        return VideoRecord(*row) if row else None

    def videos_by_id(self, ids: Iterable[int]) -> dict[int, VideoRecord]:
        ids = sorted({int(i) for i in ids})
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE id IN ({marks})", ids)
        return {r[0]: VideoRecord(*r) for r in rows}

    def video_by_path(self, path: str) -> VideoRecord | None:
        row = self.db.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE path = ?", (path,)).fetchone()
        return VideoRecord(*row) if row else None

    def failures(self) -> dict[str, tuple[int, int, str]]:
        return {r[0]: (r[1], r[2], r[3]) for r in self.db.execute("SELECT path, size, mtime_ns, reason FROM failures")}

    def count(self) -> tuple[int, int]:
        """(videos, segments)."""
        v = self.db.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
        s = self.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
        return v, s

    def commit_batch(
        self,
        indexed: Iterable[IndexedVideo],
        failed: Iterable[tuple[str, int, int, str]] = (),
        removed: Iterable[str] = (),
        texts: Mapping[str, TextTrack] | None = None,
    ) -> None:
        """Atomically replace/insert videos with their segments, record failures, and drop removed paths.

        `texts` (video path -> its text track) replaces the text of those videos, whether indexed in this batch
        or already (a changed sidecar of an unchanged video), in the same transaction."""
        texts = texts or {}
        db = self.db
        with self._writing(), db:
            for path in removed:
                db.execute("DELETE FROM videos WHERE path = ?", (path,))
                db.execute("DELETE FROM failures WHERE path = ?", (path,))
            for path, size, mtime_ns, digest, duration, segments in indexed:
                db.execute("DELETE FROM videos WHERE path = ?", (path,))
                db.execute("DELETE FROM failures WHERE path = ?", (path,))
                cur = db.execute(
                    "INSERT INTO videos (path, size, mtime_ns, digest, duration) VALUES (?, ?, ?, ?, ?)",
                    (path, size, mtime_ns, digest, duration),
                )
                db.executemany(
                    "INSERT INTO segments (video_id, start, end, vector) VALUES (?, ?, ?, ?)",
                    [(cur.lastrowid, s, e, np.asarray(v, dtype=np.float32).tobytes()) for s, e, v in segments],
                )
            for path, track in texts.items():
                row = db.execute("SELECT id FROM videos WHERE path = ?", (path,)).fetchone()
                if row is not None:
                    self._replace_text(row[0], track)
            for path, size, mtime_ns, reason in failed:
                db.execute(
                    "INSERT OR REPLACE INTO failures (path, size, mtime_ns, reason) VALUES (?, ?, ?, ?)",
                    (path, size, mtime_ns, reason),
                )
            self._bump()

    # -- text tracks -----------------------------------------------------------------------------------------
    def _replace_text(self, video_id: int, track: TextTrack) -> None:
        """Replace the spans of the sources `track` read or drops; the video's other sources stay as they are."""
        db = self.db
        for source in (*track.read, *track.dropped):
            db.execute("DELETE FROM text_spans WHERE video_id = ? AND source = ?", (video_id, source))
            db.execute("DELETE FROM text_runs WHERE video_id = ? AND source = ?", (video_id, source))
            if source == "subtitles":
                db.execute("DELETE FROM text_files WHERE video_id = ?", (video_id,))
        db.executemany(
            "INSERT INTO text_runs (video_id, source, reason) VALUES (?, ?, ?)",
            [(video_id, source, reason) for source, reason in track.read.items()],
        )
        db.executemany(
            "INSERT INTO text_files (video_id, path, size, mtime_ns, reason) VALUES (?, ?, ?, ?, ?)",
            [(video_id, f.path, f.size, f.mtime_ns, f.reason) for f in track.files],
        )
        db.executemany(
            "INSERT INTO text_spans (video_id, source, language, start, end, text) VALUES (?, ?, ?, ?, ?, ?)",
            [(video_id, s.source, s.language, s.start, s.end, s.text) for s in track.spans if s.source in track.read],
        )

    def text_runs(self) -> dict[str, dict[str, str | None]]:
        """video path -> {text source -> why it failed, None where read}: the sources each video holds (a video
        indexed before sources were recorded counts the sources of its spans and subtitle files as read)."""
        out: dict[str, dict[str, str | None]] = {}
        try:
            legacy = self.db.execute(
                "SELECT v.path, s.source FROM text_spans s JOIN videos v ON v.id = s.video_id "
                "UNION SELECT v.path, 'subtitles' FROM text_files f JOIN videos v ON v.id = f.video_id"
            ).fetchall()
            runs = self.db.execute(
                "SELECT v.path, r.source, r.reason FROM text_runs r JOIN videos v ON v.id = r.video_id"
            ).fetchall()
        except sqlite3.OperationalError:  # an index made before text tracks, opened read-only
            return {}
        for video, source in legacy:
            out.setdefault(video, {})[source] = None
        for video, source, reason in runs:
            out.setdefault(video, {})[source] = reason
        return out

    def text_files(self) -> dict[str, dict[str, tuple[int, int, str | None]]]:
        """video path -> {sidecar path -> (size, mtime_ns, reason or None)} as last read (no entry: none read)."""
        out: dict[str, dict[str, tuple[int, int, str | None]]] = {}
        try:
            rows = self.db.execute(
                "SELECT v.path, f.path, f.size, f.mtime_ns, f.reason "
                "FROM text_files f JOIN videos v ON v.id = f.video_id"
            ).fetchall()
        except sqlite3.OperationalError:  # an index made before text tracks, opened read-only
            return {}
        for video, path, size, mtime_ns, reason in rows:
            out.setdefault(video, {})[path] = (size, mtime_ns, reason)
        return out

    def text_track(self, video_id: int) -> TextTrack:
        """A video's stored text track (spans and sidecar states), to copy it into another index."""
        try:
            files = self.db.execute(
                "SELECT path, size, mtime_ns, reason FROM text_files WHERE video_id = ? ORDER BY path", (video_id,)
            ).fetchall()
            spans = self.db.execute(
                "SELECT start, end, text, source, language FROM text_spans WHERE video_id = ? ORDER BY id", (video_id,)
            ).fetchall()
            runs = self.db.execute("SELECT source, reason FROM text_runs WHERE video_id = ?", (video_id,)).fetchall()
        except sqlite3.OperationalError:  # an index made before text tracks, opened read-only
            return TextTrack()
        read = {"subtitles": None} | {source: None for *_, source, _ in spans} | dict(runs)
        return TextTrack([TextSpan(*r) for r in spans], [SidecarState(*r) for r in files], read=read)

    def text_span_count(self) -> int:
        try:
            return int(self.db.execute("SELECT COUNT(*) FROM text_spans").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def search_spans(self, match: str, limit: int) -> list[SpanMatch]:
        """The best `limit` spans for an FTS5 MATCH expression, best (lowest bm25) first."""
        sql = (
            "SELECT s.id, s.video_id, s.source, s.language, s.start, s.end, bm25(text_fts), "
            "highlight(text_fts, 0, ?, ?) "
            "FROM text_fts JOIN text_spans s ON s.id = text_fts.rowid WHERE text_fts MATCH ? "
            "ORDER BY bm25(text_fts) LIMIT ?"
        )
        try:
            return [tuple(r) for r in self.db.execute(sql, (HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE, match, int(limit)))]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise IndexStoreError(f"text search failed in {self.path}: {exc}") from exc

    # -- segments --------------------------------------------------------------------------------------------
    def all_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N,) int64, vectors (N, E) float32) of every segment, ordered by id."""
        return self.segments_after(0)

    def segments_after(self, after_id: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N,), vectors (N, E)) of segments with id > after_id, ordered by id (ids only ever grow)."""
        sql = "SELECT id, vector FROM segments WHERE id > ? ORDER BY id"
        rows = self.db.execute(sql + (f" LIMIT {int(limit)}" if limit else ""), (after_id,)).fetchall()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def deleted_segments_after(self, after_seq: int) -> tuple[int, list[int]]:
        """(newest log position, ids of segments deleted after log position `after_seq`)."""
        rows = self.db.execute(
            "SELECT seq, segment_id FROM deleted_segments WHERE seq > ? ORDER BY seq", (after_seq,)
        ).fetchall()
        return (rows[-1][0] if rows else after_seq), [r[1] for r in rows]

    # -- external vector stores ------------------------------------------------------------------------------
    def vector_sync_state(self, target: str) -> tuple[int, int]:
        """(last uploaded segment id, last applied deletion-log position) of an external store, (0, 0) if none."""
        try:
            sql = "SELECT last_id, last_deleted FROM vector_sync WHERE target = ?"
            row = self.db.execute(sql, (target,)).fetchone()
        except sqlite3.OperationalError:  # an index made before the table existed, opened read-only
            return 0, 0
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def set_vector_sync_state(self, target: str, last_id: int, last_deleted: int) -> None:
        """Record how far `target` is synced, on a connection of its own: the caller's may hold a read snapshot,
        which a write would end (and could not upgrade while an indexer commits)."""
        db = sqlite3.connect(self.path, timeout=60)
        try:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO vector_sync (target, last_id, last_deleted) VALUES (?, ?, ?)",
                    (target, last_id, last_deleted),
                )
        finally:
            db.close()

    def segments(self, ids: Iterable[int]) -> dict[int, tuple[int, float | None, float | None]]:
        """segment id -> (video id, start, end)."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, video_id, start, end FROM segments WHERE id IN ({marks})", ids)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def video_segments(self, video_id: int) -> list[Segment]:
        rows = self.db.execute(
            "SELECT start, end, vector FROM segments WHERE video_id = ? ORDER BY id", (video_id,)
        ).fetchall()
        return [Segment(video_id, r[0], r[1], np.frombuffer(r[2], dtype=np.float32)) for r in rows]

    def video_vectors(self, video_id: int) -> np.ndarray:
        return np.stack([s.vector for s in self.video_segments(video_id)])

    def timed_vectors(self, video_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """starts (S,), ends (S,) and vectors (S, E) of a video's timed segments, by start time (S = 0: none)."""
        rows = self.db.execute(
            "SELECT start, end, vector FROM segments WHERE video_id = ? AND start IS NOT NULL AND end IS NOT NULL",
            (video_id,),
        ).fetchall()  # sorted below: SQLite would sort the rows with their vectors in a temporary table
        if not rows:
            return np.zeros(0), np.zeros(0), np.zeros((0, 0), dtype=np.float32)
        starts, ends = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        order = np.lexsort((ends, starts))
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        if (np.diff(order) != 1).any():  # the indexer writes them in time order: no copy then
            starts, ends, vectors = starts[order], ends[order], vectors[order]
        return starts, ends, vectors

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
