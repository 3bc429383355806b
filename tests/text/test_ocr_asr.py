"""On-screen text and speech read from generated videos: each line or utterance becomes a span with the times it was
shown or said; a blank frame, a video without audio and an audio stream that cannot decode are handled for that
video alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.text.media import caption_frames, speech, write_talking_video
from tests.video.clips import TONE_RATE, decoded_sound, remux_late, tone_bursts, write_indexed_video
from vitr.errors import ConfigError
from vitr.index.asr import decode_audio, make_engine, read_speech
from vitr.index.ocr import OcrEngine, merge_lines, read_onscreen_text
from vitr.index.text_tracks import TextOptions, TextSourceError, TextSpan, read_text


def test_the_same_line_on_neighbouring_frames_is_one_span() -> None:
    frames = [
        (0.0, []),
        (1.0, ["Harbour closed"]),
        (2.0, ["HARBOUR  closed", "Score 3 - 1"]),  # read a little differently: still the same line
        (3.0, ["Score 3-1"]),
        (4.0, ["Harbour closed"]),  # shown again later: a span of its own
    ]
    assert merge_lines(iter(frames)) == [
        TextSpan(1.0, 3.0, "Harbour closed", "ocr"),
        TextSpan(2.0, 4.0, "Score 3 - 1", "ocr"),
        TextSpan(4.0, 4.0, "Harbour closed", "ocr"),
    ]
    assert merge_lines(iter([(0.0, []), (1.0, [" ", "..."])])) == []


def test_lines_that_appear_and_vanish_together_are_one_span_in_reading_order() -> None:
    # a caption the detector read as three boxes, and a score that changes on its own beside it
    frames = [
        (0.0, ["BEAVER", "55", "FINLAND", "Score 1-0"]),
        (1.0, ["BEAVER", "55", "FINLAND", "Score 2-0"]),
        (2.0, ["Score 2-0"]),
    ]
    assert merge_lines(iter(frames)) == [
        TextSpan(0.0, 1.0, "Score 1-0", "ocr"),
        TextSpan(0.0, 2.0, "BEAVER 55 FINLAND", "ocr"),
        TextSpan(1.0, 2.0, "Score 2-0", "ocr"),
    ]


def test_a_repeated_frame_reuses_its_reading_but_a_small_change_is_read_again() -> None:
    from vitr.index.ocr import _read_frames

    class Counting:
        calls = 0

        def lines(self, frame):  # noqa: ANN001, ANN202
            self.calls += 1
            return [f"reading {self.calls}"]

    rng = np.random.default_rng(0)
    slide = caption_frames(["Score 3 - 1"], 0.25)[0]
    noisy = np.clip(slide.astype(int) + rng.integers(-3, 4, slide.shape), 0, 255).astype(np.uint8)  # re-encoding
    scored = slide.copy()
    scored[8:28, 290:306] = 255  # a small mark in a corner: a new score, a clock ticking
    engine = Counting()
    read = list(_read_frames(iter([(0.0, slide), (1.0, noisy), (2.0, scored), (3.0, scored)]), engine))
    assert engine.calls == 2
    assert [lines for _, lines in read] == [["reading 1"], ["reading 1"], ["reading 2"], ["reading 2"]]


@pytest.mark.slow
def test_ocr_reads_each_caption_with_the_seconds_it_is_shown(tmp_path: Path) -> None:
    frames = caption_frames([None, "Harbour closed", "Harbour closed", None, "Lighthouse keeper"], 1.0)
    video = write_talking_video(tmp_path / "signs.mp4", frames, fps=4.0, audio=None)
    engine = OcrEngine()
    spans = read_onscreen_text(str(video), engine, interval=1.0)
    assert [(s.start, s.end, s.text, s.source) for s in spans] == [
        (1.0, 3.0, "Harbour closed", "ocr"),  # shown from 1 s until the blank frame at 3 s
        (4.0, 4.0, "Lighthouse keeper", "ocr"),  # still on screen at the last sampled frame
    ]
    blank = write_talking_video(tmp_path / "blank.mp4", caption_frames([None, None], 1.0), fps=4.0, audio=None)
    assert read_onscreen_text(str(blank), engine, interval=0.5) == []  # blank frames: no text, no error


@pytest.mark.slow
def test_speech_is_transcribed_with_the_time_it_is_said(tmp_path: Path) -> None:
    frames = caption_frames([None] * 4, 1.0, fps=2.0)
    video = write_talking_video(tmp_path / "count.mp4", frames, fps=2.0, audio=speech("one two three four five", 1.5))
    spans = read_speech(str(video), make_engine("pocketsphinx"))
    # pocketsphinx is weak on synthetic voices, but it hears this count (the first word varies): assert on that
    said = [s for s in spans if "three four five" in s.text]
    assert len(said) == 1 and said[0].source == "asr"
    assert 1.3 <= said[0].start <= 1.9  # the speech starts 1.5 s in
    assert said[0].start < said[0].end <= 1.5 + 1.6

    silent = write_talking_video(tmp_path / "silent.mp4", frames, fps=2.0, audio=None)
    assert decode_audio(str(silent)) is None and read_speech(str(silent), make_engine("pocketsphinx")) == []


def test_speech_is_timed_on_the_pictures_clock_when_the_sound_begins_later(tmp_path: Path) -> None:
    """A recording whose sound begins 0.5 s after its picture (timestamps 10 s in): what is said 0.2 s into the
    sound is said 0.7 s into the video."""
    source = write_indexed_video(tmp_path / "tone.mp4", 24, 8.0, audio=tone_bursts(3.0), sample_rate=TONE_RATE)
    late = remux_late(source, tmp_path / "late.ts", 10.0, audio_seconds=10.5)
    decoded, heard = decode_audio(str(late)), decoded_sound(late)
    assert decoded is not None and heard is not None
    begins = heard[1] - 10.0  # the sound's first decoded sample: 0.5 s less the AAC encoder's priming frame
    assert decoded[1] == pytest.approx(begins, abs=1e-3) and 0.44 < begins <= 0.5

    class Heard:
        name = "heard"

        def transcribe(self, audio: np.ndarray) -> list[TextSpan]:
            return [TextSpan(0.2, 0.9, "hello", "asr")]

    assert read_speech(str(late), Heard()) == [TextSpan(round(0.2 + begins, 3), round(0.9 + begins, 3), "hello", "asr")]


def test_an_audio_stream_that_cannot_decode_is_a_reason(tmp_path: Path) -> None:
    frames = caption_frames([None], 1.0, fps=2.0)
    broken = write_talking_video(tmp_path / "broken.mp4", frames, 2.0, np.zeros(16000, np.float32), garble_audio=True)
    with pytest.raises(TextSourceError, match="the audio stream could not be decoded"):
        decode_audio(str(broken))


def test_speech_engines_are_checked_before_any_work() -> None:
    with pytest.raises(ConfigError, match="--asr-model is for faster-whisper"):
        make_engine("pocketsphinx", "/models/whisper-small")
    with pytest.raises(ValueError, match="add --asr-engine faster-whisper"):
        TextOptions(asr_model="/models/whisper-small")
    with pytest.raises(ValueError, match="unknown speech engine 'vosk'"):
        TextOptions(asr_engine="vosk")
    if importlib.util.find_spec("faster_whisper") is None:
        with pytest.raises(ConfigError, match="needs the faster-whisper package: pip install faster-whisper"):
            make_engine("faster-whisper", "small")
    else:
        with pytest.raises(ConfigError, match="cannot load the faster-whisper model"):
            make_engine("faster-whisper", "/no/such/model/dir")


def test_faster_whisper_segments_become_spans() -> None:
    """The mapping from faster-whisper's segments (its documented `start`, `end`, `text`) to spans; the model itself
    is the user's to provide, so a stand-in returns the segments here."""
    from types import SimpleNamespace

    from vitr.index.asr import FasterWhisperEngine

    class Model:
        def transcribe(self, audio, vad_filter):  # noqa: ANN001, ANN202
            assert audio.dtype == np.float32 and vad_filter
            segments = [SimpleNamespace(start=0.5, end=1.2504, text="  Hello   world. "),
                        SimpleNamespace(start=2.0, end=2.5, text=" "),
                        SimpleNamespace(start=3.0, end=4.0, text="Ferry at seven")]
            return iter(segments), SimpleNamespace(language="en")

    engine = FasterWhisperEngine.__new__(FasterWhisperEngine)
    engine._model = Model()
    assert engine.transcribe(np.zeros(16000, np.float32)) == [
        TextSpan(0.5, 1.25, "Hello world.", "asr"),
        TextSpan(3.0, 4.0, "Ferry at seven", "asr"),
    ]


@pytest.mark.slow
def test_read_text_gives_the_spans_of_each_source(tmp_path: Path) -> None:
    frames = caption_frames([None, "Ferry timetable", None], 1.0, fps=2.0)
    video = write_talking_video(tmp_path / "ferry.mp4", frames, fps=2.0, audio=speech("hello world", 0.5))
    (tmp_path / "ferry.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nall aboard\n\n")
    found = read_text(video, ("subtitles", "ocr", "asr"))
    assert [s.text for s in found["subtitles"]] == ["all aboard"]
    assert [(s.start, s.end, s.text) for s in found["ocr"]] == [(1.0, 2.0, "Ferry timetable")]
    assert all(s.source == "asr" for s in found["asr"])  # what pocketsphinx hears of a synthetic voice varies
    garbled = write_talking_video(tmp_path / "garbled.mp4", frames, 2.0, speech("hello"), garble_audio=True)
    with pytest.raises(TextSourceError, match="asr: the audio stream could not be decoded"):
        read_text(garbled, ("asr",))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--ocr-interval", "0"], "--ocr-interval must be positive seconds, got 0.0"),
        (["--asr-model", "/models/whisper"], "--asr-model names a faster-whisper model; add --asr-engine"),
    ],
)
def test_index_options_for_ocr_and_speech_are_checked_before_any_work(options, message, tmp_path: Path, capsys) -> None:
    from vitr.cli.main import main

    argv = ["index", str(tmp_path), "--index", str(tmp_path / "index"), "--text", "ocr,asr", *options,
            "--model", "vitr-lab-tiny", "--random-init"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is not None, reason="faster-whisper is installed")
def test_faster_whisper_missing_is_said_once_before_any_work(tmp_path: Path, capsys) -> None:
    from vitr.cli.main import main

    argv = ["index", str(tmp_path), "--index", str(tmp_path / "index"), "--text", "asr", "--asr-engine",
            "faster-whisper", "--model", "vitr-lab-tiny", "--random-init"]
    assert main(argv) == 2
    assert "needs the faster-whisper package: pip install faster-whisper" in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


def test_each_source_is_stored_and_replaced_on_its_own(tmp_path: Path) -> None:
    """The metadata keeps, per video and source, the spans and whether the source was read; a track replaces only
    the sources it read or drops, and copies (index-merge) carry a failed source along, to be retried there."""
    from vitr.index.metadata import Metadata
    from vitr.index.text_tracks import TextTrack

    meta = Metadata(tmp_path / "metadata.sqlite")
    row = ("/v/a.mp4", 1, 1, "digest", 4.0, [(None, None, np.ones(4, np.float32))])
    first = TextTrack([TextSpan(0.0, 1.0, "all aboard", "subtitles"), TextSpan(1.0, 3.0, "Ferry timetable", "ocr")],
                      read={"subtitles": None, "ocr": None, "asr": "the audio stream could not be decoded"})
    meta.commit_batch([row], texts={"/v/a.mp4": first})
    assert meta.text_runs() == {"/v/a.mp4": {"subtitles": None, "ocr": None,
                                             "asr": "the audio stream could not be decoded"}}

    retried = TextTrack([TextSpan(2.0, 2.5, "hello", "asr")], read={"asr": None})  # speech alone, read this time
    meta.commit_batch([], texts={"/v/a.mp4": retried})
    video_id = meta.video_by_path("/v/a.mp4").id
    assert sorted(s.text for s in meta.text_track(video_id).spans) == ["Ferry timetable", "all aboard", "hello"]

    meta.commit_batch([], texts={"/v/a.mp4": TextTrack(read={}, dropped=("ocr",))})
    copy = meta.text_track(video_id)
    assert sorted(s.text for s in copy.spans) == ["all aboard", "hello"]
    assert copy.read == {"subtitles": None, "asr": None}

    other = Metadata(tmp_path / "merged.sqlite")
    other.commit_batch([row], texts={"/v/a.mp4": copy})
    assert other.text_runs() == meta.text_runs() and other.text_span_count() == 2
