"""JPEG thumbnails of indexed videos, made on first request and kept on disk keyed by content and time.

The cache cannot be grown without bound by a client: the requested time is clamped to the video's duration
and quantised (`THUMBNAIL_STEP_S`), so a video has at most duration / step + 1 thumbnails, and the cache holds
at most `max_files` of them, evicting the least recently used. A cache folder that cannot be written (a
read-only index) only means thumbnails are made afresh each time.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image

from vitr.errors import VideoDecodeError
from vitr.files import atomic_write
from vitr.video.decode import sample_frames

THUMBNAIL_WIDTH = 320
THUMBNAIL_STEP_S = 0.5
MAX_THUMBNAILS = 5000


def thumbnail_time(t: float, duration: float | None, step: float = THUMBNAIL_STEP_S) -> float:
    """The time a request for `t` seconds is served at: clamped to [0, duration], floored to a multiple of `step`.

    Flooring keeps a moment's start on its own frame; an unknown duration clamps to the first frame.
    """
    end = duration if duration is not None and math.isfinite(duration) and duration > 0 else 0.0
    clamped = min(max(t, 0.0), end)
    return round(math.floor(clamped / step + 1e-9) * step, 3)


class ThumbnailCache:
    """`get(digest, path, at)` -> JPEG bytes of the frame at `at` seconds; a changed file has a new digest."""

    def __init__(self, directory: str | Path, width: int = THUMBNAIL_WIDTH, max_files: int = MAX_THUMBNAILS) -> None:
        self.dir = Path(directory)
        self.width = width
        self.max_files = max_files
        self._lock = threading.Lock()
        self._files: OrderedDict[Path, None] | None = None  # least recently used first; read from disk lazily

    def get(self, digest: str, path: str | Path, at: float = 0.0) -> bytes:
        """`at` should already be a `thumbnail_time`; it is used as given, to a millisecond."""
        target = self.dir / digest[:2] / f"{digest}-{at:.3f}.jpg"
        try:
            data = target.read_bytes()
        except OSError:
            data = None
        if data is not None:
            self._used(target)
            return data
        data = render_thumbnail(path, at, self.width)
        self._store(target, data)
        return data

    def __len__(self) -> int:
        with self._lock:
            return len(self._known())

    def _known(self) -> OrderedDict[Path, None]:
        if self._files is None:
            found = sorted(self.dir.glob("*/*.jpg"), key=_mtime) if self.dir.is_dir() else []
            self._files = OrderedDict.fromkeys(found)
        return self._files

    def _used(self, target: Path) -> None:
        with self._lock:
            self._known()[target] = None
            self._known().move_to_end(target)
        with contextlib.suppress(OSError):
            os.utime(target)  # keeps the order across restarts

    def _store(self, target: Path, data: bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        except OSError:  # read-only or full: serve without caching
            return
        with self._lock:
            files = self._known()
            files[target] = None
            files.move_to_end(target)
            while len(files) > self.max_files:
                old, _ = files.popitem(last=False)
                old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def render_thumbnail(path: str | Path, at: float, width: int = THUMBNAIL_WIDTH) -> bytes:
    """The frame shown at `at` seconds (the first one when `at` is past the end), scaled to `width`, as JPEG."""
    try:
        clip = sample_frames(path, num_frames=1, start=at)
    except VideoDecodeError:
        if at == 0:
            raise
        clip = sample_frames(path, num_frames=1)
    image = Image.fromarray(clip.frames[0])
    height = max(1, round(image.height * width / image.width))
    buffer = io.BytesIO()
    image.resize((width, height), Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
