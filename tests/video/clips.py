"""Real H.264 test videos whose frame colour encodes the frame index, so a test can read WHICH frame it got.

Each frame is a still lab scene (`vitr.lab.world`) of one exact flat colour, rendered and written by the lab's
generator. Their sound, where they have one, is `tone_bursts`: where a burst starts says which second of the source
is heard, so a test can read WHEN the sound is against the picture."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vitr.lab.world import Scene, render_video, write_scenes
from vitr.video.writer import mux_audio

_STEP = 16  # colour levels between neighbouring codes: far above H.264 + YUV rounding error
TONE_RATE = 22_050  # samples a second of `tone_bursts`
_TONE_LEVEL = 12_000  # of int16's 32767: a burst decodes at about 0.37


def indexed_scene(index: int) -> Scene:
    """Frame `index` as a still scene: flat, red = index % 16 and green = index // 16 in steps of 16 levels."""
    red, green = (index % 16) * _STEP + _STEP // 2, (index // 16) * _STEP + _STEP // 2
    return Scene(background=(red, green, 128), objects=(), steps=(), noise_seed=0)


def indexed_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """(count, H, W, 3) uint8: frame i is `indexed_scene(i)`."""
    return np.concatenate([render_video(indexed_scene(i), 1, (height, width), noise=0.0, tint=False)
                           for i in range(count)])


def frame_indices(frames: np.ndarray) -> np.ndarray:
    """Inverse of indexed_frames on decoded (T, H, W, 3) frames -> (T,) frame numbers."""
    red = frames[..., 0].reshape(len(frames), -1).mean(axis=1)
    green = frames[..., 1].reshape(len(frames), -1).mean(axis=1)
    return np.round((green - _STEP // 2) / _STEP).astype(int) * 16 + np.round((red - _STEP // 2) / _STEP).astype(int)


def write_indexed_video(
    path: Path, count: int, fps: float = 8.0, height: int = 48, width: int = 64, **writer_options: object
) -> Path:
    """`count` frames of `indexed_frames` as an mp4; options (`times`, `pix_fmt`, ...) go to the writer."""
    scenes = [indexed_scene(i) for i in range(count)]
    return write_scenes(path, scenes, 1, fps, (height, width), noise=0.0, tint=False, **writer_options)


def write_audio_only(path: Path) -> Path:
    """An mp4 holding one second of AAC silence and no video stream."""
    with av.open(str(path), mode="w", format="mp4") as container:
        _mux_silence(container)
    return path


def write_empty_video_track(path: Path) -> Path:
    """A Matroska file that declares an H.264 track but holds audio packets only."""
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("libx264", rate=8)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        _mux_silence(container)
        container.mux(video.encode())
    return path


def _mux_silence(container: av.container.OutputContainer) -> None:
    stream = container.add_stream("aac", rate=16000)
    stream.layout = "mono"
    for index in range(16):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = index * 1024
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def keyframe_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)


def write_encoded_video(
    path: Path, count: int, fps: int, container_format: str = "mp4", audio: np.ndarray | None = None,
    audio_codec: str = "aac", **options: str | dict[str, str],
) -> Path:
    """An indexed H.264 video with chosen muxer options (`container`) and encoder options (`codec`), and `audio`
    ((N,) int16 mono at TONE_RATE) as a track of `audio_codec` if given.

    The encoder defaults (B-frames, a keyframe every `g` frames) are those of most real-world files, unlike
    write_video's low-latency settings.
    """
    with av.open(str(path), mode="w", format=container_format, options=options.get("container", {})) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = options.get("codec", {})
        sound = None if audio is None else container.add_stream(audio_codec, rate=TONE_RATE, layout="mono")
        for frame in indexed_frames(count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
        if sound is not None and audio is not None:
            mux_audio(container, sound, audio, TONE_RATE)
    return path


def tone_bursts(seconds: float) -> np.ndarray:
    """(N,) int16 mono at TONE_RATE: a 440 Hz tone in the first half of every second, silence in the second, so
    where a burst starts in a clip says where the sound lies against the picture."""
    t = np.arange(round(seconds * TONE_RATE)) / TONE_RATE
    return (np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.5) * _TONE_LEVEL).astype(np.int16)


def decoded_sound(path: Path) -> tuple[np.ndarray, float] | None:
    """(samples (N,) of the first channel, the time of the first) of the first audio stream; None without one."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        frames = list(container.decode(audio=0))
    assert frames, f"{path} has an audio stream without a decodable frame"
    return np.concatenate([frame.to_ndarray()[0] for frame in frames]), float(frames[0].time)


def burst_starts(samples: np.ndarray, first: float, rate: int = TONE_RATE) -> list[float]:
    """The times at which the bursts of `tone_bursts` start in decoded samples whose first one is at `first`: the
    loud samples after 0.2 s of quiet (a burst under way when the samples begin is not one that starts)."""
    loud = np.abs(samples) > 0.1
    quiet = rate // 5
    rising = np.flatnonzero(loud[quiet:] & ~loud[quiet - 1 : -1]) + quiet
    return [first + i / rate for i in rising if not loud[i - quiet : i].any()]


def write_undecodable_audio(path: Path, count: int, fps: int) -> Path:
    """An indexed H.264 video whose AAC track holds random bytes: it demuxes, but no audio frame decodes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac", rate=TONE_RATE, layout="mono")
        container.start_encoding()
        for index, frame in enumerate(indexed_frames(count)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            for part in range(TONE_RATE // 1024 // fps + 1):  # a little more sound than picture
                packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
                packet.stream, packet.time_base = sound, Fraction(1, TONE_RATE)
                packet.pts = packet.dts = (index * (TONE_RATE // 1024 // fps + 1) + part) * 1024
                container.mux(packet)
        container.mux(video.encode())
    return path


def remux_late(source: Path, path: Path, seconds: float, audio_seconds: float | None = None,
               container_format: str = "mpegts") -> Path:
    """`source`'s streams, not re-encoded, in a file whose timestamps begin `seconds` late (the sound
    `audio_seconds` late, default the same), as an MPEG-TS recording's or a camcorder's begin: vitr's times count
    from the picture's start, so every time a test reads must come out as in `source`."""
    with av.open(str(source)) as reader, av.open(str(path), mode="w", format=container_format) as writer:
        outputs = {stream.index: writer.add_stream_from_template(stream) for stream in reader.streams}
        for stream in reader.streams:
            outputs[stream.index].metadata.update(stream.metadata)  # the language tag
        for packet in reader.demux():
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            late = audio_seconds if packet.stream.type == "audio" and audio_seconds is not None else seconds
            shift = round(late / packet.time_base)
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = outputs[packet.stream.index]
            writer.mux(packet)
    return path
