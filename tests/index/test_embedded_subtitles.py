"""Subtitle streams inside the container: read with PyAV, with each cue's timestamps and the stream's language,
formatting dropped; a container that cannot be read is one reason for that video, its sidecars still count."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.index.test_text_tracks import srt
from tests.index.videos import shape_frames
from tests.video.clips import remux_late
from vitr.index.text_tracks import SubtitleError, TextSpan, find_sidecars, read_embedded, read_track

ASS_HEADER = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def write_subtitled_mkv(path: Path, cues: list[tuple[float, float, str]], language: str | None = "eng") -> Path:
    """Two seconds of a red square at 8 fps with an ASS subtitle stream holding `cues` (ASS markup allowed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=8)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        subtitles = container.add_stream("ass")
        subtitles.codec_context.extradata = ASS_HEADER.encode()
        if language:
            subtitles.metadata["language"] = language
        for i, frame in enumerate(shape_frames("red", count=16)):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            container.mux(video.encode(picture))
        container.mux(video.encode())
        for order, (start, end, text) in enumerate(cues):
            packet = av.Packet(f"{order},0,Default,,0,0,0,,{text}".encode())
            packet.stream = subtitles
            packet.time_base = subtitles.time_base or Fraction(1, 1000)
            packet.pts = packet.dts = round(start / packet.time_base)
            packet.duration = round((end - start) / packet.time_base)
            container.mux(packet)
    return path


def test_a_subtitle_stream_gives_its_cues_with_their_times_and_language(tmp_path: Path) -> None:
    video = write_subtitled_mkv(
        tmp_path / "talk.mkv", [(0.5, 1.0, r"the {\i1}lighthouse{\i0}\Nkeeper"), (1.25, 1.75, "sings at night")]
    )
    assert read_embedded(video) == [
        TextSpan(0.5, 1.0, "the lighthouse keeper", "subtitles", "eng"),
        TextSpan(1.25, 1.75, "sings at night", "subtitles", "eng"),
    ]


def test_cues_are_timed_from_the_pictures_start_when_the_timestamps_begin_late(tmp_path: Path) -> None:
    """A recording whose timestamps begin 10 s in: a cue 0.5 s into the picture is at 0.5 s, where the frames and
    the player put it, not at 10.5 s."""
    source = write_subtitled_mkv(tmp_path / "talk.mkv", [(0.5, 1.0, "the lighthouse keeper")])
    late = remux_late(source, tmp_path / "late.mkv", 10.0, container_format="matroska")
    assert read_embedded(late) == [TextSpan(0.5, 1.0, "the lighthouse keeper", "subtitles", "eng")]


def test_an_undetermined_language_is_no_language(tmp_path: Path) -> None:
    video = write_subtitled_mkv(tmp_path / "talk.mkv", [(0.0, 0.5, "hello")], language="und")
    assert [s.language for s in read_embedded(video)] == [None]


def test_streams_and_sidecars_count_together_only_when_asked(tmp_path: Path) -> None:
    video = write_subtitled_mkv(tmp_path / "talk.mkv", [(0.5, 1.0, "from the stream")])
    (tmp_path / "talk.fr.srt").write_text(srt((1.5, 2.0, "du fichier")))
    sidecars = find_sidecars(video)
    both = read_track(video, sidecars, embedded=True)
    assert {(s.text, s.start, s.language) for s in both.spans} == {
        ("from the stream", 0.5, "eng"),
        ("du fichier", 1.5, "fr"),
    }
    assert not both.failures
    assert [s.text for s in read_track(video, sidecars).spans] == ["du fichier"]


def test_a_video_without_subtitle_streams_has_no_embedded_text(tmp_path: Path) -> None:
    from tests.index.videos import write_shape_video

    assert read_embedded(write_shape_video(tmp_path / "plain.mp4", "blue")) == []


def test_an_unreadable_container_is_one_reason_and_the_sidecars_still_count(tmp_path: Path) -> None:
    video = tmp_path / "broken.mkv"
    video.write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 8)  # a Matroska signature, then noise
    with pytest.raises(SubtitleError, match="subtitle streams inside the video could not be read"):
        read_embedded(video)
    (tmp_path / "broken.srt").write_text(srt((0.0, 1.0, "still here")))
    track = read_track(video, find_sidecars(video), embedded=True)
    assert [s.text for s in track.spans] == ["still here"]
    assert list(track.failures) == [str(video)]
    assert "could not be read" in track.failures[str(video)]


def test_vitr_index_finds_a_video_by_the_words_of_its_subtitle_stream(tmp_path: Path, capsys) -> None:
    from tests.index.test_text_tracks import MODEL_ARGS
    from vitr.cli.main import main

    write_subtitled_mkv(tmp_path / "videos" / "talk.mkv", [(0.5, 1.0, "the lighthouse keeper"), (1.25, 1.75, "sings")])
    (tmp_path / "videos" / "talk.srt").write_text(srt((1.5, 2.0, "a kettle")))
    index = tmp_path / "index"
    assert main(["index", str(tmp_path / "videos"), "--index", str(index), *MODEL_ARGS]) == 0
    capsys.readouterr()
    assert main(["search", "lighthouse keeper", "--index", str(index), "--mode", "text", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert Path(hits[0]["path"]).name == "talk.mkv" and (hits[0]["start"], hits[0]["end"]) == (0.5, 1.0)

    (tmp_path / "videos" / "talk.srt").write_text(srt((1.5, 2.0, "a teapot")))  # only the sidecar changes
    assert main(["index", str(tmp_path / "videos"), "--index", str(index), *MODEL_ARGS]) == 0
    capsys.readouterr()
    for words in ("lighthouse keeper", "teapot"):  # the re-read keeps the stream's cues beside the new sidecar's
        assert main(["search", words, "--index", str(index), "--mode", "text", "--json"]) == 0
        assert [Path(h["path"]).name for h in json.loads(capsys.readouterr().out)] == ["talk.mkv"]
