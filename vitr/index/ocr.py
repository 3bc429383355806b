"""On-screen text: OCR of frames sampled every few seconds, the same line across neighbouring frames merged into
one span from the first frame that shows it to the first that no longer does.

`rapidocr-onnxruntime` runs PP-OCRv4 detection and recognition from models inside its wheel, offline. Its
detector by default scales a frame up until its short side is 736 px; vitr caps the long side at 640 px instead,
which on 2 cores reads a 640x360 frame in about a third of the time and reads rendered captions as well (the
spaces between words included). A frame that looks like the last one read (a slide, a title card) reuses its
result rather than running OCR again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from vitr.errors import ConfigError, VideoDecodeError
from vitr.index.text_tracks import TextSourceError, TextSpan
from vitr.video.decode import iter_frames

DETECT_SIDE = 640  # the detector's input: long side at most this many pixels
_THUMB_WIDTH = 160  # frames are compared as grey block averages about this wide
_CHANGED = 8.0  # a block whose average moves more than this (0-255) makes a frame new: a score in a corner counts
_KEY = re.compile(r"[\W_]+")


class OcrEngine:
    """rapidocr's pipeline, loaded once (about a second) and reused for every frame of every video."""

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - onnxruntime is heavy, load on use
        except ImportError as exc:
            raise ConfigError(
                "OCR needs rapidocr-onnxruntime: pip install 'rapidocr-onnxruntime==1.4.4' (the `text` extra)"
            ) from exc
        self._ocr = RapidOCR(det_limit_side_len=DETECT_SIDE, det_limit_type="max", use_cls=False)

    def lines(self, frame: np.ndarray) -> list[str]:
        """frame: (H, W, 3) uint8 RGB -> the lines of text read in it, top to bottom (none for a blank frame)."""
        result, _elapsed = self._ocr(frame[..., ::-1], use_cls=False)  # rapidocr takes OpenCV's BGR order
        found = []
        for box, text, _score in result or []:
            clean = " ".join(str(text).split())
            if clean:
                found.append((min(y for _x, y in box), min(x for x, _y in box), clean))
        return [text for _y, _x, text in sorted(found)]


def read_onscreen_text(video: str, engine: OcrEngine, interval: float = 1.0) -> list[TextSpan]:
    """The lines shown in `video`, read from one frame every `interval` seconds, as spans (source "ocr")."""
    frames = _sampled(video, interval)
    return merge_lines(_read_frames(frames, engine))


def merge_lines(frames: Iterator[tuple[float, list[str]]]) -> list[TextSpan]:
    """(time, lines) of successive sampled frames -> one span per block of lines shown over the same frames.

    A line's span runs from the first frame that shows it to the first that no longer does; lines whose spans are
    the same (they appeared and vanished together: a caption on two lines, a title card, words a detector split
    into several boxes) become one span, in reading order, so a query can match all their words at once; a line
    that changes on its own (a score in a corner) stays a span of its own. Lines are matched by their letters and
    digits, case folded, so "SCORE 3-1" and "Score 3 - 1" read from two frames are one line; the text kept is the
    first reading. At the end of the video a span ends at the last sampled frame.
    """
    open_spans: dict[str, tuple[float, str]] = {}  # key -> (start, text)
    spans: list[TextSpan] = []
    last = 0.0
    for time, lines in frames:
        keys = {}
        for text in lines:
            key = _KEY.sub("", text).casefold()
            if key:
                keys.setdefault(key, text)
        for key in [k for k in open_spans if k not in keys]:
            start, text = open_spans.pop(key)
            spans.append(TextSpan(round(start, 3), round(time, 3), text, "ocr"))
        for key, text in keys.items():
            open_spans.setdefault(key, (time, text))
        last = time
    for start, text in open_spans.values():
        spans.append(TextSpan(round(start, 3), round(last, 3), text, "ocr"))
    return _blocks(spans)


def _blocks(lines: list[TextSpan]) -> list[TextSpan]:
    """Lines with the same start and end joined into one span, in the order the engine read them (top to bottom)."""
    blocks: dict[tuple[float, float], list[str]] = {}
    for line in lines:
        blocks.setdefault((line.start, line.end), []).append(line.text)
    return [TextSpan(start, end, " ".join(texts), "ocr") for (start, end), texts in sorted(blocks.items())]


def _read_frames(frames: Iterator[tuple[float, np.ndarray]], engine: OcrEngine) -> Iterator[tuple[float, list[str]]]:
    """OCR each frame, reusing the last result for a frame that looks the same."""
    previous: np.ndarray | None = None
    lines: list[str] = []
    for time, frame in frames:
        thumb = _thumbnail(frame)
        if previous is None or thumb.shape != previous.shape or float(np.abs(thumb - previous).max()) > _CHANGED:
            try:
                lines = engine.lines(frame)
            except Exception as exc:  # noqa: BLE001 - onnxruntime and OpenCV raise their own types
                raise TextSourceError(f"OCR failed at {time:.1f} s: {_first_line(exc)}") from exc
            previous = thumb
        yield time, lines


def _sampled(video: str, interval: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time, frame (H, W, 3) uint8) every `interval` seconds, decoded one at a time in one pass."""
    try:
        yield from iter_frames(video, 1.0 / interval)
    except VideoDecodeError as exc:
        raise TextSourceError(f"frames for OCR could not be decoded: {exc.reason}") from exc


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """Grey block averages (about 160 blocks wide) to tell a repeated frame from a new one: compression noise
    averages out, while a few changed characters still move their block well past `_CHANGED`."""
    step = max(1, frame.shape[1] // _THUMB_WIDTH)
    h, w = frame.shape[0] // step * step, frame.shape[1] // step * step
    grey = frame[:h, :w].mean(axis=-1, dtype=np.float32)
    return grey.reshape(h // step, step, w // step, step).mean(axis=(1, 3))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
