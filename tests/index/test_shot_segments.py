"""Shot-aware moments: `--segments shots` indexes one segment per shot and a hit's moment is its shot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, see_colour, write_odd_corpus, write_shape_video
from vitr.cli import choices
from vitr.errors import ConfigError, IndexStoreError
from vitr.index.indexer import update_index
from vitr.index.video_index import SEGMENT_KINDS, VideoIndex, Windowing


def test_segment_spans_follow_the_shots() -> None:
    assert choices.SEGMENT_KINDS == SEGMENT_KINDS
    cuts = [2.0, 7.0]
    assert Windowing(segments="shots").spans(8.0, cuts) == [(0.0, 2.0), (2.0, 7.0), (7.0, 8.0)]
    assert Windowing(segments="shots").spans(8.0, []) == [(0.0, 8.0)]
    assert Windowing(segments="shots").spans(0.0, []) == [(0.0, 0.0)]  # one frame: still one segment
    assert Windowing(2.0, 1.5, "shots+windows").spans(8.0, cuts) == [
        (0.0, 2.0),
        (2.0, 4.0),
        (3.5, 5.5),
        (5.0, 7.0),
        (7.0, 8.0),
    ]
    with pytest.raises(ConfigError, match="no window"):
        Windowing(2.0, 1.0, "shots")
    with pytest.raises(ConfigError, match="need a window"):
        Windowing(segments="shots+windows")
    with pytest.raises(ConfigError, match="unknown segments"):
        Windowing(2.0, 1.0, "scenes")


def test_shots_are_the_segments_and_a_text_hit_reports_its_shot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "videos"
    long_video = write_shape_video(root / "long.mp4", ["blue", "red", "green"], seconds_each=2.0)
    other = write_shape_video(root / "other.mp4", ["yellow"], seconds_each=2.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    see_colour(index, monkeypatch)
    update_index(index, root, segments="shots", progress=False, workers=0)

    assert json.loads((index.dir / "index.json").read_text())["windows"] == {
        "window": None,
        "stride": None,
        "segments": "shots",
    }
    assert index.stats()["segments"] == 3 + 1
    for colour, (start, end) in {"blue": (0.0, 2.0), "red": (2.0, 4.0), "green": (4.0, 6.0)}.items():
        best = index.search_text(colour, k=2)[0]
        assert best.path == str(long_video)
        assert best.start == start and best.end == pytest.approx(end, abs=0.2), (colour, best)
    assert index.search_text("yellow", k=1)[0].path == str(other)
    index.close()


def test_shots_plus_windows_cut_long_shots_and_the_setting_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "a.mp4", ["red", "red", "blue"], seconds_each=2.0)  # shots 0-4 s and 4-6 s
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, segments="shots+windows", window=2.0, stride=1.0, progress=False, workers=0)
    spans = sorted((s, e) for s, e in _segment_spans(index))
    assert [s for s, _ in spans] == [0.0, 1.0, 2.0, 4.0]  # three windows inside the long shot, then the short one
    index.close()

    write_shape_video(root / "b.mp4", ["green"], seconds_each=2.0)
    reopened = VideoIndex(tmp_path / "index")
    report = update_index(reopened, root, progress=False, workers=0)  # nothing given: the stored setting is used
    assert report.added == 1 and report.unchanged == 1
    assert reopened.windowing == Windowing(2.0, 1.0, "shots+windows")
    assert reopened.stats()["segments"] == 4 + 1
    with pytest.raises(IndexStoreError, match="segments"):
        update_index(reopened, root, segments="shots", progress=False, workers=0)
    with pytest.raises(ConfigError, match="no window"):
        update_index(reopened, root, segments="shots", window=3.0, progress=False, workers=0)
    reopened.close()


@pytest.mark.slow
def test_odd_files_index_by_shots_and_broken_ones_are_reported(tmp_path: Path) -> None:
    sound, broken = write_odd_corpus(tmp_path / "videos")
    (tmp_path / "videos" / "ten minutes.mp4").unlink()  # a new colour every second: 550 shots, slow for a test
    sound = [p for p in sound if p.name != "ten minutes.mp4"]
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    report = update_index(index, tmp_path / "videos", segments="shots", progress=False, workers=0)
    assert sorted(report.failed) == sorted(str(p.resolve()) for p in broken)
    assert sorted(index.meta.videos()) == sorted(str(p.resolve()) for p in sound)
    assert index.stats()["segments"] == len(sound) + 1  # vfr.mp4 changes colour at 1 s: a second shot
    index.close()


def _segment_spans(index: VideoIndex) -> list[tuple[float, float]]:
    ids, _vectors = index.meta.all_segments()
    return [(start, end) for _video, start, end in index.meta.segments(ids.tolist()).values()]
