"""Videos that show and say things, built here for the OCR and speech tests: rendered captions drawn into frames
with PIL, espeak-ng speech muxed as AAC, and an audio stream whose packets are garbage."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

RATE = 16000


def caption_frames(captions: list[str | None], seconds_each: float, fps: float = 4.0,
                   size: tuple[int, int] = (320, 180)) -> np.ndarray:
    """(T, H, W, 3) uint8: each caption (None: a blank dark frame) shown in large white letters for
    `seconds_each` seconds, one after another."""
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 26)
    except OSError:
        font = ImageFont.load_default(size=26)
    frames = []
    for caption in captions:
        image = Image.new("RGB", size, (20, 30, 60))
        if caption:
            ImageDraw.Draw(image).text((16, size[1] // 2 - 16), caption, fill=(255, 255, 255), font=font)
        frames.extend([np.asarray(image)] * round(seconds_each * fps))
    return np.stack(frames)


def speech(text: str, lead: float = 0.0, tail: float = 0.5) -> np.ndarray:
    """espeak-ng (en-us voice, 160 words a minute) saying `text`, after `lead` seconds of silence: (N,) float32
    at 16 kHz. Skips the test where espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", text], check=True,
                         capture_output=True).stdout
    import io

    with av.open(io.BytesIO(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    voice = np.concatenate(chunks)
    return np.concatenate([np.zeros(round(lead * RATE), np.float32), voice, np.zeros(round(tail * RATE), np.float32)])


def write_talking_video(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None,
                        garble_audio: bool = False) -> Path:
    """An H.264 + AAC mp4 of `frames` and `audio` ((N,) float32 at 16 kHz; None: no audio stream at all).
    `garble_audio` replaces every audio packet's bytes with noise, so the stream is declared but cannot decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0)
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"crf": "12", "preset": "veryfast"}  # sharp letters: OCR reads what was drawn
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=RATE)
            sound.layout = "mono"
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            packets = []
            for at in range(0, len(audio), 1024):
                chunk = np.zeros((1, 1024), np.float32)
                piece = audio[at : at + 1024]
                chunk[0, : len(piece)] = piece
                block = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                block.sample_rate, block.pts = RATE, at
                packets.extend(sound.encode(block))
            packets.extend(sound.encode())
            for packet in packets:
                if garble_audio:
                    garbage = av.Packet(noise.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                    garbage.pts, garbage.dts, garbage.time_base = packet.pts, packet.dts, packet.time_base
                    garbage.stream = sound
                    packet = garbage
                container.mux(packet)
    return path
