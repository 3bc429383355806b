"""Shot detection: generated videos of clips joined at known cut points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import shape_frames, write_shape_video
from vitr.errors import VideoDecodeError
from vitr.video import write_video
from vitr.video.shots import SAMPLE_FPS, detect_shots


def test_cuts_are_found_within_one_sampled_frame(tmp_path: Path) -> None:
    # the same square changing colour (a fifth of the frame) and whole backgrounds changing, at 25 fps
    fps = 25
    seconds = [2.0, 3.0, 1.6, 2.4]
    clips = [
        shape_frames("red", round(seconds[0] * fps)),
        shape_frames("blue", round(seconds[1] * fps)),
        shape_frames("blue", round(seconds[2] * fps), background=200),
        shape_frames("yellow", round(seconds[3] * fps), background=90),
    ]
    path = write_video(tmp_path / "joined.mp4", np.concatenate(clips), fps=fps)
    true_cuts = np.cumsum(seconds)[:-1]
    found = detect_shots(path)
    assert len(found) == len(true_cuts), found
    assert all(0 <= f - t <= 1 / SAMPLE_FPS + 1e-6 for f, t in zip(found, true_cuts, strict=True)), found


def test_a_still_or_moving_single_shot_is_one_shot(tmp_path: Path) -> None:
    still = write_video(tmp_path / "still.mp4", np.full((40, 48, 64, 3), 120, np.uint8), fps=8)
    moving = write_shape_video(tmp_path / "moving.mp4", "green", seconds_each=4.0)  # the square drifts across
    assert detect_shots(still) == []
    assert detect_shots(moving) == []


def test_threshold_and_minimum_shot_length_are_respected(tmp_path: Path) -> None:
    path = write_shape_video(tmp_path / "colours.mp4", ["red", "blue", "green"], seconds_each=2.0)
    assert detect_shots(path) == [2.0, 4.0]
    assert detect_shots(path, threshold=0.9) == []  # a fifth of the frame changing is not a cut at 0.9
    assert detect_shots(path, min_shot=2.0) == [2.0]  # a cut at 4.0 would leave under 2 s of frames after it
    assert detect_shots(path, min_shot=2.1) == []  # and one at 2.0 a first shot of 2 s
    with pytest.raises(ValueError, match="threshold"):
        detect_shots(path, threshold=0)


def test_a_broken_file_is_a_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        detect_shots(bad)
