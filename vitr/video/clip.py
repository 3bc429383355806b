"""Cut a moment out of a video file with PyAV, so a search hit can be taken away as a file of its own.

Two ways, because users want both: an exact re-encode (H.264, the frames from `start` to `end`, so the clip's
length is what was asked to within one frame; costs a decode and an encode of the moment), or a stream copy
(no quality loss and nearly free, but a copy can only begin on a keyframe: it starts at the last keyframe at or
before `start`, at most one GOP early, and ends once the packets decoded before `end` are written, which for
streams with B-frames adds the decoder's few frames of reordering). The clip holds the video stream only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vitr.errors import ConfigError, VideoDecodeError
from vitr.files import atomic_path
from vitr.moments import check_clip_request

_TOLERANCE_S = 1e-3  # frame times are rounded to their stream's time base; a frame this close to a cut is on it


@dataclass(frozen=True)
class Clip:
    """What was written: the source times the clip covers (a copy may start earlier than asked) and its frames."""

    path: Path
    start: float
    end: float
    frames: int
    copied: bool


def cut_clip(source: str | Path, start: float, end: float, out: str | Path, *, copy: bool = False,
             crf: int = 18) -> Clip:
    """Write the moment [start, end) seconds of `source` to `out` (an end past the video is cut at its end).

    Written under a temporary name and renamed, so a failed or interrupted cut never leaves a partial clip.
    Raises ConfigError for impossible times, VideoDecodeError for a source that is not a readable video.
    """
    source, out = Path(source), Path(out)
    container_format = check_clip_request(start, end, out)
    try:
        reader = av.open(str(source))
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise VideoDecodeError(source, f"cannot open it: {e}") from e
    with reader, atomic_path(out) as tmp:
        if not reader.streams.video:
            raise VideoDecodeError(source, "it has no video stream")
        stream = reader.streams.video[0]
        length = _duration(reader, stream)
        if length is not None and start >= length:
            raise ConfigError(f"--start {start:g} is past the end of the video ({length:.3f} s long)")
        if length is not None:
            end = min(end, length)
        try:
            with av.open(str(tmp), mode="w", format=container_format) as writer:
                cut = _copy if copy else _reencode
                first, last, frames = cut(reader, stream, writer, start, end, crf)
        except av.FFmpegError as e:
            raise VideoDecodeError(source, f"cannot cut it into {out.name}: {e}") from e
        if frames == 0:
            raise VideoDecodeError(source, f"no frames between {start:g} s and {end:g} s")
    return Clip(out, first, last, frames, copy)


def _duration(reader: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if reader.duration is not None:
        return reader.duration / av.time_base
    return None


def _seek(reader: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float) -> None:
    """Seek to a keyframe at or before `seconds` (the start of the file when the container cannot seek)."""
    try:
        reader.seek(int(seconds / stream.time_base), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        reader.seek(0)


def _reencode(reader, stream, writer, start: float, end: float, crf: int) -> tuple[float, float, int]:  # noqa: ANN001
    """Decode from the keyframe before `start`, encode the frames whose times lie in [start, end)."""
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    width, height = stream.codec_context.width // 2 * 2, stream.codec_context.height // 2 * 2  # yuv420p: even
    output = writer.add_stream("libx264", rate=rate)
    output.width, output.height, output.pix_fmt = width, height, "yuv420p"
    output.codec_context.time_base = stream.time_base
    output.options = {"crf": str(crf), "preset": "veryfast"}
    _seek(reader, stream, start)
    first = last = None
    frames = 0
    for frame in reader.decode(stream):
        if frame.time is None:
            continue
        if frame.time >= end - _TOLERANCE_S:
            break
        if frame.time < start - _TOLERANCE_S:
            continue
        last = frame.time  # read first: reformat may return this very frame, whose pts is rewritten below
        if first is None:
            first = last
        picture = frame.reformat(width=width, height=height, format="yuv420p")
        picture.pts = round((last - first) / stream.time_base)
        picture.time_base = stream.time_base
        writer.mux(output.encode(picture))
        frames += 1
    writer.mux(output.encode())
    if first is None:
        return start, start, 0
    return first, min(end, last + 1 / float(rate)), frames


def _copy(reader, stream, writer, start: float, end: float, crf: int) -> tuple[float, float, int]:  # noqa: ANN001, ARG001
    """Copy packets from the last keyframe at or before `start`; the end is exact to a frame.

    Every packet decoded before `end` may be a reference of a frame shown before `end` (references always come
    earlier in decode order), so a packet shown at or after `end` is held back and written only if a frame shown
    before `end` follows it in decode order; what is still held when decode times reach `end` is dropped.
    """
    output = writer.add_stream_from_template(stream)
    _seek(reader, stream, start)
    base = stream.time_base
    held: list[av.Packet] = []  # from the latest keyframe at or before `start`, until a later keyframe shows up
    tail: list[av.Packet] = []  # shown at or after `end`: written only if a frame shown before `end` needs them
    started = False
    shift = None
    shown: list[int] = []

    def write(packet: av.Packet) -> None:
        nonlocal shift
        if shift is None:
            shift = packet.dts  # the clip's first packet decodes at 0
        shown.append(packet.pts)
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = output
        writer.mux(packet)

    def emit(packet: av.Packet) -> bool:
        if packet.dts * base >= end - _TOLERANCE_S:
            return False
        if packet.pts * base >= end - _TOLERANCE_S:
            tail.append(packet)
            return True
        for needed in tail:
            write(needed)
        tail.clear()
        write(packet)
        return True

    for packet in reader.demux(stream):
        if packet.dts is None or packet.pts is None:
            continue  # the demuxer's end-of-stream marker
        if not started:
            if packet.is_keyframe and packet.pts * base <= start + _TOLERANCE_S:
                held = [packet]
                continue
            if not packet.is_keyframe:
                if held:
                    held.append(packet)
                continue
            started = True  # the first keyframe after `start`: what is held begins the clip
            if not all(emit(p) for p in held):
                break
            held = []
        if not emit(packet):
            break
    else:
        all(emit(p) for p in held)  # the whole moment lay in the file's last GOP
    if not shown:
        return start, start, 0
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    return float(min(shown) * base), float(max(shown) * base) + 1 / float(rate), len(shown)
