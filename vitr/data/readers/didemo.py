"""DiDeMo paragraph retrieval as CLIP4Clip runs it (clip2video.md §8.3, ecosystem.md §4).

`{split}_data.json` (LocalizingMoments) is a list of `{annotation_id, description, video, times, ...}`. All
descriptions of a video are joined with spaces in JSON order into one paragraph, and the video is read over
[0, 31] s: C4C computes the annotated segment times and then discards them, since videos were cut to 30 s at
annotation. When `{split}_list.txt` is present only its videos are kept, in its order (C4C intersects the two).
Video file names must equal the `video` field exactly, as in C4C.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from vitr.data.readers.files import VideoLocator, field, read_json, read_lines
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError

SPLITS = ("train", "val", "test")
VIDEO_START, VIDEO_END = 0.0, 31.0


def read_didemo(root: Path, split: str, video_dir: Path) -> RetrievalDataset:
    if split not in SPLITS:
        raise DatasetFormatError(f"DiDeMo has no split {split!r}; choose one of {list(SPLITS)}")
    path = root / f"{split}_data.json"
    data = read_json(path, f"DiDeMo split {split}")
    if not isinstance(data, list):
        raise DatasetFormatError(f"{path}: expected a list of annotations, got {type(data).__name__}")
    descriptions: dict[str, list[str]] = {}
    for i, annotation in enumerate(data):
        where = f"annotation [{i}]"
        video = field(annotation, "video", path, where, str)
        descriptions.setdefault(video, []).append(field(annotation, "description", path, where, str))

    video_ids = list(descriptions)
    list_path = root / f"{split}_list.txt"
    if list_path.is_file():
        listed = list(dict.fromkeys(read_lines(list_path, f"DiDeMo split {split}")))
        video_ids = [vid for vid in listed if vid in descriptions]
        if len(video_ids) < len(listed):
            warnings.warn(
                f"{list_path}: {len(listed) - len(video_ids)} of {len(listed)} listed videos have no description "
                f"in {path.name} and are left out",
                stacklevel=2,
            )
    locator = VideoLocator(video_dir)
    videos = [VideoItem(vid, locator.by_name(vid), VIDEO_START, VIDEO_END) for vid in video_ids]
    captions = [Caption(vid, " ".join(descriptions[vid])) for vid in video_ids]
    return RetrievalDataset("didemo", split, videos, captions, paragraph=True)
