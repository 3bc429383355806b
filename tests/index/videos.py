"""Tiny real videos of coloured shapes, and a tiny random-weight model spec, for index and server tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitr.model.factory import ModelSpec
from vitr.video.writer import write_video

TINY_MODEL = ModelSpec(backbone="vitr-lab-tiny", head="meanP", num_frames=4)
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
