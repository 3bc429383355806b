"""Decode and sample video frames with PyAV (the reference decoder), or with torchcodec on a CPU or a GPU.

Frame times come from the decoded presentation timestamps (PTS), measured in seconds from the video stream's
start, never from a header's frame count: headers of real-world files are often wrong. For each target time
the sampler returns the decoded frame whose timestamp is the nearest at or before it (the frame on screen at
that moment).

Two decoding paths give identical frames: a single forward pass (short videos), and sparse seeking to the
keyframe before each far-away target (long videos, where decoding everything would waste minutes).

`decoder="torchcodec"` keeps PyAV for the header (the same window, targets and errors) and asks torchcodec for
the frame shown at each target time, on the CPU or on the GPU's NVDEC. Its RGB conversion is not PyAV's, so
its pixels differ slightly (docs/performance.md); features of the two never share a cache entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vitr.errors import ConfigError, VideoDecodeError

# Videos longer than this are sampled by seeking; shorter ones are decoded in one pass.
LONG_VIDEO_S = 30.0
# While seeking, a target further than this past the last decoded frame is reached by a seek, a nearer one by
# decoding forward (decoding a few frames is cheaper than a seek, which restarts at a keyframe).
SEEK_GAP_S = 2.0
# A video whose decoded frames stop this much (or two frame periods, if longer) before the end its stream header
# declares is reported as truncated rather than sampled with its last frame repeated.
TRUNCATION_SLACK_S = 1.0
# FFmpeg's AVFMT_TS_DISCONT: formats (MPEG program/transport streams) whose timestamps may jump; after a seek
# FFmpeg can stamp their frames differently from a decode from the start, so they are decoded in one pass.
_AVFMT_TS_DISCONT = 0x0200
# FFmpeg's AVFMT_NOTIMESTAMPS: raw elementary streams (.h264, .m4v) with no timestamps, no index and no seeking.
_AVFMT_NOTIMESTAMPS = 0x0080
# Slack for float rounding when comparing a target time with a frame time.
_TIME_EPS = 1e-6
DECODERS = ("pyav", "torchcodec")


@dataclass
class VideoInfo:
    """What the container header says about the first video stream (num_frames is None when not declared).

    width and height are the coded size; frames come back turned upright, so a rotated video's sides swap.
    """

    path: str
    duration: float
    fps: float
    width: int
    height: int
    num_frames: int | None


@dataclass
class SampledClip:
    """Sampled frames with the time (seconds from the video's start) at which each is shown."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    timestamps: np.ndarray  # (T,) float64 seconds
    info: VideoInfo


def probe(path: str | Path) -> VideoInfo:
    """Read the header of `path` (duration, frame rate, size); raises VideoDecodeError if it is not a video."""
    with _open_video(path) as (_, _, info):
        return info


def timeline_origin(container: av.container.InputContainer) -> float:
    """Where vitr's timeline starts in `container`, in its own seconds: the first video stream's start.

    Every time vitr stores or takes (frame times, moments, text spans, clip cuts) counts from there, as a player
    counts, so a file whose timestamps begin late (an MPEG-TS recording, a camcorder's .mts) or whose sound or
    subtitles begin at another time than its picture keeps them all on one clock."""
    stream = container.streams.video[0] if container.streams.video else None
    if stream is None or stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def sample_frames(
    path: str | Path,
    num_frames: int = 12,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    *,
    decimation: int | None = None,
    seek: bool | None = None,
    decoder: str = "pyav",
    decode_device: str = "cpu",
) -> SampledClip:
    """Sample frames from the window [start, end] (seconds; default the whole video).

    Uniform mode (fps None), the CLIP4Clip/CLIP2Video default: `num_frames` times evenly spaced from `start` to
    the last frame's time, so a constant-rate video gets frames `linspace(0, n - 1, num_frames).astype(int)` as
    CLIP2Video's loader picks them. Always returns exactly `num_frames` frames when the video has any; a clip
    with fewer frames repeats some (the repeats carry the same timestamp).

    Rate mode (fps given): one frame every 1/fps seconds from `start` (CLIP4Clip's `feature_framerate`), then,
    if more than `max_frames`, the CLIP4Clip subsample `linspace(0, n - 1, max_frames).astype(int)` of them.
    Returns distinct frames only: a video slower than `fps` yields each of its frames once.

    JPEG mode (fps and `decimation` given), CLIP2Video's offline pipeline: the times of the JPEGs ffmpeg writes at
    `fps` (5 in `sample_frame.py`), then the loader's `linspace(0, n - 1, n // decimation)` of them
    (`--feature_framerate`: 2 for MSR-VTT, 1 for MSVD and VATEX), then at most `max_frames` by linspace again.
    The frames are decoded from the video itself rather than from re-compressed JPEGs.

    seek: None picks the path (seeking above LONG_VIDEO_S seconds, except in MPEG program/transport streams whose
    timestamps are unreliable after a seek); True/False force it (raw streams without timestamps never seek).
    Any failure raises VideoDecodeError naming the file and the reason, including frames that stop well before
    the end the stream header declares (a cut-off download) when a requested time lies in the missing part.

    decoder: "pyav" (the reference) or "torchcodec" on `decode_device` ("cpu", or "cuda"/"cuda:N" for NVDEC).
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if decimation is not None and (fps is None or decimation < 1):
        raise ValueError(f"decimation needs fps (the JPEG rate) and must be at least 1, got {decimation}")
    with _open_video(path) as (container, stream, info):
        first, last = _window(info, start, end)
        if fps is None:
            targets = np.linspace(first, last, num_frames)
        elif decimation is not None:
            targets = _jpeg_targets(first, last, fps, decimation, max_frames)
        else:
            targets = _rate_targets(first, last, fps, max_frames)
        raw_stream = bool(container.format.flags & _AVFMT_NOTIMESTAMPS)  # cannot seek at all
        if decoder == "torchcodec":
            times, frames = _torchcodec_frames_at(path, targets, timeline_origin(container), decode_device)
        else:
            use_seek = not raw_stream and (_prefers_seeking(container, info) if seek is None else seek)
            times, frames = _frames_at(container, stream, info, targets, use_seek)
    if not frames:
        raise VideoDecodeError(path, "the video stream has no decodable frames")
    if len({frame.shape for frame in frames}) > 1:  # a damaged display rotation that changes midway
        raise VideoDecodeError(path, f"frames change shape midway: {sorted({f.shape for f in frames})}")
    if fps is not None:
        times, frames = _distinct(times, frames)
    return SampledClip(frames=np.stack(frames), timestamps=np.asarray(times, dtype=np.float64), info=info)


@contextmanager
def _open_video(path: str | Path) -> Iterator[tuple[av.container.InputContainer, av.VideoStream, VideoInfo]]:
    """Open `path` and its first video stream, turning every way of failing into a VideoDecodeError.

    A damaged file can fail anywhere: at open, while the header is read (a stream with no codec, a frame size
    of 0), at a seek or while decoding; FFmpeg reports most of these as `av.FFmpegError`, a few as Python errors
    raised by PyAV on the garbage it was handed. All of them are the file's fault, so all become one error.
    """
    file = Path(path)
    if not file.exists():
        raise VideoDecodeError(path, "no such file")
    if not file.is_file():
        raise VideoDecodeError(path, "not a regular file")
    try:
        container = av.open(str(file), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(path, f"not a readable media file: empty, truncated or not a video ({exc})") from exc
    try:
        with container:
            if not container.streams.video:
                kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
                raise VideoDecodeError(path, f"the file has no video stream (streams: {kinds})")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoDecodeError(path, "damaged header: the video stream names no codec FFmpeg can decode")
            stream.thread_type = "AUTO"  # frame + slice threads; PyAV releases the GIL while decoding
            info = _read_info(str(path), container, stream)
            yield container, stream, info
    except _DAMAGE_ERRORS as exc:
        raise VideoDecodeError(path, f"corrupt or truncated video data ({type(exc).__name__}: {exc})") from exc


# What PyAV raises on a damaged file besides VideoDecodeError (which passes through untouched).
_DAMAGE_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError, OverflowError, ZeroDivisionError, EOFError)
# FFmpeg refuses frames larger than this on a side; a header claiming more is damaged.
_MAX_SIDE = 32768


def _read_info(path: str, container: av.container.InputContainer, stream: av.VideoStream) -> VideoInfo:
    width, height = stream.codec_context.width, stream.codec_context.height
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise VideoDecodeError(path, f"damaged header: frame size {width}x{height}")
    fps = _frame_rate(container, stream)
    if not (math.isfinite(fps) and fps >= 0):
        fps = 0.0
    if stream.duration and stream.time_base and stream.duration > 0:
        duration = float(stream.duration * stream.time_base)
    elif container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    else:
        duration = _scan_duration(path, fps)
    if not (math.isfinite(duration) and duration >= 0):
        raise VideoDecodeError(path, f"damaged header: duration {duration}")
    frames = stream.frames if stream.frames and stream.frames > 0 else None
    return VideoInfo(path=path, duration=duration, fps=fps, width=width, height=height, num_frames=frames)


def _frame_rate(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Mean frame rate; for raw streams FFmpeg's guess from the bitstream, as their 'average' is a placeholder."""
    if container.format.flags & _AVFMT_NOTIMESTAMPS:
        rate = stream.guessed_rate or stream.average_rate
    else:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _scan_duration(path: str, fps: float) -> float:
    """Duration from the packets, for containers (raw streams) whose header declares none."""
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        end = elapsed = 0.0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            length = float(packet.duration * packet.time_base) if packet.duration else (1.0 / fps if fps else 0.0)
            elapsed += length
            if packet.pts is not None:
                end = max(end, float((packet.pts - origin) * packet.time_base) + length)
    return max(end, elapsed)


def _prefers_seeking(container: av.container.InputContainer, info: VideoInfo) -> bool:
    return info.duration > LONG_VIDEO_S and not container.format.flags & _AVFMT_TS_DISCONT


def _window(info: VideoInfo, start: float | None, end: float | None) -> tuple[float, float]:
    """First and last target time: [start, end] clipped to [0, time of the last frame]."""
    if start is not None and end is not None and start >= end:
        raise VideoDecodeError(info.path, f"empty time window: start {start:.3f}s is not before end {end:.3f}s")
    first = max(start or 0.0, 0.0)
    if start is not None and start > 0 and start >= info.duration:
        raise VideoDecodeError(info.path, f"start {start:.3f}s is past the end of the video ({info.duration:.3f}s)")
    frame_time = 1.0 / info.fps if info.fps > 0 else 0.0
    last_frame = max(info.duration - frame_time, 0.0)
    last = last_frame if end is None else min(end, last_frame)
    return first, max(first, last)


def _linspace_pick(values: np.ndarray, n: int) -> np.ndarray:
    """The official loaders' subsample: values[linspace(0, len - 1, n).astype(int)]."""
    return values[np.linspace(0, len(values) - 1, n).astype(int)]


def _rate_targets(first: float, last: float, fps: float, max_frames: int | None) -> np.ndarray:
    count = int(np.floor((last - first) * fps + _TIME_EPS)) + 1
    targets = first + np.arange(count) / fps
    if max_frames is not None and count > max_frames:
        targets = _linspace_pick(targets, max_frames)
    return targets


def _jpeg_targets(first: float, last: float, fps: float, decimation: int, max_frames: int | None) -> np.ndarray:
    """Times of the frames CLIP2Video's loader keeps from the JPEGs written at `fps` over [first, last]."""
    written = _rate_targets(first, last, fps, None)  # one time per JPEG file
    kept = _linspace_pick(written, max(len(written) // decimation, 1))
    if max_frames is not None and len(kept) > max_frames:
        kept = _linspace_pick(kept, max_frames)
    return kept


def _distinct(times: list[float], frames: list[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
    keep = [i for i in range(len(times)) if i == 0 or times[i] != times[i - 1]]
    return [times[i] for i in keep], [frames[i] for i in keep]


def torchcodec_decoder() -> type:
    """torchcodec's VideoDecoder class; a ConfigError saying what is missing where it cannot load (the package,
    or the FFmpeg shared libraries it links against, which unlike PyAV it does not bundle)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except (ImportError, OSError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"decoder torchcodec is not usable here ({reason}); install vitr[torchcodec] and FFmpeg's shared "
            "libraries (Debian: apt-get install libavcodec-dev libavformat-dev libavdevice-dev libavfilter-dev)"
        ) from exc
    return VideoDecoder


def _torchcodec_frames_at(
    path: str | Path, targets: np.ndarray, origin: float, device: str
) -> tuple[list[float], list[np.ndarray]]:
    """The frame shown at each target time (seconds from the stream's start), decoded by torchcodec on `device`.

    Targets past the last frame (a header that overstates the duration) get the last frame, as PyAV's walk does.
    """
    VideoDecoder = torchcodec_decoder()  # noqa: N806 (a class)
    try:
        video = VideoDecoder(str(path), device=device, dimension_order="NHWC", num_ffmpeg_threads=0)
        meta = video.metadata
        first = meta.begin_stream_seconds or 0.0
        last = meta.end_stream_seconds
        absolute = [float(t) + origin for t in targets]
        if last is not None:  # end_stream_seconds is where the last frame stops being shown
            absolute = [min(t, last - _TIME_EPS) for t in absolute]
        batch = video.get_frames_played_at([max(t, first) for t in absolute])
    except (RuntimeError, ValueError, IndexError) as exc:
        raise VideoDecodeError(path, f"torchcodec cannot decode it ({type(exc).__name__}: {exc})") from exc
    frames = batch.data.cpu().numpy()  # (T, H, W, 3) uint8
    times = [float(t) - origin for t in batch.pts_seconds]
    return times, list(frames)


def _frames_at(
    container: av.container.InputContainer, stream: av.VideoStream, info: VideoInfo, targets: np.ndarray, seek: bool
) -> tuple[list[float], list[np.ndarray]]:
    """The frame shown at each target time (targets ascending), decoded in one pass or by seeking."""
    times: list[float] = []
    frames: list[np.ndarray] = []
    for time, frame in _walk(container, stream, info, targets, seek):
        times.append(time)
        frames.append(frame)
    return times, frames


def _walk(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    info: VideoInfo,
    targets: Iterable[float],
    seek: bool,
) -> Iterator[tuple[float, np.ndarray]]:
    """(time, frame) shown at each target time (targets ascending), one at a time, decoded forward or by seeking."""
    frame_period = 1.0 / info.fps if info.fps > 0 else 0.0
    walker = _FrameWalker(container, stream, frame_period, (info.width, info.height))
    declared_end = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    slack = max(TRUNCATION_SLACK_S, 2.0 * frame_period)
    for target in targets:
        if seek and target - walker.position > SEEK_GAP_S:
            walker.seek(target)
            if walker.overshoots(target):  # the seek index sent us past the target: start over from the beginning
                walker.seek(0.0)
        found = walker.frame_at(target)
        if found is None:
            return
        if walker.exhausted and declared_end is not None and target - found[0] > slack:
            raise VideoDecodeError(
                info.path,
                f"truncated: frames stop at {found[0]:.2f}s but the stream header declares {declared_end:.2f}s",
            )
        yield found


def iter_frames(path: str | Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time, frame (H, W, 3) uint8 RGB) every 1/fps seconds through the whole video, as `sample_frames` in rate
    mode picks them (distinct frames only), but yielded one at a time: a reader of every second of a long video
    (OCR) never holds more than one frame. Failures raise VideoDecodeError, as for `sample_frames`."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with _open_video(path) as (container, stream, info):
        first, last = _window(info, None, None)
        raw_stream = bool(container.format.flags & _AVFMT_NOTIMESTAMPS)
        seek = not raw_stream and _prefers_seeking(container, info)
        previous = None
        for time, frame in _walk(container, stream, info, _rate_targets(first, last, fps, None).tolist(), seek):
            if time != previous:
                previous = time
                yield time, frame


class _FrameWalker:
    """Decodes forward through one stream, remembering the last frame at or before the latest target."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        frame_period: float,
        size: tuple[int, int],
    ) -> None:
        self._container = container
        self._stream = stream
        self._origin = stream.start_time or 0  # pts of the stream's start, in stream.time_base units
        self._frame_period = frame_period  # spacing given to frames without timestamps (raw streams)
        self._size = size  # (width, height) of the header: every frame is scaled to it
        self._last_time: float | None = None
        self._restart()

    @property
    def position(self) -> float:
        """Time of the latest decoded frame, seconds (0 before any)."""
        return self._last_time or 0.0

    def _restart(self) -> None:
        self._frames = self._container.decode(self._stream)
        self._current: tuple[float, av.VideoFrame] | None = None  # last frame at or before the target
        self._ahead: tuple[float, av.VideoFrame] | None = None  # first frame after the target
        self._rgb: tuple[float, np.ndarray] | None = None  # conversion of the last returned frame
        self.exhausted = False  # the decoder has no frames left after the current position

    def seek(self, target: float) -> None:
        """Jump to the keyframe at or before `target`, so decoding forward reaches it."""
        pts = self._origin + int(target / self._stream.time_base)
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._restart()

    def overshoots(self, target: float) -> bool:
        """True when the first frame after a seek lies past `target` (or nothing decodes after it)."""
        self._ahead = self._next()
        return self._ahead is None or self._ahead[0] > target + _TIME_EPS

    def frame_at(self, target: float) -> tuple[float, np.ndarray] | None:
        """(time, RGB frame) shown at `target`; the first frame for a target before it; None if nothing decodes."""
        while self._ahead is None or self._ahead[0] <= target + _TIME_EPS:
            if self._ahead is not None:
                self._current = self._ahead
            self._ahead = self._next()
            if self._ahead is None:
                break
        chosen = self._current or self._ahead
        if chosen is None:
            return None
        time, frame = chosen
        if self._rgb is None or self._rgb[0] != time:
            self._rgb = (time, _upright(frame, *self._size))
        return self._rgb

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        frame = next(self._frames, None)
        if frame is None:
            self.exhausted = True
            return None
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is not None:
            time = float((pts - self._origin) * self._stream.time_base)
        else:
            time = 0.0 if self._last_time is None else self._last_time + self._frame_period
        self._last_time = time
        return time, frame


def _upright(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB as the video is meant to be shown: the display rotation a phone records applied
    (FFmpeg's counter-clockwise angle, as its players apply it), and every frame at the stream's size (a damaged
    stream can change size midway; a clip must stack)."""
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
    turns = round(frame.rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
