"""Cut a moment out of a video file with PyAV, so a search hit can be taken away as a file of its own.

Two ways, because users want both: an exact re-encode (H.264, the frames from `start` to `end`, so the clip's
length is what was asked to within one frame; costs a decode and an encode of the moment), or a stream copy
(no quality loss and nearly free, but a copy can only begin on a keyframe: it starts at the last keyframe at or
before `start`, at most one GOP early, and ends once the packets decoded before `end` are written, which for
streams with B-frames adds the decoder's few frames of reordering).

The clip keeps the source's first audio stream, because a cut of a talk or a dialogue is useless silent. A
re-encode decodes it and encodes AAC over exactly the span of the frames written (from the first frame's time to
the last frame's end): each decoded audio frame is placed by its own timestamp, the samples outside the span are
cut, and a gap in the source's sound is filled with silence, so sound and picture agree to one sample (to the
millisecond where the source's container rounds audio timestamps to it, as Matroska does). A copy takes the audio
packets that start inside the copied video span, moved by the same offset as the video: exact to one audio packet
at either end (AAC: 21 to 64 ms). Sound never costs the picture: a source without audio gives a silent clip, and
audio that cannot be decoded, encoded or held by the output container leaves the clip video only, with the reason
in `Clip.audio_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vitr.errors import ConfigError, VideoDecodeError
from vitr.files import atomic_path
from vitr.moments import check_clip_request
from vitr.video.decode import timeline_origin

_TOLERANCE_S = 1e-3  # frame times are rounded to their stream's time base; a frame this close to a cut is on it
_SEEK_TRIES = 8  # seeks that back off 1, 2, 4 ... 64 s before reading a file from its start
_AUDIO_JITTER_S = 2e-3  # Matroska rounds audio timestamps to the millisecond: a gap or overlap beyond this is real


@dataclass(frozen=True)
class Clip:
    """What was written: the source times the clip covers (a copy may start earlier than asked), its frames,
    whether it has sound, and why not where the source's sound could not be kept (None otherwise)."""

    path: Path
    start: float
    end: float
    frames: int
    copied: bool
    audio: bool
    audio_error: str | None


class _AudioFailed(Exception):
    """The sound of a cut could not be decoded or encoded: the cut is made again without it."""

    def __init__(self, what: str, error: Exception | None = None) -> None:
        self.reason = what if error is None else _reason(what, error)
        super().__init__(self.reason)


def _reason(what: str, error: Exception) -> str:
    return f"{what}: {getattr(error, 'strerror', None) or error}"


def cut_clip(source: str | Path, start: float, end: float, out: str | Path, *, copy: bool = False,
             audio: bool = True, crf: int = 18) -> Clip:
    """Write the moment [start, end) seconds of `source` (from its video's start, `timeline_origin`, as every
    moment vitr gives) to `out` (an end past the video is cut at its end), with the source's first audio stream
    unless `audio` is False.

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
        sound = reader.streams.audio[0] if audio and reader.streams.audio else None
        cut = _copy if copy else _reencode
        origin = timeline_origin(reader)  # the cut works in the file's own times, the caller in vitr's
        start, end = start + origin, end + origin
        audio_error = None
        try:
            try:
                first, last, frames, sounded = _write(cut, reader, stream, sound, tmp, container_format, start, end,
                                                      crf)
            except (_AudioFailed, av.FFmpegError) as e:
                if sound is None:
                    raise
                # The same cut without sound (the seek inside starts the reader afresh): if it succeeds, the sound
                # was at fault (the output container refused it, say); if not, its error is the video's.
                audio_error = e.reason if isinstance(e, _AudioFailed) else _reason(
                    "the audio stream cannot be written into the clip", e)
                first, last, frames, sounded = _write(cut, reader, stream, None, tmp, container_format, start, end,
                                                      crf)
        except av.FFmpegError as e:
            raise VideoDecodeError(source, f"cannot cut it into {out.name}: {e}") from e
        if frames == 0:
            raise VideoDecodeError(source, f"no frames between {start - origin:g} s and {end - origin:g} s")
    return Clip(out, first - origin, last - origin, frames, copy, sounded, audio_error)


_Cut = Callable[..., tuple[float, float, int, bool]]


def _write(cut: _Cut, reader: av.container.InputContainer, stream: av.video.stream.VideoStream,
           sound: av.audio.stream.AudioStream | None, tmp: Path, container_format: str, start: float, end: float,
           crf: int) -> tuple[float, float, int, bool]:
    with av.open(str(tmp), mode="w", format=container_format) as writer:
        return cut(reader, stream, sound, writer, start, end, crf)


def _duration(reader: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if reader.duration is not None:
        return reader.duration / av.time_base
    return None


def _seek(reader: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float) -> None:
    """Seek to a keyframe at or before `seconds` (the start of the file when the container cannot seek).

    A container without an index (MPEG-TS: a recording, a camcorder's .mts) seeks to an estimate of the byte
    position and may land past `seconds`; the seek then backs off, twice as far each time, until the first video
    packet after it is not past `seconds`, and after _SEEK_TRIES the file is read from its start."""
    back = 0.0
    for _ in range(_SEEK_TRIES):
        target = int((seconds - back) / stream.time_base)
        try:
            reader.seek(target, stream=stream, backward=True, any_frame=False)
            first = next((p.pts for p in reader.demux(stream) if p.pts is not None), None)
            if first is None or first * stream.time_base <= seconds + _TOLERANCE_S:
                reader.seek(target, stream=stream, backward=True, any_frame=False)  # demuxing moved the reader on
                return
        except av.FFmpegError:
            break
        back = max(1.0, 2 * back)
    reader.seek(0)


def _reencode(reader, stream, sound, writer, start: float, end: float, crf: int) -> tuple[float, float, int, bool]:  # noqa: ANN001
    """Decode from the keyframe before `start`, encode the frames whose times lie in [start, end), and the sound
    over their span."""
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    width, height = stream.codec_context.width // 2 * 2, stream.codec_context.height // 2 * 2  # yuv420p: even
    output = writer.add_stream("libx264", rate=rate)
    output.width, output.height, output.pix_fmt = width, height, "yuv420p"
    output.codec_context.time_base = stream.time_base
    output.options = {"crf": str(crf), "preset": "veryfast"}
    track = None if sound is None else _AacTrack(sound, writer, start)
    _seek(reader, stream, start)
    first = last = None
    frames = 0
    done = False  # the last frame of the moment is written
    for packet in reader.demux(stream, *([sound] if sound is not None else [])):
        if track is not None and packet.stream.type == "audio":
            track.add(packet)
        elif not done:
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if frame.time >= end - _TOLERANCE_S:
                    done = True
                    break
                if frame.time < start - _TOLERANCE_S:
                    continue
                last = frame.time  # read first: reformat may return this very frame, whose pts is rewritten below
                if first is None:
                    first = last
                    if track is not None:
                        track.begin(first)
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts = round((last - first) / stream.time_base)
                picture.time_base = stream.time_base
                writer.mux(output.encode(picture))
                frames += 1
                if track is not None:
                    track.encode_until(last)
        if done and (track is None or last is None or track.reaches(last + 1 / float(rate))):
            break
    writer.mux(output.encode())
    if first is None or last is None:
        return start, start, 0, False
    stop = last + 1 / float(rate)  # where the last frame ends: the sound covers the frames' span
    if track is not None:
        track.finish(stop)
    return first, min(end, stop), frames, track is not None


class _AacTrack:
    """The source's sound over a re-encoded clip's frames, as AAC: decoded frames are placed on the clip's sample
    clock by their timestamps (gaps filled with silence, overlaps cut), and samples are encoded only once they lie
    before a frame already written, since where the clip ends is known only at its last frame."""

    def __init__(self, source: av.audio.stream.AudioStream, writer: av.container.OutputContainer,
                 start: float) -> None:
        context = source.codec_context
        if context is None or not context.sample_rate:
            raise _AudioFailed("the audio stream cannot be decoded: no decoder, or no sample rate, for it")
        self.writer, self.start, self.rate = writer, start, context.sample_rate
        channels = len(context.layout.channels)
        self.layout = {1: "mono", 2: "stereo"}.get(channels, context.layout.name)  # "2 channels" (no order): stereo
        try:
            self.output = writer.add_stream("aac", rate=self.rate, layout=self.layout)
            self.output.codec_context.open()  # here, so that a rate or layout AAC lacks is blamed on the sound
            self.convert = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        except (av.FFmpegError, ValueError) as e:
            raise _AudioFailed(f"the audio stream ({self.rate} Hz, {self.layout}) cannot be encoded", e) from e
        self.first: float | None = None  # the source time of the clip's first sample (its first frame's)
        self.early: list[tuple[float | None, np.ndarray]] = []  # decoded before the first frame was known
        self.pending = np.zeros((channels, 0), np.float32)  # placed, not yet encoded
        self.encoded = 0  # samples given to the encoder (the next one's pts)

    def add(self, packet: av.Packet) -> None:
        try:
            decoded = [(frame.time, self._samples(frame)) for frame in packet.decode()]
        except (av.FFmpegError, ValueError) as e:
            raise _AudioFailed("the audio stream could not be decoded", e) from e
        for time, samples in decoded:
            if self.first is not None:
                self._place(time, samples)
            elif time is None or time + samples.shape[1] / self.rate >= self.start - _TOLERANCE_S:
                self.early.append((time, samples))  # what ends before `start` is never in the clip

    def begin(self, first: float) -> None:
        self.first = first
        for time, samples in self.early:
            self._place(time, samples)
        self.early = []

    def reaches(self, seconds: float) -> bool:
        """Whether the sound decoded so far covers the source up to `seconds`."""
        return self.encoded + self.pending.shape[1] >= self._index(seconds)

    def encode_until(self, seconds: float) -> None:
        """Encode the whole AAC frames that end before `seconds` (a frame written: the clip lasts that long)."""
        size = self.output.codec_context.frame_size or 1024
        while self.pending.shape[1] >= size and self.encoded + size <= self._index(seconds):
            self._encode(self.pending[:, :size])
            self.pending = self.pending[:, size:]

    def finish(self, stop: float) -> None:
        """Cut (or pad with silence) the sound at `stop`, encode what is left and flush the encoder."""
        want = self._index(stop) - self.encoded
        self._pad(want - self.pending.shape[1])
        self.pending = self.pending[:, :want]
        self.encode_until(stop)
        if self.pending.shape[1]:
            self._encode(self.pending)  # the one frame shorter than the encoder's frame size: the last
        self._mux(None)

    def _index(self, seconds: float) -> int:
        assert self.first is not None
        return round((seconds - self.first) * self.rate)

    def _samples(self, frame: av.AudioFrame) -> np.ndarray:
        """(channels, n) float32 samples of a decoded frame, whatever its sample format."""
        converted = [f.to_ndarray() for f in self.convert.resample(frame)]
        return np.concatenate(converted, axis=1) if converted else self.pending[:, :0]

    def _place(self, time: float | None, samples: np.ndarray) -> None:
        """Append a decoded frame where its timestamp puts it: exactly for the first samples kept, later only
        when it lies off the running clock by more than timestamp rounding."""
        at = self.encoded + self.pending.shape[1]
        if time is not None:
            want = self._index(time)
            if at == 0 or abs(want - at) > _AUDIO_JITTER_S * self.rate:
                self._pad(want - at)
                samples = samples[:, max(0, at - want):]
        self.pending = np.concatenate([self.pending, samples], axis=1)

    def _pad(self, count: int) -> None:
        if count > 0:
            silence = np.zeros((self.pending.shape[0], count), np.float32)
            self.pending = np.concatenate([self.pending, silence], axis=1)

    def _encode(self, samples: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=self.layout)
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.encoded, Fraction(1, self.rate)
        self.encoded += samples.shape[1]
        self._mux(frame)

    def _mux(self, frame: av.AudioFrame | None) -> None:
        try:
            packets = self.output.encode(frame)
        except (av.FFmpegError, ValueError) as e:
            raise _AudioFailed("the audio stream could not be encoded", e) from e
        self.writer.mux(packets)


def _copy(reader, stream, sound, writer, start: float, end: float, crf: int) -> tuple[float, float, int, bool]:  # noqa: ANN001, ARG001
    """Copy packets from the last keyframe at or before `start`; the end is exact to a frame.

    Every packet decoded before `end` may be a reference of a frame shown before `end` (references always come
    earlier in decode order), so a packet shown at or after `end` is held back and written only if a frame shown
    before `end` follows it in decode order; what is still held when decode times reach `end` is dropped.
    """
    output = writer.add_stream_from_template(stream)
    track = None if sound is None else _CopiedAudio(sound, writer)
    _seek(reader, stream, start)
    base = stream.time_base
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    held: list[av.Packet] = []  # from the latest keyframe at or before `start`, until a later keyframe shows up
    tail: list[av.Packet] = []  # shown at or after `end`: written only if a frame shown before `end` needs them
    started = False
    shift = None
    shown: list[int] = []

    def write(packet: av.Packet) -> None:
        nonlocal shift
        if shift is None:
            shift = packet.dts  # the clip's first packet decodes at 0
            if track is not None:
                track.begin(float(packet.pts * base), shift * base)
        shown.append(packet.pts)
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = output
        writer.mux(packet)
        if track is not None:
            track.write_until(float(max(shown) * base))

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

    def step(packet: av.Packet) -> bool:
        """Take one video packet; False once the moment is complete."""
        nonlocal started, held
        if not started:
            if packet.is_keyframe and packet.pts * base <= start + _TOLERANCE_S:
                held = [packet]
                return True
            if not packet.is_keyframe:
                if held:
                    held.append(packet)
                return True
            started = True  # the first keyframe after `start`: what is held begins the clip
            complete = not all(emit(p) for p in held)
            held = []
            if complete:
                return False
        return emit(packet)

    done = False
    for packet in _dated(reader.demux(stream, *([sound] if sound is not None else [])), stream, rate):
        if track is not None and packet.stream.type == "audio":
            track.add(packet)
        elif not done:
            done = not step(packet)
        if done and (track is None or not shown or track.reaches(float(max(shown) * base) + 1 / float(rate))):
            break
    if not started:
        all(emit(p) for p in held)  # the whole moment lay in the file's last GOP
    if not shown:
        return start, start, 0, False
    stop = float(max(shown) * base) + 1 / float(rate)
    return float(min(shown) * base), stop, len(shown), track is not None and track.finish(stop)


def _dated(packets: Iterator[av.Packet], stream: av.video.stream.VideoStream, rate: Fraction) -> Iterator[av.Packet]:
    """The packets that have a presentation time, each with a decode time.

    A demuxer that stores no decode times (Matroska) derives them from the presentation times of the packets that
    follow, so after a seek (or at the file's start) the first packets of a video stream with B-frames have none:
    as many as the frames of reordering. Each of them decodes one frame before the next packet, as in FFmpeg's own
    stream copy, so they are held until the first dated packet and dated back from it. Sound is not reordered: an
    undated audio packet decodes when it plays. Packets without a presentation time (the end-of-stream markers)
    cannot be placed in the clip and are dropped.
    """
    frame = round(1 / (rate * stream.time_base))  # one frame, in the stream's time base
    undated: list[av.Packet] = []

    def date_back(following: int) -> Iterator[av.Packet]:
        for packet in reversed(undated):
            packet.dts = following - (packet.duration or frame)
            following = packet.dts
        yield from undated
        undated.clear()

    for packet in packets:
        if packet.pts is None:
            continue
        if packet.stream.type != "video":
            if packet.dts is None:
                packet.dts = packet.pts
            yield packet
        elif packet.dts is None:
            undated.append(packet)
        else:
            yield from date_back(packet.dts)
            yield packet
    if undated:  # the stream ended first: the next decode time would have been the earliest presentation time
        yield from date_back(min(packet.pts for packet in undated))


class _CopiedAudio:
    """The source's audio packets that start inside a copied clip's video span, moved by the video's offset.

    Packets wait until a video frame shown after them is written (the span's end is known only at the last one),
    and those before the span's start are dropped."""

    def __init__(self, source: av.audio.stream.AudioStream, writer: av.container.OutputContainer) -> None:
        self.writer, self.base = writer, source.time_base
        try:
            self.output = writer.add_stream_from_template(source)
        except ValueError as e:  # a stream PyAV cannot describe to the muxer
            raise _AudioFailed("the audio stream cannot be copied into the clip", e) from e
        self.waiting: list[av.Packet] = []
        self.first: float | None = None  # the span's start, in source seconds
        self.shift = 0  # the video's offset, in audio time base units
        self.latest = float("-inf")  # the start of the latest packet read, in source seconds
        self.written = 0

    def add(self, packet: av.Packet) -> None:
        self.latest = max(self.latest, float(packet.pts * self.base))
        self.waiting.append(packet)

    def begin(self, first: float, shift: Fraction) -> None:
        self.first, self.shift = first, round(shift / self.base)

    def reaches(self, seconds: float) -> bool:
        return self.latest >= seconds - _TOLERANCE_S

    def write_until(self, seconds: float) -> None:
        """Write the waiting packets that start before `seconds`, dropping those before the span."""
        assert self.first is not None
        keep = []
        for packet in self.waiting:
            time = float(packet.pts * self.base)
            if time >= seconds - _TOLERANCE_S:
                keep.append(packet)
            elif time >= self.first - _TOLERANCE_S:
                packet.pts -= self.shift
                packet.dts -= self.shift
                packet.stream = self.output
                self.writer.mux(packet)
                self.written += 1
        self.waiting = keep

    def finish(self, stop: float) -> bool:
        """Write what starts before `stop`; whether the clip got any audio."""
        if self.first is not None:
            self.write_until(stop)
        return self.written > 0
