"""Real H.264 test videos whose frame colour encodes the frame index, so a test can read WHICH frame it got.

Each frame is a still lab scene (`vitr.lab.world`) of one exact flat colour, rendered and written by the lab's
generator."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vitr.lab.world import Scene, render_video, write_scenes

_STEP = 16  # colour levels between neighbouring codes: far above H.264 + YUV rounding error


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
    path: Path, count: int, fps: int, container_format: str = "mp4", **options: str | dict[str, str]
) -> Path:
    """An indexed H.264 video with chosen muxer options (`container`) and encoder options (`codec`).

    The encoder defaults (B-frames, a keyframe every `g` frames) are those of most real-world files, unlike
    write_video's low-latency settings.
    """
    with av.open(str(path), mode="w", format=container_format, options=options.get("container", {})) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = options.get("codec", {})
        for frame in indexed_frames(count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
