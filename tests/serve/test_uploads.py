"""Uploads are opened only as allowlisted video containers, under a name vitr chooses, and reveal nothing."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.index.videos import shape_frames
from tests.serve.conftest import Served
from vitr.serve.uploads import JPEG, MATROSKA, MP4, MPEGTS, PNG, public_reason, sniff


def write_ts(path: Path, colour: str = "red") -> Path:
    """An H.264 MPEG-TS file: what an HLS playlist's segments are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=Fraction(8))
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for frame in shape_frames(colour, 16):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def upload(served: Served, name: str, data: bytes, content_type: str = "video/mp4"):  # noqa: ANN201
    return served.client.post("/api/search/video", files={"file": (name, data, content_type)})


def hls_playlist(segment: Path) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:2.0,\nfile://{segment}\n#EXT-X-ENDLIST\n".encode()


@pytest.mark.parametrize("name", ["x.m3u8", "x.mp4", "x", "../../x.m3u8"])
@pytest.mark.parametrize("content_type", ["video/mp4", "application/octet-stream", "application/vnd.apple.mpegurl"])
def test_a_playlist_naming_local_files_is_refused_and_reveals_nothing(
    served: Served, tmp_path: Path, name: str, content_type: str
) -> None:
    """An HLS playlist listing file:///... once made FFmpeg read and score a local file (200 with its matches)."""
    local = write_ts(tmp_path / "private" / "local.ts")
    answers = []
    for segment in (local, tmp_path / "private" / "missing.ts"):
        response = upload(served, name, hls_playlist(segment), content_type)
        assert response.status_code in (415, 422), response.text
        assert str(tmp_path) not in response.text and "/tmp" not in response.text
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]  # whether the listed file exists cannot be told


@pytest.mark.parametrize(
    "body",
    [
        b"ffconcat version 1.0\nfile '/etc/hostname'\n",
        b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>',
        b"file:///etc/hostname",
        b"#EXTM3U\n",
    ],
)
def test_other_lists_and_protocols_are_refused_before_ffmpeg_sees_them(served: Served, body: bytes) -> None:
    response = upload(served, "clip.mp4", body)
    assert response.status_code == 415 and "not a supported video container" in response.json()["detail"]


def test_a_real_segment_uploaded_itself_is_searched(served: Served, tmp_path: Path) -> None:
    """The allowlist is about containers, not names: an MPEG-TS clip sent as 'x.m3u8' is decoded as MPEG-TS."""
    data = write_ts(tmp_path / "clip.ts").read_bytes()
    response = upload(served, "x.m3u8", data, "application/octet-stream")
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["name"] == "red.mp4"


def test_a_damaged_allowlisted_container_is_422_without_server_paths(served: Served) -> None:
    data = (served.root / "red.mp4").read_bytes()
    response = upload(served, "red.mp4", data[: len(data) // 3])
    assert response.status_code == 422 and "not a readable video" in response.json()["detail"]
    assert "/tmp" not in response.text and "upload." not in response.text


def test_sniffing_names_the_container_by_its_first_bytes(tmp_path: Path) -> None:
    assert sniff(b"\x00\x00\x00\x18ftypisom" + bytes(600)) is MP4
    assert sniff(b"\x1a\x45\xdf\xa3" + bytes(600)) is MATROSKA
    assert sniff(write_ts(tmp_path / "a.ts").read_bytes()[:600]) is MPEGTS
    assert sniff(b"\x89PNG\r\n\x1a\n" + bytes(600)) is PNG and sniff(b"\xff\xd8\xff\xe0" + bytes(600)) is JPEG
    assert sniff(b"#EXTM3U\n" + bytes(600)) is None and sniff(b"") is None and sniff(b"G" * 10) is None


def test_public_reasons_carry_no_server_path() -> None:
    reason = "Invalid data found when processing input: '/tmp/vitr-upload-x/upload.mp4' (see /var/log/x.log)"
    shown = public_reason(reason, "/tmp/vitr-upload-x/upload.mp4", "the upload")
    assert shown == "Invalid data found when processing input: 'the upload' (see <path>)"
    assert public_reason("1/2 of the frames, and/or more", "/x", "y") == "1/2 of the frames, and/or more"


def still(colour: str, fmt: str) -> bytes:
    """One frame of the shape videos (a `colour` square on dark ground) as a PNG or JPEG file."""
    out = io.BytesIO()
    Image.fromarray(shape_frames(colour, 16)[8]).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
@pytest.mark.parametrize("colour", ["red", "yellow"])
def test_a_still_image_is_a_query_that_finds_the_video_showing_it(
    served: Served, fmt: str, content_type: str, colour: str
) -> None:
    """A still used to be refused with 415; it is searched as a clip of one frame through the index's model."""
    response = upload(served, f"still.{fmt.lower()}", still(colour, fmt), content_type)
    assert response.status_code == 200, response.text
    best = response.json()["results"][0]["name"]
    assert best == ("clips/yellow.mp4" if colour == "yellow" else "red.mp4")


def test_other_images_and_broken_stills_are_refused_with_a_clear_reason(served: Served) -> None:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(out, format="GIF")
    gif = upload(served, "x.gif", out.getvalue(), "image/gif")
    assert gif.status_code == 415 and "PNG/JPEG image" in gif.json()["detail"]
    gif_as_png = upload(served, "x.png", out.getvalue(), "image/png")
    assert gif_as_png.status_code == 415 and "not a supported video container or image" in gif_as_png.json()["detail"]
    png = still("red", "PNG")
    cut = upload(served, "x.png", png[: len(png) // 2], "image/png")
    assert cut.status_code == 422 and "/tmp" not in cut.text, cut.text
