"""`vitr index --text subtitles,ocr,asr`: on-screen text and speech indexed beside the frames, found by their words at
the right moment; a source that fails on one video is reported for it, loses nothing else, and is the only thing a
rerun retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.index.test_text_tracks import MODEL_ARGS
from tests.text.media import caption_frames, speech, write_talking_video
from vitr.cli.main import main
from vitr.index import ocr
from vitr.index.asr import POCKETSPHINX_WER
from vitr.index.hybrid import search
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A counting voice over blank frames, a sign with no audio, a sign over a garbled audio stream, a blank video."""
    root = tmp_path / "videos"
    blank = caption_frames([None] * 4, 1.0, fps=2.0)
    write_talking_video(root / "count.mp4", blank, 2.0, speech("one two three four five", lead=1.5))
    sign = caption_frames([None, "Lighthouse keeper", "Lighthouse keeper", None], 1.0, fps=2.0)
    write_talking_video(root / "sign.mp4", sign, 2.0, None)
    ferry = caption_frames(["Ferry timetable", None], 1.0, fps=2.0)
    write_talking_video(root / "garbled.mp4", ferry, 2.0, speech("hello"), garble_audio=True)
    write_talking_video(root / "blank.mp4", caption_frames([None, None], 1.0, fps=2.0), 2.0, None)
    return root


def test_on_screen_text_and_speech_are_found_at_their_moments(folder: Path, tmp_path: Path, capsys, caplog) -> None:
    index_dir = tmp_path / "index"
    argv = ["index", str(folder), "--index", str(index_dir), "--text", "subtitles,ocr,asr", *MODEL_ARGS]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "added 4" in out and "OCR or speech failed on 1 videos" in out
    assert f"speech not read from {folder / 'garbled.mp4'}: the audio stream could not be decoded" in out
    assert f"pocketsphinx, the offline fallback: it got {100 * POCKETSPHINX_WER:.1f}% of words wrong" in caplog.text
    config = json.loads((index_dir / "index.json").read_text())
    assert config["text"] == ["subtitles", "ocr", "asr"] and config["text_options"]["asr_engine"] == "pocketsphinx"

    assert main(["search", "lighthouse keeper", "--index", str(index_dir), "--mode", "text", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [Path(h["path"]).name for h in hits] == ["sign.mp4"]
    shown = hits[0]["evidence"][0]
    assert (shown["source"], shown["snippet"], shown["start"], shown["end"]) == ("ocr", "Lighthouse keeper", 1.0, 3.0)

    assert main(["search", "ferry", "--index", str(index_dir), "--mode", "hybrid", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)  # the video whose audio failed keeps its frames and on-screen text
    assert Path(hits[0]["path"]).name == "garbled.mp4" and set(hits[0]["sources"]) == {"ocr", "visual"}
    assert (hits[0]["start"], hits[0]["end"]) == (0.0, 1.0) and len(hits) == 4

    assert main(["search", "three four five", "--index", str(index_dir), "--mode", "text", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [Path(h["path"]).name for h in hits] == ["count.mp4"] and hits[0]["sources"] == ["asr"]
    assert 1.3 <= hits[0]["start"] <= 1.9 and hits[0]["start"] < hits[0]["end"] <= 3.1  # said from 1.5 s


def test_a_rerun_retries_only_what_failed_and_a_dropped_source_goes_alone(
    folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from tests.index.videos import TINY_MODEL

    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    first = update_index(index, folder, progress=False, workers=0, text_sources=("ocr", "asr"))
    assert first.added == 4 and list(first.source_failed) == [str(folder / "garbled.mp4")]
    spans = index.stats()["text_spans"]

    def no_ocr(self, frame):  # noqa: ANN001, ANN202 - OCR must not run again on a rerun
        raise AssertionError("OCR ran again")

    monkeypatch.setattr(ocr.OcrEngine, "lines", no_ocr)
    again = update_index(index, folder, progress=False, workers=0)
    assert (again.added, again.unchanged, again.text_read) == (0, 4, 1)  # the garbled audio alone, retried
    assert again.source_failed == first.source_failed  # reported again, the same reason
    assert index.stats()["text_spans"] == spans and index.stats()["videos"] == 4

    fixed = folder / "garbled.mp4"  # the file is replaced by a sound one: the video is indexed again, all of it
    monkeypatch.undo()
    write_talking_video(fixed, caption_frames(["Ferry timetable", None], 1.0, fps=2.0), 2.0, speech("hello world"))
    redone = update_index(index, folder, progress=False, workers=0)
    assert redone.updated == 1 and redone.source_failed == {}

    monkeypatch.setattr(ocr.OcrEngine, "lines", no_ocr)
    dropped = update_index(index, folder, progress=False, workers=0, text_sources=("ocr",))
    assert dropped.source_failed == {} and dropped.text_read == 4  # every video's speech dropped, OCR kept
    assert search(index, "three four five", mode="text") == []
    assert [Path(h.path).name for h in search(index, "lighthouse", mode="text")] == ["sign.mp4"]
    index.close()


def test_a_run_stopped_before_ocr_keeps_its_videos_and_the_next_reads_their_text(
    folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from tests.index.videos import TINY_MODEL
    from vitr.errors import ConfigError

    def missing(self):  # noqa: ANN001, ANN202 - as if rapidocr were not installed
        raise ConfigError("OCR needs rapidocr-onnxruntime")

    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    monkeypatch.setattr(ocr.OcrEngine, "__init__", missing)
    with pytest.raises(ConfigError, match="OCR needs rapidocr-onnxruntime"):
        update_index(index, folder, progress=False, workers=0, text_sources=("ocr",))
    assert index.stats()["videos"] == 4 and index.stats()["text_spans"] == 0  # the frames were committed first

    monkeypatch.undo()
    resumed = update_index(index, folder, progress=False, workers=0)
    assert (resumed.added, resumed.unchanged, resumed.text_read) == (0, 4, 4)
    assert [Path(h.path).name for h in search(index, "lighthouse", mode="text")] == ["sign.mp4"]
    index.close()
