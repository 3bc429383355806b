"""Long lab videos for measuring moment search: test-split scenes, each rendered for a drawn length, played one after
another, so the start and end of every clip are known exactly; each clip's caption is a query for its moment.

Layout under `root/long_videos/`:

    long<NNN>.mp4    `clips_per_video` clips back to back, at the lab's frame rate
    moments.json     {"lab": the LabConfig identity, "settings": these settings, "videos": [{"video", "duration",
                     "clips": [{"source", "start", "end", "caption"}]}], "queries": [{"video", "source", "caption",
                     "start", "end"}]}; paths relative to `root`, times in seconds

A clip is a whole lab scene (its event spans the clip, whatever its length), drawn without repeats from the test
split. A clip whose caption another clip of the same video shares is no query: its moment would be ambiguous.
Every file is written under a temporary name and renamed, and an existing video is kept, so a rerun resumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vitr.errors import ConfigError
from vitr.files import atomic_write
from vitr.lab.synth import LabConfig, LabVideo, plan_videos
from vitr.lab.world import render_video
from vitr.video.writer import write_video

LONG_DIR = "long_videos"
_STREAM = 5  # the random stream of long videos (synth uses 0 to 4), so they never change the lab's own


@dataclass(frozen=True)
class LongVideoSettings:
    """n_videos long videos of clips_per_video clips each, every clip lasting a whole number of frames drawn
    uniformly from [min_seconds, max_seconds]."""

    n_videos: int = 20
    clips_per_video: int = 6
    min_seconds: float = 2.0
    max_seconds: float = 8.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_videos < 1 or self.clips_per_video < 1:
            raise ConfigError(f"need at least one long video of one clip, got {self.n_videos} x {self.clips_per_video}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ConfigError(f"need 0 < min_seconds <= max_seconds, got {self.min_seconds} and {self.max_seconds}")


@dataclass(frozen=True)
class Moment:
    source: str  # the lab video id whose scene the clip shows
    start: float
    end: float
    caption: str


@dataclass(frozen=True)
class LongVideo:
    name: str
    duration: float
    clips: tuple[Moment, ...]


def plan_long_videos(config: LabConfig, settings: LongVideoSettings) -> list[LongVideo]:
    """Which test scenes each long video plays, for how long, and where each clip starts and ends."""
    return _plan([v for v in plan_videos(config) if v.split == "test"], config.fps, settings)


def _plan(tests: list[LabVideo], fps: float, settings: LongVideoSettings) -> list[LongVideo]:
    wanted = settings.n_videos * settings.clips_per_video
    if wanted > len(tests):
        raise ConfigError(f"{wanted} clips asked for, but the lab's test split has {len(tests)} scenes")
    rng = np.random.default_rng([settings.seed, _STREAM])
    order = rng.permutation(len(tests))[:wanted]
    low, high = round(settings.min_seconds * fps), round(settings.max_seconds * fps)
    videos = []
    for number in range(settings.n_videos):
        clips, frame = [], 0
        for i in order[number * settings.clips_per_video : (number + 1) * settings.clips_per_video]:
            count = max(2, int(rng.integers(low, high + 1)))  # frames of this clip
            video = tests[int(i)]
            clips.append(Moment(video.video_id, frame / fps, (frame + count) / fps, video.captions[0].text))
            frame += count
        videos.append(LongVideo(f"long{number:03d}", frame / fps, tuple(clips)))
    return videos


def write_long_videos(root: str | Path, config: LabConfig, settings: LongVideoSettings,
                      progress: bool = True) -> list[LongVideo]:
    """Render and write the long videos and moments.json under `root/long_videos` (see the module docstring)."""
    root = Path(root)
    out = root / LONG_DIR
    out.mkdir(parents=True, exist_ok=True)
    tests = [v for v in plan_videos(config) if v.split == "test"]
    videos = _plan(tests, config.fps, settings)
    scenes = {v.video_id: v.scene for v in tests}
    for video in tqdm(videos, desc="long videos", unit="video", disable=not progress):
        path = out / f"{video.name}.mp4"
        if path.exists():
            continue
        frames = [
            render_video(scenes[clip.source], round((clip.end - clip.start) * config.fps), config.image_size,
                         config.noise)
            for clip in video.clips
        ]
        write_video(path, np.concatenate(frames), config.fps)
    queries = []
    for video in videos:
        captions = [clip.caption for clip in video.clips]
        for clip in video.clips:
            if captions.count(clip.caption) == 1:
                queries.append({"video": f"{LONG_DIR}/{video.name}.mp4", **asdict(clip)})
    manifest = {
        "lab": config.identity(),
        "settings": asdict(settings),
        "videos": [{"video": f"{LONG_DIR}/{v.name}.mp4", "duration": v.duration,
                    "clips": [asdict(c) for c in v.clips]} for v in videos],
        "queries": queries,
    }
    atomic_write(out / "moments.json", json.dumps(manifest, indent=1))
    return videos
