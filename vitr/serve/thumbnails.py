"""JPEG thumbnails of indexed videos, made on first request and kept on disk keyed by content and time."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from PIL import Image

from vitr.errors import VideoDecodeError
from vitr.video.decode import sample_frames

THUMBNAIL_WIDTH = 320


class ThumbnailCache:
    """`get(digest, path, at)` -> JPEG bytes of the frame at `at` seconds; a changed file has a new digest."""

    def __init__(self, directory: str | Path, width: int = THUMBNAIL_WIDTH) -> None:
        self.dir = Path(directory)
        self.width = width

    def get(self, digest: str, path: str | Path, at: float = 0.0) -> bytes:
        at = round(max(at, 0.0), 1)  # a tenth of a second is as fine as a thumbnail needs
        target = self.dir / digest[:2] / f"{digest}-{at:.1f}.jpg"
        if target.exists():
            return target.read_bytes()
        data = render_thumbnail(path, at, self.width)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
        tmp.write_bytes(data)
        tmp.replace(target)
        return data


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
