"""Text tracks: timestamped spans of what a video says and shows, from its subtitles (sidecar files and the text
streams inside its container), its on-screen text (OCR, `vitr.index.ocr`) and its speech (ASR, `vitr.index.asr`).

A sidecar belongs to `movie.mp4` when it is `movie.srt` / `movie.vtt`, or carries a language tag between stem and
extension (`movie.en.srt`, `movie.pt-BR.vtt`). Parsing uses the maintained `srt` and `webvtt-py` libraries; a file
that is not UTF-8 or does not parse becomes one clear reason for that file, never an error for the whole run.
Streams inside the container (SubRip, ASS/SSA, mov_text, WebVTT) are read with PyAV, whose decoders turn each
into the same dialogue text; bitmap subtitles (DVD, PGS) carry no text and are left to OCR.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import av
import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from vitr.video.decode import timeline_origin

TEXT_SOURCES = ("subtitles", "ocr", "asr")  # subtitle files and streams, on-screen text, speech
SUBTITLE_EXTENSIONS = (".srt", ".vtt")
if TYPE_CHECKING:
    from vitr.index.asr import SpeechEngine
    from vitr.index.ocr import OcrEngine

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_TAG = re.compile(r"<[^>]{0,200}>|\{\\[^}]{0,200}\}")  # <i>, <c.yellow>, <00:01.000>, {\an8}


@dataclass(frozen=True)
class TextSpan:
    """One timestamped piece of text of a video: a subtitle cue, a line shown on screen, an utterance."""

    start: float
    end: float
    text: str
    source: str = "subtitles"
    language: str | None = None

    def shifted(self, seconds: float) -> TextSpan:
        """The span `seconds` later (earlier if negative), kept at or after the timeline's start: text timed by its
        own stream's clock is moved onto vitr's (`vitr.video.decode.timeline_origin`)."""
        return replace(self, start=round(max(0.0, self.start + seconds), 3), end=round(max(0.0, self.end + seconds), 3))


@dataclass(frozen=True)
class SidecarState:
    """What was read for one sidecar file: its size and mtime (a change re-indexes the video's text), and why it
    could not be used (None when it was)."""

    path: str
    size: int
    mtime_ns: int
    reason: str | None = None


@dataclass
class TextTrack:
    """What was read for one video: its spans and the state of every sidecar file looked at.

    `read` names the sources this track covers, each with why it failed (None: read), and `dropped` the sources
    to remove: stored, the track replaces exactly those sources' spans of the video and leaves its others alone,
    so one source can be read, retried or dropped without touching the rest.
    """

    spans: list[TextSpan] = field(default_factory=list)
    files: list[SidecarState] = field(default_factory=list)
    # video path -> why its container's subtitle streams could not be read; not stored, so it is said in the run
    # that read them and tried again when the video changes
    stream_failures: dict[str, str] = field(default_factory=dict)
    read: dict[str, str | None] = field(default_factory=lambda: {"subtitles": None})
    dropped: tuple[str, ...] = ()

    @property
    def failures(self) -> dict[str, str]:
        """path -> reason, for each sidecar (or video's streams) that could not be used."""
        return {f.path: f.reason for f in self.files if f.reason is not None} | self.stream_failures

    @property
    def source_failures(self) -> dict[str, str]:
        """source -> reason, for each of OCR and speech that failed on this video (retried by the next run)."""
        return {source: reason for source, reason in self.read.items() if reason is not None}

    def by_source(self) -> dict[str, list[TextSpan]]:
        """The spans of each source read (an empty list for a source that found no text)."""
        out: dict[str, list[TextSpan]] = {source: [] for source in self.read}
        for span in self.spans:
            out.setdefault(span.source, []).append(span)
        return out


class TextSourceError(ValueError):
    """OCR or speech recognition failed on a video; the message is the one-line reason."""


@dataclass(frozen=True)
class TextOptions:
    """How OCR and speech recognition run (recorded in index.json, so later runs keep them).

    ocr_interval: seconds between the frames OCR reads; asr_engine: "pocketsphinx" (offline, bundled English
    model, weak) or "faster-whisper"; asr_model: a faster-whisper model directory, or a model name to download.
    """

    ocr_interval: float = 1.0
    asr_engine: str = "pocketsphinx"
    asr_model: str | None = None

    def __post_init__(self) -> None:
        from vitr.index.asr import ENGINES  # noqa: PLC0415 - the engines themselves load lazily

        if not self.ocr_interval > 0:
            raise ValueError(f"the OCR interval must be positive seconds, got {self.ocr_interval}")
        if self.asr_engine not in ENGINES:
            raise ValueError(f"unknown speech engine {self.asr_engine!r}; choose one of {', '.join(ENGINES)}")
        if self.asr_engine == "pocketsphinx" and self.asr_model is not None:
            raise ValueError("--asr-model names a faster-whisper model; add --asr-engine faster-whisper")

    def to_dict(self) -> dict:
        return {"ocr_interval": self.ocr_interval, "asr_engine": self.asr_engine, "asr_model": self.asr_model}


class TextReader:
    """Reads the enabled text sources of videos, one video at a time; the OCR and speech engines load once, on
    first use, and serve every video after."""

    def __init__(self, options: TextOptions | None = None) -> None:
        self.options = options or TextOptions()
        self._ocr: OcrEngine | None = None
        self._asr: SpeechEngine | None = None

    def read(
        self,
        video: str | Path,
        sources: Sequence[str],
        sidecars: dict[str, os.stat_result] | None = None,
        dropped: Sequence[str] = (),
    ) -> TextTrack:
        """The track of `video` for `sources` (subtitles: its `sidecars` and its streams); a source that fails is
        recorded with its reason in `track.read` and the others still count."""
        from vitr.index import asr, ocr  # noqa: PLC0415 - OCR and speech pull in onnxruntime / pocketsphinx

        track = read_track(video, sidecars or {}, embedded=True) if "subtitles" in sources else TextTrack(read={})
        track.dropped = tuple(dropped)
        if "ocr" in sources:
            try:
                if self._ocr is None:
                    self._ocr = ocr.OcrEngine()
                track.spans.extend(ocr.read_onscreen_text(video, self._ocr, self.options.ocr_interval))
                track.read["ocr"] = None
            except TextSourceError as exc:
                track.read["ocr"] = str(exc)
        if "asr" in sources:
            try:
                if self._asr is None:
                    self._asr = asr.make_engine(self.options.asr_engine, self.options.asr_model)
                track.spans.extend(asr.read_speech(video, self._asr))
                track.read["asr"] = None
            except TextSourceError as exc:
                track.read["asr"] = str(exc)
        return track


def read_text(
    video: str | Path, sources: Sequence[str] = TEXT_SOURCES, options: TextOptions | None = None
) -> dict[str, list[TextSpan]]:
    """The spans of each enabled source of `video` (subtitles from its sidecars and streams, `ocr`, `asr`); a
    source that fails raises TextSourceError naming it. For one video; an indexer keeps a TextReader."""
    track = TextReader(options).read(video, sources, find_sidecars(video))
    failed = track.source_failures | ({"subtitles": "; ".join(track.failures.values())} if track.failures else {})
    if failed:
        raise TextSourceError("; ".join(f"{source}: {reason}" for source, reason in failed.items()))
    return track.by_source()


def parse_sources(text: str) -> tuple[str, ...]:
    """`--text subtitles` (comma separated; `none` for no text) -> the sources, or a clear ValueError."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    unknown = [n for n in names if n not in TEXT_SOURCES]
    if unknown or not names:
        given = ", ".join(repr(n) for n in unknown) or repr(text)
        choices = ", ".join(TEXT_SOURCES)
        raise ValueError(f"unknown text source {given}; choose from {choices} (comma separated) or none")
    return tuple(dict.fromkeys(names))


def find_sidecars(video: str | Path, root: str | Path | None = None) -> dict[str, os.stat_result]:
    """The subtitle files of `video` (path -> stat), sorted by name. With `root`, links leading out of it are
    skipped, as for videos: a server of the index never reads a file outside the folder."""
    video = Path(video)
    stem = video.stem
    found = {}
    try:
        names = sorted(os.listdir(video.parent))
    except OSError:
        return {}
    for name in names:
        candidate = Path(name)
        if candidate.suffix.lower() not in SUBTITLE_EXTENSIONS or not name.startswith(stem + "."):
            continue
        middle = name[len(stem) + 1 : -len(candidate.suffix)]
        if middle and not _LANGUAGE.match(middle):
            continue
        path = video.parent / name
        if root is not None and not path.resolve().is_relative_to(Path(root).resolve()):
            continue
        if path.is_file():
            found[str(path)] = path.stat()
    return found


def language_of(video: str | Path, sidecar: str | Path) -> str | None:
    """`movie.en.srt` -> "en"; `movie.srt` -> None."""
    name, stem = Path(sidecar).name, Path(video).stem
    middle = name[len(stem) + 1 : -len(Path(sidecar).suffix)]
    return middle or None


def read_track(video: str | Path, sidecars: dict[str, os.stat_result], embedded: bool = False) -> TextTrack:
    """Parse every sidecar of `video` (and, with `embedded`, its subtitle streams); a broken one is recorded with
    its reason, the others still count."""
    track = TextTrack()
    if embedded:
        try:
            track.spans.extend(read_embedded(video))
        except SubtitleError as exc:
            track.stream_failures[str(video)] = str(exc)
    for path, st in sorted(sidecars.items()):
        try:
            spans = parse_subtitles(path, language_of(video, path))
        except SubtitleError as exc:
            track.files.append(SidecarState(path, st.st_size, st.st_mtime_ns, str(exc)))
            continue
        track.files.append(SidecarState(path, st.st_size, st.st_mtime_ns))
        track.spans.extend(spans)
    return track


class SubtitleError(ValueError):
    """A subtitle file that cannot be used; the message is the one-line reason."""


def parse_subtitles(path: str | Path, language: str | None = None) -> list[TextSpan]:
    """The cues of an .srt or .vtt file as spans (tags stripped, lines joined); empty cues are dropped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SubtitleError(f"cannot read the subtitle file: {exc.strerror or exc}") from exc
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubtitleError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the subtitles as UTF-8"
        ) from exc
    if path.suffix.lower() == ".srt":
        cues = _srt_cues(content)
    else:
        cues = _vtt_cues(content)
    spans = []
    for start, end, text in cues:
        clean = " ".join(_TAG.sub("", text).split())
        if clean and end >= start:
            spans.append(TextSpan(round(start, 3), round(end, 3), clean, "subtitles", language))
    if not spans and content.strip():
        raise SubtitleError("no subtitle cues found; is it an SRT/WebVTT file?")
    return spans


_UNDETERMINED = {"und", "unk", "mis", "zxx", ""}  # ISO 639-2 codes that name no language


def read_embedded(video: str | Path) -> list[TextSpan]:
    """The cues of every text subtitle stream in `video`'s container, timed by their packets (pts, duration),
    with the stream's language tag; a container without such streams gives no spans."""
    try:
        with av.open(str(video)) as container:
            streams = list(container.streams.subtitles)
            if not streams:
                return []
            spans = []
            origin = timeline_origin(container)
            for packet in container.demux(*streams):
                if not packet.size or packet.pts is None or packet.time_base is None:
                    continue
                start = float(packet.pts * packet.time_base)  # the container's clock: shifted to vitr's below
                end = start + float((packet.duration or 0) * packet.time_base)
                language = (packet.stream.language or "").strip()
                for cue in packet.decode():
                    text = getattr(cue, "dialogue", None)  # bitmap cues have none
                    if not text:
                        continue
                    clean = " ".join(_TAG.sub("", text.decode("utf-8", "replace")).split())
                    if clean:
                        tag = None if language.lower() in _UNDETERMINED else language
                        spans.append(TextSpan(start, end, clean, "subtitles", tag).shifted(-origin))
    except (av.FFmpegError, UnicodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SubtitleError(f"the subtitle streams inside the video could not be read: {first}") from exc
    spans.sort(key=lambda span: (span.start, span.end))
    return spans


def _srt_cues(content: str) -> list[tuple[float, float, str]]:
    try:
        return [(_seconds(c.start), _seconds(c.end), c.content) for c in srt.parse(content)]
    except (srt.SRTParseError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SubtitleError(f"malformed SRT: {first}") from exc


def _vtt_cues(content: str) -> list[tuple[float, float, str]]:
    try:
        captions = webvtt.from_buffer(io.StringIO(content)).captions
        return [(c.start_in_seconds + c.start_time.milliseconds / 1000, c.end_in_seconds
                 + c.end_time.milliseconds / 1000, c.text) for c in captions]
    except (MalformedFileError, MalformedCaptionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SubtitleError(f"malformed WebVTT: {first}") from exc


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()
