"""Write frames as an H.264 mp4 with PyAV: real files for the lab and for tests of the real decoder."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vitr.files import atomic_path

# Timestamps of frames given explicit times (variable frame rate) are kept to the millisecond.
_VFR_TIME_BASE = Fraction(1, 1000)


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 8.0,
    crf: int = 18,
    *,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    times: Sequence[float] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int = 22_050,
) -> Path:
    """frames: (T, H, W, 3) uint8 RGB, H and W even -> an H.264 mp4 at `path`.

    pix_fmt: the stored pixel format (`yuv420p10le` for 10-bit); rotation: the display rotation a phone
    records (degrees counter-clockwise, as players apply it); times: each frame's presentation time in seconds
    for a variable frame rate (default every 1/fps); audio: (N,) int16 mono samples at `sample_rate`, stored as an
    AAC track from time 0 (the lab's speech). Written to a temporary name and renamed, so a killed writer
    never leaves a truncated file behind.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"H.264 yuv420p needs even height and width, got {frames.shape[1]}x{frames.shape[2]}")
    if audio is not None and (audio.ndim != 1 or audio.dtype != np.int16):
        raise ValueError(f"audio must be (N,) int16 mono samples, got {audio.shape} {audio.dtype}")
    if times is not None and len(times) != len(frames):
        raise ValueError(f"times has {len(times)} entries for {len(frames)} frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        if times is not None:
            stream.codec_context.time_base = _VFR_TIME_BASE
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None if audio is None else container.add_stream("aac", rate=sample_rate, layout="mono")
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pix_fmt != "yuv420p":
                picture = picture.reformat(format=pix_fmt)
            if times is not None:
                picture.pts, picture.time_base = round(times[index] / _VFR_TIME_BASE), _VFR_TIME_BASE
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
        if sound is not None and audio is not None:
            mux_audio(container, sound, audio, sample_rate)
    return path


def mux_audio(container: av.container.OutputContainer, stream: av.AudioStream, audio: np.ndarray,
              sample_rate: int) -> None:
    """Encode mono int16 samples into `stream` (a mono audio stream of `container` at `sample_rate`: AAC for
    write_video, other codecs for tests' videos); the resampler converts them to the encoder's sample format and
    cuts them into its frame size (AAC: 1024; PCM, which has none: 1024 as well)."""
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=sample_rate,
                                  frame_size=stream.codec_context.frame_size or 1024)
    frame = av.AudioFrame.from_ndarray(audio[None], format="s16", layout="mono")  # (1, N): one plane
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, 0, Fraction(1, sample_rate)
    for chunk in resampler.resample(frame) + resampler.resample(None):
        container.mux(stream.encode(chunk))
    container.mux(stream.encode())
