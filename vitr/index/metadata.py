"""The index's source of truth: a SQLite file of videos, their segments and vectors, and failures.

Every batch of newly indexed videos is committed in one transaction, so a killed run keeps all it committed
and a re-run neither redoes nor duplicates it. WAL mode lets searches read while an indexer writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
"""


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


class Metadata:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)
        self.db.commit()

    # -- meta ------------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def generation(self) -> int:
        """Bumped by every committed change, so readers know when their vector index is stale."""
        return int(self.get_meta("generation") or 0)

    def _bump(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1"
        )

    # -- videos ----------------------------------------------------------------------------------------------
    def videos(self) -> dict[str, VideoRecord]:
        rows = self.db.execute("SELECT id, path, size, mtime_ns, digest, duration FROM videos")
        return {r[1]: VideoRecord(*r) for r in rows}

    def video(self, video_id: int) -> VideoRecord | None:
        row = self.db.execute(
            "SELECT id, path, size, mtime_ns, digest, duration FROM videos WHERE id = ?", (video_id,)
        ).fetchone()
        return VideoRecord(*row) if row else None

    def video_by_path(self, path: str) -> VideoRecord | None:
        row = self.db.execute(
            "SELECT id, path, size, mtime_ns, digest, duration FROM videos WHERE path = ?", (path,)
        ).fetchone()
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
        indexed: Iterable[tuple[str, int, int, str, float | None, list[tuple[float | None, float | None, np.ndarray]]]],
        failed: Iterable[tuple[str, int, int, str]] = (),
        removed: Iterable[str] = (),
    ) -> None:
        """Atomically replace/insert videos with their segments, record failures, and drop removed paths."""
        with self.db:
            for path in removed:
                self.db.execute("DELETE FROM videos WHERE path = ?", (path,))
                self.db.execute("DELETE FROM failures WHERE path = ?", (path,))
            for path, size, mtime_ns, digest, duration, segments in indexed:
                self.db.execute("DELETE FROM videos WHERE path = ?", (path,))
                self.db.execute("DELETE FROM failures WHERE path = ?", (path,))
                cur = self.db.execute(
                    "INSERT INTO videos (path, size, mtime_ns, digest, duration) VALUES (?, ?, ?, ?, ?)",
                    (path, size, mtime_ns, digest, duration),
                )
                self.db.executemany(
                    "INSERT INTO segments (video_id, start, end, vector) VALUES (?, ?, ?, ?)",
                    [(cur.lastrowid, s, e, np.asarray(v, dtype=np.float32).tobytes()) for s, e, v in segments],
                )
            for path, size, mtime_ns, reason in failed:
                self.db.execute(
                    "INSERT OR REPLACE INTO failures (path, size, mtime_ns, reason) VALUES (?, ?, ?, ?)",
                    (path, size, mtime_ns, reason),
                )
            self._bump()

    # -- segments --------------------------------------------------------------------------------------------
    def all_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N,) int64, vectors (N, E) float32) of every segment, ordered by id."""
        rows = self.db.execute("SELECT id, vector FROM segments ORDER BY id").fetchall()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def segments(self, ids: Iterable[int]) -> dict[int, tuple[int, float | None, float | None]]:
        """segment id -> (video id, start, end)."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, video_id, start, end FROM segments WHERE id IN ({marks})", ids)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def video_vectors(self, video_id: int) -> np.ndarray:
        rows = self.db.execute("SELECT vector FROM segments WHERE video_id = ? ORDER BY id", (video_id,)).fetchall()
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows])

    def close(self) -> None:
        self.db.close()
