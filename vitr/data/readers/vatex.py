"""VATEX (English captions) as CLIP2Video reads it (clip2video.md §8.3, ecosystem.md §4).

`vatex_data.json` is C2V's `{video_id: {"enCap": [10 captions]}}`; the official release's list of
`{"videoID", "enCap", "chCap"}` is accepted as well. `{split}_list.txt` names the videos of a split: `train`,
`val`, `test` (the HGR 1500) or `test1k5_sec` (the paper's random 1500). Many VATEX videos have vanished from
YouTube, so with `check_files=True` missing videos are skipped with a warning giving their count, as C2V does,
instead of failing.
"""

from __future__ import annotations

from pathlib import Path

from vitr.data.readers.files import VideoLocator, field, read_json, read_lines
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError

ANNOTATIONS = "vatex_data.json"


def _english_captions(path: Path) -> dict[str, list[str]]:
    """video id -> English captions, from either JSON layout."""
    data = read_json(path, "VATEX captions")
    if isinstance(data, dict):
        records = [(video_id, entry, f"entry {video_id!r}") for video_id, entry in data.items()]
    elif isinstance(data, list):
        records = [
            (field(entry, "videoID", path, f"entry [{i}]", str), entry, f"entry [{i}]") for i, entry in enumerate(data)
        ]
    else:
        raise DatasetFormatError(f"{path}: expected an object or a list of videos, got {type(data).__name__}")
    captions = {}
    for video_id, entry, where in records:
        texts = field(entry, "enCap", path, where, list)
        if not all(isinstance(t, str) for t in texts):
            raise DatasetFormatError(f"{path}: {where} has an 'enCap' that is not a list of strings")
        captions[video_id] = texts
    return captions


def read_vatex(root: Path, split: str, video_dir: Path) -> RetrievalDataset:
    list_path = root / f"{split}_list.txt"
    video_ids = list(dict.fromkeys(read_lines(list_path, f"VATEX split {split}")))
    by_video = _english_captions(root / ANNOTATIONS)
    without = [vid for vid in video_ids if not by_video.get(vid)]
    if without:
        raise DatasetFormatError(
            f"{root / ANNOTATIONS}: no English captions for {len(without)} videos of {list_path.name}, "
            f"e.g. {without[:3]}"
        )
    locator = VideoLocator(video_dir)
    videos = [VideoItem(vid, locator.by_stem(vid)) for vid in video_ids]
    captions = [Caption(vid, text) for vid in video_ids for text in by_video[vid]]
    return RetrievalDataset("vatex", split, videos, captions)
