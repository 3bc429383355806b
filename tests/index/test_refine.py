"""Sharper moments: `refine` re-scores the frames around a coarse moment and tightens it to the shot it is in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import TINY_MODEL, see_colour, write_shape_video
from vitr.errors import ConfigError
from vitr.index import hybrid
from vitr.index.indexer import update_index
from vitr.index.refine import Refinement, tighten
from vitr.index.video_index import VideoIndex


def test_tighten_keeps_the_run_of_frames_near_the_peak() -> None:
    times = np.arange(0.0, 6.0, 0.25)  # 24 frames; the query matches 2 to 4 s
    scores = np.where((times >= 2.0) & (times < 4.0), 0.9, 0.1) + 0.01 * np.sin(times)
    assert tighten(times, scores, 1.5, 4.5, 0.0, 6.0, 0.5) == (1.875, 3.875)  # halfway to the frames outside
    assert tighten(times, scores, 3.0, 3.5, 0.0, 6.0, 0.5) == (1.875, 3.875)  # a moment too short grows
    assert tighten(times, np.full(24, 0.5), 2.0, 3.0, 0.0, 6.0, 0.5) == (0.0, 6.0)  # nothing to tell apart
    # the peak is taken inside the coarse moment: a better match elsewhere does not move it there
    scores[:4] = 1.0
    assert tighten(times, scores, 2.5, 3.5, 0.0, 6.0, 0.5) == (1.875, 3.875)


@pytest.mark.parametrize(
    "kwargs", [{"fps": 0}, {"pad": -1}, {"max_frames": 1}, {"context": 2}, {"margin": 0}, {"margin": 1.0}]
)
def test_bad_refinement_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="refinement"):
        Refinement(**kwargs)


def test_refine_tightens_a_window_hit_to_the_known_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "videos"
    video = write_shape_video(root / "long.mp4", ["blue", "red", "green"], seconds_each=2.0)  # red: 2 to 4 s
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    see_colour(index, monkeypatch)
    update_index(index, root, window=3.0, stride=1.5, progress=False, workers=0)

    coarse = hybrid.search(index, "red", k=1, mode="visual")[0]
    assert (coarse.start, coarse.end) == (1.5, 4.5)  # the best window spills half a second into each neighbour
    sharp = hybrid.search(index, "red", k=1, mode="visual", refine=Refinement())[0]
    assert sharp.path == str(video) and sharp.score == coarse.score
    assert sharp.start == pytest.approx(2.0, abs=0.25) and sharp.end == pytest.approx(4.0, abs=0.25), sharp
    # a moment at the start of the video grows no earlier than 0; one at its end no later than the end
    blue = hybrid.search(index, "blue", k=1, mode="visual", refine=Refinement())[0]
    assert blue.start == 0.0 and blue.end == pytest.approx(2.0, abs=0.25)
    green = hybrid.search(index, "green", k=1, mode="visual", refine=Refinement())[0]
    assert green.start == pytest.approx(4.0, abs=0.25) and green.end == pytest.approx(6.0, abs=0.2)
    index.close()


def test_a_whole_video_index_has_no_moment_to_refine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "a.mp4", ["red", "blue"], seconds_each=1.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    see_colour(index, monkeypatch)
    update_index(index, root, progress=False, workers=0)
    hit = hybrid.search(index, "red", k=1, mode="visual", refine=Refinement())[0]
    assert (hit.start, hit.end) == (None, None)
    index.close()


def test_in_a_shots_index_refinement_never_grows_past_a_detected_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "v.mp4", ["blue", "red", "yellow"], seconds_each=2.0)  # yellow matches "red" half as well
    shots = VideoIndex.create(tmp_path / "shots", TINY_MODEL)
    see_colour(shots, monkeypatch)
    update_index(shots, root, segments="shots", progress=False, workers=0)
    coarse = hybrid.search(shots, "red", k=1, mode="visual")[0]
    sharp = hybrid.search(shots, "red", k=1, mode="visual", refine=Refinement())[0]
    assert coarse.start == pytest.approx(2.0, abs=0.25) and coarse.end == pytest.approx(4.0, abs=0.25)
    assert (sharp.start, sharp.end) == (coarse.start, coarse.end)
    shots.close()
    # cut into windows, nothing bounds the moment: the yellow shot, within the margin of the peak, joins it
    windows = VideoIndex.create(tmp_path / "windows", TINY_MODEL)
    see_colour(windows, monkeypatch)
    update_index(windows, root, window=3.0, stride=1.5, progress=False, workers=0)
    grown = hybrid.search(windows, "red", k=1, mode="visual", refine=Refinement())[0]
    assert grown.end > 4.5
    windows.close()
