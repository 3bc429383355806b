"""Long lab videos: clips of test scenes back to back, whose files show each clip exactly where moments.json says."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from vitr.cli.main import main
from vitr.errors import ConfigError
from vitr.lab.long_videos import LongVideoSettings, plan_long_videos, write_long_videos
from vitr.lab.synth import LabConfig, plan_videos
from vitr.lab.world import render_video

TINY = LabConfig(scale="tiny", seed=0, workers=1)
SETTINGS = LongVideoSettings(n_videos=2, clips_per_video=3, min_seconds=0.5, max_seconds=1.5, seed=1)


def decoded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, H, W, 3), times (T,)) of every frame of a file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pairs = [(f.to_ndarray(format="rgb24"), float(f.pts * stream.time_base)) for f in container.decode(stream)]
    return np.stack([f for f, _ in pairs]), np.array([t for _, t in pairs])


def test_the_files_show_each_clip_between_its_start_and_end(tmp_path: Path) -> None:
    videos = write_long_videos(tmp_path, TINY, SETTINGS, progress=False)
    manifest = json.loads((tmp_path / "long_videos" / "moments.json").read_text())
    scenes = {v.video_id: v.scene for v in plan_videos(TINY)}
    assert len(manifest["videos"]) == 2 and manifest["lab"] == TINY.identity()
    sources = [c["source"] for v in manifest["videos"] for c in v["clips"]]
    assert len(set(sources)) == 6  # no scene is used twice
    for video, entry in zip(videos, manifest["videos"], strict=True):
        clips = entry["clips"]
        assert clips[0]["start"] == 0.0 and clips[-1]["end"] == entry["duration"] == video.duration
        assert all(a["end"] == b["start"] for a, b in zip(clips, clips[1:], strict=False))  # back to back
        frames, times = decoded(tmp_path / entry["video"])
        assert len(frames) == round(entry["duration"] * TINY.fps)
        rendered = [render_video(scenes[c["source"]], round((c["end"] - c["start"]) * TINY.fps), TINY.image_size,
                                 TINY.noise) for c in clips]
        for clip, own in zip(clips, rendered, strict=True):
            inside = (times >= clip["start"] - 1e-3) & (times < clip["end"] - 1e-3)  # the frames the manifest says
            assert inside.sum() == len(own)
            shown = frames[inside].astype(np.float32)
            errors = np.abs(shown - own).mean(axis=(1, 2, 3))  # per frame: a frame of a neighbour would stand out
            error = errors.max()
            assert error < 8, (clip, errors)  # H.264 at CRF 18 of noisy 64 px frames
            for other in rendered:
                if other is not own:  # every other clip of the video looks different from what is shown here
                    assert np.abs(shown[0] - other[0]).mean() > error
    assert {q["caption"] for q in manifest["queries"]} <= {c["caption"] for v in manifest["videos"]
                                                           for c in v["clips"]}
    for query in manifest["queries"]:
        video = next(v for v in manifest["videos"] if v["video"] == query["video"])
        assert {k: query[k] for k in ("source", "start", "end", "caption")} in video["clips"]


def test_plans_are_deterministic_and_bounded() -> None:
    first, again = plan_long_videos(TINY, SETTINGS), plan_long_videos(TINY, SETTINGS)
    assert first == again
    for video in first:
        for clip in video.clips:
            assert 0.5 <= clip.end - clip.start <= 1.5
    with pytest.raises(ConfigError, match="test split has 10 scenes"):
        plan_long_videos(TINY, LongVideoSettings(n_videos=4, clips_per_video=3))
    with pytest.raises(ConfigError, match="min_seconds"):
        LongVideoSettings(min_seconds=3.0, max_seconds=2.0)


def test_synth_writes_long_videos_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path / "lab"), "--scale", "tiny", "--workers", "1", "--long-videos", "1"]) == 0
    assert "1 long videos" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "lab" / "long_videos" / "moments.json").read_text())
    assert [v["video"] for v in manifest["videos"]] == ["long_videos/long000.mp4"]
    assert (tmp_path / "lab" / "long_videos" / "long000.mp4").is_file()
    assert main(["synth", str(tmp_path / "other"), "--long-videos", "-1"]) == 2
    assert not (tmp_path / "other").exists()
