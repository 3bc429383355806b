"""Tiny real videos of coloured shapes (lab scenes, `vitr.lab.world`), and a tiny random-weight model spec, for index
and server tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitr.index.video_index import VideoIndex
from vitr.lab.world import OBJECT_COLOURS, Scene, SceneObject, Step, render_video, write_scenes
from vitr.model.factory import ModelSpec

TINY_MODEL = ModelSpec(backbone="vitr-lab-tiny", head="meanP", num_frames=4, random_init=True)


def shape_scene(colour: str, background: int = 20) -> Scene:
    """A large square of `colour` (a name of vitr.lab.world.OBJECT_COLOURS) drifting right over a grey level."""
    square = SceneObject(colour, "square", x=0.28, y=0.5, radius=0.28)
    return Scene((background,) * 3, (square,), (Step(0, "x", 0.0, 1.0, 0.28, 0.72),), noise_seed=0)


def shape_frames(colour: str, count: int = 16, size: int = 64, background: int = 20) -> np.ndarray:
    """(count, size, size, 3) uint8 frames of `shape_scene`, in exact colours."""
    return render_video(shape_scene(colour, background), count, size, noise=0.0, tint=False)


def write_shape_video(path: Path, colours: list[str] | str, seconds_each: float = 2.0, fps: float = 8.0,
                      **writer_options: object) -> Path:
    """A video showing each colour's square in turn, `seconds_each` seconds per colour; options (`audio`, ...) go to
    the writer."""
    colours = [colours] if isinstance(colours, str) else colours
    scenes = [shape_scene(c) for c in colours]
    return write_scenes(path, scenes, round(seconds_each * fps), fps, noise=0.0, tint=False, **writer_options)


def write_odd_corpus(folder: Path) -> tuple[list[Path], list[Path]]:
    """Odd but sound videos and broken files side by side in `folder` -> (sound, broken).

    Everything is tiny (seconds to build): the ten-minute video is 16 px at 1 fps, the 4K one two frames.
    """
    from tests.video.clips import write_audio_only, write_indexed_video

    folder.mkdir(parents=True, exist_ok=True)
    sound = [
        write_shape_video(folder / "plain.mp4", "red"),
        write_scenes(folder / "phone upright.mp4", shape_scene("green"), 16, noise=0.0, tint=False, rotation=90),
        write_indexed_video(folder / "vfr.mp4", 6, times=[0.0, 0.1, 0.15, 1.0, 2.5, 3.1]),
        write_indexed_video(folder / "ten-bit.mp4", 8, pix_fmt="yuv420p10le"),
        write_scenes(folder / "uhd.mp4", Scene((90, 90, 90), (), (), 0), 2, size=(2160, 3840), noise=0.0, tint=False),
        write_scenes(folder / "one frame.mp4", shape_scene("blue"), 1, noise=0.0, tint=False),
        write_scenes(folder / "tiny.mp4", shape_scene("yellow"), 16, size=16, noise=0.0, tint=False),
        write_indexed_video(folder / "ten minutes.mp4", 600, fps=1.0, height=16, width=16),
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
        features = chroma(torch.tensor([OBJECT_COLOURS[t] for t in texts], dtype=torch.float32) / 255)[:, None]
        return index.embed_frames(features, torch.ones(len(texts), 1))  # each word as a one-frame video

    monkeypatch.setattr(backbone, "encode_image", encode_image)
    monkeypatch.setattr(index, "embed_texts", embed_texts)
