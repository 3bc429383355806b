"""Tiny real videos of coloured shapes, and a tiny random-weight model spec, for index and server tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitr.index.video_index import VideoIndex
from vitr.model.factory import ModelSpec
from vitr.video.writer import write_video

TINY_MODEL = ModelSpec(backbone="vitr-lab-tiny", head="meanP", num_frames=4, random_init=True)
COLOURS = {"red": (230, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 230), "yellow": (240, 220, 20)}


def shape_frames(colour: str, count: int = 16, size: int = 64, background: int = 20) -> np.ndarray:
    """(count, size, size, 3) uint8: a square of `colour` drifting right over a dark background."""
    frames = np.full((count, size, size, 3), background, dtype=np.uint8)
    for t in range(count):
        x = 4 + t * (size // 2) // max(count, 1)
        frames[t, 16:48, x : x + 28] = COLOURS[colour]
    return frames


def write_shape_video(path: Path, colours: list[str] | str, seconds_each: float = 2.0, fps: float = 8.0) -> Path:
    """A video showing each colour's square in turn, `seconds_each` seconds per colour."""
    colours = [colours] if isinstance(colours, str) else colours
    count = round(seconds_each * fps)
    return write_video(path, np.concatenate([shape_frames(c, count) for c in colours]), fps=fps)


def write_odd_corpus(folder: Path) -> tuple[list[Path], list[Path]]:
    """Odd but sound videos and broken files side by side in `folder` -> (sound, broken).

    Everything is tiny (seconds to build): the ten-minute video is 16 px at 1 fps, the 4K one two frames.
    """
    from tests.video.clips import indexed_frames, write_audio_only

    folder.mkdir(parents=True, exist_ok=True)
    sound = [
        write_shape_video(folder / "plain.mp4", "red"),
        write_video(folder / "phone upright.mp4", shape_frames("green"), rotation=90),
        write_video(folder / "vfr.mp4", indexed_frames(6), times=[0.0, 0.1, 0.15, 1.0, 2.5, 3.1]),
        write_video(folder / "ten-bit.mp4", indexed_frames(8), pix_fmt="yuv420p10le"),
        write_video(folder / "uhd.mp4", np.full((2, 2160, 3840, 3), 90, np.uint8)),
        write_video(folder / "one frame.mp4", shape_frames("blue", count=1)),
        write_video(folder / "tiny.mp4", shape_frames("yellow", size=16)),
        write_video(folder / "ten minutes.mp4", indexed_frames(600, 16, 16), fps=1.0),
        write_shape_video(folder / "vidéo 日本 — été.mp4", "blue"),
    ]
    plain = sound[0].read_bytes()
    broken = {
        "truncated.mp4": plain[: len(plain) // 2],
        "zero bytes.mp4": b"",
        "random.mp4": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "notes.mp4": b"not a video, just text\n" * 40,
    }
    for name, data in broken.items():
        (folder / name).write_bytes(data)
    damaged = bytearray(plain)
    at = damaged.rindex(b"avc1")  # the sample description's codec tag: PyAV gives a stream with no codec
    damaged[at : at + 4] = b"zzzz"
    (folder / "damaged middle.mp4").write_bytes(bytes(damaged))
    audio = write_audio_only(folder / "audio only.mp4")
    return sound, [folder / name for name in broken] + [folder / "damaged middle.mp4", audio]


def search_in_another_process(index_dir: Path, query: str = "a square") -> list[dict]:
    """`vitr search --json` run by a second process (which must open the index on its own), its hits; the search
    must succeed with no ERROR line or traceback on stderr."""
    import json
    import os
    import subprocess
    import sys

    cli = "import sys; from vitr.cli.main import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", cli, "search", query, "--index", str(index_dir), "--json"],
                          capture_output=True, text=True, env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def see_colour(index: VideoIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the tiny model see colour: a frame's embedding is its mean colour less its grey level, a query word
    is its colour's, so a text search for a colour finds the segment that shows it."""
    backbone = index.model.backbone
    mean = torch.tensor(backbone.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.image_std).view(1, 3, 1, 1)

    def chroma(rgb: torch.Tensor) -> torch.Tensor:  # (N, 3) in 0..1 -> (N, D)
        out = torch.zeros(len(rgb), backbone.embed_dim)
        out[:, :3] = rgb - rgb.mean(dim=1, keepdim=True)
        return out

    def encode_image(images: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) normalised -> (N, D)
        return chroma((images.float().cpu() * std + mean).mean(dim=(2, 3)))

    def embed_texts(texts: list[str]) -> np.ndarray:
        features = chroma(torch.tensor([COLOURS[t] for t in texts], dtype=torch.float32) / 255)[:, None]
        return index.embed_frames(features, torch.ones(len(texts), 1))  # each word as a one-frame video

    monkeypatch.setattr(backbone, "encode_image", encode_image)
    monkeypatch.setattr(index, "embed_texts", embed_texts)
