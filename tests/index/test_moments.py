"""Moment search: long videos indexed as overlapping windows report where in the video the match is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.errors import ConfigError, IndexStoreError
from vitr.index.indexer import search_by_video, update_index
from vitr.index.video_index import VideoIndex, Windowing


def test_windows_cover_the_video_and_end_at_its_end() -> None:
    assert Windowing(2.0, 1.0).spans(5.0) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0)]
    assert Windowing(2.0, 1.5).spans(4.2) == [(0.0, 2.0), (1.5, 3.5), (2.2, 4.2)]
    assert Windowing(10.0, 5.0).spans(3.0) == [(0.0, 3.0)]
    with pytest.raises(ConfigError, match="stride"):
        Windowing(1.0, 2.0)


def test_target_in_the_second_half_is_found_there(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    long_video = write_shape_video(root / "long.mp4", ["blue", "blue", "red", "red"], seconds_each=1.0)
    write_shape_video(root / "other.mp4", ["green", "yellow"], seconds_each=1.0)
    query_clip = write_shape_video(tmp_path / "query.mp4", "red", seconds_each=1.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)

    assert json.loads((index.dir / "index.json").read_text())["windows"] == {"window": 1.0, "stride": 0.5}
    assert index.stats()["segments"] == 7 + 3  # windows starting 0, .5, ..., 3 (4 s) and 0, .5, 1 (2 s)
    hits = search_by_video(index, query_clip, k=2)
    assert [h.path for h in hits] == [str(long_video), str(root / "other.mp4")]  # one hit per video
    assert hits[0].start >= 2.0 and hits[0].end == hits[0].start + 1.0
    index.close()


def test_window_settings_are_kept_and_cannot_silently_change(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "a.mp4", ["red", "blue"], seconds_each=1.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)
    write_shape_video(root / "b.mp4", ["green", "blue"], seconds_each=1.0)
    reopened = VideoIndex(tmp_path / "index")
    report = update_index(reopened, root, progress=False, workers=0)  # no window given: the stored one is used
    assert report.added == 1 and report.unchanged == 1
    assert reopened.stats()["segments"] == 6
    with pytest.raises(IndexStoreError, match="windows"):
        update_index(reopened, root, window=2.0, progress=False, workers=0)
    index.close()
    reopened.close()


def test_links_leading_out_of_the_folder_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    inside = write_shape_video(root / "inside.mp4", "red", seconds_each=1.0)
    outside = write_shape_video(tmp_path / "elsewhere" / "outside.mp4", "blue", seconds_each=1.0)
    (root / "to_outside.mp4").symlink_to(outside)
    (root / "to_inside.mp4").symlink_to(inside)
    (root / "dir_link").symlink_to(outside.parent, target_is_directory=True)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, progress=False, workers=0)
    assert sorted(Path(p).name for p in index.meta.videos()) == ["inside.mp4", "to_inside.mp4"]
    assert index.meta.roots() == [str(root.resolve())]
    index.close()
