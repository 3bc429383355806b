"""Uploaded queries: only plain video containers and still images are ever handed to FFmpeg, under a name vitr chooses.

FFmpeg picks a demuxer from a file's name and first bytes, and some demuxers open other files: an HLS playlist
(`x.m3u8`) or a concat list names segments by URL, `file:///...` included, so an upload could make the server
read and score its local files. An upload is therefore

1. sniffed: its first bytes must be the signature of one allowlisted container (ISO BMFF/MP4/MOV, Matroska/WebM,
   AVI, MPEG-TS, MPEG-PS, Ogg) or image (PNG, JPEG), whatever the client called it or said it was;
2. written to a private temporary folder as `upload.<extension of that container>` (never the client's name);
3. opened by FFmpeg with `format_whitelist` set to the allowlisted demuxers, which FFmpeg checks after probing
   and before a demuxer reads anything; the demuxer FFmpeg chose must be the one the signature named.

Only then is the file decoded (which probes the same unchanged file under the same name, so picks the same
demuxer). A still image decodes as a clip of one frame, so the index's own video model embeds it. Every
refusal is one message that names no path and does not depend on what the server's disk holds.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class Container:
    demuxer: str  # FFmpeg's demuxer name, as `container.format.name` reports it
    suffix: str  # the extension the temporary file gets


MP4 = Container("mov,mp4,m4a,3gp,3g2,mj2", ".mp4")
MATROSKA = Container("matroska,webm", ".mkv")
AVI = Container("avi", ".avi")
MPEGTS = Container("mpegts", ".ts")
MPEGPS = Container("mpeg", ".mpg")
OGG = Container("ogg", ".ogv")
PNG = Container("png_pipe", ".png")  # the *_pipe demuxers read one file; image2 (which expands patterns) is not allowed
JPEG = Container("jpeg_pipe", ".jpg")
ALLOWED = (MP4, MATROSKA, AVI, MPEGTS, MPEGPS, OGG, PNG, JPEG)
FORMAT_WHITELIST = ",".join(c.demuxer for c in ALLOWED)
SUPPORTED = "MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, Ogg, or a PNG or JPEG image"
_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
_TS_PACKET = 188
SNIFF_BYTES = 3 * _TS_PACKET + 1


class UploadRefused(Exception):
    """The upload may not or cannot be opened; `reason` is safe to show to the client, `status` is the HTTP one.

    415: not an allowlisted container; 422: an allowlisted container that is damaged or holds no video.
    """

    def __init__(self, reason: str, status: int = 415) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def sniff(head: bytes) -> Container | None:
    """The allowlisted container whose signature `head` (the file's first bytes) starts with, else None."""
    if len(head) >= 8 and head[4:8] in _BMFF_BOXES:
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"\x00\x00\x01\xba"):
        return MPEGPS
    if len(head) > 2 * _TS_PACKET and all(head[i] == 0x47 for i in (0, _TS_PACKET, 2 * _TS_PACKET)):
        return MPEGTS
    return None


@contextmanager
def stored_upload(head: bytes) -> Iterator[tuple[Path, Container]]:
    """A fresh private folder and the name `upload.<ext>` in it for an upload starting with `head`.

    Raises UploadRefused before anything is written when `head` is no allowlisted container's signature.
    """
    container = sniff(head)
    if container is None:
        raise UploadRefused(f"the upload is not a supported video container or image ({SUPPORTED})")
    with tempfile.TemporaryDirectory(prefix="vitr-upload-") as folder:
        yield Path(folder) / f"upload{container.suffix}", container


def check_container(path: Path, expected: Container) -> None:
    """Open `path` as FFmpeg will when decoding it; refuse unless it picks `expected` and finds a video stream."""
    try:
        with av.open(str(path), options={"format_whitelist": FORMAT_WHITELIST}, metadata_errors="ignore") as c:
            demuxer, videos = c.format.name, len(c.streams.video)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise UploadRefused("the upload is not a readable video: its container is damaged or truncated", 422) from e
    if demuxer != expected.demuxer:
        raise UploadRefused(f"the upload is not a supported video container or image ({SUPPORTED})")
    if not videos:
        raise UploadRefused("the upload has no video stream", 422)


_QUOTED_PATH = re.compile(r"""(['"])/[^'"]*\1""")
_BARE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/'\"]+/)*[^\s/'\",)]+")


def public_reason(reason: str, path: str | Path, shown: str) -> str:
    """`reason` with `path` replaced by `shown` and any other absolute path by `<path>`: what a client may read."""
    text = reason.replace(str(path), shown)
    text = _QUOTED_PATH.sub("<path>", text)
    return _BARE_PATH.sub("<path>", text)
