"""A hit's timeline: the score of every segment of its video for the query, in time order, pooled when long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import TINY_MODEL
from vitr.index.timeline import timeline
from vitr.index.video_index import VideoIndex

DIM = 8


def _unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


@pytest.fixture
def index(tmp_path: Path) -> VideoIndex:
    """long.mp4: 200 windows of 1 s every 0.5 s (stored in reverse order), only the one at 75 s shows the query;
    whole.mp4: indexed whole."""
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    windows = [(i * 0.5, i * 0.5 + 1.0, _unit(0) if i == 150 else _unit(1 + i % 3)) for i in range(200)]
    index.meta.commit_batch([
        (str(tmp_path / "long.mp4"), 1, 1, "d1", 100.5, windows[::-1]),
        (str(tmp_path / "whole.mp4"), 1, 1, "d2", 3.0, [(None, None, _unit(0))]),
    ])
    yield index
    index.close()


def _id(index: VideoIndex, name: str) -> int:
    return next(r.id for r in index.meta.videos().values() if r.path.endswith(name))


def test_every_segment_is_scored_in_time_order(index: VideoIndex) -> None:
    points = timeline(index, _id(index, "long.mp4"), _unit(0), max_points=500)
    assert len(points) == 200
    assert [p.start for p in points] == [i * 0.5 for i in range(200)]
    assert [p.score for p in points if p.score > 0.5] == [1.0]
    assert points[150].start == 75.0 and points[150].score == 1.0


def test_long_videos_are_pooled_into_a_bounded_timeline_that_keeps_the_best_score(index: VideoIndex) -> None:
    points = timeline(index, _id(index, "long.mp4"), _unit(0), max_points=16)
    assert len(points) == 16
    assert points[0].start == 0.0 and points[-1].end == 100.5
    assert all(a.start < b.start and b.start <= a.end for a, b in zip(points, points[1:], strict=False))
    (best,) = [p for p in points if p.score == 1.0]  # the pooled stretch holding the matching window
    assert best.start <= 75.0 and 76.0 <= best.end
    assert all(p.score == 0.0 for p in points if p is not best)


def test_a_video_indexed_whole_has_no_timeline(index: VideoIndex) -> None:
    assert timeline(index, _id(index, "whole.mp4"), _unit(0)) == []
    assert timeline(index, 12345, _unit(0)) == []  # gone from the index
